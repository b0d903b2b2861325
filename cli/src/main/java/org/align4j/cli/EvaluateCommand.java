package org.align4j.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import org.align4j.data.EncodedPair;
import org.align4j.data.PreferenceEncoder;
import org.align4j.evaluation.Bandit;
import org.align4j.evaluation.Divergence;
import org.align4j.evaluation.PreferenceMetrics;
import org.align4j.evaluation.WinRate;
import org.align4j.evaluation.report.BanditReport;
import org.align4j.evaluation.report.RunReport;
import org.align4j.model.CausalLm;
import org.align4j.model.Devices;
import org.align4j.model.generate.GenerationConfig;
import org.align4j.model.io.ModelFolder;
import org.align4j.model.tokenizer.TextTokenizer;
import org.align4j.trainer.RunSamples;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** Evaluation: held-out preference metrics and KL, the IPO bandit, and reports of training runs. */
@Command(
        name = "evaluate",
        mixinStandardHelpOptions = true,
        header = "Evaluate alignment: held-out metrics, KL, win rates and the bandit reproduction.",
        description =
                "Did alignment work, and what did it cost? Held-out metrics, KL, the bandit reproduction, reports.",
        subcommands = {
            EvaluateCommand.Preferences.class,
            EvaluateCommand.WinRateCommand.class,
            EvaluateCommand.BanditCommand.class,
            EvaluateCommand.Report.class
        })
final class EvaluateCommand implements Runnable {
    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    /** Held-out preference metrics of a policy against a reference, and their KL. */
    @Command(
            name = "preferences",
            mixinStandardHelpOptions = true,
            description = {
                "Implicit-reward accuracy, margins and log-probs of a policy against a reference on held-out pairs,",
                "the exact per-token KL along the chosen answers, and a Monte-Carlo sequence KL on answers sampled from the policy."
            })
    static final class Preferences implements Callable<Integer> {
        @Mixin
        PolicyReferenceOptions models;

        @Option(
                names = "--beta",
                defaultValue = "0.1",
                description = "β of the implicit reward (default: ${DEFAULT-VALUE})")
        double beta;

        @Option(
                names = "--batch-size",
                defaultValue = "8",
                description = "Sequences per forward pass (default: ${DEFAULT-VALUE})")
        int batchSize;

        @Option(
                names = "--kl-prompts",
                defaultValue = "32",
                description =
                        "Prompts for the Monte-Carlo KL, the first distinct ones of the data (0 skips it; default: ${DEFAULT-VALUE})")
        int klPrompts;

        @Option(
                names = "--kl-samples",
                defaultValue = "4",
                description = "Answers sampled per prompt (default: ${DEFAULT-VALUE})")
        int klSamples;

        @Option(
                names = "--max-new-tokens",
                defaultValue = "64",
                description = "Longest sampled answer (default: ${DEFAULT-VALUE})")
        int maxNewTokens;

        @Option(names = "--seed", defaultValue = "0", description = "Sampling seed (default: ${DEFAULT-VALUE})")
        long seed;

        @Option(names = "--json", description = "Print one JSON object")
        boolean json;

        @Mixin
        DataOptions dataOptions;

        @Spec
        picocli.CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() {
            if (batchSize <= 0) {
                throw new IllegalArgumentException("--batch-size: must be > 0, got " + batchSize);
            }
            Flags.refuseUnless(
                    spec,
                    klPrompts > 0 && klSamples > 0,
                    "without sampled KL (--kl-prompts and --kl-samples above 0)",
                    "--max-new-tokens",
                    "--seed");
            try (PolicyReferenceOptions.Loaded m = models.load()) {
                TextTokenizer tk = m.tokenizer();
                CausalLm pol = m.policy();
                CausalLm ref = m.reference();
                PreferenceEncoder.Encoded enc =
                        dataOptions.encode(tk, dataOptions.load(models.data).examples());
                if (enc.pairs().isEmpty()) {
                    throw new IllegalArgumentException(
                            "--data: " + models.data + " has no pair left to evaluate after encoding");
                }
                Map<String, Object> out = new LinkedHashMap<>();
                PreferenceMetrics pm = PreferenceMetrics.evaluate(pol, ref, enc.pairs(), beta, batchSize, tk.padId());
                out.put("pairs", pm.pairs());
                out.putAll(pm.asMap());
                if (klPrompts > 0 && klSamples > 0) {
                    Set<String> seen = new LinkedHashSet<>();
                    List<int[]> prompts = new ArrayList<>();
                    for (EncodedPair p : enc.pairs()) {
                        if (prompts.size() < klPrompts && seen.add(Arrays.toString(p.prompt()))) {
                            prompts.add(p.prompt());
                        }
                    }
                    GenerationConfig sampling = GenerationConfig.sample(maxNewTokens, 1.0, 0, 1.0, seed);
                    Divergence.Estimate kl = Divergence.sampledSequenceKl(
                            pol, ref, prompts, klSamples, sampling, tk.padId(), tk.eosIds(), batchSize);
                    out.put("kl_sampled", kl.mean());
                    out.put("kl_sampled_se", kl.standardError());
                    out.put("kl_samples", kl.samples());
                }
                PrintWriter w = spec.commandLine().getOut();
                if (json) {
                    w.println(Json.write(out));
                } else {
                    out.forEach((k, v) -> w.printf(
                            Locale.ROOT,
                            "%-22s %s%n",
                            k,
                            v instanceof Double x ? String.format(Locale.ROOT, "%.6f", x) : v));
                    if (out.containsKey("kl_sampled")) {
                        w.printf(
                                Locale.ROOT,
                                "%nkl: exact per-token KL summed along the chosen answers; kl_sampled: E_{y~π}[log π(y)/π_ref(y)]"
                                        + " over %d sampled answers, ± %.4f (standard error)%n",
                                (int) out.get("kl_samples"),
                                (double) out.get("kl_sampled_se"));
                    }
                }
                if (enc.dropped() > 0) {
                    spec.commandLine()
                            .getErr()
                            .println("note: " + enc.dropped() + " pair(s) dropped by truncation were not scored");
                }
                w.flush();
            }
            return 0;
        }
    }

    /** Win rate of the policy's answers against the reference's, judged against each pair's chosen answer. */
    @Command(
            name = "winrate",
            mixinStandardHelpOptions = true,
            description = {
                "Generates an answer from the policy and from the reference for each prompt of a preference dataset and",
                "judges them: against the pair's chosen answer (for tasks with a checkable answer), or by a reward model (the higher",
                "reward of prompt + answer wins). A tie counts half; 95%% Wilson interval. Any other judge: implement WinRate.Judge in Java."
            })
    static final class WinRateCommand implements Callable<Integer> {
        @Mixin
        PolicyReferenceOptions models;

        @Option(
                names = "--judge",
                defaultValue = "exact",
                paramLabel = "exact|contains|reward-model:DIR",
                description =
                        "exact: an answer wins when it equals the chosen answer (trimmed); contains: when it contains it; reward-model:DIR:"
                                + " when a reward model scores it higher (default: ${DEFAULT-VALUE})")
        String judge;

        @Option(
                names = "--max-new-tokens",
                defaultValue = "64",
                description = "Longest answer (default: ${DEFAULT-VALUE})")
        int maxNewTokens;

        @Option(names = "--limit", defaultValue = "0", description = "Judge only the first N prompts (0 = all)")
        int limit;

        @Option(
                names = "--batch-size",
                defaultValue = "16",
                description = "Prompts per generation batch (default: ${DEFAULT-VALUE})")
        int batchSize;

        @Option(
                names = "--samples",
                paramLabel = "FILE",
                description =
                        "Write prompt, expected, reference and policy answers as JSON lines (the report reads samples.jsonl)")
        Path samples;

        @Option(
                names = "--json",
                description = "Print {\"win_rate\": x, \"ci95\": [lo, hi], \"wins\": n, \"losses\": n, \"ties\": n}")
        boolean json;

        @Mixin
        DataOptions dataOptions;

        @Spec
        picocli.CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() throws IOException {
            boolean byRewardModel = judge.startsWith("reward-model:") && judge.length() > "reward-model:".length();
            if (!List.of("exact", "contains").contains(judge) && !byRewardModel) {
                throw new IllegalArgumentException("--judge: exact, contains or reward-model:DIR, got '" + judge + "'");
            }
            if (batchSize <= 0 || maxNewTokens <= 0) {
                throw new IllegalArgumentException("--batch-size and --max-new-tokens: must be > 0");
            }
            try (PolicyReferenceOptions.Loaded m = models.load();
                    RewardJudge rj = byRewardModel ? RewardJudge.load(judge, models.device) : null) {
                TextTokenizer tk = m.tokenizer();
                PreferenceEncoder.Encoded enc =
                        dataOptions.encode(tk, dataOptions.load(models.data).examples());
                int n = limit > 0
                        ? Math.min(limit, enc.pairs().size())
                        : enc.pairs().size();
                if (n == 0) {
                    throw new IllegalArgumentException(
                            "--data: " + models.data + " has no pair to judge after encoding");
                }
                List<int[]> prompts = new ArrayList<>(n);
                List<String> expected = new ArrayList<>(n);
                for (int i = 0; i < n; i++) {
                    EncodedPair p = enc.pairs().get(i);
                    prompts.add(p.prompt());
                    expected.add(tk.decode(p.chosen(), true).trim());
                }
                GenerationConfig greedy = GenerationConfig.greedy(maxNewTokens);
                List<String> mine = WinRate.generateFromIds(m.policy(), tk, prompts, greedy, batchSize);
                List<String> theirs = WinRate.generateFromIds(m.reference(), tk, prompts, greedy, batchSize);
                boolean exact = "exact".equals(judge);
                List<WinRate.Judge.Verdict> verdicts = new ArrayList<>(n);
                List<RunReport.Sample> judged = new ArrayList<>(n);
                for (int i = 0; i < n; i++) {
                    String want = expected.get(i);
                    WinRate.Judge j = rj != null
                            ? rj.judge()
                            : WinRate.Judge.byScore((prompt, answer) ->
                                    (exact ? answer.trim().equals(want) : answer.contains(want)) ? 1 : 0);
                    // the reward model reads the prompt as the policy answered it (chat-templated, if it was)
                    verdicts.add(j.compare(tk.decode(prompts.get(i), false), mine.get(i), theirs.get(i)));
                    judged.add(new RunReport.Sample(
                            enc.kept().get(i).promptText(),
                            want,
                            null,
                            theirs.get(i).trim(),
                            mine.get(i).trim()));
                }
                if (samples != null) {
                    RunReport.writeSamples(samples, judged);
                }
                WinRate w = WinRate.of(verdicts);
                PrintWriter out = spec.commandLine().getOut();
                if (json) {
                    Map<String, Object> o = new LinkedHashMap<>();
                    o.put("win_rate", w.rate());
                    o.put("ci95", List.of(w.lower(), w.upper()));
                    o.put("wins", w.wins());
                    o.put("losses", w.losses());
                    o.put("ties", w.ties());
                    o.put("prompts", n);
                    out.println(Json.write(o));
                } else {
                    out.printf(
                            Locale.ROOT,
                            "win rate %.3f [%.3f, %.3f] over %d prompts: %d wins, %d losses, %d ties (judge: %s)%n",
                            w.rate(),
                            w.lower(),
                            w.upper(),
                            n,
                            w.wins(),
                            w.losses(),
                            w.ties(),
                            byRewardModel ? judge : judge + " chosen answer");
                }
                out.flush();
            }
            return 0;
        }
    }

    /** A reward model and its tokenizer as a win-rate judge; closes both. */
    record RewardJudge(CausalLm model, TextTokenizer tokenizer, WinRate.Judge judge) implements AutoCloseable {
        static RewardJudge load(String spec, String device) {
            Path dir = ModelFolder.resolve(Path.of(spec.substring("reward-model:".length())));
            if (!Files.isDirectory(dir)) {
                throw new IllegalArgumentException("--judge: " + dir + " is not a model folder");
            }
            TextTokenizer tk = TextTokenizer.load(dir);
            CausalLm rm = null;
            try {
                rm = CausalLm.load(dir, Devices.resolve(device));
                rm.setTrainable(false);
                WinRate.Judge judge;
                try {
                    judge = WinRate.Judge.byRewardModel(rm, tk);
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException("--judge: " + e.getMessage(), e);
                }
                return new RewardJudge(rm, tk, judge);
            } catch (RuntimeException e) {
                if (rm != null) {
                    rm.close();
                }
                tk.close();
                throw e;
            }
        }

        @Override
        public void close() {
            model.close();
            tokenizer.close();
        }
    }

    /** The IPO paper's bandit (Figure 1). */
    @Command(
            name = "bandit",
            mixinStandardHelpOptions = true,
            description = {
                "DPO and IPO on a three-action bandit with preferences {a≻b, b≻c, a≻c} and a uniform reference",
                "(Azar et al., 2023, Figure 1). DPO goes to the deterministic policy for every β; IPO stops at a β-dependent optimum."
            })
    static final class BanditCommand implements Callable<Integer> {
        @Option(
                names = "--betas",
                defaultValue = "0.1,0.5,1",
                split = ",",
                description = "β values (default: ${DEFAULT-VALUE})")
        List<Double> betas;

        @Option(
                names = "--methods",
                defaultValue = "dpo,ipo",
                split = ",",
                description = "Losses to compare (default: ${DEFAULT-VALUE})")
        List<String> methods;

        @Option(
                names = "--steps",
                defaultValue = "" + Bandit.DEFAULT_STEPS,
                description = "Gradient steps (default: ${DEFAULT-VALUE})")
        int steps;

        @Option(
                names = "--learning-rate",
                defaultValue = "" + Bandit.DEFAULT_LEARNING_RATE,
                description = "Step size of gradient descent on the logits (default: ${DEFAULT-VALUE})")
        double learningRate;

        @Option(
                names = "--output",
                paramLabel = "DIR",
                description = "Write curves.csv, bandit.png and bandit.html here")
        Path output;

        @Option(
                names = "--json",
                description =
                        "Print {\"dpo\": {\"0.1\": {\"pi\": [pa, pb, pc], \"steps\": n, \"converged\": false}, ...}, \"ipo\": {...}}")
        boolean json;

        @Spec
        picocli.CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() throws IOException {
            if (steps <= 0) {
                throw new IllegalArgumentException("--steps: must be > 0, got " + steps);
            }
            for (double b : betas) {
                if (!(b > 0)) {
                    throw new IllegalArgumentException("--betas: each β must be > 0, got " + b);
                }
            }
            List<Bandit.Curve> curves = new ArrayList<>();
            Map<String, Map<String, Map<String, Object>>> finals = new LinkedHashMap<>();
            for (String method : methods) {
                for (double beta : betas) {
                    Bandit.Curve c = Bandit.train(method.trim(), beta, steps, learningRate, Math.max(1, steps / 200));
                    curves.add(c);
                    Map<String, Object> f = new LinkedHashMap<>();
                    f.put("pi", c.last());
                    f.put("steps", c.steps()[c.steps().length - 1]);
                    f.put("converged", c.converged());
                    finals.computeIfAbsent(method.trim(), k -> new LinkedHashMap<>())
                            .put(betaKey(beta), f);
                }
            }
            PrintWriter w = spec.commandLine().getOut();
            if (json) {
                w.println(Json.write(finals));
            } else {
                for (Bandit.Curve c : curves) {
                    double[] p = c.last();
                    w.printf(
                            Locale.ROOT,
                            "%-4s β=%-5s π(a)=%.6f π(b)=%.6f π(c)=%.6f %s after %d steps",
                            c.method(),
                            betaKey(c.beta()),
                            p[0],
                            p[1],
                            p[2],
                            c.converged() ? "at a minimum" : "still moving",
                            c.steps()[c.steps().length - 1]);
                    if (c.method().startsWith("ipo")) {
                        double[] q = Bandit.ipoClosedForm(c.beta());
                        w.printf(Locale.ROOT, "   closed form %.6f %.6f %.6f", q[0], q[1], q[2]);
                    }
                    w.println();
                }
            }
            if (output != null) {
                Path html = BanditReport.write(curves, output);
                if (!json) {
                    w.println("wrote " + output.resolve("curves.csv") + ", " + output.resolve("bandit.png") + " and "
                            + html);
                }
            }
            w.flush();
            return 0;
        }

        /** "0.1", "0.5", "1": the shortest text of the number. */
        static String betaKey(double beta) {
            return BigDecimal.valueOf(beta).stripTrailingZeros().toPlainString();
        }
    }

    /** Charts and an HTML page of one or more training runs. */
    @Command(
            name = "report",
            mixinStandardHelpOptions = true,
            description = {
                "Charts of the logged metrics (several runs overlaid) and one self-contained HTML page:",
                "final numbers, charts, sample generations (from samples.jsonl) and each run's config."
            })
    static final class Report implements Callable<Integer> {
        @Parameters(
                arity = "1..*",
                paramLabel = "RUN_DIR",
                description = "Training run folders (each with metrics.jsonl)")
        List<Path> runs;

        @Option(
                names = "--output",
                required = true,
                paramLabel = "DIR",
                description = "Where index.html and charts/ go")
        Path output;

        @Option(names = "--title", description = "Page title (default: the run names)")
        String title;

        @Option(
                names = "--samples",
                defaultValue = "0",
                description =
                        "First write RUN_DIR/samples.jsonl: greedy answers of final/ and of the reference to N held-out prompts")
        int samples;

        @Option(
                names = "--max-new-tokens",
                defaultValue = "64",
                description = "With --samples: longest answer (default: ${DEFAULT-VALUE})")
        int maxNewTokens;

        @Spec
        picocli.CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() throws IOException {
            Flags.refuseUnless(spec, samples > 0, "without --samples N", "--max-new-tokens");
            List<RunReport.Run> read = new ArrayList<>();
            for (Path r : runs) {
                if (samples > 0) {
                    RunSamples.write(r, samples, maxNewTokens);
                }
                read.add(RunReport.read(r));
            }
            String t = title != null
                    ? title
                    : "align4j: "
                            + String.join(
                                    " vs ",
                                    read.stream().map(RunReport.Run::name).toList());
            Path html = RunReport.write(read, output, t, "", Map.of());
            spec.commandLine().getOut().println("wrote " + html);
            spec.commandLine().getOut().flush();
            return 0;
        }
    }
}
