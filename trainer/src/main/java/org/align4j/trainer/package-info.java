/**
 * The training loop: {@link org.align4j.trainer.PreferenceTrainer} (DPO, IPO and relatives) and
 * {@link org.align4j.trainer.SftTrainer}, and {@link org.align4j.trainer.RewardTrainer} (reward models), with AdamW, learning-rate schedules, gradient accumulation
 * and clipping, a frozen or precomputed reference policy, atomic checkpoints and exact resume.
 */
package org.align4j.trainer;
