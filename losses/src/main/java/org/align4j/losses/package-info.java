/**
 * Preference objectives as DJL {@link ai.djl.training.loss.Loss} classes, one per file, all with the
 * same inputs (policy and reference log-probs of the chosen and rejected responses, and an optional
 * per-pair preference probability) and the same outputs ({@link org.align4j.losses.PreferenceLoss.Output}:
 * per-pair loss, chosen and rejected implicit rewards), plus the reward metrics TRL logs; and the
 * reward-model objective, {@link org.align4j.losses.BradleyTerryLoss}, on a reward model's scalar rewards.
 *
 * <p>Notation: π and r are the policy and reference log-probs of a response, Δ = (π_c − r_c) − (π_r −
 * r_r) the log-ratio margin, β the inverse temperature, h = βΔ.
 */
package org.align4j.losses;
