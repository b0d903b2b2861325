package org.align4j.trainer.rl;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.IntStream;
import org.align4j.losses.LossType;
import org.align4j.model.Fixtures;
import org.align4j.trainer.RewardTrlParityTest.Recorder;
import org.align4j.trainer.RunFolder;
import org.assertj.core.api.SoftAssertions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * PPO against the same updates written in plain PyTorch 2.13 from OpenRLHF's and TRL 0.x's formulas ({@code
 * src/test/python/ppo_reference.py}; TRL 1.13 has no PPO to run): two rollouts of replayed samples, each
 * serving 2 epochs × 2 mini-batches of 2 micro-batches, so 8 optimizer steps; every metric at every step (the
 * rollout's {@code objective/*} with its first step), each step's gradient norm and step 1's gradient norm of
 * every parameter of the policy and the value model, within 1e-4 relative (1e-6 absolute; the reference runs
 * in float64, align4j in float32); the loss, a sum of terms of opposite signs, within 1e-4 of their magnitudes.
 */
class PpoParityTest {
    private static final double RELATIVE = 1e-4;
    private static final double ABSOLUTE = 1e-6;
    /** Bookkeeping that is not the update: wall time, epochs, the loop's own token count. */
    private static final Set<String> SKIPPED = Set.of("step", "epoch", "num_tokens");

    @TempDir
    Path tmp;

    static Map<String, Object> options(JsonNode doc, Path tmp) throws IOException {
        JsonNode s = doc.get("settings");
        Path data = RlTrlParityTest.writePrompts(doc, tmp);
        Map<String, Object> o = new LinkedHashMap<>();
        o.put("model", Fixtures.model(doc.get("model").asText()).toString());
        o.put("data", data.toString());
        o.put("output", tmp.resolve("run").toString());
        o.put("schedule", "linear");
        o.put("warmup_steps", 0);
        o.put("weight_decay", 0.0);
        o.put("shuffle_dataset", false);
        o.put("reward_model_eos", false);
        o.put(
                "value_model",
                RlTrlParityTest.resource(doc.get("value_model").asText()).toString());
        s.fields().forEachRemaining(e -> {
            JsonNode v = e.getValue();
            o.put(e.getKey(), v.isTextual() ? v.asText() : v.isBoolean() ? v.asBoolean() : v.numberValue());
        });
        List<String> funcs = new ArrayList<>();
        for (JsonNode f : doc.get("reward_funcs")) {
            funcs.add(
                    "reward_len".equals(f.asText())
                            ? "class:" + RlTrlParityTest.RewardLen.class.getName()
                            : RlTrlParityTest.resource(f.asText()).toString());
        }
        o.put("reward_funcs", funcs);
        return o;
    }

    /** Replays the fixture's completion table: sample k of a prompt is its k-th completion. */
    static OnlineRlTrainer.Sampler replay(JsonNode doc) {
        Map<String, List<int[]>> table = new HashMap<>();
        doc.get("completions").fields().forEachRemaining(e -> {
            List<int[]> rows = new ArrayList<>();
            e.getValue().forEach(r -> {
                int[] ids = new int[r.size()];
                for (int i = 0; i < ids.length; i++) {
                    ids[i] = r.get(i).asInt();
                }
                rows.add(ids);
            });
            table.put(e.getKey(), rows);
        });
        return (rows, cfg) -> {
            List<int[]> out = new ArrayList<>();
            for (OnlineRlTrainer.Sampler.Row r : rows) {
                out.add(table.get(r.prompt().example().prompt()).get(r.sample()));
            }
            return out;
        };
    }

    @ParameterizedTest
    @ValueSource(strings = {"ppo-gpt2-k1-adaptive", "ppo-gpt2-k3-rm"})
    void everyMetricAndGradientNormOfEightStepsEqualsThePlainPytorchUpdate(String name) throws IOException {
        JsonNode doc = RlTrlParityTest.fixture(name);
        RlConfig.Run run = RlConfig.resolve(LossType.PPO, null, options(doc, tmp), k -> "key '" + k + "'");
        Recorder rec = new Recorder();
        try (OnlineRlTrainer t = OnlineRlTrainer.create(run, RunFolder.Mode.fresh())) {
            t.setSampler(replay(doc));
            t.addListener(rec);
            t.train();
        }
        JsonNode steps = doc.get("steps");
        assertThat(rec.steps).hasSize(steps.size());
        SoftAssertions soft = new SoftAssertions();
        for (int i = 0; i < steps.size(); i++) {
            Map<String, Double> got = rec.steps.get(i);
            int step = i + 1;
            JsonNode want = steps.get(i);
            want.fields().forEachRemaining(e -> {
                if (e.getKey().equals("loss")) {
                    // a sum of two terms of opposite signs: its error is relative to the terms' magnitudes
                    double scale = Math.abs(want.get("loss/policy_avg").asDouble())
                            + doc.get("settings").get("vf_coef").asDouble()
                                    * Math.abs(want.get("loss/value_avg").asDouble());
                    Double g = got.get("loss");
                    soft.assertThat(
                                    g == null
                                            ? Double.NaN
                                            : Math.abs(g - e.getValue().asDouble()))
                            .as("%s step %d loss: align4j %s, reference %s", name, step, g, e.getValue())
                            .isLessThanOrEqualTo(Math.max(ABSOLUTE, RELATIVE * scale));
                } else if (!SKIPPED.contains(e.getKey())) {
                    close(
                            soft,
                            name + " step " + step + " " + e.getKey(),
                            got.get(e.getKey()),
                            e.getValue().asDouble());
                }
            });
        }
        JsonNode norms = doc.get("step1_grad_norm_by_param");
        List<String> names = new ArrayList<>();
        norms.fieldNames().forEachRemaining(names::add);
        assertThat(rec.firstNorms.keySet()).as("parameters with a gradient").containsExactlyInAnyOrderElementsOf(names);
        norms.fields()
                .forEachRemaining(e -> close(
                        soft,
                        name + " step 1 gradient norm of " + e.getKey(),
                        rec.firstNorms.get(e.getKey()),
                        e.getValue().asDouble()));
        soft.assertAll();
    }

    @Test
    void theVisitingOrderIsAPermutationThatDependsOnGenerationAndEpoch() {
        int[] a = OnlineRlTrainer.miniBatchOrder(16, 42, 0, 0);
        int[] b = OnlineRlTrainer.miniBatchOrder(16, 42, 0, 1);
        int[] c = OnlineRlTrainer.miniBatchOrder(16, 42, 1, 0);
        assertThat(a).containsExactlyInAnyOrder(OnlineRlTrainer.miniBatchOrder(16, 42, 0, 0));
        assertThat(IntStream.of(a).sorted().toArray())
                .isEqualTo(IntStream.range(0, 16).toArray());
        assertThat(a).isNotEqualTo(b).isNotEqualTo(c);
    }

    static void close(SoftAssertions soft, String what, Double got, double want) {
        if (got == null) {
            soft.fail(what + " (missing)");
            return;
        }
        soft.assertThat(Math.abs(got - want))
                .as("%s: align4j %.8g, reference %.8g", what, got, want)
                .isLessThanOrEqualTo(Math.max(ABSOLUTE, RELATIVE * Math.abs(want)));
    }
}
