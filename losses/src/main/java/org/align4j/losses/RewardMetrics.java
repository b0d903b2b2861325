package org.align4j.losses;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.DataType;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The per-batch metrics TRL's DPOTrainer logs, under its names and with its meaning, defined once for
 * the trainer (on the device) and for held-out evaluation (on the host): {@code rewards/chosen} and
 * {@code rewards/rejected} (batch means of the implicit rewards), {@code rewards/margins} (their
 * difference), {@code rewards/accuracies} (the share of pairs whose chosen reward is strictly greater:
 * a tie counts 0, as in TRL, so an unchanged policy scores 0), {@code logps/chosen} and {@code
 * logps/rejected} (batch means of the policy's log-probs).
 *
 * <p>As in TRL 1.13, the rewards are β(π − π_ref) on <em>summed</em> log-probs and the log-probs are
 * sums, for every objective, IPO included (whose loss reads length-averaged log-probs): see {@link
 * #rewards}. Source: {@code trl/trainer/dpo_trainer.py}, {@code _compute_loss}.
 */
public final class RewardMetrics {
    /** The names of {@link #tensor}'s entries, in order. */
    public static final List<String> NAMES = List.of(
            "rewards/chosen",
            "rewards/rejected",
            "rewards/margins",
            "rewards/accuracies",
            "logps/chosen",
            "logps/rejected");

    private RewardMetrics() {}

    /**
     * The implicit rewards the metrics report: β(π − π_ref) on summed log-probs for objectives with a
     * reference; for a reference-free objective (SimPO) the rewards it computes itself (β·mean log-prob,
     * as TRL's CPOTrainer logs them).
     *
     * @param objective the objective
     * @param out its output on the batch
     * @param policyChosenSum [B] summed policy log-probs of the chosen responses
     * @param policyRejectedSum [B] the rejected ones
     * @param referenceChosenSum [B] summed reference log-probs (ignored without a reference; may be null)
     * @param referenceRejectedSum [B] the rejected ones
     * @return [chosen rewards, rejected rewards], each [B], without gradient
     */
    public static NDList rewards(
            PreferenceLoss objective,
            PreferenceLoss.Output out,
            NDArray policyChosenSum,
            NDArray policyRejectedSum,
            NDArray referenceChosenSum,
            NDArray referenceRejectedSum) {
        if (!objective.usesReference()) {
            return new NDList(out.chosenRewards(), out.rejectedRewards());
        }
        if (objective.reduction() == PreferenceLoss.Reduction.SUM) {
            return new NDList(out.chosenRewards(), out.rejectedRewards()); // already β(π − π_ref) on sums
        }
        NDArray c = PreferenceLoss.times(policyChosenSum.stopGradient().sub(referenceChosenSum), objective.beta());
        NDArray r = PreferenceLoss.times(policyRejectedSum.stopGradient().sub(referenceRejectedSum), objective.beta());
        return new NDList(c, r);
    }

    /**
     * The metrics as one device array, without reading anything to the host: a trainer keeps it and
     * reads many steps' metrics at once, when it logs.
     *
     * @param chosenRewards [B] implicit rewards of the chosen responses ({@link #rewards})
     * @param rejectedRewards [B] of the rejected ones
     * @param policyChosen [B] policy log-probs of the chosen responses (summed, or as the objective reads them for SimPO)
     * @param policyRejected [B] of the rejected ones
     * @return [6] float64 batch means, in the order of {@link #NAMES}, without gradient
     */
    public static NDArray tensor(
            NDArray chosenRewards, NDArray rejectedRewards, NDArray policyChosen, NDArray policyRejected) {
        NDArray c = chosenRewards.stopGradient().toType(DataType.FLOAT64, false);
        NDArray r = rejectedRewards.stopGradient().toType(DataType.FLOAT64, false);
        return NDArrays.stack(new NDList(
                c.mean(),
                r.mean(),
                c.sub(r).mean(),
                c.gt(r).toType(DataType.FLOAT64, false).mean(),
                policyChosen.stopGradient().toType(DataType.FLOAT64, false).mean(),
                policyRejected.stopGradient().toType(DataType.FLOAT64, false).mean()));
    }

    /**
     * The same metrics read to the host (one transfer).
     *
     * @param chosenRewards [B] implicit rewards of the chosen responses
     * @param rejectedRewards [B] of the rejected ones
     * @param policyChosen [B] policy log-probs of the chosen responses
     * @param policyRejected [B] of the rejected ones
     * @return metric name → value, in TRL's order
     */
    public static Map<String, Double> of(
            NDArray chosenRewards, NDArray rejectedRewards, NDArray policyChosen, NDArray policyRejected) {
        return named(tensor(chosenRewards, rejectedRewards, policyChosen, policyRejected)
                .toDoubleArray());
    }

    /**
     * The same metrics from per-pair values already on the host (held-out evaluation).
     *
     * @param chosenRewards implicit rewards of the chosen responses, one per pair
     * @param rejectedRewards of the rejected ones
     * @param policyChosen policy log-probs of the chosen responses
     * @param policyRejected of the rejected ones
     * @return metric name → value, in TRL's order
     */
    public static Map<String, Double> of(
            double[] chosenRewards, double[] rejectedRewards, double[] policyChosen, double[] policyRejected) {
        int n = chosenRewards.length;
        double[] sums = new double[NAMES.size()];
        for (int i = 0; i < n; i++) {
            sums[0] += chosenRewards[i];
            sums[1] += rejectedRewards[i];
            sums[2] += chosenRewards[i] - rejectedRewards[i];
            sums[3] += chosenRewards[i] > rejectedRewards[i] ? 1 : 0;
            sums[4] += policyChosen[i];
            sums[5] += policyRejected[i];
        }
        for (int k = 0; k < sums.length; k++) {
            sums[k] /= n;
        }
        return named(sums);
    }

    private static Map<String, Double> named(double[] values) {
        Map<String, Double> m = new LinkedHashMap<>();
        for (int i = 0; i < values.length; i++) {
            m.put(NAMES.get(i), values[i]);
        }
        return m;
    }
}
