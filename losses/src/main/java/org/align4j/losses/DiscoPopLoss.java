package org.align4j.losses;

import ai.djl.ndarray.NDArray;

/**
 * DiscoPOP, the log-ratio modulated loss (Chan Lu et al., 2024, "Discovering Preference Optimization
 * Algorithms with and for Large Language Models", Eq. 5): a blend of the logistic (DPO) and the
 * exponential loss whose mix follows the margin.
 *
 * <p>With h = βΔ on summed log-probs and m = σ(h/τ): L = (1 − m)·(−log σ(h)) + m·e^{−h}. The
 * exponential term is computed as exp(−h − softplus(−h/τ)), equal to e^{−h}·σ(h/τ) but finite at any
 * margin, and 1 − m as σ(−h/τ): TRL's 1 − σ(h/τ) rounds to a few digits in float32 once h/τ &gt; 10, which
 * at τ = 0.05 moves a ten-step float32 run 15% away from the float64 one (TRL against itself). TRL: {@code loss_type="discopop"}, {@code discopop_tau=τ} (0.05, the paper's). The per-pair
 * preference probability is not used.
 */
public final class DiscoPopLoss extends PreferenceLoss {
    private final double tau;

    /**
     * @param beta β &gt; 0
     * @param tau τ &gt; 0 (the paper: 0.05)
     */
    public DiscoPopLoss(double beta, double tau) {
        super("discopop", beta);
        if (!(tau > 0) || Double.isInfinite(tau)) {
            throw new IllegalArgumentException("discopopTau: must be a finite number > 0, got " + tau);
        }
        this.tau = tau;
    }

    @Override
    public Reduction reduction() {
        return Reduction.SUM;
    }

    @Override
    protected NDArray pairLoss(NDArray margin, NDArray preference) {
        NDArray h = times(margin, beta);
        NDArray scaled = times(h, 1 / tau);
        NDArray logistic = negLogSigmoid(h).mul(sigmoid(scaled.neg()));
        NDArray exponential = h.add(negLogSigmoid(scaled)).neg().exp();
        return logistic.add(exponential);
    }
}
