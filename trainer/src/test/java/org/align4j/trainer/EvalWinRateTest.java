package org.align4j.trainer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

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
import org.align4j.evaluation.WinRate;
import org.align4j.model.CausalLm;
import org.align4j.model.Fixtures;
import org.align4j.model.tokenizer.TextTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code eval_samples}: at each evaluation the policy's greedy answers to held-out prompts are judged
 * against the reference's, and the logged {@code eval_win_rate} is the judge's verdict on exactly the
 * answers written to {@code samples.jsonl}.
 */
class EvalWinRateTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    private Map<String, Object> run(String name, String loss) {
        Map<String, Object> m = new HashMap<>();
        m.put("model", Fixtures.model("gpt2-tiny").toString());
        m.put("data", Fixtures.root().resolve("prefs.jsonl").toString());
        m.put("output", tmp.resolve(name).toString());
        m.put("loss", loss);
        m.put("batch_size", 2);
        m.put("max_steps", 2);
        m.put("learning_rate", 1e-2);
        m.put("eval_fraction", 0.5);
        m.put("eval_every", 1);
        m.put("eval_samples", 3);
        m.put("eval_max_new_tokens", 4);
        return m;
    }

    private static List<JsonNode> lines(Path file) throws IOException {
        List<JsonNode> out = new ArrayList<>();
        for (String l : Files.readAllLines(file)) {
            out.add(JSON.readTree(l));
        }
        return out;
    }

    @Test
    void aRewardModelJudgesTheSamplesAtEveryEvaluation() throws IOException {
        Path rmDir = Fixtures.reward("transformers-written/gpt2-tiny");
        Map<String, Object> m = run("dpo", "dpo");
        m.put("eval_judge", "reward-model:" + rmDir);
        try (PreferenceTrainer t = PreferenceTrainer.create(TrainConfig.resolve(null, m), false)) {
            t.train();
        }
        List<JsonNode> evals = lines(tmp.resolve("dpo/metrics.jsonl")).stream()
                .filter(o -> o.has("eval_win_rate"))
                .toList();
        assertThat(evals).hasSize(2);
        List<JsonNode> samples = lines(tmp.resolve("dpo/samples.jsonl"));
        assertThat(samples).hasSize(3);
        List<WinRate.Judge.Verdict> verdicts = new ArrayList<>();
        try (CausalLm rm = CausalLm.load(rmDir, Device.cpu());
                TextTokenizer tk = TextTokenizer.load(rmDir)) {
            WinRate.Judge judge = WinRate.Judge.byRewardModel(rm, tk);
            for (JsonNode s : samples) {
                assertThat(s.get("prompt").asText()).isNotEmpty();
                verdicts.add(judge.compare(
                        s.get("prompt").asText(),
                        s.get("policy").asText(),
                        s.get("reference").asText()));
            }
        }
        WinRate w = WinRate.of(verdicts);
        JsonNode last = evals.get(1);
        assertThat(last.get("eval_win_rate").asDouble()).isCloseTo(w.rate(), within(1e-12));
        assertThat(last.get("eval_win_rate_low").asDouble()).isCloseTo(w.lower(), within(1e-12));
        assertThat(last.get("eval_win_rate_high").asDouble()).isCloseTo(w.upper(), within(1e-12));
    }

    @Test
    void sftRunsAreJudgedAgainstTheChosenAnswerAndBadJudgesAreNamed() throws IOException {
        Map<String, Object> m = run("sft", "sft");
        m.put("eval_judge", "contains");
        try (SftTrainer t = SftTrainer.create(TrainConfig.resolve(null, m), false)) {
            t.train();
        }
        List<JsonNode> samples = lines(tmp.resolve("sft/samples.jsonl"));
        List<WinRate.Judge.Verdict> verdicts = new ArrayList<>();
        for (JsonNode s : samples) {
            String want = s.get("chosen").asText();
            verdicts.add(WinRate.Judge.byScore((p, a) -> a.contains(want) ? 1 : 0)
                    .compare(null, s.get("policy").asText(), s.get("reference").asText()));
        }
        JsonNode last = lines(tmp.resolve("sft/metrics.jsonl")).stream()
                .filter(o -> o.has("eval_win_rate"))
                .reduce((a, b) -> b)
                .orElseThrow();
        assertThat(last.get("eval_win_rate").asDouble())
                .isCloseTo(WinRate.of(verdicts).rate(), within(1e-12));

        Map<String, Object> bad = run("bad", "dpo");
        bad.put("eval_judge", "gpt4");
        assertThatThrownBy(() -> TrainConfig.resolve(null, bad))
                .hasMessageContaining("key 'eval_judge'")
                .hasMessageContaining("reward-model:DIR");
        Map<String, Object> causal = run("causal", "dpo");
        causal.put("eval_judge", "reward-model:" + Fixtures.model("gpt2-tiny"));
        assertThatThrownBy(() -> {
                    try (PreferenceTrainer t = PreferenceTrainer.create(TrainConfig.resolve(null, causal), false)) {
                        t.train();
                    }
                })
                .hasMessageContaining("key 'eval_judge'")
                .hasMessageContaining("not a reward model");
        Map<String, Object> alone = run("alone", "dpo");
        alone.remove("eval_samples");
        alone.remove("eval_max_new_tokens");
        alone.put("eval_judge", "exact");
        // 'exact' is the default: given at its default it counts as not given
        TrainConfig.resolve(null, alone);
        alone.put("eval_judge", "contains");
        assertThatThrownBy(() -> TrainConfig.resolve(null, alone))
                .hasMessageContaining("key 'eval_judge'")
                .hasMessageContaining("no eval_samples");
    }
}
