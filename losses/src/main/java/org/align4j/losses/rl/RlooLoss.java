package org.align4j.losses.rl;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;

/**
 * RLOO's clipped surrogate per sequence (Ahmadian et al., 2024, "Back to Basics: Revisiting REINFORCE
 * Style Optimization for Learning from Human Feedback in LLMs"), as TRL 1.13's {@code
 * RLOOTrainer._compute_loss}: ρ = exp(Σ_t log π − Σ_t log π_old) per completion, ℓ = −min(ρA, clip(ρ, 1 −
 * ε, 1 + ε_high)A), averaged over the completions. The KL to the reference is not here: RLOO subtracts
 * β·Σ_t (log π_old − log π_ref) (the k1 estimate, which can be negative) from the reward before the
 * leave-one-out baseline ({@link Advantages#rloo}).
 */
public final class RlooLoss {
    private final double epsilonLow;
    private final double epsilonHigh;

    /**
     * The loss of one micro-batch and its per-sequence clip flags (on the device).
     *
     * @param loss the mean loss over the rows (a scalar, with gradients)
     * @param lowClipped [B] 1 where ρ &lt; 1 − ε and A &lt; 0
     * @param highClipped [B] 1 where ρ &gt; 1 + ε_high and A &gt; 0
     */
    public record Output(NDArray loss, NDArray lowClipped, NDArray highClipped) {}

    /**
     * @param epsilonLow ε
     * @param epsilonHigh ε_high (TRL's default is ε)
     */
    public RlooLoss(double epsilonLow, double epsilonHigh) {
        if (!(epsilonLow >= 0 && epsilonHigh >= 0)) {
            throw new IllegalArgumentException(
                    "epsilon and epsilon_high must be >= 0, got " + epsilonLow + ", " + epsilonHigh);
        }
        this.epsilonLow = epsilonLow;
        this.epsilonHigh = epsilonHigh;
    }

    /**
     * @param sequenceLogProbs [B] Σ_t log π over each completion, with gradients
     * @param oldSequenceLogProbs [B] Σ_t log π_old at sampling time
     * @param advantages [B]
     * @return the loss and clip flags
     */
    public Output forward(NDArray sequenceLogProbs, NDArray oldSequenceLogProbs, NDArray advantages) {
        NDArray ratio = sequenceLogProbs.sub(oldSequenceLogProbs).exp();
        NDArray clipped = ratio.clip(1 - epsilonLow, 1 + epsilonHigh);
        NDArray loss =
                ratio.mul(advantages).minimum(clipped.mul(advantages)).neg().mean();
        NDArray r = ratio.stopGradient();
        NDArray low = r.lt(1 - epsilonLow).logicalAnd(advantages.lt(0)).toType(DataType.FLOAT32, false);
        NDArray high = r.gt(1 + epsilonHigh).logicalAnd(advantages.gt(0)).toType(DataType.FLOAT32, false);
        return new Output(loss, low, high);
    }
}
