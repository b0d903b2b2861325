package org.align4j.model;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.LinkedHashMap;
import java.util.Map;
import org.align4j.model.config.ModelConfig;
import org.align4j.model.nn.Compute;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Padding-free passes (TRL's {@code padding_free}) against the padded pass: the sequences of a
 * right-padded batch run as one row with per-sequence positions (GPT-2's learned positions, the
 * Llama family's rotary ones) and attention confined to each sequence; the per-sequence log-probs and
 * every parameter's gradient equal the padded pass's within 1e-5 (fp32), and the log-probs equal
 * transformers' own numbers for the fixture batch.
 */
class PaddingFreeTest {
    record Result(float[] sum, float[] mean, Map<String, float[]> grads) {}

    static Result run(CausalLm lm, NDArray ids, NDArray mask, NDArray completion, boolean paddingFree) {
        lm.setPaddingFree(paddingFree);
        lm.setTrainable(true);
        LogProbs lp;
        try (GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
            lp = lm.completionLogProbs(ids, mask, completion, true);
            // a loss that weighs every row differently, so a row's gradient reaching another row shows
            NDArray w = ids.getManager().arange(1f, 1f + ids.getShape().get(0));
            gc.backward(lp.sum().mul(w).sum().add(lp.mean().sum()));
        }
        Map<String, float[]> grads = new LinkedHashMap<>();
        lm.parameters().forEach((name, p) -> {
            NDArray g = p.getArray().getGradient();
            grads.put(name, g.toFloatArray());
            g.close();
        });
        return new Result(lp.sum().toFloatArray(), lp.mean().toFloatArray(), grads);
    }

    static void assertSame(Result padded, Result free) {
        assertThat(free.sum().length).isEqualTo(padded.sum().length);
        for (int i = 0; i < padded.sum().length; i++) {
            assertThat((double) free.sum()[i])
                    .as("sum[%d]", i)
                    .isCloseTo(padded.sum()[i], Offset.offset(1e-5 * Math.abs(padded.sum()[i]) + 1e-5));
            assertThat((double) free.mean()[i])
                    .as("mean[%d]", i)
                    .isCloseTo(padded.mean()[i], Offset.offset(1e-5 * Math.abs(padded.mean()[i]) + 1e-5));
        }
        assertThat(free.grads().keySet())
                .containsExactlyElementsOf(padded.grads().keySet());
        padded.grads().forEach((name, g) -> {
            float[] h = free.grads().get(name);
            double worst = 0;
            double largest = 0;
            for (int i = 0; i < g.length; i++) {
                worst = Math.max(worst, Math.abs(g[i] - h[i]));
                largest = Math.max(largest, Math.abs(g[i]));
            }
            assertThat(worst)
                    .as("largest gradient difference of %s (largest element %s)", name, largest)
                    .isLessThan(1e-5 * Math.max(1, largest));
        });
    }

    @ParameterizedTest
    @ValueSource(
            strings = {
                "gpt2-tiny:eager",
                "gpt2-tiny:sdpa",
                "llama-tiny:eager",
                "llama-tiny:sdpa",
                "qwen2-tiny:eager",
                "qwen2-tiny:sdpa"
            })
    void equalsThePaddedPassOnTheFixtures(String spec) {
        String[] s = spec.split(":");
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                CausalLm a = CausalLm.load(Fixtures.model(s[0]), Device.cpu());
                CausalLm b = CausalLm.load(Fixtures.model(s[0]), Device.cpu())) {
            a.setCompute(Compute.parse(s[1], "fp32", Device.cpu()));
            b.setCompute(Compute.parse(s[1], "fp32", Device.cpu()));
            Map<String, NDArray> ref = Fixtures.reference(s[0], m);
            NDArray ids = ref.get("pref_input_ids");
            NDArray mask = ref.get("pref_attention_mask");
            NDArray completion = ref.get("pref_completion_mask");
            // the fixture batch must have padding, or this test tests nothing
            assertThat(mask.sum().getLong()).isLessThan(mask.size());
            Result padded = run(a, ids, mask, completion, false);
            Result free = run(b, ids, mask, completion, true);
            assertSame(padded, free);
            // and both are transformers' numbers (made by HF on the padded batch)
            float[] hf = ref.get("policy_logps").toFloatArray();
            for (int i = 0; i < hf.length; i++) {
                assertThat((double) free.sum()[i])
                        .as("logps[%d] vs transformers", i)
                        .isCloseTo(hf[i], Offset.offset(1e-4 * Math.abs(hf[i]) + 1e-5));
            }
        }
    }

    /**
     * Architectures the fixtures do not cover, at random weights, on a batch with much padding and a
     * row whose completion starts at its first token after a one-token prompt: Mistral with a sliding
     * window shorter than some sequences (the masked path per sequence), Qwen3 (q/k norms), grouped
     * queries, and GPT-2 with its positions scaled by the layer index.
     */
    @ParameterizedTest
    @ValueSource(strings = {"mistral-window", "qwen3", "llama-gqa", "gpt2-inverse-layer"})
    void equalsThePaddedPassOnOtherArchitectures(String variant) {
        ModelConfig cfg;
        if (variant.startsWith("gpt2")) {
            ObjectNode c = ModelConfig.newGpt2(50, 32, 2, 4, 64, 0, 1, 2).raw().deepCopy();
            c.put("scale_attn_by_inverse_layer_idx", true);
            cfg = ModelConfig.fromJson(c, null);
        } else {
            ObjectNode c =
                    Fixtures.smallLlamaConfig(variant.startsWith("llama") ? "llama" : variant.replace("-window", ""));
            switch (variant) {
                case "qwen3" -> c.put("head_dim", 24);
                case "mistral-window" -> c.put("sliding_window", 3);
                default -> c.put("num_key_value_heads", 2);
            }
            cfg = ModelConfig.fromJson(c, null);
        }
        for (String attention : new String[] {"eager", "sdpa"}) {
            try (NDManager m = NDManager.newBaseManager(Device.cpu());
                    CausalLm a = CausalLm.create(cfg, Device.cpu(), 7);
                    CausalLm b = CausalLm.create(cfg, Device.cpu(), 7)) {
                a.setCompute(Compute.parse(attention, "fp32", Device.cpu()));
                b.setCompute(Compute.parse(attention, "fp32", Device.cpu()));
                long[] ids = {
                    5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
                    20, 21, 22, 2, 2, 2, 2, 2, 2, 2,
                    30, 31, 32, 33, 34, 35, 2, 2, 2, 2,
                    40, 41, 2, 2, 2, 2, 2, 2, 2, 2
                };
                long[] att = {
                    1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                    1, 1, 1, 0, 0, 0, 0, 0, 0, 0,
                    1, 1, 1, 1, 1, 1, 0, 0, 0, 0,
                    1, 1, 0, 0, 0, 0, 0, 0, 0, 0
                };
                long[] comp = {
                    0, 0, 0, 1, 1, 1, 1, 1, 1, 1,
                    0, 1, 1, 0, 0, 0, 0, 0, 0, 0,
                    0, 0, 0, 1, 1, 1, 0, 0, 0, 0,
                    0, 1, 0, 0, 0, 0, 0, 0, 0, 0
                };
                Shape shape = new Shape(4, 10);
                NDArray i = m.create(ids, shape);
                NDArray am = m.create(att, shape);
                NDArray cm = m.create(comp, shape);
                assertSame(run(a, i, am, cm, false), run(b, i, am, cm, true));
            }
        }
    }

    /** A frozen model (a reference) gives the same log-probs padded and padding-free, outside any gradient collector. */
    @Test
    void frozenPassesAgree() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                CausalLm lm = CausalLm.load(Fixtures.model("llama-tiny"), Device.cpu())) {
            lm.setCompute(Compute.parse("sdpa", "fp32", Device.cpu()));
            lm.setTrainable(false);
            Map<String, NDArray> ref = Fixtures.reference("llama-tiny", m);
            float[] padded = lm.completionLogProbs(
                            ref.get("pref_input_ids"),
                            ref.get("pref_attention_mask"),
                            ref.get("pref_completion_mask"),
                            false)
                    .sum()
                    .toFloatArray();
            lm.setPaddingFree(true);
            float[] free = lm.completionLogProbs(
                            ref.get("pref_input_ids"),
                            ref.get("pref_attention_mask"),
                            ref.get("pref_completion_mask"),
                            false)
                    .sum()
                    .toFloatArray();
            for (int i = 0; i < padded.length; i++) {
                assertThat((double) free[i]).isCloseTo(padded[i], Offset.offset(1e-5 * Math.abs(padded[i]) + 1e-5));
            }
        }
    }
}
