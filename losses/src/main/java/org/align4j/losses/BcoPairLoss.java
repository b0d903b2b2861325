package org.align4j.losses;

import ai.djl.ndarray.NDArray;

/**
 * BCO on pairs (Jung et al., 2024, "Binary Classifier Optimization for Large Language Model
 * Alignment"): each response's implicit reward is classified on its own, chosen as positive and
 * rejected as negative.
 *
 * <p>With r_c = β(π_c − r_c) and r_r = β(π_r − r_r) on summed log-probs: L = −log σ(r_c) − log
 * σ(−r_r). This is TRL 1.13's {@code loss_type="bco_pair"} exactly: TRL 1.13 no longer subtracts the
 * paper's running mean δ of the rewards (its earlier versions did), so neither does this class. The
 * per-pair preference probability is not used; it has no f-divergence form.
 */
public final class BcoPairLoss extends PreferenceLoss {
    /** @param beta β &gt; 0 */
    public BcoPairLoss(double beta) {
        super("bco-pair", beta);
    }

    @Override
    public Reduction reduction() {
        return Reduction.SUM;
    }

    @Override
    protected NDArray pairLoss(NDArray chosenRatio, NDArray rejectedRatio, NDArray preference) {
        return negLogSigmoid(times(chosenRatio, beta)).add(negLogSigmoid(times(rejectedRatio, -beta)));
    }
}
