package org.align4j.model;

import ai.djl.ndarray.NDArray;

/**
 * Per-token log-probabilities of the completion tokens of a batch, flat: the N scored tokens of all
 * rows in row-major order (row 0's tokens in position order, then row 1's, ...), which is the layout an
 * RL loss needs (ratios, clipping and KL are per token; reductions are per row or over the batch). The
 * same ids and completion mask always give the same order, so the per-token arrays of the policy, the
 * old policy and the reference line up.
 *
 * @param logProbs [N] log π(token ∣ prefix) at the temperature asked for (logits ÷ τ before the
 *     log-softmax, as TRL's GRPO and RLOO trainers score), with gradients when recorded
 * @param entropy [N] the entropy of each scored position's distribution (same temperature, no
 *     gradient), or null when not asked for
 * @param row [N] int64, the row of each token
 * @param owner [B, N] float32 one-hot: owner[b, n] = 1 when token n belongs to row b
 * @param tokens [B] float32, the number of scored tokens of each row
 */
public record TokenLogProbs(NDArray logProbs, NDArray entropy, NDArray row, NDArray owner, NDArray tokens) {

    /**
     * @param perToken [N] a value per token
     * @return [B] its sum over each row's tokens (0 for a row without tokens)
     */
    public NDArray sumPerRow(NDArray perToken) {
        return owner.matMul(perToken.reshape(-1, 1)).reshape(-1);
    }

    /**
     * @param perToken [N] a value per token
     * @return [B] its mean over each row's tokens (0 for a row without tokens)
     */
    public NDArray meanPerRow(NDArray perToken) {
        return sumPerRow(perToken).div(tokens.maximum(1f));
    }

    /**
     * @param perRow [B] a value per row
     * @return [N] each token's row's value
     */
    public NDArray perToken(NDArray perRow) {
        return perRow.get(row);
    }

    /** @return N, the number of scored tokens */
    public long count() {
        return logProbs.getShape().get(0);
    }
}
