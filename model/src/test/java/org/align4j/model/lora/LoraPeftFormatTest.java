package org.align4j.model.lora;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Parameter;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.align4j.model.CausalLm;
import org.align4j.model.Fixtures;
import org.align4j.model.LogProbs;
import org.align4j.model.nn.CausalLmBlock;
import org.align4j.model.nn.Compute;
import org.align4j.model.nn.LoraAdapter;
import org.align4j.model.nn.Projection;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Adapters cross between align4j and PEFT 0.21 in both directions, on the three fixture models, with
 * expected values PEFT computed ({@code model/src/test/python/lora_fixtures.py}): a PEFT-written
 * adapter gives PEFT's log-probs here and merges into PEFT's {@code merge_and_unload()} weights; an
 * adapter align4j writes is exactly the one PEFT loaded and gave its log-probs for.
 */
class LoraPeftFormatTest {
    static final ObjectMapper JSON = new ObjectMapper();

    /** Σ log-probs of the fixture's preference batch (right-padded), the LM head on completion positions. */
    static float[] logps(CausalLm lm, Map<String, NDArray> ref, boolean mean) {
        LogProbs lp = lm.completionLogProbs(
                ref.get("pref_input_ids"), ref.get("pref_attention_mask"), ref.get("pref_completion_mask"), false);
        return (mean ? lp.mean() : lp.sum()).toFloatArray();
    }

    static void assertRelClose(float[] actual, float[] expected, double rel, String what) {
        assertThat(actual).as(what).hasSameSizeAs(expected);
        for (int i = 0; i < actual.length; i++) {
            assertThat((double) Math.abs(actual[i] - expected[i]) / Math.abs(expected[i]))
                    .as("%s[%d]: %s vs %s", what, i, actual[i], expected[i])
                    .isLessThan(rel);
        }
    }

    @ParameterizedTest
    @ValueSource(
            strings = {
                "gpt2-tiny:eager",
                "llama-tiny:eager",
                "qwen2-tiny:eager",
                "gpt2-tiny:sdpa",
                "llama-tiny:sdpa",
                "qwen2-tiny:sdpa"
            })
    void anAdapterPeftWroteGivesPeftsLogProbs(String spec) {
        String kind = spec.split(":")[0];
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                CausalLm lm = CausalLm.load(Fixtures.model(kind), Device.cpu())) {
            lm.setCompute(Compute.parse(spec.split(":")[1], "fp32", Device.cpu()));
            LoraConfig config = lm.loadAdapter(Fixtures.lora("peft-written/" + kind));
            Map<String, NDArray> ref = Fixtures.reference(kind, m);
            Map<String, NDArray> expected =
                    Fixtures.tensors(Fixtures.lora("peft-written/" + kind + "/expected.safetensors"), m);
            JsonNode meta = readJson(Fixtures.lora("peft-written/" + kind + "/expected.json"));
            List<String> adapted = lm.trainableParameters().keySet().stream()
                    .filter(n -> n.endsWith("lora_A.weight"))
                    .map(n -> n.substring(0, n.length() - ".lora_A.weight".length()))
                    .toList();
            assertThat(adapted).containsExactlyInAnyOrderElementsOf(iterable(meta.get("adapted_modules")));
            assertThat(config.r()).isEqualTo(meta.get("config").get("r").asInt());
            assertRelClose(logps(lm, ref, false), expected.get("policy_logps").toFloatArray(), 1e-5, "policy_logps");
            assertRelClose(
                    logps(lm, ref, true), expected.get("policy_logps_mean").toFloatArray(), 1e-5, "policy_logps_mean");
            lm.setAdaptersEnabled(false);
            assertRelClose(
                    logps(lm, ref, false),
                    expected.get("reference_logps").toFloatArray(),
                    1e-5,
                    "adapters off: reference_logps");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny", "llama-tiny", "qwen2-tiny"})
    void mergingEqualsPeftsMergeAndUnload(String kind) {
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                CausalLm base = CausalLm.load(Fixtures.model(kind), Device.cpu());
                CausalLm lm = CausalLm.load(Fixtures.model(kind), Device.cpu())) {
            lm.loadAdapter(Fixtures.lora("peft-written/" + kind));
            lm.mergeAdapters();
            assertThat(lm.hasAdapters()).isFalse();
            assertThat(lm.trainableParameters()).isEqualTo(lm.parameters());
            Map<String, NDArray> expected =
                    Fixtures.tensors(Fixtures.lora("peft-written/" + kind + "/expected.safetensors"), m);
            int merged = 0;
            for (Map.Entry<String, Parameter> e : lm.parameters().entrySet()) {
                NDArray want = expected.get("merged." + e.getKey());
                NDArray got = e.getValue().getArray();
                if (want == null) {
                    assertThat(got.contentEquals(
                                    base.parameters().get(e.getKey()).getArray()))
                            .as("%s unchanged", e.getKey())
                            .isTrue();
                } else {
                    float worst = got.sub(want).abs().max().getFloat();
                    assertThat(worst)
                            .as("%s: largest difference to PEFT's merged weight", e.getKey())
                            .isLessThan(1e-6f);
                    if (e.getKey().endsWith(".weight")) {
                        merged++;
                        assertThat(got.contentEquals(
                                        base.parameters().get(e.getKey()).getArray()))
                                .as("%s changed", e.getKey())
                                .isFalse();
                    }
                }
            }
            assertThat(merged)
                    .isEqualTo(readJson(Fixtures.lora("peft-written/" + kind + "/expected.json"))
                            .get("adapted_modules")
                            .size());
            // the merged model computes what the model with the adapter computes
            Map<String, NDArray> ref = Fixtures.reference(kind, m);
            assertRelClose(
                    logps(lm, ref, false), expected.get("policy_logps").toFloatArray(), 1e-5, "merged policy_logps");
        }
    }

    /** The adapter align4j writes for each fixture model: a recipe with non-zero B, as after some training. */
    static void writeAlign4jAdapter(String kind, Path dir) throws IOException {
        LoraConfig config = switch (kind) {
            case "gpt2-tiny" -> new LoraConfig(2, 4, 0, LoraConfig.parseTargets("c_attn,mlp.c_proj"), false);
            case "llama-tiny" -> new LoraConfig(4, 8, 0, new LoraConfig.AllLinear(), false);
            default -> new LoraConfig(8, 8, 0, LoraConfig.parseTargets("q_proj,k_proj,v_proj,o_proj"), true);
        };
        try (CausalLm lm = CausalLm.load(Fixtures.model(kind), Device.cpu())) {
            lm.addLora(config, 17);
            SplittableRandom random = new SplittableRandom(5);
            for (Projection p : ((CausalLmBlock) lm.block()).projections().values()) {
                LoraAdapter a = p.adapter();
                if (a != null) {
                    NDArray b = a.b().getArray();
                    float[] v = new float[(int) b.size()];
                    for (int i = 0; i < v.length; i++) {
                        v[i] = (float) (0.2 * (2 * random.nextDouble() - 1));
                    }
                    b.set(v);
                }
            }
            lm.save(dir, null);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny", "llama-tiny", "qwen2-tiny"})
    void anAdapterAlign4jWritesLoadsInPeftWithTheSameLogProbs(String kind) throws IOException {
        // written under target/, where lora_fixtures.py picks it up to load it in PEFT
        Path written = Path.of("target", "lora-align4j-written", kind);
        writeAlign4jAdapter(kind, written);
        Path peftLoaded = Fixtures.lora("align4j-written/" + kind);
        assertThat(peftLoaded.resolve("peft_logps.safetensors"))
                .as("run model/src/test/python/lora_fixtures.py after this test once")
                .exists();
        // what align4j writes now is exactly what PEFT loaded
        ObjectNode now = (ObjectNode) readJson(written.resolve(PeftAdapter.CONFIG_FILE));
        ObjectNode then = (ObjectNode) readJson(peftLoaded.resolve(PeftAdapter.CONFIG_FILE));
        now.remove("base_model_name_or_path");
        then.remove("base_model_name_or_path");
        assertThat(now).isEqualTo(then);
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                CausalLm lm = CausalLm.load(written, Device.cpu())) {
            Map<String, NDArray> a = Fixtures.tensors(written.resolve(PeftAdapter.WEIGHTS_FILE), m);
            Map<String, NDArray> b = Fixtures.tensors(peftLoaded.resolve(PeftAdapter.WEIGHTS_FILE), m);
            assertThat(a.keySet()).isEqualTo(b.keySet());
            a.forEach((name, arr) ->
                    assertThat(arr.contentEquals(b.get(name))).as(name).isTrue());
            assertThat(lm.hasAdapters()).isTrue();
            Map<String, NDArray> ref = Fixtures.reference(kind, m);
            Map<String, NDArray> peft = Fixtures.tensors(peftLoaded.resolve("peft_logps.safetensors"), m);
            assertRelClose(logps(lm, ref, false), peft.get("policy_logps").toFloatArray(), 1e-5, "policy_logps");
            assertRelClose(
                    logps(lm, ref, true), peft.get("policy_logps_mean").toFloatArray(), 1e-5, "policy_logps_mean");
            // and the adapter moved them: these are not the base model's
            float[] base = ref.get("policy_logps").toFloatArray();
            float[] got = logps(lm, ref, false);
            for (int i = 0; i < base.length; i++) {
                assertThat(Math.abs(got[i] - base[i]))
                        .as("row %d moved by the adapter", i)
                        .isGreaterThan(1e-2f);
            }
        }
    }

    static JsonNode readJson(Path file) {
        try {
            return JSON.readTree(Files.readString(file));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static List<String> iterable(JsonNode array) {
        List<String> out = new ArrayList<>();
        array.forEach(n -> out.add(n.asText()));
        return out;
    }
}
