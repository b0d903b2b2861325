/**
 * Rewards for online RL: {@link org.align4j.evaluation.rewards.RewardFunction} (TRL's {@code reward_funcs}
 * callables: a score per sample, or null to abstain), the built-ins the CLI names ({@link
 * org.align4j.evaluation.rewards.BuiltinRewards}), reward models trained by {@code align4j reward train}
 * ({@link org.align4j.evaluation.rewards.RewardModelFunction}), and a weighted set of them ({@link
 * org.align4j.evaluation.rewards.Rewards}, TRL's {@code reward_weights}).
 */
package org.align4j.evaluation.rewards;
