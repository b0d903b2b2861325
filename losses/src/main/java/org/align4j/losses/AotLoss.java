package org.align4j.losses;

import ai.djl.ndarray.NDArray;

/**
 * Alignment via optimal transport (Melnyk et al., 2024, "Distributional Preference Alignment of LLMs
 * via Optimal Transport"): first-order stochastic dominance of the chosen over the rejected
 * distribution, enforced on sorted samples of the batch rather than pair by pair.
 *
 * <p>Paired ({@code aot}): the policy's margins π_c − π_r and the reference's r_c − r_r are sorted
 * over the batch apart and δ_i = sort(π_c − π_r)_i − sort(r_c − r_r)_i. Unpaired ({@code
 * aot-unpaired}): δ_i = sort(q_c)_i − sort(q_r)_i for the log-ratios q = π − π_ref. Then L_i = −(1 −
 * ε)·log σ(βδ_i) − ε·log σ(−βδ_i), on summed log-probs. TRL: {@code loss_type="aot"} and {@code
 * "aot_unpaired"}, with {@code label_smoothing=ε}. The per-pair loss belongs to a rank, not to a pair
 * (only its mean means something), so per-pair weights (WPO) are refused.
 */
public final class AotLoss extends PreferenceLoss {
    private final boolean paired;
    private final double labelSmoothing;

    /**
     * @param beta β &gt; 0
     * @param labelSmoothing ε in [0, 0.5)
     * @param paired sort the policy's and the reference's margins (aot), or the chosen and rejected
     *     log-ratios (aot-unpaired)
     */
    public AotLoss(double beta, double labelSmoothing, boolean paired) {
        super(paired ? "aot" : "aot-unpaired", beta);
        if (!(labelSmoothing >= 0 && labelSmoothing < 0.5)) {
            throw new IllegalArgumentException("labelSmoothing: must lie in [0, 0.5), got " + labelSmoothing);
        }
        this.paired = paired;
        this.labelSmoothing = labelSmoothing;
    }

    @Override
    public Reduction reduction() {
        return Reduction.SUM;
    }

    @Override
    protected NDArray pairLoss(
            NDArray policyChosen,
            NDArray policyRejected,
            NDArray referenceChosen,
            NDArray referenceRejected,
            NDArray preference) {
        NDArray delta = paired
                ? policyChosen
                        .sub(policyRejected)
                        .sort(0)
                        .sub(referenceChosen.sub(referenceRejected).sort(0))
                : policyChosen
                        .sub(referenceChosen)
                        .sort(0)
                        .sub(policyRejected.sub(referenceRejected).sort(0));
        NDArray h = times(delta, beta);
        NDArray towardsChosen = negLogSigmoid(h);
        if (labelSmoothing == 0) {
            return towardsChosen;
        }
        return times(towardsChosen, 1 - labelSmoothing).add(times(negLogSigmoid(h.neg()), labelSmoothing));
    }
}
