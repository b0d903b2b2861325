package org.align4j.losses;

import ai.djl.ndarray.NDArray;

/**
 * SimPO (Meng et al., 2024, "SimPO: Simple Preference Optimization with a Reference-Free Reward"):
 * no reference model; the implicit reward is the length-averaged log-prob scaled by β, and the pair
 * must clear a target margin γ.
 *
 * <p>L = −log σ(β·π̄_c − β·π̄_r − γ), with π̄ the mean token log-prob. TRL: {@code
 * loss_type="simpo"} (CPO trainer). Rewards are β·π̄. The per-pair preference probability is not used.
 */
public final class SimPoLoss extends PreferenceLoss {
    private final double gamma;

    /**
     * @param beta β &gt; 0 (the paper uses 2 to 2.5)
     * @param gamma target reward margin γ ≥ 0 (the paper uses about 0.5 to 1.6)
     */
    public SimPoLoss(double beta, double gamma) {
        super("simpo", beta);
        if (!(gamma >= 0) || Double.isInfinite(gamma)) {
            throw new IllegalArgumentException("gamma: must be a finite number >= 0, got " + gamma);
        }
        this.gamma = gamma;
    }

    @Override
    public Reduction reduction() {
        return Reduction.MEAN;
    }

    @Override
    public boolean usesReference() {
        return false;
    }

    @Override
    protected NDArray pairLoss(NDArray margin, NDArray preference) {
        return negLogSigmoid(times(margin, beta).sub(gamma));
    }
}
