package org.align4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.align4j.evaluation.rewards.RewardFunction;
import org.align4j.model.Fixtures;
import org.align4j.model.io.AtomicDirectory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** align4j grpo and rloo through the command line: a run, and bad input as one line with exit 2. */
class RlCliTest {
    @TempDir
    Path tmp;

    /** A reward that always fails. */
    public static final class Throwing implements RewardFunction {
        @Override
        public String name() {
            return "throwing";
        }

        @Override
        public List<Double> score(List<Sample> samples) {
            throw new IllegalStateException("broken");
        }
    }

    Path prompts() throws Exception {
        Path data = tmp.resolve("prompts.jsonl");
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < 8; i++) {
            b.append("{\"prompt\": \"")
                    .append(i)
                    .append("+1=\", \"answer\": \"")
                    .append(i + 1)
                    .append("\"}\n");
        }
        Files.writeString(data, b);
        return data;
    }

    /** The command's arguments; {@code more} replaces a flag's default value or adds a flag (a switch: value null). */
    List<String> args(String command, Path data, String... more) {
        Map<String, String> flags = new LinkedHashMap<>();
        flags.put("--model", Fixtures.model("gpt2-tiny").toString());
        flags.put("--data", data.toString());
        flags.put("--output", tmp.resolve("run-" + command).toString());
        flags.put("--batch-size", "4");
        flags.put("--num-generations", "2");
        flags.put("--max-completion-length", "3");
        flags.put("--max-steps", "2");
        flags.put("--reward-funcs", "regex:.*[0-9].*");
        for (int i = 0; i < more.length; i++) {
            boolean valued = i + 1 < more.length && !more[i + 1].startsWith("--");
            flags.put(more[i], valued ? more[++i] : null);
        }
        List<String> a = new ArrayList<>(List.of(command));
        flags.forEach((k, v) -> {
            a.add(k);
            if (v != null) {
                a.add(v);
            }
        });
        return a;
    }

    @Test
    void grpoAndRlooTrainAndWriteTheirRunFolders() throws Exception {
        Path data = prompts();
        for (String command : List.of("grpo", "rloo")) {
            CliTest.Result r = CliTest.run(args(command, data).toArray(String[]::new));
            assertThat(r.code()).as(r.err()).isZero();
            Path run = tmp.resolve("run-" + command);
            assertThat(run.resolve("final/model.safetensors")).isRegularFile();
            assertThat(Files.readString(run.resolve("metrics.jsonl"))).contains("\"rewards/regex/mean\"");
            assertThat(Files.readString(run.resolve("config.yaml")))
                    .contains("num_generations: 2")
                    .contains("reward_funcs:");
            assertThat(r.err()).contains("objective: " + command);
        }
    }

    @Test
    void ppoTrainsPolicyAndValueModelAndCheckpointsBoth() throws Exception {
        CliTest.Result r = CliTest.run(args(
                        "ppo",
                        prompts(),
                        "--num-generations",
                        "1",
                        "--num-mini-batches",
                        "2",
                        "--missing-eos-penalty",
                        "1")
                .toArray(String[]::new));
        assertThat(r.code()).as(r.err()).isZero();
        Path run = tmp.resolve("run-ppo");
        assertThat(run.resolve("final/model.safetensors")).isRegularFile();
        assertThat(run.resolve("checkpoint-2/value_model/model.safetensors")).isRegularFile();
        assertThat(run.resolve("checkpoint-2/value_model/config.json"))
                .content()
                .contains("ForSequenceClassification");
        assertThat(Files.readString(run.resolve("metrics.jsonl")))
                .contains("\"objective/rlhf_reward\"")
                .contains("\"objective/kl_coef\"")
                .contains("\"policy/approxkl_avg\"")
                .contains("\"loss/value_avg\"");
        assertThat(Files.readString(run.resolve("config.yaml")))
                .contains("kl_coef: 0.05")
                .contains("num_mini_batches: 2")
                .contains("missing_eos_penalty: 1.0")
                .doesNotContain("\nepsilon:");
        // num_tokens: one running count of what the rollouts sampled, on every step
        double last = 0;
        for (String line : Files.readAllLines(run.resolve("metrics.jsonl"))) {
            JsonNode n = new ObjectMapper().readTree(line).get("num_tokens");
            if (n != null) {
                assertThat(n.asDouble()).as(line).isGreaterThanOrEqualTo(last);
                last = n.asDouble();
            }
        }
        // a checkpoint that lost its value model cannot continue exactly: refused by name
        AtomicDirectory.deleteRecursively(run.resolve("checkpoint-2/value_model"));
        CliTest.Result resumed = CliTest.run(args(
                        "ppo",
                        prompts(),
                        "--num-generations",
                        "1",
                        "--num-mini-batches",
                        "2",
                        "--missing-eos-penalty",
                        "1",
                        "--resume")
                .toArray(String[]::new));
        assertThat(resumed.code()).as(resumed.err()).isEqualTo(2);
        assertThat(resumed.err()).contains("checkpoint-2/value_model: missing");
        // no reward model among the rewards: the value model is the policy's folder with a new head
        assertThat(r.err()).contains("objective: ppo: value model and GAE");
        assertThat(Files.readString(run.resolve("train.log")))
                .contains("Value model from " + Fixtures.model("gpt2-tiny") + " (key 'model')");
    }

    @Test
    void onlineDpoTrainsOnPairsItSamples() throws Exception {
        CliTest.Result r = CliTest.run(args("online-dpo", prompts(), "--batch-size", "2", "--loss-type", "ipo")
                .toArray(String[]::new));
        assertThat(r.code()).as(r.err()).isZero();
        Path run = tmp.resolve("run-online-dpo");
        assertThat(run.resolve("final/model.safetensors")).isRegularFile();
        assertThat(Files.readString(run.resolve("metrics.jsonl")))
                .contains("\"rewards/margins\"")
                .contains("\"objective/scores_margin\"")
                .contains("\"logps/chosen\"");
        assertThat(Files.readString(run.resolve("config.yaml")))
                .contains("loss_type: ipo")
                .contains("beta: 0.1")
                .doesNotContain("mask_truncated_completions");
        assertThat(r.err()).contains("objective: online-dpo: 2 samples per prompt, the higher score chosen, IPO loss");
    }

    static String[] withoutMaxCompletionLength(List<String> a) {
        List<String> out = new ArrayList<>(a);
        int i = out.indexOf("--max-completion-length");
        out.remove(i + 1);
        out.remove(i);
        return out.toArray(String[]::new);
    }

    @Test
    void trlsNamesOfMaxCompletionLengthAreFlagsAndAFlagWinsOverTheYaml() throws Exception {
        Path data = prompts();
        CliTest.Result ppo = CliTest.run(withoutMaxCompletionLength(
                args("ppo", data, "--num-generations", "1", "--response-length", "3", "--dry-run")));
        assertThat(ppo.code()).as(ppo.err()).isZero();
        assertThat(ppo.out()).contains("max_completion_length: 3");
        CliTest.Result odpo =
                CliTest.run(withoutMaxCompletionLength(args("online-dpo", data, "--max_new_tokens", "2", "--dry-run")));
        assertThat(odpo.code()).as(odpo.err()).isZero();
        assertThat(odpo.out()).contains("max_completion_length: 2");
        Path yaml = tmp.resolve("ppo.yaml");
        Files.writeString(yaml, "response_length: 6\nkl_coef: 0.1\n");
        CliTest.Result both =
                CliTest.run(args("ppo", data, "--num-generations", "1", "--config", yaml.toString(), "--dry-run")
                        .toArray(String[]::new));
        assertThat(both.code()).as(both.err()).isZero();
        assertThat(both.out()).contains("max_completion_length: 3").contains("kl_coef: 0.1");
        // TRL's OnlineDPOConfig: beta as a one-element list, loss_type by align4j's name of sigmoid
        Path odpoYaml = tmp.resolve("odpo.yaml");
        Files.writeString(odpoYaml, "beta: [0.3]\nloss_type: dpo\n");
        CliTest.Result list = CliTest.run(args("online-dpo", data, "--config", odpoYaml.toString(), "--dry-run")
                .toArray(String[]::new));
        assertThat(list.code()).as(list.err()).isZero();
        assertThat(list.out()).contains("beta: 0.3").contains("loss_type: sigmoid");
        // TRL PPOConfig keys with no counterpart: refused with where they went
        Path trl = tmp.resolve("trl.yaml");
        Files.writeString(trl, "total_episodes: 10000\n");
        CliTest.Result episodes = CliTest.run(args("ppo", data, "--num-generations", "1", "--config", trl.toString())
                .toArray(String[]::new));
        assertThat(episodes.code()).isEqualTo(2);
        assertThat(episodes.err().strip())
                .startsWith("error: " + trl + ":1: key 'total_episodes': the run's length is max_steps");
        CliTest.Result help = CliTest.run("ppo", "--help");
        assertThat(help.out()).contains("--value-model").contains("--kl-target").contains("--missing-eos-penalty");
        assertThat(CliTest.run("online-dpo", "--help").out())
                .contains("--missing-eos-penalty")
                .doesNotContain("--kl-coef");
    }

    @Test
    void dryRunChecksTheFieldsTheRewardsReadAndOnlineDpoHintsNoEpsilon() throws Exception {
        Path data = tmp.resolve("no-answer.jsonl");
        Files.writeString(data, "{\"prompt\": \"1+1=\", \"answer\": \"2\"}\n{\"prompt\": \"2+2=\"}\n");
        CliTest.Result dry =
                CliTest.run(args("ppo", data, "--num-generations", "1", "--reward-funcs", "exact", "--dry-run")
                        .toArray(String[]::new));
        assertThat(dry.code()).as(dry.err()).isEqualTo(2);
        assertThat(dry.err().strip())
                .endsWith("no-answer.jsonl:2: field 'answer': missing (reward 'exact_answer' reads it)");
        CliTest.Result clip =
                CliTest.run(args("online-dpo", prompts(), "--cliprange", "0.1").toArray(String[]::new));
        assertThat(clip.code()).isEqualTo(2);
        assertThat(clip.err()).contains("--cliprange: has no effect here").doesNotContain("epsilon");
        CliTest.Result grpo =
                CliTest.run(args("grpo", prompts(), "--cliprange", "0.1").toArray(String[]::new));
        assertThat(grpo.err()).contains("its clip is epsilon");
    }

    @Test
    void anOverflowingGradientNormIsNamedAsSuch() throws Exception {
        // every gradient finite, their norm not: the message says so instead of "non-finite gradients in 0"
        CliTest.Result r = CliTest.run(args("ppo", prompts(), "--num-generations", "1", "--vf-coef", "1e30")
                .toArray(String[]::new));
        assertThat(r.code()).as(r.err()).isEqualTo(1);
        assertThat(r.err()).contains("gradient norm is Infinity").contains("their norm overflowed");
    }

    @Test
    void dryRunShowsBothConfigsAndThePromptsAsTheSamplerGetsThem() throws Exception {
        CliTest.Result r = CliTest.run(args("grpo", prompts(), "--dry-run").toArray(String[]::new));
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out())
                .contains("loss: grpo")
                .contains("num_generations: 2")
                .contains("beta: 0.0")
                .contains("prompt_ids: [")
                .contains("fields: {answer=1}");
        assertThat(tmp.resolve("run-grpo")).doesNotExist();
    }

    /** gpt2-tiny's folder with a config that says it is a sequence classifier of two labels. */
    Path twoLabelClassifier() throws Exception {
        Path dir = tmp.resolve("two-labels");
        Files.createDirectories(dir);
        try (var files = Files.list(Fixtures.model("gpt2-tiny"))) {
            for (Path f : files.toList()) {
                Files.copy(f, dir.resolve(f.getFileName().toString()));
            }
        }
        String config = Files.readString(dir.resolve("config.json"))
                .replace("\"GPT2LMHeadModel\"", "\"GPT2ForSequenceClassification\"")
                .replaceFirst("\\{", "{\"num_labels\": 2,");
        Files.writeString(dir.resolve("config.json"), config);
        return dir;
    }

    @Test
    void badInputIsOneLineWithExitTwo() throws Exception {
        Path data = prompts();
        Path twoLabels = twoLabelClassifier();
        List<String[]> cases = List.of(
                args("grpo", data, "--num-generations", "1").toArray(String[]::new),
                args("grpo", Fixtures.root().resolve("prefs.jsonl"), "--overwrite")
                        .toArray(String[]::new),
                args("grpo", data, "--reward-funcs", "no-such-reward").toArray(String[]::new),
                args("rloo", data, "--loss-type", "bnpo").toArray(String[]::new),
                args("grpo", data, "--reward-funcs", "class:" + Throwing.class.getName(), "--overwrite")
                        .toArray(String[]::new),
                args("grpo", data, "--normalize-advantages").toArray(String[]::new),
                args("grpo", data, "--batch-size", "6", "--num-generations", "4", "--dry-run")
                        .toArray(String[]::new),
                args("grpo", data, "--max-completion-length", "300", "--dry-run")
                        .toArray(String[]::new),
                args("grpo", data, "--kl-coef", "0.1").toArray(String[]::new),
                args("ppo", data, "--beta", "0.1").toArray(String[]::new),
                args("ppo", data, "--num-iterations", "2").toArray(String[]::new),
                args("ppo", data, "--value-model", Fixtures.model("llama-tiny").toString(), "--overwrite")
                        .toArray(String[]::new),
                args("ppo", data, "--kl-estimator", "k4").toArray(String[]::new),
                args("ppo", data, "--gamma", "1.5").toArray(String[]::new),
                args("ppo", data, "--reward-funcs", twoLabels.toString(), "--overwrite")
                        .toArray(String[]::new),
                args("ppo", data, "--value-model", twoLabels.toString(), "--overwrite")
                        .toArray(String[]::new),
                args("online-dpo", data, "--num-generations", "4").toArray(String[]::new),
                args("online-dpo", data, "--num-generations", "2", "--loss-type", "bnpo")
                        .toArray(String[]::new),
                args("online-dpo", data, "--num-generations", "2", "--epsilon", "0.3")
                        .toArray(String[]::new),
                args("grpo", data, "--missing-eos-penalty", "1").toArray(String[]::new),
                args("ppo", data, "--num-generations", "1", "--missing-eos-penalty", "-1")
                        .toArray(String[]::new),
                args("ppo", data, "--value-model", Fixtures.model("llama-tiny").toString(), "--dry-run")
                        .toArray(String[]::new),
                args("grpo", data, "--response-length", "3").toArray(String[]::new));
        List<String> want = List.of(
                "error: --num-generations: at least 2",
                "prefs.jsonl:1: field 'chosen'",
                "error: --reward-funcs: 'no-such-reward': not a built-in reward",
                "--loss-type: has no effect here",
                "reward 'throwing' failed on the batch starting at",
                "--normalize-advantages: has no effect here: RLOO's option",
                "multiple of num_generations",
                "prompts.jsonl:1: the prompt's 4 tokens + max_completion_length 300 exceed the model's 256 positions",
                "--kl-coef: has no effect here: PPO's option (the ppo command)",
                "--beta: has no effect here: PPO's KL coefficient is kl_coef",
                "--num-iterations: has no effect here: PPO's passes over a rollout are num_ppo_epochs",
                "--value-model: the value model /",
                "--kl-estimator: one of k1, k2, k3, got 'k4'",
                "--gamma: must lie in [0, 1], got 1.5",
                "key 'num_labels': 2 labels; align4j reads sequence classifiers with one label",
                "--value-model: the value model: ",
                "--num-generations: Online DPO samples 2 completions per prompt, got 4",
                "--loss-type: one of sigmoid (or dpo), ipo, got 'bnpo'",
                "--epsilon: has no effect here: not an Online DPO option",
                "--missing-eos-penalty: has no effect here: PPO's and Online DPO's option",
                "--missing-eos-penalty: must be >= 0",
                "--value-model: the value model /",
                "--response_length: has no effect here: PPO's name; here it is max_completion_length");
        for (int i = 0; i < cases.size(); i++) {
            CliTest.Result r = CliTest.run(cases.get(i));
            assertThat(r.code()).as("%s: %s", want.get(i), r.err()).isEqualTo(2);
            // the run's header may come first (a reward fails once training started); the error is one line
            List<String> errors =
                    r.err().lines().filter(l -> l.startsWith("error: ")).toList();
            assertThat(errors).as(r.err()).hasSize(1);
            assertThat(errors.get(0)).contains(want.get(i));
            assertThat(r.err()).doesNotContain("at org.");
        }
        CliTest.Result prompts = CliTest.run(
                "train",
                "--model",
                Fixtures.model("gpt2-tiny").toString(),
                "--data",
                data.toString(),
                "--output",
                tmp.resolve("t").toString());
        assertThat(prompts.code()).isEqualTo(2);
        assertThat(prompts.err().strip()).contains("prompts.jsonl:1").contains("a prompt-only record");
    }
}
