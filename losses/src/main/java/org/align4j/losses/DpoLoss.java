package org.align4j.losses;

import ai.djl.ndarray.NDArray;

/**
 * Direct Preference Optimization (Rafailov et al., 2023, "Direct Preference Optimization: Your
 * Language Model is Secretly a Reward Model"), with optional label smoothing — conservative DPO
 * (Mitchell, 2023, "A note on DPO with noisy preferences").
 *
 * <p>L = −(1 − ε)·log σ(βΔ) − ε·log σ(−βΔ), on summed log-probs. ε = 0 is DPO (Bradley–Terry
 * classification of the pair); ε ∈ (0, 0.5) assumes a fraction ε of labels are flipped. With a
 * per-pair preference probability p the pair's label is soft: the weight of log σ(βΔ) is p(1 − ε) + (1
 * − p)ε. TRL: {@code loss_type="sigmoid"}, {@code label_smoothing=ε}.
 */
public final class DpoLoss extends PreferenceLoss {
    private final double labelSmoothing;

    /** @param beta β &gt; 0 */
    public DpoLoss(double beta) {
        this(beta, 0);
    }

    /**
     * @param beta β &gt; 0
     * @param labelSmoothing ε in [0, 0.5)
     */
    public DpoLoss(double beta, double labelSmoothing) {
        super(labelSmoothing == 0 ? "dpo" : "cdpo", beta);
        if (!(labelSmoothing >= 0 && labelSmoothing < 0.5)) {
            throw new IllegalArgumentException("labelSmoothing: must lie in [0, 0.5), got " + labelSmoothing);
        }
        this.labelSmoothing = labelSmoothing;
    }

    /** @return ε */
    public double labelSmoothing() {
        return labelSmoothing;
    }

    @Override
    public Reduction reduction() {
        return Reduction.SUM;
    }

    @Override
    protected NDArray pairLoss(NDArray margin, NDArray preference) {
        NDArray h = times(margin, beta);
        NDArray towardsChosen = negLogSigmoid(h);
        if (labelSmoothing == 0 && preference == null) {
            return towardsChosen;
        }
        NDArray towardsRejected = negLogSigmoid(h.neg());
        if (preference == null) {
            return times(towardsChosen, 1 - labelSmoothing).add(times(towardsRejected, labelSmoothing));
        }
        NDArray weight = preference.mul(1 - 2 * labelSmoothing).add(labelSmoothing);
        return towardsChosen.mul(weight).add(towardsRejected.mul(weight.neg().add(1)));
    }
}
