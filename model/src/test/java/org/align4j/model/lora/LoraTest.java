package org.align4j.model.lora;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Parameter;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.align4j.model.CausalLm;
import org.align4j.model.Fixtures;
import org.align4j.model.LogProbs;
import org.align4j.model.config.ModelConfig;
import org.align4j.model.io.AtomicDirectory;
import org.align4j.model.io.CheckpointException;
import org.align4j.model.nn.CausalLmBlock;
import org.align4j.model.nn.Compute;
import org.align4j.model.nn.LoraAdapter;
import org.align4j.model.nn.Projection;
import org.assertj.core.api.Assertions;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** What LoRA promises beyond PEFT parity: new adapters change nothing, only adapters train, clear errors. */
class LoraTest {
    @TempDir
    Path tmp;

    static LogProbs logProbs(CausalLm lm, Map<String, NDArray> ref, boolean training) {
        return lm.completionLogProbs(
                ref.get("pref_input_ids"), ref.get("pref_attention_mask"), ref.get("pref_completion_mask"), training);
    }

    static CausalLmBlock block(CausalLm lm) {
        return (CausalLmBlock) lm.block();
    }

    /** Step 0 of a LoRA run: B = 0, so the policy (adapters on) equals the reference (adapters off) bit for bit, in every compute setting. */
    @ParameterizedTest
    @ValueSource(
            strings = {
                "gpt2-tiny:eager:fp32",
                "llama-tiny:sdpa:fp32",
                "qwen2-tiny:sdpa:fp32",
                "gpt2-tiny:sdpa:bf16",
                "llama-tiny:sdpa:bf16"
            })
    void aNewAdapterLeavesThePolicyExactlyEqualToTheReference(String spec) {
        String[] s = spec.split(":");
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                CausalLm lm = CausalLm.load(Fixtures.model(s[0]), Device.cpu())) {
            lm.setCompute(Compute.parse(s[1], s[2], Device.cpu()));
            lm.addLora(new LoraConfig(4, 8, 0.1, new LoraConfig.AllLinear(), false), 3);
            Map<String, NDArray> ref = Fixtures.reference(s[0], m);
            // training mode: the adapter's dropout runs, and still changes nothing while B = 0
            LogProbs policy = logProbs(lm, ref, true);
            lm.setAdaptersEnabled(false);
            LogProbs reference = logProbs(lm, ref, false);
            lm.setAdaptersEnabled(true);
            assertThat(policy.sum().toFloatArray())
                    .containsExactly(reference.sum().toFloatArray());
            assertThat(policy.mean().toFloatArray())
                    .containsExactly(reference.mean().toFloatArray());
        }
    }

    /** The reference of a LoRA run is a view of the policy: adapters off, same weights, nothing owned. */
    @Test
    void theViewWithoutAdaptersIsTheBaseModelAndOwnsNothing() throws IOException {
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                CausalLm base = CausalLm.load(Fixtures.model("llama-tiny"), Device.cpu());
                CausalLm lm = CausalLm.load(Fixtures.model("llama-tiny"), Device.cpu())) {
            lm.loadAdapter(Fixtures.lora("peft-written/llama-tiny"));
            Map<String, NDArray> ref = Fixtures.reference("llama-tiny", m);
            float[] withAdapters = logProbs(lm, ref, false).sum().toFloatArray();
            CausalLm view = lm.withoutAdapters();
            assertThat(view.isView()).isTrue();
            float[] viewLogps = logProbs(view, ref, false).sum().toFloatArray();
            // the view switches the adapters off for its own passes only
            assertThat(logProbs(lm, ref, false).sum().toFloatArray()).containsExactly(withAdapters);
            float[] baseLogps = logProbs(base, ref, false).sum().toFloatArray();
            for (int i = 0; i < baseLogps.length; i++) {
                assertThat((double) viewLogps[i]).isCloseTo(baseLogps[i], Offset.offset(1e-5 * Math.abs(baseLogps[i])));
                assertThat(viewLogps[i]).isNotEqualTo(withAdapters[i]);
            }
            view.setTrainable(false);
            view.close();
            assertThat(lm.trainableParameters().values()).allMatch(Parameter::requiresGradient);
            assertThat(logProbs(lm, ref, false).sum().toFloatArray()).containsExactly(withAdapters);
            assertThatThrownBy(view::mergeAdapters)
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("view");
            // saved through the view, the model is its base: a full HF folder
            view.save(tmp.resolve("base"), null);
            assertThat(tmp.resolve("base/model.safetensors")).exists();
            assertThat(tmp.resolve("base/adapter_config.json")).doesNotExist();
        }
    }

    @Test
    void newAdaptersAreInitialisedAsPeftDoes() {
        try (CausalLm a = CausalLm.load(Fixtures.model("llama-tiny"), Device.cpu());
                CausalLm b = CausalLm.load(Fixtures.model("llama-tiny"), Device.cpu());
                CausalLm c = CausalLm.load(Fixtures.model("llama-tiny"), Device.cpu())) {
            LoraConfig config = new LoraConfig(8, 16, 0, LoraConfig.parseTargets("q_proj,down_proj"), false);
            a.addLora(config, 1);
            b.addLora(config, 1);
            c.addLora(config, 2);
            assertThat(a.trainableParameters().keySet())
                    .containsExactly(
                            "model.layers.0.self_attn.q_proj.lora_A.weight",
                                    "model.layers.0.self_attn.q_proj.lora_B.weight",
                            "model.layers.0.mlp.down_proj.lora_A.weight", "model.layers.0.mlp.down_proj.lora_B.weight",
                            "model.layers.1.self_attn.q_proj.lora_A.weight",
                                    "model.layers.1.self_attn.q_proj.lora_B.weight",
                            "model.layers.1.mlp.down_proj.lora_A.weight", "model.layers.1.mlp.down_proj.lora_B.weight");
            for (Projection p : block(a).projections().values()) {
                LoraAdapter adapter = p.adapter();
                if (adapter == null) {
                    continue;
                }
                assertThat(adapter.scale()).isEqualTo(2.0);
                float[] av = adapter.a().getArray().toFloatArray();
                double bound = 1 / Math.sqrt(p.inFeatures());
                assertThat(adapter.a().getArray().getShape().getShape()).containsExactly(8, p.inFeatures());
                assertThat(adapter.b().getArray().getShape().getShape()).containsExactly(p.outFeatures(), 8);
                double mean = 0;
                double max = 0;
                for (float v : av) {
                    assertThat(Math.abs(v)).isLessThanOrEqualTo((float) bound);
                    mean += v / av.length;
                    max = Math.max(max, Math.abs(v));
                }
                // U(-bound, bound): mean near 0, values reaching near the bound
                assertThat(Math.abs(mean)).isLessThan(bound / 5);
                assertThat(max).isGreaterThan(0.9 * bound);
                assertThat(adapter.b().getArray().toFloatArray()).containsOnly(0f);
                String name = p.module() + ".lora_A.weight";
                assertThat(b.trainableParameters()
                                .get(name)
                                .getArray()
                                .contentEquals(adapter.a().getArray()))
                        .as("same seed")
                        .isTrue();
                assertThat(c.trainableParameters()
                                .get(name)
                                .getArray()
                                .contentEquals(adapter.a().getArray()))
                        .as("other seed")
                        .isFalse();
            }
            assertThat(new LoraConfig(8, 16, 0, null, true).scale()).isEqualTo(16 / Math.sqrt(8));
        }
    }

    @Test
    void onlyTheAdaptersReceiveGradientsAndTheyMatchAcrossComputeSettings() {
        Map<String, Double> eager = adapterGradients("eager");
        Map<String, Double> sdpa = adapterGradients("sdpa");
        assertThat(eager).hasSize(14 * 2);
        eager.forEach((name, norm) -> {
            assertThat(norm).as(name).isGreaterThan(0);
            assertThat(sdpa.get(name)).as(name).isCloseTo(norm, Offset.offset(1e-4 * norm));
        });
    }

    private Map<String, Double> adapterGradients(String attention) {
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                CausalLm lm = CausalLm.load(Fixtures.model("llama-tiny"), Device.cpu())) {
            lm.setCompute(Compute.parse(attention, "fp32", Device.cpu()));
            lm.loadAdapter(Fixtures.lora("peft-written/llama-tiny"));
            Map<String, NDArray> ref = Fixtures.reference("llama-tiny", m);
            try (GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
                gc.backward(logProbs(lm, ref, true).sum().sum());
            }
            for (Map.Entry<String, Parameter> e : lm.parameters().entrySet()) {
                assertThat(e.getValue().requiresGradient())
                        .as(e.getKey() + " frozen")
                        .isFalse();
            }
            Map<String, Double> norms = new LinkedHashMap<>();
            lm.trainableParameters().forEach((name, p) -> {
                assertThat(p.requiresGradient()).as(name).isTrue();
                NDArray g = p.getArray().getGradient();
                norms.put(name, Math.sqrt(g.square().sum().getFloat()));
                g.close();
            });
            return norms;
        }
    }

    @Test
    void aSavedAdapterLoadsBackAsItsBaseWithTheAdapter() throws IOException {
        Path dir = tmp.resolve("adapter");
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                CausalLm lm = CausalLm.load(Fixtures.model("qwen2-tiny"), Device.cpu())) {
            lm.loadAdapter(Fixtures.lora("peft-written/qwen2-tiny"));
            lm.save(dir, Fixtures.model("qwen2-tiny"));
            assertThat(dir.resolve("tokenizer.json")).exists();
            assertThat(dir.resolve("config.json")).doesNotExist();
            Map<String, NDArray> ref = Fixtures.reference("qwen2-tiny", m);
            float[] want = logProbs(lm, ref, false).sum().toFloatArray();
            try (CausalLm back = CausalLm.load(dir, Device.cpu())) {
                assertThat(back.hasAdapters()).isTrue();
                assertThat(back.lora()).isEqualTo(lm.lora());
                assertThat(logProbs(back, ref, false).sum().toFloatArray()).containsExactly(want);
            }
        }
    }

    @Test
    void badInputGivesOneClearError() throws IOException {
        assertThatThrownBy(() -> new LoraConfig(0, 16, 0, null, false))
                .hasMessageContaining("rank r must be at least 1, got 0");
        assertThatThrownBy(() -> new LoraConfig(8, 16, 1.0, null, false))
                .hasMessageContaining("dropout must be in [0, 1), got 1.0");
        try (CausalLm lm = CausalLm.load(Fixtures.model("llama-tiny"), Device.cpu())) {
            assertThatThrownBy(() ->
                            lm.addLora(new LoraConfig(4, 8, 0, LoraConfig.parseTargets("q_proj,lm_head"), false), 1))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("LoRA target module 'lm_head'")
                    .hasMessageContaining("q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj");
            assertThat(lm.hasAdapters()).isFalse();
            // an adapter for GPT-2 names modules a Llama model does not have
            assertThatThrownBy(() -> lm.loadAdapter(Fixtures.lora("peft-written/gpt2-tiny")))
                    .isInstanceOf(CheckpointException.class)
                    .hasMessageContaining("adapter_config.json")
                    .hasMessageContaining("key 'target_modules'")
                    .hasMessageContaining("transformer.h.");
            assertThat(lm.hasAdapters()).isFalse();
        }
        // an adapter for a Llama of another width: the same module names, other shapes
        ModelConfig wider = ModelConfig.newLlama("llama", 600, 96, 2, 4, 2, 160, 256, false, 0, 2, 3);
        try (CausalLm lm = CausalLm.create(wider, Device.cpu(), 1)) {
            assertThatThrownBy(() -> lm.loadAdapter(Fixtures.lora("peft-written/llama-tiny")))
                    .isInstanceOf(CheckpointException.class)
                    .hasMessageContaining("adapter_model.safetensors")
                    .hasMessageContaining(
                            "tensor 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight' has shape [8, 64]")
                    .hasMessageContaining("another base model");
            assertThat(lm.hasAdapters()).isFalse();
        }
        assertThat(rejected("use_dora", true)).hasMessageContaining("key 'use_dora': DoRA adapters are not supported");
        assertThat(rejected("r", 0))
                .hasMessageContaining("rank r must be at least 1, got 0")
                .hasMessageContaining("adapter_config.json");
        assertThat(rejected("bias", "all")).hasMessageContaining("key 'bias'");
        assertThat(rejected("peft_type", "IA3"))
                .hasMessageContaining("key 'peft_type': align4j reads LoRA adapters only");
        // the config selects fewer modules than the weights file has
        assertThat(rejected("target_modules", List.of("q_proj")))
                .hasMessageContaining("unexpected tensor 'base_model.model.model.layers.0")
                .hasMessageContaining("is not a target of adapter_config.json");
    }

    /** The error of loading the Llama fixture's PEFT adapter with one key of its config changed. */
    private Throwable rejected(String key, Object value) throws IOException {
        Path dir = tmp.resolve("bad-" + key);
        AtomicDirectory.deleteRecursively(dir);
        Files.createDirectories(dir);
        Path src = Fixtures.lora("peft-written/llama-tiny");
        Files.copy(src.resolve(PeftAdapter.WEIGHTS_FILE), dir.resolve(PeftAdapter.WEIGHTS_FILE));
        ObjectMapper json = new ObjectMapper();
        ObjectNode config = (ObjectNode) json.readTree(Files.readString(src.resolve(PeftAdapter.CONFIG_FILE)));
        config.set(key, json.valueToTree(value));
        Files.writeString(dir.resolve(PeftAdapter.CONFIG_FILE), json.writeValueAsString(config));
        try (CausalLm lm = CausalLm.load(Fixtures.model("llama-tiny"), Device.cpu())) {
            Throwable t = Assertions.catchThrowable(() -> lm.loadAdapter(dir));
            assertThat(t).as(key).isInstanceOf(CheckpointException.class);
            assertThat(lm.hasAdapters()).isFalse();
            return t;
        }
    }
}
