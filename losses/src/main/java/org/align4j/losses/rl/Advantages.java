package org.align4j.losses.rl;

import java.util.Arrays;

/**
 * From rewards to advantages, on the host (a generation batch has a few hundred numbers at most), with
 * TRL 1.13's NaN rules: a completion every reward function abstained on has reward NaN, is left out of
 * its group's statistics, and gets advantage 0.
 *
 * <p>GRPO (Shao et al., 2024, "DeepSeekMath"; TRL {@code scale_rewards}): A = r − mean of the group of G
 * samples of its prompt, divided by (std + 1e-4) where std is the group's ({@code group}), the whole
 * batch's ({@code batch}) or not at all ({@code none}); std is the Bessel-corrected sample standard
 * deviation. RLOO (Ahmadian et al., 2024, "Back to Basics"): A = r − the mean of the other G − 1
 * samples' rewards; optionally whitened over the batch ({@code normalize_advantages}).
 */
public final class Advantages {
    private Advantages() {}

    /** How GRPO scales the centred rewards ({@code scale_rewards}). */
    public enum Scale {
        /** By the standard deviation of the prompt's group (TRL's default). */
        GROUP,
        /** By the standard deviation of the whole generation batch. */
        BATCH,
        /** Not at all (Dr. GRPO's recommendation). */
        NONE
    }

    /**
     * GRPO's advantages and the per-row std used for {@code frac_reward_zero_std}.
     *
     * @param rewards weighted rewards of the batch, G consecutive rows per prompt; NaN = unscorable
     * @param g samples per prompt, at least 2
     * @param scale how to scale
     * @return {advantages, std} per row
     */
    public static double[][] grpo(double[] rewards, int g, Scale scale) {
        int n = rewards.length;
        requireGroups(n, g);
        double[] adv = new double[n];
        double[] std = new double[n];
        double batchStd = nanStd(rewards, 0, n);
        for (int from = 0; from < n; from += g) {
            double mean = nanMean(rewards, from, from + g);
            double groupStd = nanStd(rewards, from, from + g);
            for (int i = from; i < from + g; i++) {
                std[i] = scale == Scale.BATCH ? batchStd : groupStd;
                double a = rewards[i] - mean;
                if (scale != Scale.NONE) {
                    a /= std[i] + 1e-4;
                }
                adv[i] = Double.isNaN(a) ? 0 : a;
            }
        }
        return new double[][] {adv, std};
    }

    /**
     * RLOO's leave-one-out advantages.
     *
     * @param rewards rewards of the batch (with RLOO's KL penalty already subtracted), G consecutive rows
     *     per prompt; NaN = unscorable
     * @param g samples per prompt, at least 2
     * @param normalize whiten over the batch: (A − mean)/(std + 1e-4)
     * @return advantages per row
     */
    public static double[] rloo(double[] rewards, int g, boolean normalize) {
        int n = rewards.length;
        requireGroups(n, g);
        double[] adv = new double[n];
        for (int from = 0; from < n; from += g) {
            double sum = 0;
            int scorable = 0;
            for (int i = from; i < from + g; i++) {
                if (!Double.isNaN(rewards[i])) {
                    sum += rewards[i];
                    scorable++;
                }
            }
            for (int i = from; i < from + g; i++) {
                // the baseline averages the scorable siblings only; a lone scorable sample gets 0/0 = NaN → 0
                double baseline = (sum - (Double.isNaN(rewards[i]) ? 0 : rewards[i])) / (scorable - 1);
                adv[i] = rewards[i] - baseline;
            }
        }
        if (normalize) {
            double mean = nanMean(adv, 0, n);
            double std = nanStd(adv, 0, n);
            for (int i = 0; i < n; i++) {
                adv[i] = (adv[i] - mean) / (std + 1e-4);
            }
        }
        for (int i = 0; i < n; i++) {
            if (Double.isNaN(adv[i])) {
                adv[i] = 0;
            }
        }
        return adv;
    }

    /**
     * @param x values, NaN ignored
     * @param from first index
     * @param to end index (exclusive)
     * @return their mean, NaN when none is a number
     */
    public static double nanMean(double[] x, int from, int to) {
        double s = 0;
        int c = 0;
        for (int i = from; i < to; i++) {
            if (!Double.isNaN(x[i])) {
                s += x[i];
                c++;
            }
        }
        return c == 0 ? Double.NaN : s / c;
    }

    /**
     * @param x values, NaN ignored
     * @param from first index
     * @param to end index (exclusive)
     * @return their Bessel-corrected standard deviation, NaN for fewer than two numbers (TRL's {@code nanstd})
     */
    public static double nanStd(double[] x, int from, int to) {
        double mean = nanMean(x, from, to);
        double s = 0;
        int c = 0;
        for (int i = from; i < to; i++) {
            if (!Double.isNaN(x[i])) {
                s += (x[i] - mean) * (x[i] - mean);
                c++;
            }
        }
        return c < 2 ? Double.NaN : Math.sqrt(s / c * c / (c - 1));
    }

    /**
     * @param x values
     * @return the mean of the numbers among them (NaN when none)
     */
    public static double nanMean(double[] x) {
        return nanMean(x, 0, x.length);
    }

    private static void requireGroups(int n, int g) {
        if (g < 2 || n % g != 0) {
            throw new IllegalArgumentException(
                    "num_generations: groups of at least 2 that divide the batch, got " + g + " for " + n + " samples");
        }
    }

    /**
     * @param std per-row standard deviations
     * @return the share of them that are 0 (TRL's {@code frac_reward_zero_std}: torch.isclose to 0)
     */
    public static double zeroShare(double[] std) {
        return Arrays.stream(std).filter(s -> Math.abs(s) <= 1e-8).count() / (double) std.length;
    }
}
