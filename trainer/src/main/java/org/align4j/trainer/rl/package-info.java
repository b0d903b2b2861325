/**
 * Online RL, RLHF's second stage ({@link org.align4j.trainer.rl.OnlineRlTrainer}: GRPO and RLOO with TRL
 * 1.13's semantics), its options ({@link org.align4j.trainer.rl.RlConfig}, beside the shared {@link
 * org.align4j.trainer.TrainConfig}) and the buffered samples a generation leaves for the steps that reuse
 * it ({@link org.align4j.trainer.rl.Rollout}).
 *
 * <p>The trainer package's stages: offline preference ({@code PreferenceTrainer}), SFT ({@code
 * SftTrainer}), reward models ({@code RewardTrainer}) in {@code org.align4j.trainer}; online RL here.
 */
package org.align4j.trainer.rl;
