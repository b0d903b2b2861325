package org.align4j.losses;

import ai.djl.ndarray.NDArray;

/**
 * Robust DPO (Chowdhury et al., 2024, "Provably Robust DPO: Aligning Language Models with Noisy
 * Feedback"): an unbiased estimate of the DPO loss under labels flipped with probability ε.
 *
 * <p>L = [(1 − ε)·(−log σ(βΔ)) + ε·log σ(−βΔ)] / (1 − 2ε), on summed log-probs. TRL: {@code
 * loss_type="robust"}. The per-pair preference probability is not used.
 */
public final class RobustDpoLoss extends PreferenceLoss {
    private final double epsilon;

    /**
     * @param beta β &gt; 0
     * @param epsilon label-noise rate ε in [0, 0.5)
     */
    public RobustDpoLoss(double beta, double epsilon) {
        super("robust", beta);
        if (!(epsilon >= 0 && epsilon < 0.5)) {
            throw new IllegalArgumentException("labelSmoothing: must lie in [0, 0.5), got " + epsilon);
        }
        this.epsilon = epsilon;
    }

    @Override
    public Reduction reduction() {
        return Reduction.SUM;
    }

    @Override
    protected NDArray pairLoss(NDArray margin, NDArray preference) {
        NDArray h = times(margin, beta);
        NDArray clean = times(negLogSigmoid(h), 1 - epsilon);
        NDArray flipped = times(negLogSigmoid(h.neg()), epsilon);
        return times(clean.sub(flipped), 1 / (1 - 2 * epsilon));
    }
}
