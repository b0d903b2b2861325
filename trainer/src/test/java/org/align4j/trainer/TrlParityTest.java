package org.align4j.trainer;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.align4j.losses.LossType;
import org.align4j.model.Fixtures;
import org.align4j.model.nn.Compute;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * align4j's trainers against HF TRL 1.13 on the fixture models: ten steps of DPO (sigmoid, IPO, hinge,
 * robust) and SFT, every pair in every step, and every metric both log
 * compared at every step. The expected values are TRL's own logs, made by {@code
 * src/test/python/trl_fixtures.py}; this is the guard for every later change to the loop, the model
 * or the losses.
 */
class TrlParityTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Relative tolerance on every metric (fp32 on the CPU, ten steps of AdamW at lr 1e-3). */
    private static final double RELATIVE = 1e-4;

    /** Absolute floor for values that pass near zero (rewards at the start, margins). */
    private static final double ABSOLUTE = 1e-6;

    /** The metrics align4j logs under TRL's names; TRL's entropy, logits/* and mean_token_accuracy it does not compute. */
    private static final List<String> COMPARED = List.of(
            "loss",
            "grad_norm",
            "learning_rate",
            "rewards/chosen",
            "rewards/rejected",
            "rewards/margins",
            "rewards/accuracies",
            "logps/chosen",
            "logps/rejected");

    @TempDir
    Path tmp;

    static Stream<String> fixtures() {
        return Stream.of("gpt2-tiny", "llama-tiny", "qwen2-tiny")
                .flatMap(m ->
                        Stream.of(m + "-dpo-sigmoid", m + "-dpo-ipo", m + "-dpo-hinge", m + "-dpo-robust", m + "-sft"));
    }

    static JsonNode fixture(String name) throws IOException {
        try (InputStream in = TrlParityTest.class.getResourceAsStream("/trl/" + name + ".json")) {
            return JSON.readTree(in);
        }
    }

    @ParameterizedTest
    @MethodSource("fixtures")
    void everyMetricEqualsTrlsAtEveryStep(String name) throws IOException {
        JsonNode doc = fixture(name);
        compare(name, doc, run(doc, null));
    }

    /**
     * SFT with GPT-2's dropout (0.1 on embeddings, attention probabilities and residual branches): TRL
     * keeps it for SFT. Both sides seed the generator with seed + 1000003 · step before the step's
     * forward pass and use eager attention, so they draw the same masks; batches padded as TRL pads them (a mask is drawn over the layout).
     */
    @ParameterizedTest
    @MethodSource("dropoutFixtures")
    void sftWithDropoutDrawsTrlsMasks(String name) throws IOException {
        JsonNode doc = fixture(name);
        compare(name, doc, run(doc, false));
    }

    static Stream<String> dropoutFixtures() {
        return Stream.of("gpt2-tiny-sft-dropout");
    }

    static Stream<String> paddingFixtures() {
        return Stream.of("gpt2-tiny", "llama-tiny", "qwen2-tiny")
                .flatMap(m -> Stream.of(m + "-dpo-sigmoid", m + "-sft"));
    }

    /**
     * The other setting of {@code padding_free} than the default: TRL's numbers (made on padded
     * batches) hold with the micro-batches packed without padding, and with them padded.
     */
    @ParameterizedTest
    @MethodSource("paddingFixtures")
    void everyMetricEqualsTrlsWithTheOtherPaddingSetting(String name) throws IOException {
        JsonNode doc = fixture(name);
        compare(
                name + " (padding_free " + !TrainConfig.defaults().paddingFree() + ")",
                doc,
                run(doc, !TrainConfig.defaults().paddingFree()));
    }

    private List<Map<String, Double>> run(JsonNode doc, Boolean paddingFree) throws IOException {
        JsonNode s = doc.get("settings");
        String model = s.get("model").asText();
        boolean sft = "sft".equals(s.get("trainer").asText());
        TrainConfig.Builder<TrainConfig> b = TrainConfig.builder()
                .model(Fixtures.model(model))
                .data(Fixtures.root().resolve("prefs.jsonl"))
                .output(tmp.resolve("run"))
                .learningRate(s.get("learning_rate").asDouble())
                .batchSize(s.get("per_device_train_batch_size").asInt())
                .gradAccum(s.get("gradient_accumulation_steps").asInt())
                .maxSteps(s.get("max_steps").asInt())
                .schedule(TrainConfig.Schedule.LINEAR)
                .warmupSteps(s.get("warmup_steps").asInt())
                .weightDecay(s.get("weight_decay").asDouble())
                .maxGradNorm(s.get("max_grad_norm").asDouble())
                .seed(s.get("seed").asLong())
                .attention(
                        "eager".equals(s.get("attention").asText()) ? Compute.Attention.EAGER : Compute.Attention.SDPA);
        if (paddingFree != null) {
            b.paddingFree(paddingFree);
        }
        Recorder rec = new Recorder();
        if (sft) {
            b.loss(LossType.SFT).set("disable_dropout", !s.get("dropout").asBoolean());
            try (SftTrainer t = SftTrainer.create(b.build(), false)) {
                t.addListener(rec);
                t.train();
            }
        } else {
            b.loss(LossType.parse(s.get("loss_type").asText()))
                    .beta(s.get("beta").asDouble())
                    .referenceModel(Fixtures.model(s.get("reference_model").asText()));
            if (s.get("label_smoothing").asDouble() > 0) {
                b.labelSmoothing(s.get("label_smoothing").asDouble());
            }
            try (PreferenceTrainer t = PreferenceTrainer.create(b.build(), false)) {
                t.addListener(rec);
                t.train();
            }
        }
        return rec.steps;
    }

    private static void compare(String name, JsonNode doc, List<Map<String, Double>> got) {
        JsonNode steps = doc.get("steps");
        assertThat(got).as(name + ": steps").hasSize(steps.size());
        for (int i = 0; i < steps.size(); i++) {
            JsonNode want = steps.get(i);
            for (String metric : COMPARED) {
                if (!want.has(metric)) {
                    continue;
                }
                double w = want.get(metric).asDouble();
                Double g = got.get(i).get(metric);
                assertThat(g).as("%s step %d %s", name, i + 1, metric).isNotNull();
                assertThat(Math.abs(g - w))
                        .as("%s step %d %s: align4j %.8g, TRL %.8g", name, i + 1, metric, g, w)
                        .isLessThanOrEqualTo(Math.max(ABSOLUTE, RELATIVE * Math.abs(w)));
            }
        }
    }

    /** Keeps every step's metrics. */
    static final class Recorder implements TrainingListener {
        final List<Map<String, Double>> steps = new ArrayList<>();

        @Override
        public void onStep(long step, Map<String, Double> metrics) {
            steps.add(metrics);
        }
    }
}
