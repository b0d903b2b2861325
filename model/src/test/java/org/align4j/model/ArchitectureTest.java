package org.align4j.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.align4j.model.config.ConfigException;
import org.align4j.model.config.ModelConfig;
import org.align4j.model.config.RopeConfig;
import org.align4j.model.generate.GenerationConfig;
import org.align4j.model.generate.Generator;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Architectures without an HF fixture here: checked by construction and by properties. */
class ArchitectureTest {
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    static ObjectNode llamaJson(String type) {
        return ModelConfig.newLlama(type, 50, 32, 2, 4, 2, 48, 64, false, 0, 1, 2)
                .raw()
                .deepCopy();
    }

    @Test
    void llama3RopeScalingFromTransformers4Config() {
        ObjectNode c = llamaJson("llama");
        c.put("rope_theta", 500000.0);
        ObjectNode s = c.putObject("rope_scaling");
        s.put("rope_type", "llama3")
                .put("factor", 8.0)
                .put("low_freq_factor", 1.0)
                .put("high_freq_factor", 4.0)
                .put("original_max_position_embeddings", 8192);
        RopeConfig rope = ModelConfig.fromJson(c, null).rope();
        assertThat(rope.type()).isEqualTo("llama3");
        float[] scaled = rope.inverseFrequencies(128);
        float[] plain = new RopeConfig(500000.0, "default", 1, 1, 1, 8192).inverseFrequencies(128);
        // wavelengths below 8192/4 are kept, above 8192/1 divided by the factor, in between blended
        for (int i = 0; i < plain.length; i++) {
            double wavelen = 2 * Math.PI / plain[i];
            if (wavelen < 2048) {
                assertThat(scaled[i]).isEqualTo(plain[i]);
            } else if (wavelen > 8192) {
                assertThat((double) scaled[i]).isCloseTo(plain[i] / 8.0, Offset.offset(1e-12));
            } else {
                assertThat(scaled[i]).isBetween(plain[i] / 8f, plain[i]);
            }
        }
    }

    @Test
    void transformers5RopeParametersAreRead() {
        ObjectNode c = llamaJson("llama");
        c.remove("rope_theta");
        c.putObject("rope_parameters")
                .put("rope_theta", 1234.0)
                .put("rope_type", "linear")
                .put("factor", 2.0);
        RopeConfig rope = ModelConfig.fromJson(c, null).rope();
        assertThat(rope.theta()).isEqualTo(1234.0);
        assertThat(rope.inverseFrequencies(8)[0]).isEqualTo(0.5f);
    }

    @Test
    void qwen3HasPerHeadQkNormAndItsOwnHeadDim() {
        ObjectNode c = llamaJson("qwen3");
        c.put("head_dim", 24); // deliberately not hidden/heads = 8
        ModelConfig cfg = ModelConfig.fromJson(c, null);
        try (CausalLm lm = CausalLm.create(cfg, Device.cpu(), 1);
                NDManager m = NDManager.newBaseManager(Device.cpu())) {
            assertThat(lm.parameters())
                    .containsKeys("model.layers.0.self_attn.q_norm.weight", "model.layers.1.self_attn.k_norm.weight");
            assertThat(lm.parameters()
                            .get("model.layers.0.self_attn.q_proj.weight")
                            .getArray()
                            .getShape())
                    .isEqualTo(new Shape(96, 32));
            assertThat(lm.parameters()
                            .get("model.layers.0.self_attn.k_proj.weight")
                            .getArray()
                            .getShape())
                    .isEqualTo(new Shape(48, 32));
            assertThat(lm.parameters()
                            .get("model.layers.0.self_attn.o_proj.weight")
                            .getArray()
                            .getShape())
                    .isEqualTo(new Shape(32, 96));
            NDArray ids = m.create(new long[] {5, 6, 7, 8}, new Shape(1, 4));
            assertThat(lm.logits(ids, ids.onesLike(), false).getShape()).isEqualTo(new Shape(1, 4, 50));
        }
    }

    @Test
    void multiQueryAttentionRuns() {
        ObjectNode c = llamaJson("llama");
        c.put("num_key_value_heads", 1);
        try (CausalLm lm = CausalLm.create(ModelConfig.fromJson(c, null), Device.cpu(), 1)) {
            int[] out = new Generator(lm, 2, List.of(1))
                    .generate(
                            List.of(new int[] {3, 4, 5}),
                            GenerationConfig.greedy(5).withStopAtEos(false))
                    .get(0);
            int[] noCache = new Generator(lm, 2, List.of(1))
                    .generate(
                            List.of(new int[] {3, 4, 5}),
                            GenerationConfig.greedy(5).withStopAtEos(false).withCache(false))
                    .get(0);
            assertThat(out).hasSize(5).containsExactly(noCache);
        }
    }

    @Test
    void mistralSlidingWindowHidesTokensOutsideTheWindow() {
        ObjectNode c = llamaJson("mistral");
        c.put("sliding_window", 3);
        ModelConfig windowed = ModelConfig.fromJson(c, null);
        try (CausalLm lm = CausalLm.create(windowed, Device.cpu(), 1);
                NDManager m = NDManager.newBaseManager(Device.cpu())) {
            long[] a = {5, 6, 7, 8, 9, 10, 11, 12};
            long[] b = a.clone();
            b[0] = 40;
            NDArray la = lm.logits(m.create(a, new Shape(1, 8)), m.ones(new Shape(1, 8), DataType.INT64), false);
            NDArray lb = lm.logits(m.create(b, new Shape(1, 8)), m.ones(new Shape(1, 8), DataType.INT64), false);
            // two layers of window 3 see 2·(3−1) = 4 tokens back: position 5 onwards cannot see token 0
            assertThat(la.get(":, 5:, :").sub(lb.get(":, 5:, :")).abs().max().getFloat())
                    .isEqualTo(0f);
            assertThat(la.get(":, 1:5, :").sub(lb.get(":, 1:5, :")).abs().max().getFloat())
                    .isGreaterThan(0f);
        }
    }

    @Test
    void fromScratchGpt2IsInitialisedAsTransformersDoesAndSavesAsHf() throws IOException {
        ModelConfig cfg = ModelConfig.newGpt2(300, 64, 2, 4, 128, 0, 2, 3);
        Path out = tmp.resolve("scratch");
        try (CausalLm lm = CausalLm.create(cfg, Device.cpu(), 42)) {
            NDArray wte = lm.parameters().get("transformer.wte.weight").getArray();
            assertThat(wte.getShape()).isEqualTo(new Shape(300, 64));
            float std = wte.sub(wte.mean()).square().mean().sqrt().getFloat();
            assertThat(std).isBetween(0.018f, 0.022f);
            float projStd = lm.parameters()
                    .get("transformer.h.0.attn.c_proj.weight")
                    .getArray()
                    .square()
                    .mean()
                    .sqrt()
                    .getFloat();
            assertThat(projStd).isBetween(0.008f, 0.012f); // 0.02 / sqrt(2 * layers)
            assertThat(lm.parameters()
                            .get("transformer.h.0.ln_1.weight")
                            .getArray()
                            .toFloatArray())
                    .containsOnly(1f);
            assertThat(lm.parameters()
                            .get("transformer.h.0.attn.c_attn.bias")
                            .getArray()
                            .toFloatArray())
                    .containsOnly(0f);
            lm.save(out, null);
            try (CausalLm back = CausalLm.load(out, Device.cpu())) {
                CheckpointIoTest.assertSameWeights(lm, back);
            }
        }
    }

    @Test
    void badValuesInConfigsAreNamed() {
        ObjectNode c = llamaJson("llama");
        c.put("num_key_value_heads", 3);
        assertThatThrownBy(() -> ModelConfig.fromJson(c, null))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("num_key_value_heads");
        ObjectNode d = llamaJson("llama");
        d.put("hidden_act", "tanhshrink");
        assertThatThrownBy(() -> ModelConfig.fromJson(d, null))
                .hasMessageContaining("hidden_act")
                .hasMessageContaining("tanhshrink");
        ObjectNode e = llamaJson("llama");
        e.put("vocab_size", "big");
        assertThatThrownBy(() -> ModelConfig.fromJson(e, null))
                .hasMessageContaining("vocab_size")
                .hasMessageContaining("integer");
    }
}
