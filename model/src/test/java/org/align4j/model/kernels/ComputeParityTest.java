package org.align4j.model.kernels;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.align4j.model.CausalLm;
import org.align4j.model.Fixtures;
import org.align4j.model.LogProbs;
import org.align4j.model.config.ModelConfig;
import org.align4j.model.generate.GenerationConfig;
import org.align4j.model.generate.Generator;
import org.align4j.model.nn.Compute;
import org.assertj.core.data.Offset;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Every compute setting against the DJL-ops path (eager fp32), on the fixture models: logits, the
 * completion log-probs of the right-padded preference rows (SDPA's causal kernel, the LM head only on
 * completion positions), every parameter's gradient, and greedy generation from left-padded prompts
 * (SDPA with a mask and the KV cache). fp32 within 1e-4; bf16 within bf16's precision.
 */
class ComputeParityTest {
    record Result(float[] logits, float[] logps, Map<String, Double> gradNorms) {}

    static Result run(CausalLm lm, Map<String, NDArray> ref) {
        NDArray ids = ref.get("pref_input_ids");
        NDArray mask = ref.get("pref_attention_mask");
        NDArray completion = ref.get("pref_completion_mask");
        float[] logits = lm.logits(ref.get("input_ids"), ref.get("attention_mask"), false)
                .toFloatArray();
        lm.setTrainable(true);
        LogProbs lp;
        try (GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
            lp = lm.completionLogProbs(ids, mask, completion, true);
            gc.backward(lp.sum().sum());
        }
        Map<String, Double> norms = new LinkedHashMap<>();
        lm.parameters().forEach((name, p) -> {
            NDArray g = p.getArray().getGradient();
            norms.put(name, Math.sqrt(g.square().sum().getFloat()));
            g.close();
        });
        return new Result(logits, lp.sum().toFloatArray(), norms);
    }

    @ParameterizedTest
    @ValueSource(
            strings = {
                "gpt2-tiny:sdpa:fp32",
                "llama-tiny:sdpa:fp32",
                "qwen2-tiny:sdpa:fp32",
                "gpt2-tiny:eager:bf16",
                "gpt2-tiny:sdpa:bf16",
                "llama-tiny:sdpa:bf16",
                "qwen2-tiny:sdpa:bf16"
            })
    void matchesTheDjlOpsPath(String spec) {
        String[] s = spec.split(":");
        boolean bf16 = "bf16".equals(s[2]);
        double tol = bf16 ? 3e-2 : 1e-4;
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                CausalLm eager = CausalLm.load(Fixtures.model(s[0]), Device.cpu());
                CausalLm other = CausalLm.load(Fixtures.model(s[0]), Device.cpu())) {
            other.setCompute(Compute.parse(s[1], s[2], Device.cpu()));
            Map<String, NDArray> ref = Fixtures.reference(s[0], m);
            Result a = run(eager, ref);
            Result b = run(other, ref);
            float[] mask =
                    ref.get("attention_mask").toType(DataType.FLOAT32, false).toFloatArray();
            int vocab = a.logits().length / mask.length;
            double worst = 0;
            double largest = 0;
            for (int i = 0; i < a.logits().length; i++) {
                if (mask[i / vocab] == 1) {
                    worst = Math.max(worst, Math.abs(a.logits()[i] - b.logits()[i]));
                    largest = Math.max(largest, Math.abs(a.logits()[i]));
                }
            }
            // bf16 keeps 8 bits of mantissa: 2^-8 ≈ 0.4% per rounding, a few roundings deep
            assertThat(worst)
                    .as("largest logit difference (largest logit %s)", largest)
                    .isLessThan(bf16 ? 0.02 * largest : 1e-4);
            // the eager numbers are HF's (HfParityTest); the new path's log-probs equal them
            float[] hf = ref.get("policy_logps").toFloatArray();
            for (int i = 0; i < hf.length; i++) {
                assertThat((double) a.logps()[i]).isCloseTo(hf[i], Offset.offset(1e-4 * Math.abs(hf[i]) + 1e-5));
                assertThat((double) b.logps()[i])
                        .as("logps[%d]", i)
                        .isCloseTo(hf[i], Offset.offset(tol * Math.abs(hf[i]) + 1e-4));
            }
            assertThat(b.gradNorms().keySet())
                    .containsExactlyElementsOf(a.gradNorms().keySet());
            a.gradNorms()
                    .forEach((name, n) -> assertThat(b.gradNorms().get(name))
                            .as("grad norm of " + name)
                            .isCloseTo(n, Offset.offset((bf16 ? 5e-2 : 1e-4) * n + 1e-6)));
        }
    }

    /**
     * The architectures the fixtures do not cover, built at random: Qwen3 (q/k RMSNorm, its own
     * head_dim: the op-by-op path), Mistral with a sliding window shorter than the batch (the masked
     * path), multi-query Llama and Llama with attention biases (the fused self-attention kernel with
     * one key/value head, and with q/k/v/o biases).
     */
    @ParameterizedTest
    @ValueSource(strings = {"qwen3", "mistral-window", "llama-mqa", "llama-bias"})
    void otherArchitecturesMatchTheDjlOpsPath(String variant) {
        ObjectNode c =
                Fixtures.smallLlamaConfig(variant.startsWith("llama") ? "llama" : variant.replace("-window", ""));
        switch (variant) {
            case "qwen3" -> c.put("head_dim", 24);
            case "mistral-window" -> c.put("sliding_window", 3);
            case "llama-mqa" -> c.put("num_key_value_heads", 1);
            default -> c.put("attention_bias", true);
        }
        ModelConfig cfg = ModelConfig.fromJson(c, null);
        for (String precision : new String[] {"fp32", "bf16"}) {
            try (NDManager m = NDManager.newBaseManager(Device.cpu());
                    CausalLm eager = CausalLm.create(cfg, Device.cpu(), 7);
                    CausalLm other = CausalLm.create(cfg, Device.cpu(), 7)) {
                other.setCompute(Compute.parse("sdpa", precision, Device.cpu()));
                long[] ids = {5, 6, 7, 8, 9, 10, 11, 12, 20, 21, 22, 23, 24, 25, 2, 2};
                long[] att = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
                long[] comp = {0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0};
                Map<String, NDArray> batch = new LinkedHashMap<>();
                batch.put("pref_input_ids", m.create(ids, new Shape(2, 8)));
                batch.put("pref_attention_mask", m.create(att, new Shape(2, 8)));
                batch.put("pref_completion_mask", m.create(comp, new Shape(2, 8)));
                batch.put("input_ids", batch.get("pref_input_ids"));
                batch.put("attention_mask", batch.get("pref_attention_mask"));
                Result a = run(eager, batch);
                Result b = run(other, batch);
                double tol = "bf16".equals(precision) ? 3e-2 : 1e-4;
                for (int i = 0; i < a.logps().length; i++) {
                    assertThat((double) b.logps()[i])
                            .as("%s %s logps[%d]", variant, precision, i)
                            .isCloseTo(a.logps()[i], Offset.offset(tol * Math.abs(a.logps()[i]) + 1e-4));
                }
                a.gradNorms()
                        .forEach((name, n) -> assertThat(b.gradNorms().get(name))
                                .as("%s %s grad norm of %s", variant, precision, name)
                                .isCloseTo(n, Offset.offset(("bf16".equals(precision) ? 5e-2 : 1e-4) * n + 1e-6)));
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny", "llama-tiny"})
    void sdpaGeneratesTheSameTokensFromLeftPaddedPrompts(String name) {
        try (CausalLm eager = CausalLm.load(Fixtures.model(name), Device.cpu());
                CausalLm sdpa = CausalLm.load(Fixtures.model(name), Device.cpu())) {
            sdpa.setCompute(Compute.parse("sdpa", "fp32", Device.cpu()));
            List<int[]> prompts =
                    List.of(new int[] {1, 57, 200, 13, 44, 9}, new int[] {5, 6}, new int[] {300, 301, 302});
            for (boolean cache : new boolean[] {true, false}) {
                GenerationConfig g =
                        GenerationConfig.greedy(8).withStopAtEos(false).withCache(cache);
                List<int[]> want = new Generator(eager, 3, List.of(2)).generate(prompts, g);
                List<int[]> got = new Generator(sdpa, 3, List.of(2)).generate(prompts, g);
                for (int i = 0; i < prompts.size(); i++) {
                    assertThat(got.get(i)).as("row %d, cache %s", i, cache).containsExactly(want.get(i));
                }
            }
        }
    }
}
