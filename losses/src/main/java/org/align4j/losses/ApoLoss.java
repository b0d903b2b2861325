package org.align4j.losses;

import ai.djl.ndarray.NDArray;

/**
 * Anchored preference optimisation (D'Oosterlinck et al., 2024, "Anchored Preference Optimization and
 * Contrastive Revisions"), whose anchoring says which way each likelihood must move, with q = π −
 * π_ref on summed log-probs:
 *
 * <ul>
 *   <li>{@code apo-zero} (Eq. 7, the chosen answers are better than the model's own): L = 1 − σ(βq_c) +
 *       σ(βq_r): the chosen likelihood goes up, the rejected one down;
 *   <li>{@code apo-down} (Eq. 8, the chosen answers are worse than the model's own): L = σ(βq_c) + 1 −
 *       σ(β(q_c − q_r)): both go down, the rejected one more.
 * </ul>
 *
 * TRL: {@code loss_type="apo_zero"} and {@code "apo_down"}. The per-pair preference probability is not
 * used; no f-divergence form.
 */
public final class ApoLoss extends PreferenceLoss {
    private final boolean down;

    /**
     * @param beta β &gt; 0
     * @param down apo-down (true) or apo-zero (false)
     */
    public ApoLoss(double beta, boolean down) {
        super(down ? "apo-down" : "apo-zero", beta);
        this.down = down;
    }

    @Override
    public Reduction reduction() {
        return Reduction.SUM;
    }

    @Override
    protected NDArray pairLoss(NDArray chosenRatio, NDArray rejectedRatio, NDArray preference) {
        NDArray c = times(chosenRatio, beta);
        if (down) {
            return sigmoid(c)
                    .add(sigmoid(times(chosenRatio.sub(rejectedRatio), beta))
                            .neg()
                            .add(1));
        }
        return sigmoid(c).neg().add(1).add(sigmoid(times(rejectedRatio, beta)));
    }
}
