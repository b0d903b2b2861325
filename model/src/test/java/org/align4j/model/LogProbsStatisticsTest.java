package org.align4j.model;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import java.util.Map;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;

/**
 * The token statistics made in the chunked head pass equal the same quantities computed by hand from
 * the full [B, T, V] logits, chunked or not and with a frozen (LoRA) head; a floating-point completion
 * mask weighs each token's log-prob in the sum.
 */
class LogProbsStatisticsTest {
    @Test
    void statisticsFromChunksEqualThoseOfTheFullLogits() {
        for (boolean lora : new boolean[] {false, true}) {
            try (NDManager m = NDManager.newBaseManager(Device.cpu());
                    CausalLm lm = CausalLm.load(Fixtures.model("llama-tiny"), Device.cpu())) {
                if (lora) {
                    lm.loadAdapter(Fixtures.lora("peft-written/llama-tiny"));
                }
                Map<String, NDArray> ref = Fixtures.reference("llama-tiny", m);
                NDArray ids = ref.get("pref_input_ids");
                NDArray attention = ref.get("pref_attention_mask");
                NDArray completion = ref.get("pref_completion_mask");
                double[][] want = byHand(lm.logits(ids, attention, false), ids, completion);
                for (long chunk : new long[] {0, 600, 7 * 600}) {
                    lm.setLogitsChunkElements(chunk);
                    LogProbs lp = lm.completionLogProbs(ids, attention, completion, true, true);
                    float[] got = lp.statistics().toFloatArray();
                    int k = LogProbs.STATISTICS.size();
                    for (int row = 0; row < want.length; row++) {
                        for (int c = 0; c < k; c++) {
                            assertThat((double) got[row * k + c])
                                    .as("lora %s chunk %d row %d %s", lora, chunk, row, LogProbs.STATISTICS.get(c))
                                    .isCloseTo(want[row][c], Offset.offset(1e-4 * Math.max(1, Math.abs(want[row][c]))));
                        }
                    }
                }
            }
        }
    }

    @Test
    void aFloatingPointMaskWeighsEachTokensLogProb() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                CausalLm lm = CausalLm.load(Fixtures.model("gpt2-tiny"), Device.cpu())) {
            Map<String, NDArray> ref = Fixtures.reference("gpt2-tiny", m);
            NDArray ids = ref.get("pref_input_ids");
            NDArray attention = ref.get("pref_attention_mask");
            NDArray completion = ref.get("pref_completion_mask");
            LogProbs plain = lm.completionLogProbs(ids, attention, completion, false, true);
            LogProbs halved = lm.completionLogProbs(
                    ids, attention, completion.toType(DataType.FLOAT32, false).mul(0.5f), false, true);
            float[] p = plain.sum().toFloatArray();
            float[] h = halved.sum().toFloatArray();
            for (int i = 0; i < p.length; i++) {
                assertThat((double) h[i]).isCloseTo(p[i] / 2.0, Offset.offset(1e-5 * Math.abs(p[i])));
            }
            assertThat(halved.tokens().toFloatArray())
                    .containsExactly(plain.tokens().toFloatArray());
            // the unweighted log-prob column is the plain sum
            float[] unweighted = halved.statistics().get(":, 4").toFloatArray();
            for (int i = 0; i < p.length; i++) {
                assertThat((double) unweighted[i]).isCloseTo(p[i], Offset.offset(1e-5 * Math.abs(p[i])));
            }
        }
    }

    /** Per row: Σ entropy, Σ mean logit, Σ argmax hits, Σ log Σ p², Σ log-prob over the scored positions. */
    static double[][] byHand(NDArray logits, NDArray ids, NDArray completion) {
        long b = ids.getShape().get(0);
        long t = ids.getShape().get(1);
        long v = logits.getShape().get(2);
        float[] z = logits.toType(DataType.FLOAT32, false).toFloatArray();
        long[] id = ids.toType(DataType.INT64, false).toLongArray();
        long[] mask = completion.toType(DataType.INT64, false).toLongArray();
        double[][] out = new double[(int) b][5];
        for (int r = 0; r < b; r++) {
            for (int pos = 1; pos < t; pos++) {
                if (mask[(int) (r * t + pos)] == 0) {
                    continue;
                }
                int base = (int) ((r * t + pos - 1) * v);
                double max = Double.NEGATIVE_INFINITY;
                int argMax = 0;
                double mean = 0;
                for (int j = 0; j < v; j++) {
                    if (z[base + j] > max) {
                        max = z[base + j];
                        argMax = j;
                    }
                    mean += z[base + j];
                }
                double se = 0;
                double se2 = 0;
                for (int j = 0; j < v; j++) {
                    se += Math.exp(z[base + j] - max);
                    se2 += Math.exp(2 * (z[base + j] - max));
                }
                double lse = max + Math.log(se);
                double entropy = 0;
                for (int j = 0; j < v; j++) {
                    double lp = z[base + j] - lse;
                    entropy -= Math.exp(lp) * lp;
                }
                long target = id[(int) (r * t + pos)];
                out[r][0] += entropy;
                out[r][1] += mean / v;
                out[r][2] += argMax == target ? 1 : 0;
                out[r][3] += 2 * max + Math.log(se2) - 2 * lse;
                out[r][4] += z[base + (int) target] - lse;
            }
        }
        return out;
    }
}
