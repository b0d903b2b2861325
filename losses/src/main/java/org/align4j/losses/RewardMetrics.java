package org.align4j.losses;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The per-batch metrics TRL's DPOTrainer logs, under its names: {@code rewards/chosen}, {@code
 * rewards/rejected}, {@code rewards/margins}, {@code rewards/accuracies}, {@code logps/chosen}, {@code
 * logps/rejected} (batch means).
 */
public final class RewardMetrics {
    private RewardMetrics() {}

    /**
     * Reads the metrics to the host (one transfer).
     *
     * @param out the objective's output
     * @param policyChosen [B] policy log-probs of the chosen responses (as fed to the loss)
     * @param policyRejected [B] policy log-probs of the rejected responses
     * @return metric name → value, in TRL's order
     */
    public static Map<String, Double> of(PreferenceLoss.Output out, NDArray policyChosen, NDArray policyRejected) {
        double[] values = tensor(out, policyChosen, policyRejected).toDoubleArray();
        Map<String, Double> m = new LinkedHashMap<>();
        for (int i = 0; i < values.length; i++) {
            m.put(NAMES.get(i), values[i]);
        }
        return m;
    }

    /** The names of {@link #tensor}'s entries, in order. */
    public static final java.util.List<String> NAMES = java.util.List.of("rewards/chosen", "rewards/rejected", "rewards/margins",
            "rewards/accuracies", "logps/chosen", "logps/rejected");

    /**
     * The same metrics as one device array, without reading anything to the host: a trainer keeps
     * it and reads many steps' metrics at once, when it logs.
     *
     * @param out the objective's output
     * @param policyChosen [B] policy log-probs of the chosen responses
     * @param policyRejected [B] policy log-probs of the rejected responses
     * @return [6] float64 batch means, in the order of {@link #NAMES}, without gradient
     */
    public static NDArray tensor(PreferenceLoss.Output out, NDArray policyChosen, NDArray policyRejected) {
        NDArray c = out.chosenRewards().stopGradient().toType(DataType.FLOAT64, false);
        NDArray r = out.rejectedRewards().stopGradient().toType(DataType.FLOAT64, false);
        return ai.djl.ndarray.NDArrays.stack(new ai.djl.ndarray.NDList(c.mean(), r.mean(), c.sub(r).mean(),
                c.gt(r).toType(DataType.FLOAT64, false).mean(), policyChosen.stopGradient().toType(DataType.FLOAT64, false).mean(),
                policyRejected.stopGradient().toType(DataType.FLOAT64, false).mean()));
    }
}
