package org.align4j.losses.rl;

import ai.djl.ndarray.NDArray;
import org.align4j.losses.PreferenceLoss;

/**
 * PPO's loss on one micro-batch of completion tokens (Schulman et al., 2017), as TRL 0.x's {@code
 * PPOTrainer} and OpenRLHF's {@code PolicyLoss} / {@code ValueLoss} compute it, with TRL's reduction (the
 * token mean over the micro-batch):
 *
 * <p>ρ = exp(clamp(log π − log π_old, ±20)) (the clamp is verl's: a float32 ρ overflows at e^88.7, and an
 * infinite ρ in the unclipped branch makes NaN gradients); policy loss = mean over tokens of max(−Aρ, −A·clip(ρ, 1 − ε, 1 + ε));
 * value loss = ½·mean over tokens of max((V − R)², (clip(V, V_old − ε_v, V_old + ε_v) − R)²); loss = policy
 * loss + {@code vf_coef}·value loss. The per-token arithmetic is {@link Ppo#policyLoss} and {@link
 * Ppo#valueLoss} on the device. All arrays are [N], N the scored tokens of the micro-batch.
 */
public final class PpoLoss {
    /** log ρ is clamped to ±20 before exp, as verl clamps it, so that ρ and its gradient stay finite. */
    public static final double MAX_LOG_RATIO = 20;

    private final double cliprange;
    private final double cliprangeValue;
    private final double vfCoef;

    /**
     * The loss and TRL's statistics of one micro-batch (scalars on the device).
     *
     * @param loss policy loss + vf_coef × value loss, with gradients
     * @param policyLoss the clipped policy loss ({@code loss/policy_avg})
     * @param valueLoss the clipped value loss before vf_coef ({@code loss/value_avg})
     * @param clipFraction share of tokens whose clipped policy term was the larger ({@code policy/clipfrac_avg})
     * @param valueClipFraction share of tokens whose clipped value term was the larger ({@code val/clipfrac_avg})
     * @param approxKl ½·mean((log π − log π_old)²) ({@code policy/approxkl_avg})
     * @param ratio mean ρ ({@code val/ratio})
     */
    public record Output(
            NDArray loss,
            NDArray policyLoss,
            NDArray valueLoss,
            NDArray clipFraction,
            NDArray valueClipFraction,
            NDArray approxKl,
            NDArray ratio) {}

    /**
     * @param cliprange ε ({@code cliprange}, TRL 0.2)
     * @param cliprangeValue ε_v ({@code cliprange_value}, TRL 0.2)
     * @param vfCoef the value loss's weight ({@code vf_coef}, TRL 0.1)
     * @throws IllegalArgumentException when a clip range or vf_coef is negative
     */
    public PpoLoss(double cliprange, double cliprangeValue, double vfCoef) {
        if (!(cliprange >= 0 && cliprangeValue >= 0 && vfCoef >= 0)) {
            throw new IllegalArgumentException("cliprange, cliprange_value and vf_coef must be >= 0, got " + cliprange
                    + ", " + cliprangeValue + ", " + vfCoef);
        }
        this.cliprange = cliprange;
        this.cliprangeValue = cliprangeValue;
        this.vfCoef = vfCoef;
    }

    /**
     * @param logProbs [N] log π, with gradients
     * @param oldLogProbs [N] log π_old at rollout time
     * @param advantages [N] A (whitened GAE)
     * @param values [N] V now, with gradients
     * @param oldValues [N] V at rollout time
     * @param returns [N] R = A (before whitening) + V_old
     * @return the loss and statistics; with N = 0 the loss is 0 and the statistics NaN
     */
    public Output forward(
            NDArray logProbs,
            NDArray oldLogProbs,
            NDArray advantages,
            NDArray values,
            NDArray oldValues,
            NDArray returns) {
        float n = logProbs.getShape().get(0);
        float denominator = Math.max(1f, n);
        NDArray diff = logProbs.sub(oldLogProbs);
        // e^88.7 overflows float32: an infinite ratio in the unclipped branch would make 0 x inf = NaN gradients
        NDArray ratio = diff.clip(-MAX_LOG_RATIO, MAX_LOG_RATIO).exp();
        NDArray pg1 = advantages.neg().mul(ratio);
        NDArray pg2 = advantages.neg().mul(ratio.clip(1 - cliprange, 1 + cliprange));
        // constants through PreferenceLoss.times: DJL's mul/div(Number) frees the scalar autograd keeps
        NDArray policyLoss = PreferenceLoss.times(pg1.maximum(pg2).sum(), 1.0 / denominator);
        NDArray clipped = oldValues.add(values.sub(oldValues).clip(-cliprangeValue, cliprangeValue));
        NDArray vf1 = values.sub(returns).square();
        NDArray vf2 = clipped.sub(returns).square();
        NDArray valueLoss = PreferenceLoss.times(vf1.maximum(vf2).sum(), 0.5 / denominator);
        NDArray loss = policyLoss.add(PreferenceLoss.times(valueLoss, vfCoef));
        NDArray d = diff.stopGradient();
        float stat = n == 0 ? Float.NaN : n;
        return new Output(
                loss,
                policyLoss.stopGradient(),
                valueLoss.stopGradient(),
                pg2.stopGradient()
                        .gt(pg1.stopGradient())
                        .toType(logProbs.getDataType(), false)
                        .sum()
                        .div(stat),
                vf2.stopGradient()
                        .gt(vf1.stopGradient())
                        .toType(logProbs.getDataType(), false)
                        .sum()
                        .div(stat),
                d.square().sum().div(stat).mul(0.5f),
                ratio.stopGradient().sum().div(stat));
    }
}
