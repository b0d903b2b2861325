package org.align4j.trainer;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.align4j.model.Fixtures;
import org.align4j.model.nn.Compute;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * align4j's RewardTrainer against TRL 1.13's RewardTrainer (expected values from {@code
 * src/test/python/reward_fixtures.py}): from the same transformers-written reward model, ten steps of
 * every pair of the fixture data; step 1's loss and every parameter's gradient norm, then every metric
 * TRL logs at every step, within 1e-4. The {@code -margin} run adds a per-pair margin and {@code
 * center_rewards_coefficient} 0.01.
 *
 * <p>Without centring, GPT-2's reward level is not identified: the final LayerNorm's bias adds score·β to
 * every reward, which the Bradley–Terry loss never sees, so its gradient is zero up to rounding, and
 * Adam turns that rounding (2e-8) into a step of the learning rate's size, in a direction that differs
 * between any two implementations. From step 2 on such a run compares what does not depend on the
 * level: loss, gradient norm, accuracy, margin, and the spread of the rewards about their mean.
 */
public class RewardTrlParityTest {
    private static final double RELATIVE = 1e-4;
    private static final double ABSOLUTE = 1e-6;
    private static final List<String> COMPARED = List.of(
            "loss", "grad_norm", "learning_rate", "accuracy", "margin", "min_reward", "mean_reward", "max_reward");

    @TempDir
    Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {"reward-gpt2-tiny", "reward-llama-tiny", "reward-gpt2-tiny-margin"})
    void everyMetricAndStepOnesGradientNormsEqualTrls(String name) throws IOException {
        JsonNode doc = TrlParityTest.fixture(name);
        JsonNode s = doc.get("settings");
        String model = s.get("model").asText();
        boolean margin = s.get("margin").asBoolean();
        Path data = margin
                ? Path.of(RewardTrlParityTest.class
                        .getResource("/trl/reward-prefs-margin.jsonl")
                        .getPath())
                : Fixtures.root().resolve("prefs.jsonl");
        TrainConfig.Builder<RewardTrainer> b = RewardTrainer.builder()
                .model(Fixtures.reward(model.substring(model.indexOf("reward/") + "reward/".length())))
                .data(data)
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
        if (s.has("center_rewards_coefficient")) {
            b.centerRewardsCoefficient(s.get("center_rewards_coefficient").asDouble());
        }
        Recorder rec = new Recorder();
        try (RewardTrainer t = b.build()) {
            t.addListener(rec);
            t.train();
        }
        JsonNode step1 = doc.get("step1");
        close(
                name + " step 1 loss",
                rec.steps.get(0).get("loss"),
                step1.get("loss").asDouble());
        Map<String, Double> norms = rec.firstNorms;
        assertThat(norms.keySet())
                .as("parameters with a gradient")
                .containsExactlyInAnyOrderElementsOf(iterable(step1.get("grad_norm_by_param")));
        step1.get("grad_norm_by_param")
                .fields()
                .forEachRemaining(e -> close(
                        name + " step 1 gradient norm of " + e.getKey(),
                        norms.get(e.getKey()),
                        e.getValue().asDouble()));
        JsonNode steps = doc.get("steps");
        assertThat(rec.steps).hasSize(steps.size());
        boolean levelIdentified = s.has("center_rewards_coefficient") || !model.contains("gpt2");
        for (int i = 0; i < steps.size(); i++) {
            Map<String, Double> got = rec.steps.get(i);
            JsonNode want = steps.get(i);
            for (String metric : COMPARED) {
                assertThat(got).as("step %d", i + 1).containsKey(metric);
                if (i == 0 || levelIdentified || !metric.endsWith("_reward")) {
                    close(
                            name + " step " + (i + 1) + " " + metric,
                            got.get(metric),
                            want.get(metric).asDouble());
                }
            }
            for (String extreme : List.of("min_reward", "max_reward")) {
                close(
                        name + " step " + (i + 1) + " " + extreme + " - mean_reward",
                        got.get(extreme) - got.get("mean_reward"),
                        want.get(extreme).asDouble() - want.get("mean_reward").asDouble());
            }
        }
    }

    private static List<String> iterable(JsonNode object) {
        List<String> names = new ArrayList<>();
        object.fieldNames().forEachRemaining(names::add);
        return names;
    }

    private static void close(String what, Double got, double want) {
        assertThat(got).as(what).isNotNull();
        assertThat(Math.abs(got - want))
                .as("%s: align4j %.8g, TRL %.8g", what, got, want)
                .isLessThanOrEqualTo(Math.max(ABSOLUTE, RELATIVE * Math.abs(want)));
    }

    /** Every step's metrics and the first step's per-parameter gradient norms (the RL parity test uses it too). */
    public static final class Recorder implements TrainingListener {
        /** Each step's metrics, in order. */
        public final List<Map<String, Double>> steps = new ArrayList<>();

        /** The first step's gradient norm by parameter. */
        public Map<String, Double> firstNorms;

        @Override
        public void onStep(long step, Map<String, Double> metrics) {
            steps.add(metrics);
        }

        @Override
        public boolean wantsGradientNorms() {
            return firstNorms == null;
        }

        @Override
        public void onGradientNorms(long step, Map<String, Double> norms) {
            if (firstNorms == null) {
                firstNorms = new LinkedHashMap<>(norms);
            }
        }
    }
}
