package org.align4j.trainer.rl;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.align4j.evaluation.rewards.RewardFunction;
import org.align4j.losses.LossType;
import org.align4j.model.Fixtures;
import org.align4j.trainer.RewardTrlParityTest.Recorder;
import org.align4j.trainer.RunFolder;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * GRPO and RLOO against TRL 1.13 on replayed samples: every metric TRL logs at every one of 10 steps, and
 * step 1's gradient norm of every parameter, within 1e-4 relative (1e-6 absolute). The fixtures, the
 * completion tables and the reward functions' definitions come from {@code
 * src/test/python/trl_rl_fixtures.py}; the two functions are written again below in Java.
 */
class RlTrlParityTest {
    private static final double RELATIVE = 1e-4;
    private static final double ABSOLUTE = 1e-6;
    /** Logged by TRL but not a property of the training: wall time, epoch bookkeeping. */
    private static final Set<String> SKIPPED = Set.of("step", "step_time", "epoch");

    @TempDir
    Path tmp;

    static JsonNode fixture(String name) throws IOException {
        try (InputStream in = RlTrlParityTest.class.getResourceAsStream("/trl-rl/" + name + ".json")) {
            return new ObjectMapper().readTree(in);
        }
    }

    /**
     * The fixture's prompts as a prompt-only JSONL file in {@code tmp}.
     *
     * @param doc a fixture
     * @param tmp a temporary folder
     * @return the file
     */
    static Path writePrompts(JsonNode doc, Path tmp) throws IOException {
        Path data = tmp.resolve("prompts.jsonl");
        StringBuilder lines = new StringBuilder();
        for (JsonNode p : doc.get("prompts")) {
            lines.append(new ObjectMapper().createObjectNode().put("prompt", p.asText()))
                    .append('\n');
        }
        Files.writeString(data, lines);
        return data;
    }

    /**
     * The shared options a TRL fixture's {@code TrainingArguments} pin (model, prompts, batch, schedule,
     * optimizer, seed, dropout), prompts in file order.
     *
     * @param doc a fixture written by a TRL script
     * @param tmp a temporary folder (prompts file and run folder)
     * @return key → value, to add the method's keys to
     */
    static Map<String, Object> trainingArguments(JsonNode doc, Path tmp) throws IOException {
        JsonNode s = doc.get("settings");
        Map<String, Object> o = new LinkedHashMap<>();
        o.put("model", Fixtures.model(doc.get("model").asText()).toString());
        o.put("data", writePrompts(doc, tmp).toString());
        o.put("output", tmp.resolve("run").toString());
        o.put("batch_size", s.get("per_device_train_batch_size").asInt());
        o.put("grad_accum", s.get("gradient_accumulation_steps").asInt());
        o.put("max_steps", s.get("max_steps").asInt());
        o.put("learning_rate", s.get("learning_rate").asDouble());
        o.put("schedule", "linear");
        o.put("warmup_steps", s.get("warmup_steps").asInt());
        o.put("weight_decay", s.get("weight_decay").asDouble());
        o.put("max_grad_norm", s.get("max_grad_norm").asDouble());
        o.put("seed", s.get("seed").asLong());
        o.put("disable_dropout", s.get("disable_dropout").asBoolean());
        o.put("shuffle_dataset", false);
        return o;
    }

    static Path resource(String name) {
        return Path.of(RlTrlParityTest.class.getResource("/trl-rl/" + name).getPath());
    }

    /** The fixture's {@code reward_len}: digits × 0.5 − 0.1 × tokens, + 0.3 for an odd number of characters. */
    public static final class RewardLen implements RewardFunction {
        @Override
        public String name() {
            return "reward_len";
        }

        @Override
        public List<Double> score(List<Sample> samples) {
            List<Double> out = new ArrayList<>();
            for (Sample s : samples) {
                String c = s.completion();
                long digits = c.codePoints().filter(Character::isDigit).count();
                int chars = c.codePointCount(0, c.length());
                out.add(digits * 0.5 - 0.1 * s.completionIds().length + (chars % 2 == 1 ? 0.3 : 0.0));
            }
            return out;
        }
    }

    /** The fixture's {@code reward_sometimes}: abstains on odd token counts, else distinct ids ÷ 3. */
    public static final class RewardSometimes implements RewardFunction {
        @Override
        public String name() {
            return "reward_sometimes";
        }

        @Override
        public List<Double> score(List<Sample> samples) {
            List<Double> out = new ArrayList<>();
            for (Sample s : samples) {
                int[] ids = s.completionIds();
                out.add(
                        ids.length % 2 == 1
                                ? null
                                : (double) Arrays.stream(ids).distinct().count() / 3);
            }
            return out;
        }
    }

    @ParameterizedTest
    @ValueSource(
            strings = {
                "gpt2-grpo-dapo",
                "gpt2-grpo-grpo-beta",
                "gpt2-grpo-bnpo-iter2",
                "gpt2-grpo-drgrpo-batch",
                "gpt2-grpo-none-mask",
                "gpt2-grpo-rm",
                "gpt2-rloo",
                "gpt2-rloo-iter2-norm",
                "gpt2-rloo-rm",
                "llama-grpo-dapo-beta",
                "llama-rloo",
                "qwen2-grpo-grpo-iter2",
                "qwen2-rloo"
            })
    void everyMetricOfTenStepsAndStepOnesGradientsEqualTrls(String name) throws IOException {
        JsonNode doc = fixture(name);
        JsonNode s = doc.get("settings");
        Map<String, Object> o = trainingArguments(doc, tmp);
        o.put("num_generations", s.get("num_generations").asInt());
        o.put("max_completion_length", s.get("max_completion_length").asInt());
        o.put("beta", s.get("beta").asDouble());
        o.put("temperature", s.get("temperature").asDouble());
        for (String k : List.of(
                "loss_type",
                "scale_rewards",
                "epsilon_high",
                "num_iterations",
                "mask_truncated_completions",
                "normalize_advantages")) {
            if (s.has(k)) {
                o.put(
                        k,
                        s.get(k).isTextual()
                                ? s.get(k).asText()
                                : s.get(k).isBoolean()
                                        ? s.get(k).asBoolean()
                                        : s.get(k).numberValue());
            }
        }
        List<String> funcs = new ArrayList<>();
        for (JsonNode f : doc.get("reward_funcs")) {
            funcs.add(
                    switch (f.asText()) {
                        case "reward_len" -> "class:" + RewardLen.class.getName();
                        case "reward_sometimes" -> "class:" + RewardSometimes.class.getName();
                        default -> resource(f.asText()).toString();
                    });
        }
        o.put("reward_funcs", funcs);
        if (s.has("reward_weights")) {
            List<Double> w = new ArrayList<>();
            s.get("reward_weights").forEach(x -> w.add(x.asDouble()));
            o.put("reward_weights", w);
        }
        o.put("reward_model_eos", false); // TRL's GRPO reads prompt + completion without eos
        LossType method = "grpo".equals(doc.get("trainer").asText()) ? LossType.GRPO : LossType.RLOO;
        RlConfig.Run run = RlConfig.resolve(method, null, o, k -> "key '" + k + "'");
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
        Recorder rec = new Recorder();
        try (OnlineRlTrainer t = OnlineRlTrainer.create(run, RunFolder.Mode.fresh())) {
            t.setSampler((rows, cfg) -> {
                List<int[]> out = new ArrayList<>();
                for (OnlineRlTrainer.Sampler.Row r : rows) {
                    out.add(table.get(r.prompt().example().prompt()).get(r.sample()));
                }
                return out;
            });
            t.addListener(rec);
            t.train();
        }
        JsonNode steps = doc.get("steps");
        assertThat(rec.steps).hasSize(steps.size());
        for (int i = 0; i < steps.size(); i++) {
            Map<String, Double> got = rec.steps.get(i);
            int step = i + 1;
            steps.get(i).fields().forEachRemaining(e -> {
                if (!SKIPPED.contains(e.getKey())) {
                    close(
                            name + " step " + step + " " + e.getKey(),
                            got.get(e.getKey()),
                            e.getValue().asDouble());
                }
            });
        }
        double gradNorm = steps.get(0).get("grad_norm").asDouble();
        double clip = Math.min(1.0, s.get("max_grad_norm").asDouble() / (gradNorm + 1e-6));
        JsonNode norms = doc.get("step1_grad_norm_by_param");
        List<String> names = new ArrayList<>();
        norms.fieldNames().forEachRemaining(names::add);
        assertThat(rec.firstNorms.keySet()).as("parameters with a gradient").containsExactlyInAnyOrderElementsOf(names);
        // TRL's callback sees the norms after clipping; align4j reports them before
        norms.fields()
                .forEachRemaining(e -> close(
                        name + " step 1 gradient norm of " + e.getKey(),
                        rec.firstNorms.get(e.getKey()),
                        e.getValue().asDouble() / clip));
    }

    private static void close(String what, Double got, double want) {
        assertThat(got).as(what + " (missing)").isNotNull();
        assertThat(Math.abs(got - want))
                .as("%s: align4j %.8g, TRL %.8g", what, got, want)
                .isLessThanOrEqualTo(Math.max(ABSOLUTE, RELATIVE * Math.abs(want)));
    }
}
