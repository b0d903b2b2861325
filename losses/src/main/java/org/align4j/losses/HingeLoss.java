package org.align4j.losses;

import ai.djl.ndarray.NDArray;
import ai.djl.nn.Activation;

/**
 * Hinge loss on the log-ratio margin, as in SLiC (Zhao et al., 2023, "SLiC-HF: Sequence Likelihood
 * Calibration with Human Feedback") and RSO (Liu et al., 2023, "Statistical Rejection Sampling
 * Improves Preference Optimization").
 *
 * <p>L = max(0, 1 − βΔ), on summed log-probs. TRL: {@code loss_type="hinge"}. The per-pair
 * preference probability is not used.
 */
public final class HingeLoss extends PreferenceLoss {
    /** @param beta β &gt; 0 (1/β is the margin the pair must clear) */
    public HingeLoss(double beta) {
        super("hinge", beta);
    }

    @Override
    public Reduction reduction() {
        return Reduction.SUM;
    }

    @Override
    protected NDArray pairLoss(NDArray margin, NDArray preference) {
        return Activation.relu(times(margin, -beta).add(1));
    }
}
