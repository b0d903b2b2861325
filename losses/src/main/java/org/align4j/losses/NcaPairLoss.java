package org.align4j.losses;

import ai.djl.ndarray.NDArray;

/**
 * NCA on pairs (Chen et al., 2024, "Noise Contrastive Alignment of Language Models with Explicit
 * Rewards"): each response's own implicit reward is classified, not only their difference, so the
 * chosen response's likelihood is pushed up in absolute terms.
 *
 * <p>With r_c = β(π_c − r_c) and r_r = β(π_r − r_r) on summed log-probs: L = −log σ(r_c) − ½·log
 * σ(−r_c) − ½·log σ(−r_r). TRL: {@code loss_type="nca_pair"}. The per-pair preference probability is
 * not used; it has no f-divergence form (the log-partition term does not cancel).
 */
public final class NcaPairLoss extends PreferenceLoss {
    /** @param beta β &gt; 0 */
    public NcaPairLoss(double beta) {
        super("nca-pair", beta);
    }

    @Override
    public Reduction reduction() {
        return Reduction.SUM;
    }

    @Override
    protected NDArray pairLoss(NDArray chosenRatio, NDArray rejectedRatio, NDArray preference) {
        NDArray c = times(chosenRatio, beta);
        NDArray r = times(rejectedRatio, beta);
        return negLogSigmoid(c).add(times(negLogSigmoid(c.neg()), 0.5)).add(times(negLogSigmoid(r.neg()), 0.5));
    }
}
