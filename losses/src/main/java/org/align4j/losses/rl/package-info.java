/**
 * The objectives of online RL (RLHF's second stage): the clipped policy losses of GRPO ({@link
 * org.align4j.losses.rl.GrpoLoss}, per token, KL in the loss) and RLOO ({@link
 * org.align4j.losses.rl.RlooLoss}, per sequence, KL in the reward), and how rewards become advantages
 * ({@link org.align4j.losses.rl.Advantages}), with TRL 1.13's semantics and metric names.
 *
 * <p>Inputs are flat over the N scored completion tokens of a micro-batch (row-major), with a [B, N]
 * one-hot {@code owner} matrix mapping tokens to rows: ratios, clipping and KL are per token; the
 * reductions are per row or over the batch.
 */
package org.align4j.losses.rl;
