package org.align4j.losses.rl;

import java.util.Locale;

/**
 * PPO's arithmetic on the host, per completion token (Schulman et al., 2017, "Proximal Policy Optimization
 * Algorithms"; Ouyang et al., 2022 for RLHF's per-token rewards), following OpenRLHF's formulas ({@code
 * openrlhf/models/utils.py}, {@code ppo_utils/experience_maker.py}) and TRL 0.x's {@code PPOTrainer}:
 * <ul>
 *   <li>KL estimators of KL(π‖π_ref) per token from r = log π − log π_ref (Schulman, "Approximating KL
 *       divergence", 2020): k1 = r, k2 = r²/2, k3 = e^(−r) − 1 + r; OpenRLHF clamps each to ±10;
 *   <li>per-token reward = −β·KL_t, plus the sequence's score at its last completion token (minus a
 *       {@code missing_eos_penalty} when the completion was cut without an eos);
 *   <li>generalised advantage estimation (Schulman et al., 2016): δ_t = r_t + γ·V_{t+1} − V_t, A_t = δ_t +
 *       γλ·A_{t+1}, with V after the last token 0; returns R_t = A_t + V_t;
 *   <li>whitening over the batch's tokens as TRL 0.x's {@code masked_whiten}: (x − mean)·(var + 1e-8)^(−½),
 *       var with Bessel's correction ({@code masked_var(unbiased=True)});
 *   <li>the adaptive KL coefficient of Ziegler et al., 2019 ("Fine-tuning language models from human
 *       preferences"), as OpenRLHF's {@code AdaptiveKLController}.
 * </ul>
 * Arrays are ragged, one row per completion, one entry per completion token.
 */
public final class Ppo {
    private Ppo() {}

    /** Which estimator of the per-token KL. */
    public enum KlEstimator {
        /** r = log π − log π_ref (unbiased, can be negative). */
        K1,
        /** r²/2 (biased, low variance). */
        K2,
        /** e^(−r) − 1 + r (unbiased, non-negative). */
        K3;

        /** @return the config spelling */
        @Override
        public String toString() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /**
     * @param logProbs log π of one token
     * @param refLogProbs log π_ref of it
     * @param estimator which estimator
     * @param clamp clamp the estimate to ±clamp (OpenRLHF: 10); {@code Double.POSITIVE_INFINITY} for none
     * @return the estimate
     */
    public static double kl(double logProbs, double refLogProbs, KlEstimator estimator, double clamp) {
        double r = logProbs - refLogProbs;
        double k = switch (estimator) {
            case K1 -> r;
            case K2 -> r * r / 2;
            case K3 -> Math.exp(-r) - 1 + r;
        };
        return Math.max(-clamp, Math.min(clamp, k));
    }

    /**
     * RLHF's per-token rewards of one completion.
     *
     * @param kl the per-token KL estimates
     * @param beta β, the KL coefficient
     * @param score the reward model's (or function's) score of the whole completion
     * @param truncated whether it was cut without an eos
     * @param missingEosPenalty subtracted from the score of a cut completion (0: none)
     * @return −β·KL_t, with the (penalised) score added at the last token
     */
    public static double[] tokenRewards(
            double[] kl, double beta, double score, boolean truncated, double missingEosPenalty) {
        double[] r = new double[kl.length];
        for (int t = 0; t < kl.length; t++) {
            r[t] = -beta * kl[t];
        }
        if (r.length > 0) {
            r[r.length - 1] += score - (truncated ? missingEosPenalty : 0);
        }
        return r;
    }

    /**
     * Generalised advantage estimation of one completion.
     *
     * @param rewards r_t per token
     * @param values V_t per token: the value model's output at the position that predicts token t
     * @param gamma γ, the discount
     * @param lambda λ, the GAE parameter
     * @return {advantages, returns}
     */
    public static double[][] gae(double[] rewards, double[] values, double gamma, double lambda) {
        int n = rewards.length;
        double[] adv = new double[n];
        double next = 0;
        double nextValue = 0;
        for (int t = n - 1; t >= 0; t--) {
            double delta = rewards[t] + gamma * nextValue - values[t];
            next = delta + gamma * lambda * next;
            adv[t] = next;
            nextValue = values[t];
        }
        double[] ret = new double[n];
        for (int t = 0; t < n; t++) {
            ret[t] = adv[t] + values[t];
        }
        return new double[][] {adv, ret};
    }

    /**
     * Whitens ragged values over all their entries.
     *
     * @param rows the values, one row per completion
     * @param shiftMean leave the mean out (true: (x − mean)·(var + 1e-8)^(−½), as advantages are whitened); false
     *     adds the mean back, as TRL's {@code whiten(shift_mean=False)} for {@code whiten_rewards}
     * @return the whitened values
     */
    public static double[][] whiten(double[][] rows, boolean shiftMean) {
        double sum = 0;
        long n = 0;
        for (double[] r : rows) {
            for (double x : r) {
                sum += x;
                n++;
            }
        }
        double mean = n == 0 ? 0 : sum / n;
        double sq = 0;
        for (double[] r : rows) {
            for (double x : r) {
                sq += (x - mean) * (x - mean);
            }
        }
        double var = n < 2 ? 0 : sq / (n - 1);
        double scale = 1 / Math.sqrt(var + 1e-8);
        double[][] out = new double[rows.length][];
        for (int i = 0; i < rows.length; i++) {
            out[i] = new double[rows[i].length];
            for (int t = 0; t < rows[i].length; t++) {
                double w = (rows[i][t] - mean) * scale;
                out[i][t] = shiftMean ? w : w + mean;
            }
        }
        return out;
    }

    /**
     * The clipped value loss of one token: ½·max((V − R)², (clip(V, V_old − ε_v, V_old + ε_v) − R)²).
     *
     * @param value V, the value model's current estimate
     * @param oldValue V_old, its estimate at rollout time
     * @param ret R, the return
     * @param clip ε_v (TRL 0.2, OpenRLHF 0.5)
     * @return the loss (before {@code vf_coef})
     */
    public static double valueLoss(double value, double oldValue, double ret, double clip) {
        double clipped = oldValue + Math.max(-clip, Math.min(clip, value - oldValue));
        return 0.5 * Math.max((value - ret) * (value - ret), (clipped - ret) * (clipped - ret));
    }

    /**
     * The clipped policy loss of one token: −min(ρA, clip(ρ, 1 − ε, 1 + ε)A), ρ = e^(log π − log π_old).
     *
     * @param logProbs log π now
     * @param oldLogProbs log π at rollout time
     * @param advantage A
     * @param clip ε
     * @return the loss
     */
    public static double policyLoss(double logProbs, double oldLogProbs, double advantage, double clip) {
        double ratio = Math.exp(logProbs - oldLogProbs);
        double clipped = Math.max(1 - clip, Math.min(1 + clip, ratio));
        return -Math.min(ratio * advantage, clipped * advantage);
    }

    /**
     * One update of the adaptive KL coefficient (Ziegler et al., 2019, eq. 2; OpenRLHF's {@code
     * AdaptiveKLController.update}): e = clip(KL / target − 1, −0.2, 0.2), β ← β·(1 + e·n / horizon).
     *
     * @param coef β now
     * @param kl the KL measured on the last rollout (per token, averaged over samples)
     * @param target {@code kl_target}
     * @param horizon {@code kl_horizon}
     * @param samples n, the samples of that rollout
     * @return the next β
     */
    public static double adaptKlCoef(double coef, double kl, double target, double horizon, long samples) {
        double error = Math.max(-0.2, Math.min(0.2, kl / target - 1));
        return coef * (1 + error * samples / horizon);
    }
}
