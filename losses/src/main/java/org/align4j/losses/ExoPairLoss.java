package org.align4j.losses;

import ai.djl.ndarray.NDArray;

/**
 * EXO on pairs (Ji et al., 2024, "Towards Efficient Exact Optimization of Language Model Alignment",
 * Eq. 16): the reverse KL from the policy's implicit preference distribution over the pair to the
 * smoothed label distribution [1 − ε, ε].
 *
 * <p>With h = βΔ on summed log-probs, q_w = σ(h) and q_l = σ(−h): L = q_w·(log q_w − log(1 − ε)) +
 * q_l·(log q_l − log ε). ε must be positive (the paper recommends 1e-3). TRL: {@code
 * loss_type="exo_pair"} with {@code label_smoothing=ε}. The per-pair preference probability is not used.
 */
public final class ExoPairLoss extends PreferenceLoss {
    private final double epsilon;

    /**
     * @param beta β &gt; 0
     * @param epsilon ε in (0, 0.5)
     */
    public ExoPairLoss(double beta, double epsilon) {
        super("exo-pair", beta);
        if (!(epsilon > 0 && epsilon < 0.5)) {
            throw new IllegalArgumentException(
                    "labelSmoothing: exo-pair needs ε in (0, 0.5) (the paper: 1e-3), got " + epsilon);
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
        NDArray logQw = negLogSigmoid(h).neg();
        NDArray logQl = negLogSigmoid(h.neg()).neg();
        NDArray towardsChosen = sigmoid(h).mul(logQw.sub(Math.log1p(-epsilon)));
        NDArray towardsRejected = sigmoid(h.neg()).mul(logQl.sub(Math.log(epsilon)));
        return towardsChosen.add(towardsRejected);
    }
}
