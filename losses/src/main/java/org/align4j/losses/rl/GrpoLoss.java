package org.align4j.losses.rl;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.types.DataType;
import java.util.Locale;
import org.align4j.losses.PreferenceLoss;

/**
 * GRPO's clipped surrogate per token (Shao et al., 2024, "DeepSeekMath"; Schulman et al., 2017 for the
 * clipping), as TRL 1.13's {@code GRPOTrainer._compute_loss} computes it:
 *
 * <p>ρ = exp(log π − log π_old) per token (π_old = π without gradient when the samples are on-policy);
 * ℓ = −min(ρA, clip(ρ, 1 − ε, 1 + ε_high)A) + β·k3·ρ, with the k3 estimator of KL(π‖π_ref), k3 = e^(r−p)
 * − (r − p) − 1 for p = log π, r = log π_ref (Schulman, "Approximating KL divergence", 2020), weighted by ρ
 * ({@code use_bias_correction_kl}). Reduced as {@code loss_type} says:
 * <ul>
 *   <li>{@code grpo}: each row's token mean, then the mean over rows;
 *   <li>{@code bnpo}: the token mean of the micro-batch;
 *   <li>{@code dr_grpo} (Liu et al., 2025, "Understanding R1-Zero-like training"): the token sum ÷ (B ·
 *       {@code max_completion_length});
 *   <li>{@code dapo} (Yu et al., 2025, "DAPO"; TRL's default): the token sum ÷ the completion tokens of the
 *       whole generation batch, so micro-batches add up to one token mean.
 * </ul>
 * The division by gradient-accumulation steps that TRL applies to the first three is the trainer's.
 */
public final class GrpoLoss {
    /** How the per-token losses are reduced ({@code loss_type}). */
    public enum Aggregation {
        /** Row token mean, then mean over rows. */
        GRPO,
        /** Token mean of the micro-batch. */
        BNPO,
        /** Token sum ÷ (rows × max_completion_length). */
        DR_GRPO,
        /** Token sum ÷ the generation batch's completion tokens (TRL 1.13's default). */
        DAPO;

        /** @return TRL's spelling */
        @Override
        public String toString() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    private final Aggregation aggregation;
    private final double epsilonLow;
    private final double epsilonHigh;
    private final double beta;

    /**
     * The loss of one micro-batch and the sums TRL's metrics are made of (all on the device).
     *
     * @param loss the reduced loss (a scalar, with gradients)
     * @param klSum Σ over tokens of the ρ-weighted k3, or null when β = 0
     * @param lowClipped Σ over tokens of [ρ &lt; 1 − ε and A &lt; 0]
     * @param highClipped Σ over tokens of [ρ &gt; 1 + ε_high and A &gt; 0]
     * @param lowMin the smallest row share of low-clipped tokens (rows without tokens left out)
     * @param highMax the largest row share of high-clipped tokens
     */
    public record Output(
            NDArray loss, NDArray klSum, NDArray lowClipped, NDArray highClipped, NDArray lowMin, NDArray highMax) {}

    /**
     * @param aggregation {@code loss_type}
     * @param epsilonLow ε, the lower clip (ρ ≥ 1 − ε)
     * @param epsilonHigh ε_high, the upper clip (ρ ≤ 1 + ε_high; TRL's default is ε)
     * @param beta β ≥ 0, the KL coefficient (0: no reference needed)
     */
    public GrpoLoss(Aggregation aggregation, double epsilonLow, double epsilonHigh, double beta) {
        if (!(epsilonLow >= 0 && epsilonHigh >= 0 && beta >= 0)) {
            throw new IllegalArgumentException("epsilon, epsilon_high and beta must be >= 0, got " + epsilonLow + ", "
                    + epsilonHigh + ", " + beta);
        }
        this.aggregation = aggregation;
        this.epsilonLow = epsilonLow;
        this.epsilonHigh = epsilonHigh;
        this.beta = beta;
    }

    /**
     * @param logProbs [N] log π of the scored tokens, with gradients
     * @param oldLogProbs [N] log π_old, or null when the samples are on-policy (π without gradient)
     * @param refLogProbs [N] log π_ref, or null when β = 0
     * @param advantages [N] each token's row's advantage
     * @param owner [B, N] one-hot, token → row
     * @param rowTokens [B] scored tokens per row (float)
     * @param normalizer {@code dr_grpo}: B × max_completion_length; {@code dapo}: the generation batch's
     *     completion tokens; ignored otherwise
     * @return the loss and metric sums
     */
    public Output forward(
            NDArray logProbs,
            NDArray oldLogProbs,
            NDArray refLogProbs,
            NDArray advantages,
            NDArray owner,
            NDArray rowTokens,
            double normalizer) {
        NDArray old = oldLogProbs == null ? logProbs.stopGradient() : oldLogProbs;
        NDArray ratio = logProbs.sub(old).exp();
        NDArray clipped = ratio.clip(1 - epsilonLow, 1 + epsilonHigh);
        NDArray perToken =
                ratio.mul(advantages).minimum(clipped.mul(advantages)).neg();
        NDArray klSum = null;
        if (beta != 0) {
            if (refLogProbs == null) {
                throw new IllegalArgumentException("beta > 0 needs the reference's log-probs");
            }
            NDArray d = refLogProbs.sub(logProbs);
            NDArray kl = d.exp().sub(d).sub(1).mul(ratio);
            perToken = perToken.add(PreferenceLoss.times(kl, beta));
            klSum = kl.stopGradient().sum();
        }
        NDArray tokens = rowTokens.sum();
        NDArray loss = switch (aggregation) {
            case GRPO ->
                owner.matMul(perToken.reshape(-1, 1))
                        .reshape(-1)
                        .div(rowTokens.maximum(1f))
                        .mean();
            case BNPO -> perToken.sum().div(tokens.maximum(1f));
            case DR_GRPO, DAPO -> PreferenceLoss.times(perToken.sum(), 1 / Math.max(1.0, normalizer));
        };
        NDArray r = ratio.stopGradient();
        NDArray low = r.lt(1 - epsilonLow).logicalAnd(advantages.lt(0)).toType(DataType.FLOAT32, false);
        NDArray high = r.gt(1 + epsilonHigh).logicalAnd(advantages.gt(0)).toType(DataType.FLOAT32, false);
        return new Output(
                loss,
                klSum,
                low.sum(),
                high.sum(),
                rowShare(low, owner, rowTokens, true),
                rowShare(high, owner, rowTokens, false));
    }

    /** The min (or max) over rows with tokens of each row's share of flagged tokens; NaN when no row has tokens. */
    private static NDArray rowShare(NDArray flags, NDArray owner, NDArray rowTokens, boolean min) {
        NDArray share = owner.matMul(flags.reshape(-1, 1)).reshape(-1).div(rowTokens.maximum(1f));
        NDArray has = rowTokens.gt(0);
        // rows without tokens are NaN in TRL (0/0) and nanmin/nanmax skip them: push them past the extreme
        NDArray pushed =
                share.add(has.logicalNot().toType(DataType.FLOAT32, false).mul(min ? 1e30f : -1e30f));
        NDArray extreme = min ? pushed.min() : pushed.max();
        // no row with tokens (all masked): NaN, as TRL's nanmin/nanmax of nothing
        NDArray any = has.toType(DataType.FLOAT32, false).sum().gt(0);
        return NDArrays.where(any, extreme, extreme.getManager().full(extreme.getShape(), Float.NaN));
    }

    /** @return β */
    public double beta() {
        return beta;
    }
}
