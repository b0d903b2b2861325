package org.align4j.cli.quickstart;

import ai.djl.Device;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.function.Function;
import org.align4j.data.EncodedPair;
import org.align4j.data.EncodingOptions;
import org.align4j.data.PreferenceEncoder;
import org.align4j.data.PreferenceExample;
import org.align4j.evaluation.Divergence;
import org.align4j.evaluation.PairScorer;
import org.align4j.evaluation.RewardScorer;
import org.align4j.evaluation.WinRate;
import org.align4j.evaluation.report.RunReport;
import org.align4j.losses.LossType;
import org.align4j.losses.RewardMetrics;
import org.align4j.model.CausalLm;
import org.align4j.model.config.ModelConfig;
import org.align4j.model.generate.GenerationConfig;
import org.align4j.model.generate.Generator;
import org.align4j.model.io.AtomicDirectory;
import org.align4j.model.tokenizer.TextTokenizer;
import org.align4j.trainer.PreferenceTrainer;
import org.align4j.trainer.RewardTrainer;
import org.align4j.trainer.RunFolder;
import org.align4j.trainer.SftTrainer;
import org.align4j.trainer.TrainConfig;
import org.align4j.trainer.TrainingListener;
import org.align4j.trainer.rl.OnlineRlTrainer;
import org.align4j.trainer.rl.RlConfig;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The built-in demonstration: everything align4j does, offline on the CPU, in minutes.
 *
 * <p>The task is two-digit addition with zero-padded answers ({@code 07+35=042}), so the right answer
 * is computable. A tiny GPT-2 is built from scratch with a character tokenizer shipped in the jar and
 * fine-tuned (SFT) on answers from a teacher with a habit: when the first number is odd, it adds one
 * 60% of the time. The SFT model learns the habit (its most likely answer to an odd first number is
 * one too high) and is right on about half of the held-out problems, while still giving the right
 * answer some probability.
 * DPO and IPO then train on preference pairs (right answer ≻ an answer one off, in a random direction) with the SFT model as the
 * reference policy. Held-out accuracy, reward accuracy and KL to the reference are measured before
 * (SFT) and after (DPO, IPO), and written to {@code OUTPUT/summary.json}.
 */
public final class Quickstart {
    private static final Logger LOG = LoggerFactory.getLogger(Quickstart.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    /** How often the SFT teacher adds one to a sum whose first number is odd. */
    static final double TEACHER_ERROR = 0.6;

    private static final String[] TOKENIZER_FILES = {
        "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"
    };

    /**
     * How much to train.
     *
     * @param output the folder for data, runs and the summary
     * @param sftSteps SFT optimizer steps
     * @param preferenceSteps DPO and IPO optimizer steps
     * @param heldOut held-out problems
     * @param seed everything random
     * @param loraRank DPO and IPO train LoRA adapters of this rank on every linear map of the SFT model
     *     (α = 2r, learning rate 1e-3) instead of every weight; 0 (the README's run) trains every weight
     */
    public record Settings(Path output, int sftSteps, int preferenceSteps, int heldOut, long seed, int loraRank) {
        /**
         * Full fine-tuning in every stage.
         *
         * @param output the folder for data, runs and the summary
         * @param sftSteps SFT optimizer steps
         * @param preferenceSteps DPO and IPO optimizer steps
         * @param heldOut held-out problems
         * @param seed everything random
         */
        public Settings(Path output, int sftSteps, int preferenceSteps, int heldOut, long seed) {
            this(output, sftSteps, preferenceSteps, heldOut, seed, 0);
        }

        /**
         * @param output the output folder
         * @return the settings the README's numbers come from
         */
        public static Settings standard(Path output) {
            return new Settings(output, 1500, 600, 500, 1234);
        }
    }

    /**
     * The first stage of RLHF added to the quickstart, and the seed's comparison: a reward model trained on
     * the preference pairs, the pairs labelled with its preference probability p = σ(r_c − r_r), and
     * soft-label IPO (target (2p − 1)/(2β)) on them beside DPO and IPO on the hard labels.
     *
     * @param steps reward-model optimizer steps (0: no reward stage, the plain quickstart)
     * @param labelNoise the share of training pairs whose label is flipped (a careless annotator), in [0, 0.5)
     */
    public record RewardStage(int steps, double labelNoise) {
        /** The plain quickstart: no reward model. */
        public static final RewardStage NONE = new RewardStage(0, 0);

        /** @throws IllegalArgumentException for negative steps or a noise outside [0, 0.5) */
        public RewardStage {
            if (steps < 0) {
                throw new IllegalArgumentException("reward steps: must be >= 0, got " + steps);
            }
            if (!(labelNoise >= 0 && labelNoise < 0.5)) {
                throw new IllegalArgumentException("label noise: must lie in [0, 0.5), got " + labelNoise);
            }
        }

        /**
         * @param labelNoise the share of flipped training labels
         * @return the settings the README's RLHF numbers come from
         */
        public static RewardStage standard(double labelNoise) {
            return new RewardStage(REWARD_STEPS, labelNoise);
        }

        /** @return whether the reward stage runs */
        public boolean on() {
            return steps > 0;
        }
    }

    /** Reward-model steps of the README's RLHF run. */
    public static final int REWARD_STEPS = 1000;

    /**
     * What the reward model did.
     *
     * @param heldoutRankingAccuracy share of held-out pairs whose right answer it rewards strictly above the one-off answer
     * @param meanPreference mean p = σ(r_c − r_r) over the training pairs as labelled
     * @param labelAgreement share of training pairs with p &gt; ½: where the reward model agrees with the label
     * @param flippedCorrected share of the flipped training labels whose p is below ½ (the reward model sides with the
     *     right answer); NaN without label noise
     */
    public record RewardRow(
            double heldoutRankingAccuracy, double meanPreference, double labelAgreement, double flippedCorrected) {}

    /**
     * One model's held-out numbers.
     *
     * @param heldoutAccuracy share of held-out problems answered right (greedy)
     * @param rewardAccuracy share of held-out pairs whose implicit reward β·log(π/π_ref) ranks the
     *     right answer above the one-off answer (strictly: a tie counts 0, as TRL counts; π_ref is the SFT model)
     * @param klToReference mean over held-out prompts of Σ_t KL(π ‖ π_ref) along the model's own
     *     greedy answer, in nats
     * @param winRate how often the model's greedy answer beats the SFT model's (right beats wrong,
     *     equal correctness ties)
     */
    public record Row(double heldoutAccuracy, double rewardAccuracy, double klToReference, WinRate winRate) {}

    /** An addition problem. */
    record Problem(int a, int b) {
        String prompt() {
            return String.format(Locale.ROOT, "%02d+%02d=", a, b);
        }

        /** The problem of a prompt such as {@code 07+35=}. */
        static Problem parse(String prompt) {
            return new Problem(Integer.parseInt(prompt.substring(0, 2)), Integer.parseInt(prompt.substring(3, 5)));
        }

        String answer() {
            return String.format(Locale.ROOT, "%03d", a + b);
        }

        /** The teacher: when the first number is odd, one too many with probability {@link #TEACHER_ERROR}. */
        String teacherAnswer(Random random) {
            boolean slip = a % 2 == 1 && random.nextDouble() < TEACHER_ERROR;
            return String.format(Locale.ROOT, "%03d", a + b + (slip ? 1 : 0));
        }

        /**
         * A wrong answer, one off in a random direction: were it always one too high, "the smaller
         * answer wins" would explain every pair, and DPO learns that shortcut instead of the sum.
         */
        String wrongAnswer(Random random) {
            int sum = a + b;
            int off = sum == 0 || random.nextBoolean() ? 1 : -1;
            return String.format(Locale.ROOT, "%03d", sum + off);
        }
    }

    private Quickstart() {}

    /**
     * Runs the whole demonstration.
     *
     * @param s settings
     * @param listener hears each training run's progress (may be null)
     * @return rows for sft, dpo and ipo
     * @throws IOException when the output folder cannot be written
     */
    public static Map<String, Row> run(Settings s, Function<String, TrainingListener> listener) throws IOException {
        return run(s, RewardStage.NONE, listener).rows();
    }

    /**
     * What a run produced.
     *
     * @param rows held-out numbers of sft, dpo, ipo (and ipo-soft with the reward stage)
     * @param reward what the reward model did, or null without the reward stage
     * @param costs what each training run took (sft, reward, dpo, ipo, ... in the order they ran)
     */
    public record Result(Map<String, Row> rows, RewardRow reward, Map<String, Cost> costs) {}

    /**
     * What one training run took ({@link PeakMemory}): its wall time, and the peak resident memory of this
     * process while it ran (the JVM and what earlier runs left resident included).
     *
     * @param seconds wall seconds of the run (loading, training, its evaluations and checkpoints)
     * @param peakBytes the peak resident set size in bytes, or -1 where it cannot be read (not Linux)
     * @param peakSource how the peak was measured
     */
    public record Cost(double seconds, long peakBytes, PeakMemory.Source peakSource) {
        static Cost of(PeakMemory.Stretch m) {
            m.stop();
            return new Cost(m.seconds(), m.peakBytes().orElse(-1), m.source());
        }
    }

    /**
     * Runs the whole demonstration, with the reward stage when asked: a reward model on the pairs, its soft
     * labels, and soft-label IPO beside DPO and IPO; every preference run's evaluations then also judge 64
     * held-out answers against the SFT model's with the reward model ({@code eval_win_rate}).
     *
     * @param s settings
     * @param rlhf the reward stage ({@link RewardStage#NONE}: the plain quickstart)
     * @param listener hears each training run's progress (may be null)
     * @return the rows and the reward model's numbers
     * @throws IOException when the output folder cannot be written
     */
    public static Result run(Settings s, RewardStage rlhf, Function<String, TrainingListener> listener)
            throws IOException {
        return run(s, rlhf, 0, listener);
    }

    /** GRPO steps of {@code quickstart --rl} when not given. */
    public static final int RL_STEPS = 300;

    /**
     * Runs the whole demonstration, with the reward stage and the online RL stage when asked: GRPO from the
     * SFT model on the training prompts, rewarded by the exact-answer checker; with the reward stage too, a
     * second GRPO run rewarded by the reward model alone, the checker logged beside it at weight 0 (a gap
     * between them is the policy exploiting its proxy).
     *
     * @param s settings
     * @param rlhf the reward stage ({@link RewardStage#NONE}: off)
     * @param rlSteps GRPO steps (0: no online RL stage)
     * @param listener hears each training run's progress (may be null)
     * @return the rows and the reward model's numbers
     * @throws IOException when the output folder cannot be written
     */
    public static Result run(Settings s, RewardStage rlhf, int rlSteps, Function<String, TrainingListener> listener)
            throws IOException {
        Path out = s.output().toAbsolutePath();
        Files.createDirectories(out);
        List<Problem> all = new ArrayList<>();
        for (int a = 0; a < 100; a++) {
            for (int b = 0; b < 100; b++) {
                all.add(new Problem(a, b));
            }
        }
        Collections.shuffle(all, new Random(s.seed()));
        List<Problem> heldOut = all.subList(0, s.heldOut());
        List<Problem> train = all.subList(s.heldOut(), all.size());

        Path base = out.resolve("base");
        writeBaseModel(base, s.seed());
        Path data = out.resolve("data");
        Files.createDirectories(data);
        Random teacher = new Random(s.seed() + 1);
        writeJsonl(
                data.resolve("sft.jsonl"),
                train,
                p -> Map.of("prompt", p.prompt(), "completion", p.teacherAnswer(teacher)));
        writeJsonl(
                data.resolve("sft_eval.jsonl"),
                heldOut,
                p -> Map.of("prompt", p.prompt(), "completion", p.teacherAnswer(teacher)));
        Random wrong = new Random(s.seed() + 2);
        List<String[]> trainPairs = new ArrayList<>();
        for (Problem p : train) {
            trainPairs.add(new String[] {p.prompt(), p.answer(), p.wrongAnswer(wrong)});
        }
        // a careless annotator: a share of the training labels flipped (its own random stream: the pairs stay the same)
        boolean[] flipped = new boolean[trainPairs.size()];
        Random noise = new Random(s.seed() + 3);
        for (int i = 0; i < trainPairs.size() && rlhf.labelNoise() > 0; i++) {
            if (noise.nextDouble() < rlhf.labelNoise()) {
                flipped[i] = true;
                String[] t = trainPairs.get(i);
                trainPairs.set(i, new String[] {t[0], t[2], t[1]});
            }
        }
        writePairs(data.resolve("prefs.jsonl"), trainPairs, null);
        List<String> heldOutWrong = new ArrayList<>();
        for (Problem p : heldOut) {
            heldOutWrong.add(p.wrongAnswer(wrong));
        }
        Map<Problem, String> wrongByProblem = new HashMap<>();
        for (int i = 0; i < heldOut.size(); i++) {
            wrongByProblem.put(heldOut.get(i), heldOutWrong.get(i));
        }
        writeJsonl(
                data.resolve("prefs_eval.jsonl"),
                heldOut,
                p -> Map.of("prompt", p.prompt(), "chosen", p.answer(), "rejected", wrongByProblem.get(p)));
        if (rlSteps > 0) {
            // prompt-only records for online RL: the answer is a field the exact-answer reward reads
            writeJsonl(data.resolve("prompts.jsonl"), train, p -> Map.of("prompt", p.prompt(), "answer", p.answer()));
            writeJsonl(
                    data.resolve("prompts_eval.jsonl"),
                    heldOut,
                    p -> Map.of("prompt", p.prompt(), "answer", p.answer()));
        }

        Map<String, Cost> costs = new LinkedHashMap<>();
        LOG.info("SFT on the teacher's answers: {} steps", s.sftSteps());
        PeakMemory.Stretch stretch = PeakMemory.start();
        try (SftTrainer t = SftTrainer.builder()
                .model(base)
                .data(data.resolve("sft.jsonl"))
                .evalData(data.resolve("sft_eval.jsonl"))
                .output(out.resolve("sft"))
                .learningRate(3e-3)
                .weightDecay(0.01)
                .batchSize(64)
                .maxSteps(s.sftSteps())
                .warmupSteps(Math.min(100, s.sftSteps() / 10))
                .schedule(TrainConfig.Schedule.COSINE)
                .evalBatchSize(250)
                .logEvery(10)
                .seed(s.seed())
                // every sequence here has the same length: nothing to unpad, and packing would run one
                // attention call per sequence instead of one per batch
                .paddingFree(false)
                .build()) {
            if (listener != null) {
                t.addListener(listener.apply("sft"));
            }
            t.train();
        }
        costs.put("sft", Cost.of(stretch));
        Path sftModel = out.resolve("sft/final");

        RewardRow rewardRow = null;
        Path rewardModel = out.resolve("reward/final");
        List<LossType> objectives = new ArrayList<>(List.of(LossType.DPO, LossType.IPO));
        if (rlhf.on()) {
            stretch = PeakMemory.start();
            rewardRow = rewardStage(s, rlhf, out, data, sftModel, trainPairs, flipped, listener);
            costs.put("reward", Cost.of(stretch));
            objectives.add(LossType.IPO_SOFT);
        }

        for (LossType loss : objectives) {
            LOG.info(
                    "{} on right-vs-one-off pairs: {} steps{}",
                    loss,
                    s.preferenceSteps(),
                    s.loraRank() > 0 ? ", LoRA r=" + s.loraRank() : "");
            TrainConfig.Builder<PreferenceTrainer> b = PreferenceTrainer.builder()
                    .model(sftModel)
                    .data(data.resolve(loss == LossType.IPO_SOFT ? "prefs_soft.jsonl" : "prefs.jsonl"))
                    .evalData(data.resolve("prefs_eval.jsonl"))
                    .output(out.resolve(loss.toString()))
                    .loss(loss)
                    .beta(0.5)
                    .learningRate(5e-5)
                    .batchSize(32)
                    .maxSteps(s.preferenceSteps())
                    .warmupSteps(Math.min(20, s.preferenceSteps() / 10))
                    .schedule(TrainConfig.Schedule.LINEAR)
                    .reference(TrainConfig.Reference.PRECOMPUTED)
                    .evalBatchSize(250)
                    .evalEvery(Math.max(1, s.preferenceSteps() / 12))
                    .logEvery(Math.max(1, Math.min(5, s.preferenceSteps() / 50)))
                    .seed(s.seed())
                    .paddingFree(false); // equal lengths, as for SFT
            if (s.loraRank() > 0) {
                // adapters train at a larger rate than full fine-tuning, as usual for LoRA
                b.loraR(s.loraRank())
                        .loraAlpha(2.0 * s.loraRank())
                        .loraTarget("all-linear")
                        .learningRate(1e-3);
            }
            if (rlhf.on()) {
                // the reward model judges the policy's answers against the SFT model's at every evaluation
                b.evalSamples(Math.min(64, s.heldOut()))
                        .evalJudge("reward-model:" + rewardModel)
                        .evalMaxNewTokens(4);
            }
            stretch = PeakMemory.start();
            try (PreferenceTrainer t = b.build()) {
                if (listener != null) {
                    t.addListener(listener.apply(loss.toString()));
                }
                t.train();
            }
            costs.put(loss.toString(), Cost.of(stretch));
        }

        List<String> rlRuns = new ArrayList<>();
        if (rlSteps > 0) {
            rlRuns.add("grpo");
            stretch = PeakMemory.start();
            grpo(s, rlSteps, out, data, sftModel, List.of("exact"), List.of(), "grpo", listener);
            costs.put("grpo", Cost.of(stretch));
            if (rlhf.on()) {
                rlRuns.add("grpo-rm");
                stretch = PeakMemory.start();
                grpo(
                        s,
                        rlSteps,
                        out,
                        data,
                        sftModel,
                        List.of(rewardModel.toString(), "exact"),
                        List.of(1.0, 0.0),
                        "grpo-rm",
                        listener);
                costs.put("grpo-rm", Cost.of(stretch));
                rlRuns.add("ppo");
                stretch = PeakMemory.start();
                ppo(s, rlSteps, out, data, sftModel, rewardModel, listener);
                costs.put("ppo", Cost.of(stretch));
            }
        }

        Map<String, Row> rows = new LinkedHashMap<>();
        try (TextTokenizer tk = TextTokenizer.load(sftModel);
                CausalLm reference = CausalLm.load(sftModel, Device.cpu())) {
            reference.setTrainable(false);
            HeldOut h = HeldOut.of(reference, tk, heldOut, heldOutWrong);
            List<String> names = new ArrayList<>(
                    rlhf.on() ? List.of("sft", "dpo", "ipo", "ipo-soft") : List.of("sft", "dpo", "ipo"));
            names.addAll(rlRuns);
            for (String name : names) {
                Path dir = "sft".equals(name) ? sftModel : out.resolve(name).resolve("final");
                try (CausalLm policy = CausalLm.load(dir, Device.cpu())) {
                    policy.setTrainable(false);
                    Evaluated e = evaluate(policy, reference, tk, h);
                    rows.put(name, e.row());
                    if (!"sft".equals(name)) {
                        List<RunReport.Sample> samples = new ArrayList<>();
                        for (int i = 0; i < Math.min(16, heldOut.size()); i++) {
                            samples.add(new RunReport.Sample(
                                    heldOut.get(i).prompt(),
                                    heldOut.get(i).answer(),
                                    null,
                                    h.referenceAnswers().get(i),
                                    e.answers().get(i)));
                        }
                        RunReport.writeSamples(out.resolve(name).resolve("samples.jsonl"), samples);
                    }
                }
            }
        }
        ObjectNode summary = JSON.createObjectNode();
        rows.forEach((name, r) -> {
            ObjectNode o = summary.putObject(name);
            o.put("heldout_accuracy", r.heldoutAccuracy());
            o.put("reward_accuracy", r.rewardAccuracy());
            o.put("kl_to_reference", r.klToReference());
            o.put("win_rate_vs_sft", r.winRate().rate());
            o.put("win_rate_ci95", JSON.valueToTree(new double[] {
                r.winRate().lower(), r.winRate().upper()
            }));
            o.put(
                    "model",
                    "sft".equals(name)
                            ? sftModel.toString()
                            : out.resolve(name).resolve("final").toString());
            putCost(o, costs.get(name));
        });
        if (rewardRow != null) {
            ObjectNode o = summary.putObject("reward_model");
            o.put("heldout_ranking_accuracy", rewardRow.heldoutRankingAccuracy());
            o.put("mean_preference", rewardRow.meanPreference());
            o.put("label_agreement", rewardRow.labelAgreement());
            if (!Double.isNaN(rewardRow.flippedCorrected())) {
                o.put("flipped_labels_corrected", rewardRow.flippedCorrected());
            }
            o.put("label_noise", rlhf.labelNoise());
            o.put("model", rewardModel.toString());
            putCost(o, costs.get("reward"));
        }
        AtomicDirectory.writeFile(
                out.resolve("summary.json"),
                (JSON.writerWithDefaultPrettyPrinter().writeValueAsString(summary) + "\n")
                        .getBytes(StandardCharsets.UTF_8));
        writeReport(out, rows, rewardRow, rlRuns);
        return new Result(rows, rewardRow, costs);
    }

    /** A run's wall time and peak memory in its summary.json entry (the peak left out where it cannot be read). */
    private static void putCost(ObjectNode o, Cost c) {
        if (c == null) {
            return;
        }
        o.put("wall_seconds", c.seconds());
        if (c.peakBytes() >= 0) {
            o.put("peak_rss_bytes", c.peakBytes());
            o.put(
                    "peak_rss_source",
                    c.peakSource() == PeakMemory.Source.KERNEL_PEAK
                            ? "VmHWM reset by /proc/self/clear_refs at the run's start"
                            : "VmRSS sampled every 50 ms");
        }
    }

    /**
     * One GRPO run from the SFT model on the training prompts: 8 samples of each of 8 prompts a step at
     * temperature 1, 4 new tokens at most (3 digits and eos), β 0.04 against the SFT model.
     */
    private static void grpo(
            Settings s,
            int steps,
            Path out,
            Path data,
            Path sftModel,
            List<String> rewards,
            List<Double> weights,
            String name,
            Function<String, TrainingListener> listener)
            throws IOException {
        LOG.info("GRPO rewarded by {}: {} steps", rewards, steps);
        Map<String, Object> o = new LinkedHashMap<>();
        o.put("model", sftModel.toString());
        o.put("data", data.resolve("prompts.jsonl").toString());
        o.put("eval_data", data.resolve("prompts_eval.jsonl").toString());
        o.put("output", out.resolve(name).toString());
        o.put("learning_rate", 1e-4);
        o.put("batch_size", 64);
        o.put("num_generations", 8);
        o.put("max_completion_length", 4);
        o.put("beta", 0.04);
        o.put("max_steps", steps);
        o.put("warmup_steps", Math.min(20, steps / 10));
        o.put("schedule", "linear");
        o.put("eval_every", Math.max(1, steps / 10));
        o.put("eval_batch_size", 250);
        o.put("log_every", Math.max(1, Math.min(5, steps / 50)));
        o.put("seed", s.seed());
        o.put("padding_free", false); // equal lengths, as for SFT
        o.put("reward_funcs", rewards);
        if (!weights.isEmpty()) {
            o.put("reward_weights", weights);
        }
        RlConfig.Run run = RlConfig.resolve(LossType.GRPO, null, o, k -> "key '" + k + "'");
        try (OnlineRlTrainer t = OnlineRlTrainer.create(run, RunFolder.Mode.overwrite())) {
            if (listener != null) {
                t.addListener(listener.apply(name));
            }
            t.train();
        }
    }

    /**
     * RLHF as the seed describes it: PPO rewarded by the reward model (the exact checker logged beside it at
     * weight 0), its value model started from the reward model, kl_coef 0.2. One rollout of 64 sums (one answer each)
     * serves 2 epochs × 4 mini-batches of 16, so {@code steps} GRPO steps' worth of rollouts is {@code 4 ×
     * steps} optimizer steps over {@code steps / 2} rollouts.
     */
    private static void ppo(
            Settings s,
            int steps,
            Path out,
            Path data,
            Path sftModel,
            Path rewardModel,
            Function<String, TrainingListener> listener)
            throws IOException {
        int optimizerSteps = 4 * steps;
        LOG.info("PPO rewarded by {}: {} optimizer steps", rewardModel, optimizerSteps);
        Map<String, Object> o = new LinkedHashMap<>();
        o.put("model", sftModel.toString());
        o.put("data", data.resolve("prompts.jsonl").toString());
        o.put("eval_data", data.resolve("prompts_eval.jsonl").toString());
        o.put("output", out.resolve("ppo").toString());
        o.put("learning_rate", 1e-4);
        o.put("batch_size", 16);
        o.put("num_mini_batches", 4);
        o.put("num_ppo_epochs", 2);
        o.put("max_completion_length", 4);
        o.put("temperature", 1.0);
        // kl_coef 0.2, not TRL's 0.05: at 0.05 the policy over-optimised the reward model (its score rose from 5.38
        // to 5.68 while the checker's accuracy on the eval prompts fell from 0.84 at step 120 to 0.76; quickstart
        // --rlhf --rl, 2026-12-07: held-out accuracy 0.760); at 0.2 it ended at 0.878 (SFT 0.598)
        o.put("kl_coef", 0.2);
        o.put("max_steps", optimizerSteps);
        o.put("warmup_steps", Math.min(20, optimizerSteps / 10));
        o.put("schedule", "linear");
        o.put("eval_every", Math.max(1, optimizerSteps / 10));
        o.put("eval_batch_size", 250);
        o.put("log_every", Math.max(1, Math.min(5, optimizerSteps / 50)));
        o.put("seed", s.seed());
        o.put("padding_free", false);
        o.put("reward_funcs", List.of(rewardModel.toString(), "exact"));
        o.put("reward_weights", List.of(1.0, 0.0));
        RlConfig.Run run = RlConfig.resolve(LossType.PPO, null, o, k -> "key '" + k + "'");
        try (OnlineRlTrainer t = OnlineRlTrainer.create(run, RunFolder.Mode.overwrite())) {
            if (listener != null) {
                t.addListener(listener.apply("ppo"));
            }
            t.train();
        }
    }

    /**
     * The reward stage: a reward model trained from the SFT model on the training pairs (held-out pairs for
     * its evaluation), then every training pair labelled with p = σ(r_c − r_r) in {@code
     * data/prefs_soft.jsonl}.
     */
    private static RewardRow rewardStage(
            Settings s,
            RewardStage rlhf,
            Path out,
            Path data,
            Path sftModel,
            List<String[]> trainPairs,
            boolean[] flipped,
            Function<String, TrainingListener> listener)
            throws IOException {
        LOG.info(
                "Reward model on the {} training pairs{}: {} steps",
                trainPairs.size(),
                rlhf.labelNoise() > 0 ? " (" + Math.round(100 * rlhf.labelNoise()) + "% of labels flipped)" : "",
                rlhf.steps());
        double heldOut;
        try (RewardTrainer t = RewardTrainer.builder()
                .model(sftModel)
                .data(data.resolve("prefs.jsonl"))
                .evalData(data.resolve("prefs_eval.jsonl"))
                .output(out.resolve("reward"))
                // full fine-tuning from the SFT model at 5e-4, decaying linearly: at 1e-3 constant the loss still sat
                // at ln 2 after
                // 700 steps (held-out accuracy 0.40-0.52); 1e-4 had not left ln 2 by step 300; 3e-4 reached 0.85 by
                // step 600
                .learningRate(5e-4)
                .batchSize(32)
                .maxSteps(rlhf.steps())
                .warmupSteps(Math.min(20, rlhf.steps() / 10))
                .schedule(TrainConfig.Schedule.LINEAR)
                .evalBatchSize(250)
                .evalEvery(Math.max(1, rlhf.steps() / 10))
                .logEvery(Math.max(1, Math.min(5, rlhf.steps() / 50)))
                .seed(s.seed())
                .build()) {
            if (listener != null) {
                t.addListener(listener.apply("reward"));
            }
            heldOut = t.train().evalMetrics().get("eval_accuracy");
        }
        List<RewardScorer.PairRewards> rewards;
        try (TextTokenizer tk = TextTokenizer.load(sftModel);
                CausalLm rm = CausalLm.load(out.resolve("reward/final"), Device.cpu())) {
            rm.setTrainable(false);
            PreferenceEncoder encoder = new PreferenceEncoder(tk, EncodingOptions.unlimited());
            List<EncodedPair> sequences = new ArrayList<>();
            for (String[] p : trainPairs) {
                sequences.add(encoder.encodeSequences(PreferenceExample.text(p[0], p[1], p[2], null, data, 0))
                        .orElseThrow());
            }
            rewards = RewardScorer.score(rm, sequences, 250, RewardScorer.padId(rm, tk.padId()));
        }
        double[] p = new double[trainPairs.size()];
        double sum = 0;
        int agree = 0;
        int flips = 0;
        int corrected = 0;
        for (int i = 0; i < p.length; i++) {
            p[i] = rewards.get(i).preference(1.0);
            sum += p[i];
            agree += p[i] > 0.5 ? 1 : 0;
            if (flipped[i]) {
                flips++;
                corrected += p[i] < 0.5 ? 1 : 0;
            }
        }
        writePairs(data.resolve("prefs_soft.jsonl"), trainPairs, p);
        return new RewardRow(
                heldOut,
                sum / p.length,
                (double) agree / p.length,
                flips == 0 ? Double.NaN : (double) corrected / flips);
    }

    /** Pairs as JSON lines, keys sorted (prompt, chosen, rejected, and preference when given). */
    private static void writePairs(Path file, List<String[]> pairs, double[] preference) throws IOException {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < pairs.size(); i++) {
            TreeMap<String, Object> row = new TreeMap<>();
            row.put("prompt", pairs.get(i)[0]);
            row.put("chosen", pairs.get(i)[1]);
            row.put("rejected", pairs.get(i)[2]);
            if (preference != null) {
                row.put("preference", preference[i]);
            }
            sb.append(JSON.writeValueAsString(row)).append('\n');
        }
        AtomicDirectory.writeFile(file, sb.toString().getBytes(StandardCharsets.UTF_8));
    }

    /** The report: DPO and IPO (and soft-label IPO, the reward model) overlaid, the held-out table, sample answers. */
    static Path writeReport(Path out, Map<String, Row> rows, RewardRow reward) throws IOException {
        return writeReport(out, rows, reward, List.of());
    }

    /** As {@link #writeReport(Path, Map, RewardRow)}, with the online RL runs overlaid too. */
    static Path writeReport(Path out, Map<String, Row> rows, RewardRow reward, List<String> rlRuns) throws IOException {
        Map<String, Map<String, Double>> headline = new LinkedHashMap<>();
        rows.forEach((name, r) -> {
            Map<String, Double> cols = new LinkedHashMap<>();
            cols.put("held-out accuracy", r.heldoutAccuracy());
            cols.put("reward accuracy", r.rewardAccuracy());
            cols.put("KL to SFT (nats)", r.klToReference());
            cols.put("win rate vs SFT", r.winRate().rate());
            cols.put("95% CI low", r.winRate().lower());
            cols.put("95% CI high", r.winRate().upper());
            headline.put(name, cols);
        });
        String intro =
                "Two-digit sums (<code>07+35=042</code>). The SFT model learned a teacher's habit of adding one to sums whose "
                        + "first number is odd; DPO and IPO then trained on pairs right answer ≻ answer one off, with the SFT model as the "
                        + "reference policy. Headline numbers, over the "
                        + "held-out problems (never trained on): greedy accuracy, "
                        + "implicit-reward accuracy, KL to the SFT model along each model's own greedy answers, and the win rate of each "
                        + "model's greedy answer against the SFT model's (a right answer beats a wrong one, ties count half).";
        if (!rlRuns.isEmpty()) {
            intro +=
                    " <p>Online RL ran too: GRPO from the SFT model, 8 samples per held-in prompt, rewarded 1 for the exact"
                            + " answer (grpo)"
                            + (rlRuns.contains("grpo-rm")
                                    ? ", and rewarded by the reward model alone with the checker logged beside it at weight 0"
                                            + " (grpo-rm: a gap between its reward and its accuracy is the policy exploiting the"
                                            + " proxy)"
                                    : "")
                            + "; β 0.04 against the SFT model."
                            + (rlRuns.contains("ppo")
                                    ? " And RLHF as the seed describes it: PPO rewarded by the reward model (checker at weight 0),"
                                            + " its value model started from the reward model, kl_coef 0.2 (ppo)."
                                    : "")
                            + "</p>";
        }
        List<RunReport.Run> runs = new ArrayList<>();
        for (String r : rlRuns) {
            runs.add(RunReport.read(out.resolve(r)));
        }
        if (reward == null) {
            List<RunReport.Run> all =
                    new ArrayList<>(List.of(RunReport.read(out.resolve("dpo")), RunReport.read(out.resolve("ipo"))));
            all.addAll(runs);
            return RunReport.write(
                    all,
                    out.resolve("report"),
                    rlRuns.isEmpty() ? "align4j quickstart: DPO vs IPO" : "align4j quickstart: DPO vs IPO vs GRPO",
                    intro,
                    headline);
        }
        Map<String, Double> rm = new LinkedHashMap<>();
        rm.put("held-out accuracy", reward.heldoutRankingAccuracy());
        headline.put("reward model (ranks right above one-off)", rm);
        String rlhfIntro =
                intro + " <p>RLHF's first stage ran too: a reward model trained from the SFT model on the same pairs"
                        + (reward.flippedCorrected() == reward.flippedCorrected()
                                ? " (with a share of their labels flipped)"
                                : "")
                        + " ranks the held-out right answer above the one-off answer in "
                        + String.format(Locale.ROOT, "%.1f%%", 100 * reward.heldoutRankingAccuracy())
                        + " of pairs; its preference probabilities p = σ(r_c − r_r) labelled the training pairs, and soft-label IPO (ipo-soft, target"
                        + " (2p − 1)/(2β)) trained on them. The preference runs' win rates during training are judged by the reward model.</p>";
        List<RunReport.Run> all = new ArrayList<>(List.of(
                RunReport.read(out.resolve("dpo")),
                RunReport.read(out.resolve("ipo")),
                RunReport.read(out.resolve("ipo-soft")),
                RunReport.read(out.resolve("reward"))));
        all.addAll(runs);
        return RunReport.write(
                all,
                out.resolve("report"),
                "align4j quickstart: reward model, then DPO vs IPO vs soft-label IPO",
                rlhfIntro,
                headline);
    }

    /**
     * What every model is evaluated on, computed once: the held-out prompts, the right-vs-one-off
     * pairs, the reference's log-probs of those pairs, and the reference's greedy answers.
     */
    record HeldOut(
            List<Problem> problems,
            List<int[]> prompts,
            List<EncodedPair> pairs,
            List<PairScorer.PairScore> referenceScores,
            List<String> referenceAnswers) {
        static HeldOut of(CausalLm reference, TextTokenizer tk, List<Problem> problems, List<String> wrongAnswers) {
            List<int[]> prompts = new ArrayList<>();
            List<EncodedPair> pairs = new ArrayList<>();
            for (int i = 0; i < problems.size(); i++) {
                Problem p = problems.get(i);
                prompts.add(tk.encode(p.prompt()));
                pairs.add(new EncodedPair(
                        prompts.get(i),
                        withEos(tk.encode(p.answer()), tk.eosId()),
                        withEos(tk.encode(wrongAnswers.get(i)), tk.eosId()),
                        null));
            }
            return new HeldOut(
                    problems,
                    prompts,
                    pairs,
                    PairScorer.score(reference, pairs, 250, tk.padId()),
                    WinRate.generateFromIds(reference, tk, prompts, GenerationConfig.greedy(4), 250));
        }
    }

    /** A model's row and its greedy answers to the held-out problems. */
    record Evaluated(Row row, List<String> answers) {}

    static Evaluated evaluate(CausalLm policy, CausalLm reference, TextTokenizer tk, HeldOut h) {
        List<Problem> problems = h.problems();
        Generator g = new Generator(policy, tk.padId(), tk.eosIds());
        List<int[]> answers = new ArrayList<>();
        for (int from = 0; from < h.prompts().size(); from += 250) {
            answers.addAll(g.generate(
                    h.prompts().subList(from, Math.min(h.prompts().size(), from + 250)), GenerationConfig.greedy(4)));
        }
        int right = 0;
        List<String> texts = new ArrayList<>();
        List<WinRate.Judge.Verdict> verdicts = new ArrayList<>();
        WinRate.Judge judge = WinRate.Judge.byScore(
                (prompt, answer) -> answer.equals(Problem.parse(prompt).answer()) ? 1 : 0);
        for (int i = 0; i < problems.size(); i++) {
            String answer = tk.decode(answers.get(i), true);
            texts.add(answer);
            if (answer.equals(problems.get(i).answer())) {
                right++;
            }
            verdicts.add(judge.compare(
                    problems.get(i).prompt(), answer, h.referenceAnswers().get(i)));
        }
        List<PairScorer.PairScore> pol = PairScorer.score(policy, h.pairs(), 250, tk.padId());
        List<PairScorer.PairScore> ref = h.referenceScores();
        double[] chosen = new double[pol.size()];
        double[] rejected = new double[pol.size()];
        double[] policyChosen = new double[pol.size()];
        double[] policyRejected = new double[pol.size()];
        for (int i = 0; i < pol.size(); i++) {
            policyChosen[i] = pol.get(i).chosenLogps();
            policyRejected[i] = pol.get(i).rejectedLogps();
            chosen[i] = policyChosen[i] - ref.get(i).chosenLogps();
            rejected[i] = policyRejected[i] - ref.get(i).rejectedLogps();
        }
        double rewardAccuracy =
                RewardMetrics.of(chosen, rejected, policyChosen, policyRejected).get("rewards/accuracies");
        double[] kl = Divergence.perSequenceKl(policy, reference, h.prompts(), answers, tk.padId(), 250);
        Row row = new Row((double) right / problems.size(), rewardAccuracy, Divergence.mean(kl), WinRate.of(verdicts));
        return new Evaluated(row, texts);
    }

    private static int[] withEos(int[] ids, int eos) {
        int[] out = Arrays.copyOf(ids, ids.length + 1);
        out[ids.length] = eos;
        return out;
    }

    /** A GPT-2 of about 0.4M parameters from scratch, with the shipped character tokenizer. */
    static void writeBaseModel(Path dir, long seed) throws IOException {
        ModelConfig config = ModelConfig.newGpt2(16, 128, 2, 4, 16, 1, 1, 0);
        Path tokenizer = Files.createTempDirectory(dir.getParent(), ".tokenizer");
        try {
            for (String f : TOKENIZER_FILES) {
                try (InputStream in = Quickstart.class.getResourceAsStream(f)) {
                    if (in == null) {
                        throw new IllegalStateException("quickstart resource missing from the jar: " + f);
                    }
                    Files.copy(in, tokenizer.resolve(f));
                }
            }
            try (CausalLm lm = CausalLm.create(config, Device.cpu(), seed)) {
                lm.save(dir, tokenizer);
            }
        } finally {
            AtomicDirectory.deleteRecursively(tokenizer);
        }
    }

    private static void writeJsonl(Path file, List<Problem> problems, Function<Problem, Map<String, String>> row)
            throws IOException {
        StringBuilder sb = new StringBuilder();
        for (Problem p : problems) {
            sb.append(JSON.writeValueAsString(new TreeMap<>(row.apply(p)))).append('\n');
        }
        AtomicDirectory.writeFile(file, sb.toString().getBytes(StandardCharsets.UTF_8));
    }
}
