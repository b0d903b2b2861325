package org.align4j.trainer.rl;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.align4j.data.DataException;
import org.align4j.evaluation.rewards.RewardFunction;
import org.align4j.evaluation.rewards.Rewards;
import org.align4j.losses.LossType;
import org.align4j.model.Fixtures;
import org.align4j.trainer.PreferenceTrainer;
import org.align4j.trainer.RunFolder;
import org.align4j.trainer.TrainConfig;
import org.align4j.trainer.TrainingListener;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Exact resume of an online run, and its bad inputs, each one line naming what is at fault. */
class OnlineRlTrainerTest {
    @TempDir
    Path tmp;

    private Path prompts() throws IOException {
        Path data = tmp.resolve("prompts.jsonl");
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < 12; i++) {
            b.append("{\"prompt\": \"")
                    .append(i)
                    .append('+')
                    .append(i % 5)
                    .append("=\", \"answer\": \"")
                    .append(i + i % 5)
                    .append("\"}\n");
        }
        Files.writeString(data, b);
        return data;
    }

    private Map<String, Object> base(Path data, Path out) {
        Map<String, Object> o = new LinkedHashMap<>();
        o.put("model", Fixtures.model("gpt2-tiny").toString());
        o.put("data", data.toString());
        o.put("output", out.toString());
        o.put("batch_size", 4);
        o.put("num_generations", 4);
        o.put("max_completion_length", 5);
        o.put("max_steps", 6);
        o.put("learning_rate", 1e-3);
        o.put("beta", 0.1);
        o.put("num_iterations", 2);
        o.put("save_every", 1);
        o.put("reward_funcs", List.of("class:" + RlTrlParityTest.RewardLen.class.getName()));
        return o;
    }

    /** Stops the run after a given step, as SIGINT does (a checkpoint is written at every step here). */
    static final class Steps implements TrainingListener {
        final List<Map<String, Double>> steps = new ArrayList<>();
        final long stopAfter;
        Stoppable stopper;

        Steps(long stopAfter) {
            this.stopAfter = stopAfter;
        }

        @Override
        public void onStep(long step, Map<String, Double> metrics) {
            steps.add(metrics);
            if (step == stopAfter && stopper != null) {
                stopper.requestStop();
            }
        }
    }

    /** What the listener needs of a trainer. */
    interface Stoppable {
        void requestStop();
    }

    @Test
    void aRunStoppedMidGenerationResumesOnTheSameSamplesAndLosses() throws Exception {
        Path data = prompts();
        Steps whole = new Steps(-1);
        try (OnlineRlTrainer t = OnlineRlTrainer.create(
                RlConfig.resolve(LossType.GRPO, null, base(data, tmp.resolve("a")), k -> k), RunFolder.Mode.fresh())) {
            t.addListener(whole);
            t.train();
        }
        // stop after step 3: generation 1 (steps 3 and 4) is half used, so the checkpoint must carry it
        Steps first = new Steps(3);
        try (OnlineRlTrainer t = OnlineRlTrainer.create(
                RlConfig.resolve(LossType.GRPO, null, base(data, tmp.resolve("b")), k -> k), RunFolder.Mode.fresh())) {
            first.stopper = t::requestStop;
            t.addListener(first);
            assertThat(t.train().interrupted()).isTrue();
        }
        assertThat(tmp.resolve("b/checkpoint-3/" + Rollout.FILE)).isRegularFile();
        Steps rest = new Steps(-1);
        try (OnlineRlTrainer t = OnlineRlTrainer.create(
                RlConfig.resolve(LossType.GRPO, null, base(data, tmp.resolve("b")), k -> k),
                RunFolder.Mode.resumeLatest())) {
            t.addListener(rest);
            t.train();
        }
        List<Map<String, Double>> resumed = new ArrayList<>(first.steps);
        resumed.addAll(rest.steps);
        assertThat(resumed).hasSize(6);
        for (int i = 0; i < 6; i++) {
            for (String k : List.of("loss", "grad_norm", "kl", "entropy")) {
                assertThat(resumed.get(i).get(k))
                        .as("step %d %s", i + 1, k)
                        .isCloseTo(whole.steps.get(i).get(k), Offset.offset(1e-6));
            }
            if (i % 2 == 0) { // a generating step: the same samples, so the same rewards and lengths
                for (String k : List.of("reward", "completions/mean_length", "num_tokens")) {
                    assertThat(resumed.get(i).get(k))
                            .as("step %d %s", i + 1, k)
                            .isEqualTo(whole.steps.get(i).get(k));
                }
            }
        }
    }

    // spotless:off (the README shows it as written here)
    // README RL example start
    public static final class ShortAnswers implements RewardFunction {
        public String name() { return "short"; }
        public List<Double> score(List<Sample> samples) {
            return samples.stream().map(s -> s.completionIds().length <= 4 ? 1.0 : 0.0).toList();
        }
    }
    // README RL example end
    // spotless:on

    @Test
    void theReadmeExampleRunsAndIsTheOneInTheReadme() throws Exception {
        Path base = Fixtures.model("gpt2-tiny");
        Path prompts = prompts();
        Path runs = tmp.resolve("runs");
        // spotless:off (the README shows it as written here)
        // README RL training start
        try (OnlineRlTrainer trainer = OnlineRlTrainer.builder(LossType.GRPO)
                .model(base).data(prompts).output(runs.resolve("grpo")).batchSize(8).maxSteps(2)
                .set("num_generations", 4).set("max_completion_length", 6)
                .set("reward_funcs", List.of("class:" + ShortAnswers.class.getName(), "exact"))
                .build()) {
            System.out.println(trainer.train().lastMetrics().get("reward"));
        }
        // README RL training end
        // spotless:on
        assertThat(runs.resolve("grpo/final/model.safetensors")).exists();
        Path readme = Path.of(System.getProperty("maven.multiModuleProjectDirectory", ".."))
                .resolve("README.md");
        if (!Files.exists(readme)) {
            readme = Path.of("..", "README.md");
        }
        String text = Files.readString(readme);
        String source = Files.readString(Path.of("src/test/java/org/align4j/trainer/rl/OnlineRlTrainerTest.java"));
        for (String marker : List.of("README RL example", "README RL training")) {
            String body = source.substring(
                    source.indexOf("// " + marker + " start") + ("// " + marker + " start").length(),
                    source.indexOf("// " + marker + " end"));
            for (String line : body.strip().lines().map(String::strip).toList()) {
                assertThat(text).as("README contains: %s", line).contains(line);
            }
        }
    }

    @Test
    void ppoAndOnlineDpoBuildThroughTheSameBuilder() throws Exception {
        Path data = prompts();
        try (OnlineRlTrainer t = OnlineRlTrainer.builder(LossType.PPO)
                .model(Fixtures.model("gpt2-tiny"))
                .data(data)
                .output(tmp.resolve("ppo"))
                .batchSize(2)
                .maxSteps(2)
                .set("num_mini_batches", 2)
                .set("kl_coef", 0.2)
                .set("max_completion_length", 3)
                .set("reward_funcs", List.of("regex:.*[0-9].*"))
                .build()) {
            assertThat(t.rlConfig().ppo().klCoef()).isEqualTo(0.2);
            assertThat(t.train().lastMetrics()).containsKeys("loss/value_avg", "policy/approxkl_avg");
        }
        try (OnlineRlTrainer t = OnlineRlTrainer.builder(LossType.ONLINE_DPO)
                .model(Fixtures.model("gpt2-tiny"))
                .data(data)
                .output(tmp.resolve("odpo"))
                .batchSize(2)
                .maxSteps(1)
                .set("loss_type", "ipo")
                .set("max_completion_length", 3)
                .set("reward_funcs", List.of("regex:.*[0-9].*"))
                .build()) {
            assertThat(t.rlConfig().pairLoss()).isEqualTo(LossType.IPO);
            assertThat(t.train().lastMetrics()).containsKeys("rewards/margins", "objective/scores_margin");
        }
    }

    @Test
    void theBuilderTakesSharedAndMethodKeys() throws Exception {
        Path data = prompts();
        try (OnlineRlTrainer t = OnlineRlTrainer.builder(LossType.RLOO)
                .model(Fixtures.model("gpt2-tiny"))
                .data(data)
                .output(tmp.resolve("built"))
                .batchSize(4)
                .maxSteps(1)
                .set("num_generations", 4)
                .set("max_completion_length", 3)
                .set("reward_funcs", List.of("regex:.*"))
                .build()) {
            assertThat(t.rlConfig().numGenerations()).isEqualTo(4);
            assertThat(t.rlConfig().beta()).isEqualTo(0.05); // RLOO's default
            assertThat(t.train().lastStep()).isEqualTo(1);
        }
    }

    @Test
    void conversationalPromptsWithLoraTrainAgainstTheAdaptersOff() throws Exception {
        Path data = tmp.resolve("chat.jsonl");
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < 8; i++) {
            b.append("{\"prompt\": [{\"role\": \"user\", \"content\": \"")
                    .append(i)
                    .append("+2=\"}], \"answer\": \"")
                    .append(i + 2)
                    .append("\"}\n");
        }
        Files.writeString(data, b);
        Map<String, Object> o = base(data, tmp.resolve("lora"));
        o.put("lora_r", 4);
        o.put("disable_dropout", true); // TRL's GRPO default keeps GPT-2's dropout 0.1, and then KL is not 0 at step 1
        o.put("max_steps", 2);
        o.put("num_iterations", 1);
        o.put("eval_fraction", 0.25);
        o.put("reward_funcs", List.of("exact", "regex:.*"));
        Steps rec = new Steps(-1);
        try (OnlineRlTrainer t =
                OnlineRlTrainer.create(RlConfig.resolve(LossType.GRPO, null, o, k -> k), RunFolder.Mode.fresh())) {
            assertThat(t.header().get(1)).contains("the policy with its adapters off");
            t.addListener(rec);
            t.train();
        }
        // a new adapter starts as the reference: KL 0 at the first step
        assertThat(rec.steps.get(0).get("kl")).isCloseTo(0.0, Offset.offset(1e-6));
        assertThat(rec.steps.get(0)).containsKeys("rewards/exact_answer/mean", "rewards/regex/mean");
        assertThat(tmp.resolve("lora/final/adapter_config.json")).isRegularFile();
        String samples = Files.readString(tmp.resolve("lora/samples.jsonl"));
        // the prompt as the chat template rendered it, and the record's answer as the expected one
        assertThat(samples).contains("<|im_start|>user").contains("\"expected\":");
    }

    @Test
    void anEpochWhosePromptsDoNotFillTheLastGenerationDropsThemAndGoesOn() throws Exception {
        Path data = tmp.resolve("five.jsonl");
        Files.writeString(data, Files.readString(prompts()).lines().limit(5).reduce("", (a, l) -> a + l + "\n"));
        Map<String, Object> o = base(data, tmp.resolve("five"));
        o.put("batch_size", 8); // 2 prompts a generation: 2 generations an epoch, the fifth prompt dropped
        o.put("num_iterations", 1);
        o.put("max_steps", 5);
        try (OnlineRlTrainer t =
                OnlineRlTrainer.create(RlConfig.resolve(LossType.GRPO, null, o, k -> k), RunFolder.Mode.fresh())) {
            assertThat(t.train().lastStep()).isEqualTo(5);
        }
        Map<String, Object> epochs = base(data, tmp.resolve("epochs"));
        epochs.put("batch_size", 8);
        epochs.put("num_iterations", 1);
        epochs.put("max_steps", 0);
        epochs.put("epochs", 2.0);
        try (OnlineRlTrainer t =
                OnlineRlTrainer.create(RlConfig.resolve(LossType.GRPO, null, epochs, k -> k), RunFolder.Mode.fresh())) {
            assertThat(t.train().lastStep()).isEqualTo(4); // two generations an epoch
        }
        Map<String, Object> few = base(data, tmp.resolve("few"));
        few.put("batch_size", 24); // 6 prompts a generation, 5 in the file
        assertThatThrownBy(() -> OnlineRlTrainer.create(
                        RlConfig.resolve(LossType.GRPO, null, few, k -> k), RunFolder.Mode.fresh()))
                .hasMessageContaining("one generation takes 6 prompts")
                .hasMessageContaining("has 5 for training");
    }

    @Test
    void aRewardsMissingFieldIsNamedBeforeTheRunAndSameNamedRewardsStayApart() throws Exception {
        Path data = prompts();
        Map<String, Object> o = base(data, tmp.resolve("field"));
        o.put("reward_funcs", List.of("exact:solution"));
        assertThatThrownBy(() -> OnlineRlTrainer.create(
                        RlConfig.resolve(LossType.GRPO, null, o, k -> k), RunFolder.Mode.fresh()))
                .hasMessageContaining("prompts.jsonl:1: field 'solution': missing (reward 'exact_solution' reads it)");
        Map<String, Object> two = base(data, tmp.resolve("two"));
        two.put("reward_funcs", "regex:^[0-9]{1\\,2}$,regex:.*");
        two.put("max_steps", 1);
        Steps rec = new Steps(-1);
        try (OnlineRlTrainer t =
                OnlineRlTrainer.create(RlConfig.resolve(LossType.GRPO, null, two, k -> k), RunFolder.Mode.fresh())) {
            assertThat(t.rlConfig().rewardFuncs()).containsExactly("regex:^[0-9]{1,2}$", "regex:.*");
            t.addListener(rec);
            t.train();
        }
        assertThat(rec.steps.get(0)).containsKeys("rewards/regex/mean", "rewards/regex_2/mean");
        assertThat(rec.steps.get(0).get("rewards/regex_2/mean")).isEqualTo(1.0);
    }

    @Test
    void aMethodKeyTypoGetsASuggestionAndResumeWarnsAboutChangedMethodKeys() throws Exception {
        Path yaml = tmp.resolve("typo.yaml");
        Files.writeString(yaml, "num_generation: 4\n");
        assertThatThrownBy(() -> RlConfig.resolve(LossType.GRPO, yaml, Map.of(), k -> k))
                .hasMessageContaining("typo.yaml:1: key 'num_generation': unknown (did you mean 'num_generations'");
        // a saved config.yaml with the method's keys reads back as a shared config
        Path data = prompts();
        Map<String, Object> o = base(data, tmp.resolve("saved"));
        o.put("max_steps", 1);
        try (OnlineRlTrainer t =
                OnlineRlTrainer.create(RlConfig.resolve(LossType.GRPO, null, o, k -> k), RunFolder.Mode.fresh())) {
            t.train();
        }
        TrainConfig saved = TrainConfig.resolveSaved(tmp.resolve("saved/checkpoint-1/config.yaml"));
        assertThat(saved.loss()).isEqualTo(LossType.GRPO);
    }

    @Test
    void pairsGivenToGrpoAndPromptsGivenToTrainAreNamed() throws Exception {
        Path pairs = Fixtures.root().resolve("prefs.jsonl");
        assertThatThrownBy(() -> OnlineRlTrainer.create(
                        RlConfig.resolve(LossType.GRPO, null, base(pairs, tmp.resolve("p")), k -> k),
                        RunFolder.Mode.fresh()))
                .isInstanceOf(DataException.class)
                .hasMessageContaining("prefs.jsonl:1")
                .hasMessageContaining("'chosen'")
                .hasMessageContaining("align4j train");
        Path data = prompts();
        assertThatThrownBy(() -> PreferenceTrainer.builder()
                        .model(Fixtures.model("gpt2-tiny"))
                        .data(data)
                        .output(tmp.resolve("t"))
                        .build())
                .isInstanceOf(DataException.class)
                .hasMessageContaining("prompts.jsonl:1")
                .hasMessageContaining("grpo");
    }

    /** Throws on one record. */
    public static final class Throwing implements RewardFunction {
        @Override
        public String name() {
            return "throwing";
        }

        @Override
        public List<Double> score(List<Sample> samples) {
            throw new IllegalStateException("no score for " + samples.get(0).prompt());
        }
    }

    /** NaN for every sample. */
    public static final class NotANumber implements RewardFunction {
        @Override
        public String name() {
            return "nan";
        }

        @Override
        public List<Double> score(List<Sample> samples) {
            List<Double> out = new ArrayList<>();
            samples.forEach(s -> out.add(Double.NaN));
            return out;
        }
    }

    @Test
    void rewardsThatThrowOrReturnNanNameTheFunctionAndTheRecord() throws Exception {
        Path data = prompts();
        for (Class<?> c : List.of(Throwing.class, NotANumber.class)) {
            Map<String, Object> o = base(data, tmp.resolve(c.getSimpleName()));
            o.put("reward_funcs", List.of("class:" + c.getName()));
            try (OnlineRlTrainer t =
                    OnlineRlTrainer.create(RlConfig.resolve(LossType.GRPO, null, o, k -> k), RunFolder.Mode.fresh())) {
                assertThatThrownBy(t::train)
                        .isInstanceOf(Rewards.RewardException.class)
                        .isInstanceOf(IllegalArgumentException.class)
                        .hasMessageContaining("reward '" + (c == Throwing.class ? "throwing" : "nan") + "'")
                        .hasMessageContaining("prompts.jsonl:");
            }
        }
    }

    @Test
    void badOptionsAreNamed() throws Exception {
        Path data = prompts();
        Map<String, Object> o = base(data, tmp.resolve("x"));
        o.put("num_generations", 1);
        assertThatThrownBy(() -> RlConfig.resolve(LossType.GRPO, null, o, k -> "--" + k.replace('_', '-')))
                .hasMessageStartingWith("--num-generations: at least 2");
        Map<String, Object> rm = base(data, tmp.resolve("y"));
        Path noTokenizer = tmp.resolve("rm");
        Files.createDirectories(noTokenizer);
        Files.copy(RlTrlParityTest.resource("reward-gpt2-tiny/config.json"), noTokenizer.resolve("config.json"));
        rm.put("reward_funcs", List.of(noTokenizer.toString()));
        assertThatThrownBy(() -> RlConfig.resolve(LossType.GRPO, null, rm, k -> "--" + k.replace('_', '-')))
                .hasMessageStartingWith("--reward-funcs: ")
                .hasMessageContaining("tokenizer.json is missing");
        Map<String, Object> loss = base(data, tmp.resolve("z"));
        loss.put("loss_type", "bnpo");
        assertThatThrownBy(() -> RlConfig.resolve(LossType.RLOO, null, loss, k -> k))
                .hasMessageContaining("loss_type: has no effect here: GRPO's option");
        Map<String, Object> policyModel = base(data, tmp.resolve("w"));
        policyModel.put("reward_funcs", List.of(Fixtures.model("gpt2-tiny").toString()));
        assertThatThrownBy(() -> OnlineRlTrainer.create(
                        RlConfig.resolve(LossType.GRPO, null, policyModel, k -> k), RunFolder.Mode.fresh()))
                .hasMessageContaining("not a reward model");
        Map<String, Object> batch = base(data, tmp.resolve("v"));
        batch.put("batch_size", 6);
        assertThatThrownBy(() -> OnlineRlTrainer.create(
                        RlConfig.resolve(LossType.GRPO, null, batch, k -> k), RunFolder.Mode.fresh()))
                .hasMessageContaining("multiple of num_generations");
        assertThat(TrainConfig.keys()).doesNotContain("num_generations"); // the method's keys stay its own
    }
}
