package org.align4j.evaluation;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.List;
import org.align4j.model.CausalLm;

/**
 * How far a policy moved from its reference: the exact KL(π ‖ π_ref) of the next-token distributions,
 * summed over the completion tokens of given sequences.
 */
public final class Divergence {
    private Divergence() {}

    /**
     * Σ over completion positions t of KL(π(·∣y_&lt;t) ‖ π_ref(·∣y_&lt;t)) = Σ_v π(v)(log π(v) − log π_ref(v)),
     * for each sequence. Computed without gradients.
     *
     * @param policy π
     * @param reference π_ref
     * @param prompts prompt ids per sequence
     * @param completions completion ids per sequence (the tokens whose predictions are compared)
     * @param padId padding id
     * @param batchSize sequences per forward pass
     * @return the summed KL of each sequence, in nats
     */
    public static double[] perSequenceKl(CausalLm policy, CausalLm reference, List<int[]> prompts, List<int[]> completions, int padId,
            int batchSize) {
        double[] out = new double[prompts.size()];
        for (int from = 0; from < prompts.size(); from += batchSize) {
            int to = Math.min(prompts.size(), from + batchSize);
            try (NDManager m = policy.manager().newSubManager()) {
                int b = to - from;
                int t = 0;
                for (int i = from; i < to; i++) {
                    t = Math.max(t, prompts.get(i).length + completions.get(i).length);
                }
                long[] ids = new long[b * t];
                long[] att = new long[b * t];
                float[] cm = new float[b * (t - 1)];
                java.util.Arrays.fill(ids, padId);
                for (int r = 0; r < b; r++) {
                    int[] p = prompts.get(from + r);
                    int[] c = completions.get(from + r);
                    for (int j = 0; j < p.length + c.length; j++) {
                        ids[r * t + j] = j < p.length ? p[j] : c[j - p.length];
                        att[r * t + j] = 1;
                        if (j >= p.length) {
                            cm[r * (t - 1) + j - 1] = 1; // the logits at j−1 predict token j
                        }
                    }
                }
                NDArray idArr = m.create(ids, new Shape(b, t));
                NDArray attArr = m.create(att, new Shape(b, t));
                NDArray lp = policy.logits(idArr, attArr, false).get(":, :-1, :").logSoftmax(-1);
                NDArray lq = reference.logits(idArr, attArr, false).get(":, :-1, :").logSoftmax(-1);
                NDArray klPerPosition = lp.exp().mul(lp.sub(lq)).sum(new int[] {2});
                float[] kl = klPerPosition.mul(m.create(cm, new Shape(b, t - 1))).sum(new int[] {1}).toFloatArray();
                for (int r = 0; r < b; r++) {
                    out[from + r] = kl[r];
                }
            }
        }
        return out;
    }

    /**
     * @param values numbers
     * @return their mean
     */
    public static double mean(double[] values) {
        double s = 0;
        for (double v : values) {
            s += v;
        }
        return values.length == 0 ? Double.NaN : s / values.length;
    }
}
