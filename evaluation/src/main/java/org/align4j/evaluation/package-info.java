/**
 * Held-out preference metrics, scoring of preference pairs under a model or a reward model ({@link
 * org.align4j.evaluation.RewardScorer}), KL, and win rates under a judge (a program, or a reward model).
 */
package org.align4j.evaluation;
