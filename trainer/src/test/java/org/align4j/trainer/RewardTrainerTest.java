package org.align4j.trainer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.align4j.losses.LossType;
import org.align4j.model.CausalLm;
import org.align4j.model.Fixtures;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RewardTrainerTest {
    @TempDir
    Path tmp;

    private Map<String, Object> base(String run) {
        Map<String, Object> m = new HashMap<>();
        m.put("model", Fixtures.model("gpt2-tiny").toString());
        m.put("data", Fixtures.root().resolve("prefs.jsonl").toString());
        m.put("output", tmp.resolve(run).toString());
        m.put("loss", "reward");
        m.put("batch_size", 2);
        m.put("max_steps", 4);
        m.put("learning_rate", 1e-2);
        return m;
    }

    private static List<Double> losses(TrainConfig c, RunFolder.Mode mode) throws IOException {
        List<Double> out = new ArrayList<>();
        try (RewardTrainer t = RewardTrainer.create(c, mode)) {
            t.addListener(new TrainingListener() {
                @Override
                public void onStep(long step, Map<String, Double> metrics) {
                    out.add(metrics.get("loss"));
                }
            });
            t.train();
        }
        return out;
    }

    @Test
    void aCausalLmBecomesARewardModelThatTransformersCanLoadAndTheRunResumesExactly() throws IOException {
        Map<String, Object> straight = base("straight");
        straight.put("eval_fraction", 0.25);
        straight.put("eval_every", 2);
        List<Double> expected = losses(TrainConfig.resolve(null, straight), RunFolder.Mode.fresh());
        assertThat(expected).hasSize(4);
        assertThat(expected.get(0)).as("a new head scores near 0: about ln 2").isBetween(0.6, 0.8);
        Path fin = tmp.resolve("straight/final");
        JsonNode cfg = new ObjectMapper().readTree(fin.resolve("config.json").toFile());
        assertThat(cfg.get("architectures").get(0).asText()).isEqualTo("GPT2ForSequenceClassification");
        assertThat(cfg.get("pad_token_id").asInt()).isEqualTo(3);
        try (CausalLm rm = CausalLm.load(fin, Device.cpu())) {
            assertThat(rm.isRewardModel()).isTrue();
        }
        List<String> lines = Files.readAllLines(tmp.resolve("straight/metrics.jsonl"));
        assertThat(lines.stream().filter(l -> l.contains("\"eval_accuracy\"")).count())
                .as("evaluations at steps 2 and 4")
                .isEqualTo(2);
        assertThat(lines.get(0))
                .contains("\"accuracy\"")
                .contains("\"margin\"")
                .contains("\"min_reward\"")
                .contains("\"rewards/chosen\"");

        Map<String, Object> stopped = new HashMap<>(straight);
        stopped.put("output", tmp.resolve("stopped").toString());
        TrainConfig c = TrainConfig.resolve(null, stopped);
        List<Double> got = new ArrayList<>();
        try (RewardTrainer t = RewardTrainer.create(c, RunFolder.Mode.fresh())) {
            t.addListener(new TrainingListener() {
                @Override
                public void onStep(long step, Map<String, Double> metrics) {
                    got.add(metrics.get("loss"));
                    if (step == 2) {
                        t.requestStop();
                    }
                }
            });
            assertThat(t.train().interrupted()).isTrue();
        }
        got.addAll(losses(c, RunFolder.Mode.resumeLatest()));
        assertThat(got).hasSize(4);
        for (int i = 0; i < 4; i++) {
            assertThat(got.get(i)).as("step %d", i + 1).isCloseTo(expected.get(i), Offset.offset(1e-6));
        }
    }

    @Test
    void optionsARewardRunWouldNotReadAreRefusedByName() {
        Map<String, Object> beta = base("x");
        beta.put("beta", 0.3);
        assertThatThrownBy(() -> TrainConfig.resolve(null, beta))
                .hasMessageContaining("key 'beta'")
                .hasMessageContaining("loss reward does not use it");
        Map<String, Object> ref = base("x");
        ref.put("reference", "precomputed");
        assertThatThrownBy(() -> TrainConfig.resolve(null, ref))
                .hasMessageContaining("key 'reference'")
                .hasMessageContaining("no reference policy");
        Map<String, Object> samples = base("x");
        samples.put("eval_samples", 4);
        assertThatThrownBy(() -> TrainConfig.resolve(null, samples)).hasMessageContaining("key 'eval_samples'");
        Map<String, Object> prompt = base("x");
        prompt.put("max_prompt_length", 8);
        assertThatThrownBy(() -> TrainConfig.resolve(null, prompt))
                .hasMessageContaining("key 'max_prompt_length'")
                .hasMessageContaining("never cut");
        Map<String, Object> packed = base("x");
        packed.put("padding_free", true);
        assertThatThrownBy(() -> TrainConfig.resolve(null, packed))
                .hasMessageContaining("key 'padding_free'")
                .hasMessageContaining("reward");
        Map<String, Object> center = base("x");
        center.put("loss", "dpo");
        center.put("center_rewards_coefficient", 0.01);
        assertThatThrownBy(() -> TrainConfig.resolve(null, center))
                .hasMessageContaining("key 'center_rewards_coefficient'")
                .hasMessageContaining("reward does");
        assertThat(TrainConfig.resolve(
                                Map.of("loss", LossType.REWARD),
                                null,
                                Map.of("model", "m", "data", "d", "output", "o"),
                                k -> k)
                        .learningRate())
                .as("TRL RewardConfig's default")
                .isEqualTo(1e-4);
        assertThatThrownBy(() -> PreferenceTrainer.create(TrainConfig.resolve(null, base("x")), false))
                .hasMessageContaining("key 'loss'");
    }

    @Test
    void withLoraOnlyTheAdaptersAndTheScoreHeadTrainAndTheRunResumesExactly() throws IOException {
        Map<String, Object> straight = base("lora");
        straight.put("lora_r", 4);
        straight.put("lora_alpha", 8);
        straight.put("lora_target", "all-linear");
        TrainConfig config = TrainConfig.resolve(null, straight);
        List<Double> expected = losses(config, RunFolder.Mode.fresh());
        assertThat(expected).hasSize(4);
        Path fin = tmp.resolve("lora/final");
        // a PEFT SEQ_CLS adapter folder: adapters and the score head, no full model
        assertThat(fin.resolve("config.json")).doesNotExist();
        JsonNode adapter =
                new ObjectMapper().readTree(fin.resolve("adapter_config.json").toFile());
        assertThat(adapter.get("task_type").asText()).isEqualTo("SEQ_CLS");
        try (CausalLm trained = CausalLm.load(fin, Device.cpu());
                CausalLm start =
                        CausalLm.loadRewardModel(Fixtures.model("gpt2-tiny"), Device.cpu(), 3, config.seed())) {
            assertThat(trained.isRewardModel()).isTrue();
            assertThat(trained.hasAdapters()).isTrue();
            assertThat(trained.trainableParameters()).containsKey("score.weight");
            // the decoder is the base's, bit for bit; the score head moved from where the run drew it
            trained.parameters().forEach((name, p) -> {
                boolean same =
                        p.getArray().contentEquals(start.parameters().get(name).getArray());
                assertThat(same)
                        .as(name + (name.equals("score.weight") ? " trained" : " frozen"))
                        .isEqualTo(!name.equals("score.weight"));
            });
        }
        Map<String, Object> stopped = new HashMap<>(straight);
        stopped.put("output", tmp.resolve("lora-stopped").toString());
        TrainConfig c = TrainConfig.resolve(null, stopped);
        List<Double> got = new ArrayList<>();
        try (RewardTrainer t = RewardTrainer.create(c, RunFolder.Mode.fresh())) {
            assertThat(t.model().trainableParameters().keySet())
                    .as("AdamW's parameters")
                    .allMatch(n -> n.equals("score.weight") || n.contains(".lora_"));
            t.addListener(new TrainingListener() {
                @Override
                public void onStep(long step, Map<String, Double> metrics) {
                    got.add(metrics.get("loss"));
                    if (step == 2) {
                        t.requestStop();
                    }
                }
            });
            t.train();
        }
        got.addAll(losses(c, RunFolder.Mode.resumeLatest()));
        assertThat(got).hasSize(4);
        for (int i = 0; i < 4; i++) {
            assertThat(got.get(i)).as("step %d", i + 1).isCloseTo(expected.get(i), Offset.offset(1e-6));
        }
    }
}
