package org.align4j.losses;

import ai.djl.ndarray.NDArray;

/**
 * SPPO with hard labels (Wu et al., 2024, "Self-Play Preference Optimization for Language Model
 * Alignment", Eq. 4.7 with P = 1 for the winner and 0 for the loser): each log-ratio is regressed on
 * its own target, +1/(2β) for the chosen response and −1/(2β) for the rejected one.
 *
 * <p>L = (q_c − 1/(2β))² + (q_r + 1/(2β))², with q = π − π_ref on summed log-probs. TRL: {@code
 * loss_type="sppo_hard"}. The per-pair preference probability is not used; no f-divergence form.
 */
public final class SppoHardLoss extends PreferenceLoss {
    /** @param beta β &gt; 0 */
    public SppoHardLoss(double beta) {
        super("sppo-hard", beta);
    }

    @Override
    public Reduction reduction() {
        return Reduction.SUM;
    }

    @Override
    protected NDArray pairLoss(NDArray chosenRatio, NDArray rejectedRatio, NDArray preference) {
        double target = 0.5 / beta;
        return chosenRatio.sub(target).square().add(rejectedRatio.add(target).square());
    }
}
