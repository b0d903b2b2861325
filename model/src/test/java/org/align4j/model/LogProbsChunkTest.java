package org.align4j.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import java.util.LinkedHashMap;
import java.util.Map;
import org.align4j.model.nn.CausalLmBlock;
import org.align4j.model.nn.Compute;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Log-probs computed over chunks of positions equal the unchunked ones, values and every gradient. */
class LogProbsChunkTest {
    record Result(float[] sum, float[] mean, Map<String, float[]> gradients) {}

    static Result run(String kind, String attention, boolean lora, long chunkElements) {
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                CausalLm lm = CausalLm.load(Fixtures.model(kind), Device.cpu())) {
            lm.setCompute(Compute.parse(attention, "fp32", Device.cpu()));
            if (lora) {
                lm.loadAdapter(Fixtures.lora("peft-written/" + kind));
            }
            lm.setLogitsChunkElements(chunkElements);
            Map<String, NDArray> ref = Fixtures.reference(kind, m);
            LogProbs lp;
            try (GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
                lp = lm.completionLogProbs(
                        ref.get("pref_input_ids"),
                        ref.get("pref_attention_mask"),
                        ref.get("pref_completion_mask"),
                        true);
                // weights per row, so that rows' gradients do not simply add up
                NDArray w = m.create(new float[] {1, -2, 3, -4, 5, -6, 7, -8});
                gc.backward(lp.sum().mul(w).sum().add(lp.mean().sum()));
            }
            Map<String, float[]> grads = new LinkedHashMap<>();
            lm.trainableParameters().forEach((name, p) -> {
                NDArray g = p.getArray().getGradient();
                grads.put(name, g.toFloatArray());
                g.close();
            });
            return new Result(lp.sum().toFloatArray(), lp.mean().toFloatArray(), grads);
        }
    }

    @ParameterizedTest
    @ValueSource(
            strings = {
                "gpt2-tiny:eager:full",
                "llama-tiny:sdpa:full",
                "qwen2-tiny:sdpa:full",
                "llama-tiny:sdpa:lora",
                "gpt2-tiny:sdpa:lora"
            })
    void chunkedLogProbsEqualUnchunkedValuesAndGradients(String spec) {
        String[] s = spec.split(":");
        boolean lora = "lora".equals(s[2]);
        Result whole = run(s[0], s[1], lora, 0);
        for (long positions : new long[] {1, 7}) {
            // the fixture's vocabulary has 600 tokens; its batch predicts about a hundred completion tokens
            Result chunked = run(s[0], s[1], lora, positions * 600);
            for (int i = 0; i < whole.sum().length; i++) {
                assertThat((double) chunked.sum()[i])
                        .as("sum[%d], %d per chunk", i, positions)
                        .isCloseTo(whole.sum()[i], Offset.offset(1e-6 * Math.abs(whole.sum()[i])));
                assertThat((double) chunked.mean()[i])
                        .as("mean[%d]", i)
                        .isCloseTo(whole.mean()[i], Offset.offset(1e-6 * Math.abs(whole.mean()[i])));
            }
            assertThat(chunked.gradients().keySet())
                    .containsExactlyElementsOf(whole.gradients().keySet());
            whole.gradients().forEach((name, g) -> {
                float[] c = chunked.gradients().get(name);
                double largest = 0;
                double worst = 0;
                for (int i = 0; i < g.length; i++) {
                    largest = Math.max(largest, Math.abs(g[i]));
                    worst = Math.max(worst, Math.abs(g[i] - c[i]));
                }
                assertThat(largest).as("%s has a gradient", name).isGreaterThan(0);
                assertThat(worst)
                        .as("%s: largest difference, %d per chunk (largest entry %s)", name, positions, largest)
                        .isLessThanOrEqualTo(1e-5 * largest);
            });
        }
    }

    /**
     * A frozen head (LoRA) takes the path that keeps [H] per position instead of a [V] log-softmax; its
     * adapter gradients equal autograd's through the log-softmax (the head made trainable to force
     * that path).
     */
    @ParameterizedTest
    @ValueSource(strings = {"llama-tiny", "gpt2-tiny"})
    void aFrozenHeadGivesAutogradsGradients(String kind) {
        Map<String, float[]> frozen = adapterGradients(kind, false);
        Map<String, float[]> autograd = adapterGradients(kind, true);
        assertThat(frozen.keySet()).containsExactlyElementsOf(autograd.keySet());
        autograd.forEach((name, g) -> {
            float[] f = frozen.get(name);
            double largest = 0;
            double worst = 0;
            for (int i = 0; i < g.length; i++) {
                largest = Math.max(largest, Math.abs(g[i]));
                worst = Math.max(worst, Math.abs(g[i] - f[i]));
            }
            assertThat(largest).as(name).isGreaterThan(0);
            assertThat(worst)
                    .as("%s: largest difference (largest entry %s)", name, largest)
                    .isLessThanOrEqualTo(1e-5 * largest);
        });
    }

    static Map<String, float[]> adapterGradients(String kind, boolean trainableHead) {
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                CausalLm lm = CausalLm.load(Fixtures.model(kind), Device.cpu())) {
            lm.setCompute(Compute.parse("sdpa", "fp32", Device.cpu()));
            lm.loadAdapter(Fixtures.lora("peft-written/" + kind));
            lm.setLogitsChunkElements(7 * 600);
            ((CausalLmBlock) lm.block()).headWeight().freeze(!trainableHead);
            Map<String, NDArray> ref = Fixtures.reference(kind, m);
            try (GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
                LogProbs lp = lm.completionLogProbs(
                        ref.get("pref_input_ids"),
                        ref.get("pref_attention_mask"),
                        ref.get("pref_completion_mask"),
                        true);
                NDArray w = m.create(new float[] {1, -2, 3, -4, 5, -6, 7, -8});
                gc.backward(lp.sum().mul(w).sum());
            }
            Map<String, float[]> grads = new LinkedHashMap<>();
            lm.trainableParameters().forEach((name, p) -> {
                NDArray g = p.getArray().getGradient();
                grads.put(name, g.toFloatArray());
                g.close();
            });
            return grads;
        }
    }

    @Test
    void chunkSizesFollowTheVocabulary() {
        assertThat(LogProbs.chunkPositions(LogProbs.DEFAULT_CHUNK_ELEMENTS, 151_936))
                .isEqualTo(110);
        assertThat(LogProbs.chunkPositions(10, 600)).isEqualTo(1);
        assertThat(LogProbs.chunkPositions(0, 600)).isEqualTo(Long.MAX_VALUE);
        try (CausalLm lm = CausalLm.load(Fixtures.model("gpt2-tiny"), Device.cpu())) {
            assertThat(lm.logitsChunkElements()).isEqualTo(LogProbs.DEFAULT_CHUNK_ELEMENTS);
            assertThatThrownBy(() -> lm.setLogitsChunkElements(-1)).hasMessageContaining("got -1");
        }
    }
}
