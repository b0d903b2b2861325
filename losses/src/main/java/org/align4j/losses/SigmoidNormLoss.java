package org.align4j.losses;

import ai.djl.ndarray.NDArray;

/**
 * DPO on length-normalised log-ratios: L = −log σ(β·(q̄_c − q̄_r)), with q̄ = (π − π_ref) divided by
 * the completion's token count, so a long answer does not win by its length (the normalisation of
 * R-DPO's and SimPO's motivation, here with the reference kept). TRL: {@code
 * loss_type="sigmoid_norm"}. The per-pair preference probability is not used.
 */
public final class SigmoidNormLoss extends PreferenceLoss {
    /** @param beta β &gt; 0 (on per-token log-ratios it is larger than DPO's, as IPO's) */
    public SigmoidNormLoss(double beta) {
        super("sigmoid-norm", beta);
    }

    @Override
    public Reduction reduction() {
        return Reduction.MEAN;
    }

    @Override
    protected NDArray pairLoss(NDArray margin, NDArray preference) {
        return negLogSigmoid(times(margin, beta));
    }
}
