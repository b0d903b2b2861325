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
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import org.align4j.data.EncodedPair;
import org.align4j.evaluation.Divergence;
import org.align4j.evaluation.PairScorer;
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
import org.align4j.trainer.SftTrainer;
import org.align4j.trainer.TrainConfig;
import org.align4j.trainer.TrainingListener;
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

    private static final String[] TOKENIZER_FILES = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"};

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
    public static Map<String, Row> run(Settings s, java.util.function.Function<String, TrainingListener> listener) throws IOException {
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
        writeJsonl(data.resolve("sft.jsonl"), train, p -> Map.of("prompt", p.prompt(), "completion", p.teacherAnswer(teacher)));
        writeJsonl(data.resolve("sft_eval.jsonl"), heldOut, p -> Map.of("prompt", p.prompt(), "completion", p.teacherAnswer(teacher)));
        Random wrong = new Random(s.seed() + 2);
        writeJsonl(data.resolve("prefs.jsonl"), train, p -> Map.of("prompt", p.prompt(), "chosen", p.answer(), "rejected", p.wrongAnswer(wrong)));
        List<String> heldOutWrong = new ArrayList<>();
        for (Problem p : heldOut) {
            heldOutWrong.add(p.wrongAnswer(wrong));
        }
        Map<Problem, String> wrongByProblem = new java.util.HashMap<>();
        for (int i = 0; i < heldOut.size(); i++) {
            wrongByProblem.put(heldOut.get(i), heldOutWrong.get(i));
        }
        writeJsonl(data.resolve("prefs_eval.jsonl"), heldOut, p -> Map.of("prompt", p.prompt(), "chosen", p.answer(), "rejected", wrongByProblem.get(p)));

        LOG.info("SFT on the teacher's answers: {} steps", s.sftSteps());
        try (SftTrainer t = SftTrainer.builder()
                .model(base).data(data.resolve("sft.jsonl")).evalData(data.resolve("sft_eval.jsonl")).output(out.resolve("sft"))
                .learningRate(3e-3).weightDecay(0.01).batchSize(64).maxSteps(s.sftSteps()).warmupSteps(Math.min(100, s.sftSteps() / 10))
                .schedule(TrainConfig.Schedule.COSINE).evalBatchSize(250).logEvery(10).seed(s.seed())
                .build()) {
            if (listener != null) {
                t.addListener(listener.apply("sft"));
            }
            t.train();
        }
        Path sftModel = out.resolve("sft/final");

        for (LossType loss : List.of(LossType.DPO, LossType.IPO)) {
            LOG.info("{} on right-vs-one-off pairs: {} steps{}", loss, s.preferenceSteps(), s.loraRank() > 0 ? ", LoRA r=" + s.loraRank() : "");
            TrainConfig.Builder<PreferenceTrainer> b = PreferenceTrainer.builder()
                    .model(sftModel).data(data.resolve("prefs.jsonl")).evalData(data.resolve("prefs_eval.jsonl"))
                    .output(out.resolve(loss.toString()))
                    .loss(loss).beta(0.5).learningRate(5e-5).batchSize(32).maxSteps(s.preferenceSteps())
                    .warmupSteps(Math.min(20, s.preferenceSteps() / 10)).schedule(TrainConfig.Schedule.LINEAR)
                    .reference(TrainConfig.Reference.PRECOMPUTED).evalBatchSize(250).evalEvery(Math.max(1, s.preferenceSteps() / 12))
                    .logEvery(Math.max(1, Math.min(5, s.preferenceSteps() / 50))).seed(s.seed());
            if (s.loraRank() > 0) {
                // adapters train at a larger rate than full fine-tuning, as usual for LoRA
                b.loraR(s.loraRank()).loraAlpha(2.0 * s.loraRank()).loraTarget("all-linear").learningRate(1e-3);
            }
            try (PreferenceTrainer t = b.build()) {
                if (listener != null) {
                    t.addListener(listener.apply(loss.toString()));
                }
                t.train();
            }
        }

        Map<String, Row> rows = new LinkedHashMap<>();
        try (TextTokenizer tk = TextTokenizer.load(sftModel);
                CausalLm reference = CausalLm.load(sftModel, Device.cpu())) {
            reference.setTrainable(false);
            HeldOut h = HeldOut.of(reference, tk, heldOut, heldOutWrong);
            for (String name : List.of("sft", "dpo", "ipo")) {
                Path dir = "sft".equals(name) ? sftModel : out.resolve(name).resolve("final");
                try (CausalLm policy = CausalLm.load(dir, Device.cpu())) {
                    policy.setTrainable(false);
                    Evaluated e = evaluate(policy, reference, tk, h);
                    rows.put(name, e.row());
                    if (!"sft".equals(name)) {
                        List<RunReport.Sample> samples = new ArrayList<>();
                        for (int i = 0; i < Math.min(16, heldOut.size()); i++) {
                            samples.add(new RunReport.Sample(heldOut.get(i).prompt(), heldOut.get(i).answer(), null, h.referenceAnswers().get(i),
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
            o.put("win_rate_ci95", JSON.valueToTree(new double[] {r.winRate().lower(), r.winRate().upper()}));
            o.put("model", "sft".equals(name) ? sftModel.toString() : out.resolve(name).resolve("final").toString());
        });
        AtomicDirectory.writeFile(out.resolve("summary.json"),
                (JSON.writerWithDefaultPrettyPrinter().writeValueAsString(summary) + "\n").getBytes(StandardCharsets.UTF_8));
        writeReport(out, rows);
        return rows;
    }

    /** The report: DPO and IPO overlaid, the held-out table, sample answers of SFT, DPO and IPO. */
    static Path writeReport(Path out, Map<String, Row> rows) throws IOException {
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
        String intro = "Two-digit sums (<code>07+35=042</code>). The SFT model learned a teacher's habit of adding one to sums whose "
                + "first number is odd; DPO and IPO then trained on pairs right answer ≻ answer one off, with the SFT model as the "
                + "reference policy. Headline numbers, over the " + "held-out problems (never trained on): greedy accuracy, "
                + "implicit-reward accuracy, KL to the SFT model along each model's own greedy answers, and the win rate of each "
                + "model's greedy answer against the SFT model's (a right answer beats a wrong one, ties count half).";
        return RunReport.write(List.of(RunReport.read(out.resolve("dpo")), RunReport.read(out.resolve("ipo"))), out.resolve("report"),
                "align4j quickstart: DPO vs IPO", intro, headline);
    }

    /**
     * What every model is evaluated on, computed once: the held-out prompts, the right-vs-one-off
     * pairs, the reference's log-probs of those pairs, and the reference's greedy answers.
     */
    record HeldOut(List<Problem> problems, List<int[]> prompts, List<EncodedPair> pairs, List<PairScorer.PairScore> referenceScores,
            List<String> referenceAnswers) {
        static HeldOut of(CausalLm reference, TextTokenizer tk, List<Problem> problems, List<String> wrongAnswers) {
            List<int[]> prompts = new ArrayList<>();
            List<EncodedPair> pairs = new ArrayList<>();
            for (int i = 0; i < problems.size(); i++) {
                Problem p = problems.get(i);
                prompts.add(tk.encode(p.prompt()));
                pairs.add(new EncodedPair(prompts.get(i), withEos(tk.encode(p.answer()), tk.eosId()),
                        withEos(tk.encode(wrongAnswers.get(i)), tk.eosId()), null));
            }
            return new HeldOut(problems, prompts, pairs, PairScorer.score(reference, pairs, 250, tk.padId()),
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
            answers.addAll(g.generate(h.prompts().subList(from, Math.min(h.prompts().size(), from + 250)), GenerationConfig.greedy(4)));
        }
        int right = 0;
        List<String> texts = new ArrayList<>();
        List<WinRate.Judge.Verdict> verdicts = new ArrayList<>();
        WinRate.Judge judge = WinRate.Judge.byScore((prompt, answer) -> answer.equals(Problem.parse(prompt).answer()) ? 1 : 0);
        for (int i = 0; i < problems.size(); i++) {
            String answer = tk.decode(answers.get(i), true);
            texts.add(answer);
            if (answer.equals(problems.get(i).answer())) {
                right++;
            }
            verdicts.add(judge.compare(problems.get(i).prompt(), answer, h.referenceAnswers().get(i)));
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
        double rewardAccuracy = RewardMetrics.of(chosen, rejected, policyChosen, policyRejected).get("rewards/accuracies");
        double[] kl = Divergence.perSequenceKl(policy, reference, h.prompts(), answers, tk.padId(), 250);
        Row row = new Row((double) right / problems.size(), rewardAccuracy, Divergence.mean(kl), WinRate.of(verdicts));
        return new Evaluated(row, texts);
    }

    private static int[] withEos(int[] ids, int eos) {
        int[] out = java.util.Arrays.copyOf(ids, ids.length + 1);
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

    private static void writeJsonl(Path file, List<Problem> problems, java.util.function.Function<Problem, Map<String, String>> row)
            throws IOException {
        StringBuilder sb = new StringBuilder();
        for (Problem p : problems) {
            sb.append(JSON.writeValueAsString(new java.util.TreeMap<>(row.apply(p)))).append('\n');
        }
        AtomicDirectory.writeFile(file, sb.toString().getBytes(StandardCharsets.UTF_8));
    }
}
