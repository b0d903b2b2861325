package org.align4j.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import org.align4j.losses.LossType;
import org.align4j.model.config.ModelConfig;
import org.align4j.model.io.ModelFolder;
import org.align4j.model.tokenizer.TextTokenizer;
import org.align4j.trainer.CpoConfig;
import org.align4j.trainer.KtoConfig;
import org.align4j.trainer.KtoTrainer;
import org.align4j.trainer.ReferenceFreeTrainer;
import org.align4j.trainer.RunFolder;
import org.align4j.trainer.TrainConfig;
import org.align4j.trainer.TrainResult;
import org.align4j.trainer.TrainingLoop;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * The objectives TRL trains with trainers of their own, each an align4j command as TRL's CLI has {@code trl
 * kto}: {@code align4j kto} (TRL's {@code KTOTrainer}), {@code align4j orpo} and {@code align4j cpo} (its
 * experimental {@code ORPOTrainer} and {@code CPOTrainer}). They are commands rather than values of {@code
 * train --loss} because their data, options and {@code loss_type} vocabularies are their own: KTO reads
 * labelled completions and has no pairs' loss types; CPO's {@code sigmoid}, {@code hinge}, {@code ipo} and
 * {@code simpo} are reference-free and mean something other than {@code train}'s; ORPO's {@code beta} is a
 * weight, not a temperature. The flags are the shared training flags ({@link TrainOptions}) plus the
 * method's own ({@link KtoConfig#KEYS}, {@link CpoConfig#KEYS}); one YAML file may hold both, with TRL's
 * names.
 */
abstract class OwnTrainerCommand implements Callable<Integer> {
    @Mixin
    TrainOptions options;

    @Spec
    CommandSpec spec;

    /** @return KTO, ORPO or CPO */
    abstract LossType method();

    /**
     * Adds the method's own flags (before the shared ones, so that their help is the method's), then the
     * shared ones.
     *
     * @param spec the command
     * @param options its options object
     * @param method KTO, ORPO or CPO
     */
    static void register(CommandSpec spec, TrainOptions options, LossType method) {
        Set<String> taken = TrainOptions.takenNames(spec);
        Map<String, String> keys = switch (method) {
            case KTO -> KtoConfig.KEYS;
            case CPO -> CpoConfig.KEYS;
            default -> Map.of();
        };
        Map<String, Object> defaults = switch (method) {
            case KTO -> KtoConfig.defaults().toMap();
            case CPO -> CpoConfig.defaults().toMap();
            default -> Map.of();
        };
        if (method == LossType.ORPO) {
            spec.addOption(options.option(
                    List.of("--beta"),
                    false,
                    "X",
                    "Weight lambda of the odds-ratio term (TRL's beta; default: 0.1)",
                    "beta",
                    taken));
        }
        for (Map.Entry<String, String> k : keys.entrySet()) {
            String key = k.getKey();
            spec.addOption(
                    key.equals("unpair_preference_dataset")
                            ? options.keyOption(key, k.getValue(), defaults.get(key), taken, "--unpair")
                            : options.keyOption(key, k.getValue(), defaults.get(key), taken));
        }
        TrainOptions.register(spec, options, method);
    }

    @Override
    public Integer call() throws Exception {
        PrintWriter err = spec.commandLine().getErr();
        if (!options.dryRun) {
            Integer relaunched = Processes.relaunch(
                    options.nproc,
                    options.threads,
                    spec.commandLine().getParseResult().originalArgs(),
                    "align4j " + method());
            if (relaunched != null) {
                return relaunched;
            }
        }
        switch (method()) {
            case KTO -> {
                KtoConfig.Run run = options.resolveKto();
                KtoTrainer.check(run);
                if (options.dryRun) {
                    dryRun(spec.commandLine().getOut(), run);
                    return 0;
                }
                RunFolder folder = start(run.train());
                try (KtoTrainer t = KtoTrainer.create(run, folder, new RunConsole(method().toString()))) {
                    return train(t, err);
                }
            }
            case ORPO, CPO -> {
                TrainConfig config;
                CpoConfig cpo = null;
                if (method() == LossType.CPO) {
                    CpoConfig.Run run = options.resolveCpo();
                    config = run.train();
                    cpo = run.cpo();
                } else {
                    config = options.resolveOrpo();
                }
                ReferenceFreeTrainer.check(config, cpo);
                if (options.dryRun) {
                    dryRun(spec.commandLine().getOut(), config, cpo);
                    return 0;
                }
                RunFolder folder = start(config);
                try (ReferenceFreeTrainer t = ReferenceFreeTrainer.create(config, cpo, folder)) {
                    t.addListener(new RunConsole(method().toString()));
                    return train(t, err);
                }
            }
            default -> throw new IllegalStateException(method().toString());
        }
    }

    private RunFolder start(TrainConfig config) throws IOException {
        Threads.apply(options.threads, null);
        RunFolder folder = RunFolder.claim(config, options.mode());
        RunConsole.logTo(folder.output());
        RunConsole.resumed(spec.commandLine().getErr(), folder);
        TrainCommand.warnTf32(config, spec.commandLine().getErr());
        return folder;
    }

    /** Trains with the console already listening (given where the trainer is made, to hear its preparation). */
    private int train(TrainingLoop t, PrintWriter err) throws IOException {
        RunConsole.header(err, t.header());
        TrainResult r = t.train();
        RunConsole.summary(spec.commandLine().getOut(), r);
        return 0;
    }

    /** {@code kto --dry-run}: both configs, the model's shape, the examples' counts and lengths, the first one. */
    private static void dryRun(PrintWriter w, KtoConfig.Run run) {
        TrainConfig config = run.train();
        w.println("# the resolved config (what OUTPUT/config.yaml will hold, with the method's keys below)");
        w.print(config.toYaml());
        run.kto().toMap().forEach((k, v) -> w.println(k + ": " + v));
        Path modelDir = ModelFolder.resolve(Path.of(config.model()));
        printModel(w, modelDir);
        try (TextTokenizer tk = TextTokenizer.load(modelDir)) {
            KtoTrainer.Examples[] data = KtoTrainer.load(run, tk);
            KtoTrainer.Examples train = data[0];
            w.printf(
                    Locale.ROOT,
                    "%n# training data: %s: %d examples (%d desirable, %d undesirable), %d held out%n",
                    config.data(),
                    train.size(),
                    train.desirableCount(),
                    train.size() - train.desirableCount(),
                    data[1].size());
            w.println("tokens            p50     p90     p99     max");
            DataCommand.Inspect.row(
                    w,
                    "prompt",
                    train.pairs().stream().mapToInt(p -> p.prompt().length).toArray());
            DataCommand.Inspect.row(
                    w,
                    "completion",
                    train.pairs().stream().mapToInt(p -> p.chosen().length).toArray());
            var first = train.pairs().get(0);
            w.printf(
                    "%n[0] %s (%s)%n  prompt_text:%n%s%n  prompt_ids: %s%n  completion_text:%n%s%n  completion_ids: %s%n",
                    train.sources().get(0),
                    train.desirable()[0] ? "desirable" : "undesirable",
                    DataCommand.Inspect.indent(tk.decode(first.prompt(), false)),
                    Arrays.toString(first.prompt()),
                    DataCommand.Inspect.indent(tk.decode(first.chosen(), false)),
                    Arrays.toString(first.chosen()));
            if (first.rejected().length > 0) {
                w.printf(
                        "  KL completion (the last example's of its batch):%n%s%n",
                        DataCommand.Inspect.indent(tk.decode(first.rejected(), false)));
            }
        }
        w.flush();
    }

    /** {@code orpo --dry-run} and {@code cpo --dry-run}: the configs, the model, the pairs' lengths, the first pair. */
    private static void dryRun(PrintWriter w, TrainConfig config, CpoConfig cpo) {
        w.println("# the resolved config (what OUTPUT/config.yaml will hold"
                + (cpo == null ? ")" : ", with the method's keys below)"));
        w.print(config.toYaml());
        if (cpo != null) {
            cpo.toMap().forEach((k, v) -> w.println(k + ": " + v));
        }
        Path modelDir = ModelFolder.resolve(Path.of(config.model()));
        printModel(w, modelDir);
        try (TextTokenizer tk = TextTokenizer.load(modelDir)) {
            ReferenceFreeTrainer.Pairs pairs = ReferenceFreeTrainer.pairs(config, tk);
            w.printf(
                    Locale.ROOT,
                    "%n# training data: %s: %d pairs, %d held out (TRL's experimental tokenization: bos + prompt,"
                            + " each response + eos)%n",
                    config.data(),
                    pairs.train().size(),
                    pairs.eval().size());
            w.println("tokens            p50     p90     p99     max");
            DataCommand.Inspect.row(
                    w,
                    "prompt",
                    pairs.train().stream().mapToInt(p -> p.prompt().length).toArray());
            DataCommand.Inspect.row(
                    w,
                    "chosen",
                    pairs.train().stream().mapToInt(p -> p.chosen().length).toArray());
            DataCommand.Inspect.row(
                    w,
                    "rejected",
                    pairs.train().stream().mapToInt(p -> p.rejected().length).toArray());
            var first = pairs.train().get(0);
            w.printf("%n[0] %s%n", pairs.trainSources().get(0));
            for (String part : List.of("prompt", "chosen", "rejected")) {
                int[] ids = part.equals("prompt")
                        ? first.prompt()
                        : part.equals("chosen") ? first.chosen() : first.rejected();
                w.printf(
                        "  %s_text:%n%s%n  %s_ids: %s%n",
                        part, DataCommand.Inspect.indent(tk.decode(ids, false)), part, Arrays.toString(ids));
            }
        }
        w.flush();
    }

    private static void printModel(PrintWriter w, Path modelDir) {
        ModelConfig m = ModelConfig.read(modelDir.resolve("config.json"));
        w.printf(
                Locale.ROOT,
                "%n# model: %s, %d layers, width %d, vocabulary %d, %d positions%n",
                m.modelType(),
                m.numLayers(),
                m.hiddenSize(),
                m.vocabSize(),
                m.maxPositions());
    }

    /** KTO. */
    @Command(
            name = "kto",
            mixinStandardHelpOptions = true,
            sortOptions = false,
            abbreviateSynopsis = true,
            header = "KTO on unpaired feedback: a thumbs up or down on one completion.",
            description = {
                "Kahneman-Tversky Optimization (TRL's KTOTrainer) on records",
                "{\"prompt\": ..., \"completion\": ..., \"label\": true|false} (strings or message",
                "lists), against a reference policy as train's. With",
                "--unpair-preference-dataset, preference pairs: each a desirable and an",
                "undesirable completion. The data are taken in order: each example's KL",
                "estimate reads the previous example's completion. Writes OUTPUT/ as train."
            })
    static final class Kto extends OwnTrainerCommand {
        @Override
        LossType method() {
            return LossType.KTO;
        }
    }

    /** ORPO. */
    @Command(
            name = "orpo",
            mixinStandardHelpOptions = true,
            sortOptions = false,
            abbreviateSynopsis = true,
            header = "ORPO: SFT and an odds-ratio preference term in one loss, no reference model.",
            description = {
                "Odds Ratio Preference Optimization (TRL's experimental ORPOTrainer) on",
                "preference pairs: the chosen sequences' NLL minus beta times the mean",
                "log-sigmoid of the log odds ratio of chosen over rejected. Reference-free:",
                "one model in memory. Writes OUTPUT/ as train does."
            })
    static final class Orpo extends OwnTrainerCommand {
        @Override
        LossType method() {
            return LossType.ORPO;
        }
    }

    /** CPO. */
    @Command(
            name = "cpo",
            mixinStandardHelpOptions = true,
            sortOptions = false,
            abbreviateSynopsis = true,
            header = "CPO: a reference-free preference loss plus a BC term (SimPO, AlphaPO).",
            description = {
                "Contrastive Preference Optimization (TRL's experimental CPOTrainer) on",
                "preference pairs: --loss-type sigmoid, hinge, ipo or simpo on the policy's",
                "own margin, plus cpo_alpha times the chosen completions' NLL. SimPO:",
                "--loss-type simpo --cpo-alpha 0 (--simpo-gamma); AlphaPO: --alpha A.",
                "Reference-free: one model in memory. Writes OUTPUT/ as train does."
            })
    static final class Cpo extends OwnTrainerCommand {
        @Override
        LossType method() {
            return LossType.CPO;
        }
    }
}
