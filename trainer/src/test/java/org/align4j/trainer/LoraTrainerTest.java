package org.align4j.trainer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.align4j.model.CausalLm;
import org.align4j.model.Fixtures;
import org.align4j.model.io.SafetensorsFile;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * LoRA runs of the trainers: the first DPO step on PEFT's adapter equals TRL 1.13 + PEFT 0.21's (loss,
 * rewards, every adapter gradient norm; {@code lora/peft-written/MODEL/expected.json}); a new adapter
 * starts exactly at the reference; checkpoints and {@code final/} are PEFT folders a run resumes from.
 */
class LoraTrainerTest {
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    Map<String, Object> base(String kind, String output) throws IOException {
        Path data = tmp.resolve("four.jsonl");
        Files.write(
                data, Files.readAllLines(Fixtures.root().resolve("prefs.jsonl")).subList(0, 4));
        Map<String, Object> o = new LinkedHashMap<>();
        o.put("model", Fixtures.model(kind).toString());
        o.put("data", data.toString());
        o.put("output", tmp.resolve(output).toString());
        o.put("loss", "dpo");
        o.put("beta", 0.1);
        o.put("batch_size", 4);
        o.put("max_steps", 1);
        o.put("learning_rate", 1e-3);
        o.put("max_grad_norm", 0.0);
        o.put("eval_kl", false);
        return o;
    }

    static void assertRel(double actual, double expected, double rel, String what) {
        assertThat(Math.abs(actual - expected))
                .as("%s: %s vs %s", what, actual, expected)
                .isLessThanOrEqualTo(rel * Math.abs(expected));
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny", "llama-tiny", "qwen2-tiny"})
    void firstLoraDpoStepMatchesTrlAndPeft(String kind) throws IOException {
        JsonNode expected = JSON.readTree(Files.readString(Fixtures.lora("peft-written/" + kind + "/expected.json")))
                .get("dpo_step");
        Map<String, Object> cfg = base(kind, "run-" + kind);
        cfg.put("adapter", Fixtures.lora("peft-written/" + kind).toString());
        PreferenceTrainerTest.Recorder rec = new PreferenceTrainerTest.Recorder();
        try (PreferenceTrainer t = PreferenceTrainer.create(TrainConfig.resolve(null, cfg), false)) {
            t.addListener(rec);
            t.train();
        }
        Map<String, Double> step = rec.steps.get(0);
        assertRel(step.get("loss"), expected.get("loss").asDouble(), 1e-4, "loss");
        for (String k : List.of("logps/chosen", "logps/rejected")) {
            assertRel(step.get(k), expected.get("metrics").get(k).asDouble(), 1e-4, k);
        }
        // a reward is β times a difference of log-probs near -100: a mean reward near 0 is compared absolutely
        for (String k : List.of("rewards/chosen", "rewards/rejected", "rewards/margins")) {
            double want = expected.get("metrics").get(k).asDouble();
            assertThat(step.get(k)).as(k).isCloseTo(want, Offset.offset(Math.max(1e-4 * Math.abs(want), 1e-5)));
        }
        assertThat(step.get("rewards/accuracies"))
                .isEqualTo(expected.get("metrics").get("rewards/accuracies").asDouble());
        JsonNode norms = expected.get("grad_norm_by_param");
        List<String> names = new ArrayList<>();
        norms.fieldNames().forEachRemaining(names::add);
        assertThat(rec.firstNorms.keySet())
                .as("only the adapters have gradients")
                .containsExactlyInAnyOrderElementsOf(names);
        for (String name : names) {
            assertRel(rec.firstNorms.get(name), norms.get(name).asDouble(), 1e-4, "gradient norm of " + name);
        }
        assertRel(step.get("grad_norm"), expected.get("grad_norm_total").asDouble(), 1e-4, "grad_norm");
        // checkpoints and final/ are PEFT adapter folders; the optimizer state covers the adapters only
        Path run = tmp.resolve("run-" + kind);
        for (String dir : List.of("final", "checkpoint-1")) {
            assertThat(run.resolve(dir + "/adapter_config.json")).exists();
            assertThat(run.resolve(dir + "/adapter_model.safetensors")).exists();
            assertThat(run.resolve(dir + "/model.safetensors")).doesNotExist();
        }
        try (SafetensorsFile f = SafetensorsFile.open(run.resolve("checkpoint-1/optimizer.safetensors"))) {
            assertThat(f.tensors().keySet()).allMatch(k -> k.contains(".lora_A.") || k.contains(".lora_B."));
        }
    }

    @Test
    void aNewAdapterStartsExactlyAtTheReference() throws IOException {
        Map<String, Object> cfg = base("llama-tiny", "fresh");
        cfg.put("lora_r", 4);
        cfg.put("lora_target", "all-linear");
        PreferenceTrainerTest.Recorder rec = new PreferenceTrainerTest.Recorder();
        try (PreferenceTrainer t = PreferenceTrainer.create(TrainConfig.resolve(null, cfg), false)) {
            t.addListener(rec);
            t.train();
        }
        Map<String, Double> step = rec.steps.get(0);
        assertThat(step.get("loss")).isEqualTo((double) (float) Math.log(2));
        assertThat(step.get("rewards/chosen")).isEqualTo(0.0);
        assertThat(step.get("rewards/rejected")).isEqualTo(0.0);
        assertThat(step.get("rewards/margins")).isEqualTo(0.0);
        // with B = 0 only B gets a gradient: ∂L/∂A = s·Bᵀ(...) = 0
        rec.firstNorms.forEach((name, norm) -> {
            if (name.endsWith("lora_A.weight")) {
                assertThat(norm).as(name).isZero();
            } else {
                assertThat(norm).as(name).isPositive();
            }
        });
        assertThat(rec.firstNorms).hasSize(2 * 14);
    }

    /** Every preference objective trains adapters; those with a reference start with rewards exactly 0. */
    @ParameterizedTest
    @ValueSource(strings = {"dpo", "cdpo", "robust", "hinge", "ipo", "ipo-sum", "ipo-soft", "simpo"})
    void everyPreferenceLossTrainsAdapters(String loss) throws IOException {
        Map<String, Object> cfg = base("gpt2-tiny", "loss-" + loss);
        cfg.put("loss", loss);
        cfg.put("lora_r", 2);
        cfg.put("max_steps", 2);
        cfg.put("learning_rate", 1e-2);
        cfg.put("schedule", "constant");
        cfg.remove("eval_kl");
        PreferenceTrainerTest.Recorder rec = new PreferenceTrainerTest.Recorder();
        try (PreferenceTrainer t = PreferenceTrainer.create(TrainConfig.resolve(null, cfg), false)) {
            t.addListener(rec);
            t.train();
        }
        assertThat(rec.steps).hasSize(2);
        assertThat(rec.steps.get(1).get("loss"))
                .isFinite()
                .isNotEqualTo(rec.steps.get(0).get("loss"));
        if (!"simpo".equals(loss)) {
            assertThat(rec.steps.get(0).get("rewards/chosen")).isEqualTo(0.0);
            assertThat(rec.steps.get(0).get("rewards/rejected")).isEqualTo(0.0);
        }
        assertThat(tmp.resolve("loss-" + loss + "/final/adapter_model.safetensors"))
                .exists();
    }

    @Test
    void aLoraRunResumesWithTheLossesOfAnUninterruptedOne() throws IOException {
        Map<String, Object> straight = base("qwen2-tiny", "straight");
        straight.put("lora_r", 8);
        straight.put("max_steps", 3);
        straight.put("batch_size", 2);
        straight.put("learning_rate", 1e-2);
        straight.put("schedule", "constant");
        List<Double> expected = losses(straight, false);
        Map<String, Object> first = new HashMap<>(straight);
        first.put("output", tmp.resolve("stopped").toString());
        first.put("max_steps", 2);
        List<Double> got = new ArrayList<>(losses(first, false));
        Map<String, Object> second = new HashMap<>(first);
        second.put("max_steps", 3);
        got.addAll(losses(second, true));
        assertThat(got).hasSize(3);
        for (int i = 0; i < 3; i++) {
            assertThat(got.get(i)).as("step %d", i + 1).isCloseTo(expected.get(i), Offset.offset(1e-6));
        }
        assertThat(expected.get(2)).isNotEqualTo(expected.get(0));
    }

    private List<Double> losses(Map<String, Object> cfg, boolean resume) throws IOException {
        PreferenceTrainerTest.Recorder rec = new PreferenceTrainerTest.Recorder();
        try (PreferenceTrainer t = PreferenceTrainer.create(TrainConfig.resolve(null, cfg), resume)) {
            assertThat(t.policy().hasAdapters()).isTrue();
            t.addListener(rec);
            t.train();
        }
        return rec.steps.stream().map(m -> m.get("loss")).toList();
    }

    @Test
    void sftTrainsOnlyTheAdapters() throws IOException {
        Path data = tmp.resolve("sft.jsonl");
        List<String> lines = new ArrayList<>();
        for (JsonNode p : Fixtures.prefs().subList(0, 4)) {
            lines.add(JSON.writeValueAsString(Map.of(
                    "prompt",
                    p.get("prompt").asText(),
                    "completion",
                    p.get("chosen").asText())));
        }
        Files.write(data, lines);
        Map<String, Object> cfg = new LinkedHashMap<>();
        cfg.put("model", Fixtures.model("gpt2-tiny").toString());
        cfg.put("data", data.toString());
        cfg.put("output", tmp.resolve("sft").toString());
        cfg.put("max_steps", 3);
        cfg.put("batch_size", 4);
        cfg.put("learning_rate", 1e-2);
        cfg.put("lora_r", 4);
        PreferenceTrainerTest.Recorder rec = new PreferenceTrainerTest.Recorder();
        try (SftTrainer t = SftTrainer.create(
                TrainConfig.resolve(Map.of("loss", "sft"), null, cfg, k -> "key '" + k + "'"), false)) {
            t.addListener(rec);
            t.train();
        }
        assertThat(rec.steps.get(2).get("loss")).isLessThan(rec.steps.get(0).get("loss"));
        assertThat(rec.firstNorms.keySet()).allMatch(k -> k.contains(".lora_"));
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                CausalLm trained = CausalLm.load(tmp.resolve("sft/final"), Device.cpu());
                CausalLm base = CausalLm.load(Fixtures.model("gpt2-tiny"), Device.cpu())) {
            assertThat(trained.hasAdapters()).isTrue();
            assertThat(trained.lora().r()).isEqualTo(4);
            base.parameters()
                    .forEach((name, p) -> assertThat(
                                    trained.parameters().get(name).getArray().contentEquals(p.getArray()))
                            .as("%s unchanged", name)
                            .isTrue());
            NDArray b = trained.trainableParameters()
                    .get("transformer.h.0.attn.c_attn.lora_B.weight")
                    .getArray();
            assertThat(b.abs().max().getFloat()).as("B trained").isPositive();
        }
    }

    @Test
    void loraKeysAreCheckedByName() throws IOException {
        Map<String, Object> cfg = base("llama-tiny", "bad");
        cfg.put("lora_alpha", 16);
        assertThatThrownBy(() -> TrainConfig.resolve(null, cfg))
                .hasMessageContaining("key 'lora_alpha'")
                .hasMessageContaining("LoRA is off");
        cfg.remove("lora_alpha");
        cfg.put("lora_r", -1);
        assertThatThrownBy(() -> TrainConfig.resolve(null, cfg))
                .hasMessageContaining("key 'lora_r'")
                .hasMessageContaining("at least 1");
        cfg.put("lora_r", 4);
        cfg.put("adapter", Fixtures.lora("peft-written/llama-tiny").toString());
        assertThatThrownBy(() -> TrainConfig.resolve(null, cfg))
                .hasMessageContaining("key 'lora_r'")
                .hasMessageContaining("adapter_config.json");
        cfg.remove("adapter");
        cfg.put("lora_dropout", 1.5);
        assertThatThrownBy(() -> TrainConfig.resolve(null, cfg)).hasMessageContaining("lora_dropout");
        cfg.put("lora_dropout", 0.1);
        assertThatThrownBy(() -> TrainConfig.resolve(null, cfg))
                .hasMessageContaining("key 'lora_dropout'")
                .hasMessageContaining("disable_dropout");
        cfg.put("disable_dropout", false);
        cfg.put("lora_target", "q_proj,lm_head");
        assertThatThrownBy(() -> PreferenceTrainer.create(TrainConfig.resolve(null, cfg), false))
                .hasMessageContaining("key 'lora_target'")
                .hasMessageContaining("'lm_head'");
        // TRL's names: lora_target_modules as a list
        Path yaml = tmp.resolve("trl.yaml");
        Files.writeString(yaml, "lora_r: 16\nlora_target_modules: [q_proj, v_proj]\n");
        cfg.remove("lora_r");
        cfg.remove("lora_dropout");
        cfg.remove("lora_target");
        TrainConfig c = TrainConfig.resolve(yaml, cfg);
        assertThat(c.loraTarget()).isEqualTo("q_proj,v_proj");
        assertThat(c.loraConfig().scale()).isEqualTo(2.0);
        Files.writeString(yaml, "use_peft: true\n");
        assertThatThrownBy(() -> TrainConfig.resolve(yaml, cfg))
                .hasMessageContaining("use_peft")
                .hasMessageContaining("lora_r");
    }
}
