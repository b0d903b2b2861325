package org.align4j.losses;

import ai.djl.ndarray.NDArray;

/**
 * Identity Preference Optimisation (Azar et al., 2023, "A General Theoretical Paradigm to Understand
 * Learning from Human Preferences"), with soft labels.
 *
 * <p>L = (Δ − (2p − 1)/(2β))². With hard labels (p = 1) the target is 1/(2β): IPO regresses the
 * log-ratio margin to a finite value instead of pushing it to infinity as DPO does on deterministic
 * preferences, so the policy stays near the reference whatever β. With a preference probability p the
 * target follows from the same derivation (a symmetric sample of (y, y') with labels p and 1 − p has
 * its squared-loss optimum at (2p − 1)/(2β)); p = 1/2 asks for no preference at all.
 *
 * <p>By default on length-averaged log-probs, as the IPO authors and TRL ({@code loss_type="ipo"}) do;
 * summed log-probs on request. {@link #soft} makes the soft-label variant that reads p per pair (with a
 * default p for pairs that carry none); plain IPO ignores per-pair probabilities.
 */
public final class IpoLoss extends PreferenceLoss {
    private final Reduction reduction;
    private final double defaultPreference;
    private final boolean soft;

    /** @param beta β &gt; 0 */
    public IpoLoss(double beta) {
        this(beta, Reduction.MEAN, 1.0, false);
    }

    /**
     * @param beta β &gt; 0
     * @param reduction MEAN (default, the paper's) or SUM log-probs
     */
    public IpoLoss(double beta, Reduction reduction) {
        this(beta, reduction, 1.0, false);
    }

    private IpoLoss(double beta, Reduction reduction, double defaultPreference, boolean soft) {
        super(soft ? "ipo-soft" : "ipo", beta);
        if (!(defaultPreference >= 0 && defaultPreference <= 1)) {
            throw new IllegalArgumentException("preference: must lie in [0, 1], got " + defaultPreference);
        }
        this.reduction = reduction;
        this.defaultPreference = defaultPreference;
        this.soft = soft;
    }

    /**
     * Soft-label IPO: pairs with a preference probability use it, others use {@code defaultPreference}.
     *
     * @param beta β &gt; 0
     * @param defaultPreference p for pairs without one, in [0, 1]
     * @return the objective, on mean log-probs
     */
    public static IpoLoss soft(double beta, double defaultPreference) {
        return new IpoLoss(beta, Reduction.MEAN, defaultPreference, true);
    }

    /**
     * The regression target of the margin for preference probability p.
     *
     * @param p the preference probability
     * @return (2p − 1)/(2β)
     */
    public double target(double p) {
        return (2 * p - 1) / (2 * beta);
    }

    @Override
    public Reduction reduction() {
        return reduction;
    }

    @Override
    protected NDArray pairLoss(NDArray margin, NDArray preference) {
        if (!soft || preference == null) {
            // hard-label IPO ignores per-pair probabilities: its target is always 1/(2β)
            return margin.sub(target(defaultPreference)).square();
        }
        NDArray target = preference.mul(2).sub(1).div(2 * beta);
        return margin.sub(target).square();
    }
}
