package org.align4j.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import org.align4j.data.DataException;
import org.align4j.data.EncodedPair;
import org.align4j.data.PreferenceEncoder;
import org.align4j.data.PreferenceExample;
import org.align4j.data.PreferenceParser;
import org.align4j.data.TokenBudget;
import org.align4j.data.io.RawRecord;
import org.align4j.data.io.RecordReader;
import org.align4j.evaluation.RewardScorer;
import org.align4j.losses.BradleyTerryLoss;
import org.align4j.losses.LossType;
import org.align4j.model.CausalLm;
import org.align4j.model.Devices;
import org.align4j.model.io.AtomicDirectory;
import org.align4j.model.tokenizer.TextTokenizer;
import org.align4j.trainer.RewardTrainer;
import org.align4j.trainer.RunFolder;
import org.align4j.trainer.TrainConfig;
import org.align4j.trainer.TrainResult;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** Reward models: the first stage of RLHF, a judge of answers, and soft preference labels. */
@Command(
        name = "reward",
        mixinStandardHelpOptions = true,
        header = "Reward models: train one, score pairs, label pairs with preference probabilities.",
        description = {
            "Reward models (Bradley-Terry, as TRL's RewardTrainer): train one on preference pairs, score pairs with it,",
            "or label pairs with its preference probability p = sigmoid((r_c - r_r)/T) for ipo-soft and soft-label DPO."
        },
        subcommands = {RewardCommand.Train.class, RewardCommand.Score.class, RewardCommand.Label.class})
final class RewardCommand implements Runnable {
    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    /** Trains a reward model. */
    @Command(
            name = "train",
            mixinStandardHelpOptions = true,
            sortOptions = false,
            abbreviateSynopsis = true,
            description = {
                "Train a reward model on preference pairs: the model (a causal LM gets a new score head, or a reward model",
                "continues) scores prompt + response; loss -log sigmoid(r_c - r_r - margin). Same data, YAML, resume and eval as train;",
                "OUTPUT/final/ is an HF sequence classifier (AutoModelForSequenceClassification)."
            })
    static final class Train implements Callable<Integer> {
        @Mixin
        TrainOptions options;

        @Spec
        picocli.CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() throws Exception {
            TrainConfig config = options.resolve(Map.of("loss", LossType.REWARD));
            if (options.dryRun) {
                DryRun.print(spec.commandLine().getOut(), config);
                return 0;
            }
            Integer relaunched = Processes.relaunch(
                    options.nproc,
                    options.threads,
                    spec.commandLine().getParseResult().originalArgs(),
                    "align4j reward train");
            if (relaunched != null) {
                return relaunched;
            }
            Threads.apply(options.threads, null);
            RunFolder folder = RunFolder.claim(config, options.mode());
            RunConsole.logTo(folder.output());
            RunConsole.resumed(spec.commandLine().getErr(), folder);
            TrainCommand.warnTf32(config, spec.commandLine().getErr());
            try (RewardTrainer trainer = RewardTrainer.create(config, folder)) {
                RunConsole.header(spec.commandLine().getErr(), trainer.header());
                trainer.addListener(new RunConsole("reward"));
                TrainResult r = trainer.train();
                RunConsole.summary(spec.commandLine().getOut(), r);
            }
            return 0;
        }
    }

    /** What score and label share: the reward model, the data, and how they are read. */
    static final class ScoringOptions {
        @Option(
                names = "--model",
                required = true,
                paramLabel = "RM",
                description = "The reward model (an HF sequence-classifier folder)")
        Path model;

        @Option(
                names = "--data",
                required = true,
                paramLabel = "PATH",
                description = "Preference pairs (file or folder; any format train reads)")
        Path data;

        @Option(
                names = "--batch-size",
                defaultValue = "16",
                description = "At most this many pairs per forward pass (default: ${DEFAULT-VALUE})")
        int batchSize;

        @Option(
                names = "--max-batch-tokens",
                defaultValue = "" + TokenBudget.DEFAULT_MAX_TOKENS,
                paramLabel = "N",
                description = {
                    "At most N padded positions per forward pass (both rows of every pair, padded to the longest):",
                    "pairs are taken longest first, so memory stays bounded on mixed lengths; a longer pair goes alone",
                    "(default: ${DEFAULT-VALUE}). Output keeps the input order."
                })
        int maxBatchTokens;

        @Option(
                names = "--device",
                defaultValue = "cpu",
                paramLabel = "cpu|gpu",
                description = "Where to run (default: ${DEFAULT-VALUE})")
        String device;

        @Option(names = "--threads", paramLabel = "N", description = "CPU threads for libtorch (default: all cores)")
        Integer threads;

        @Mixin
        DataOptions dataOptions;

        /**
         * Every pair of the data with its source record and rewards.
         *
         * @param spec the command, to refuse flags that would change nothing
         * @param output the output file, whose journal ({@link ScoreJournal}) keeps the rewards as they are
         *     scored and lets a stopped run resume; null (the console) for none
         * @return the scored pairs, and what was skipped or dropped
         */
        Scored score(picocli.CommandLine.Model.CommandSpec spec, Path output) {
            Flags.refuseUnless(
                    spec,
                    false,
                    "for a reward model: it reads whole sequences, and --max-length drops a longer pair",
                    "--max-prompt-length",
                    "--truncation");
            if (batchSize <= 0) {
                throw new IllegalArgumentException("--batch-size: must be > 0, got " + batchSize);
            }
            if (maxBatchTokens <= 0) {
                throw new IllegalArgumentException("--max-batch-tokens: must be > 0, got " + maxBatchTokens);
            }
            Threads.apply(threads, null);
            List<RawRecord> raws = new ArrayList<>();
            List<DataException> invalid = new ArrayList<>();
            RecordReader.read(data, raws::add, m -> {
                DataException e = new DataException(m.file(), m.line(), null, m.message());
                if (!dataOptions.skipInvalid) {
                    throw e;
                }
                invalid.add(e);
            });
            PreferenceParser parser = new PreferenceParser(dataOptions.dataFormat());
            List<PreferenceExample> examples = new ArrayList<>();
            Map<String, RawRecord> bySource = new HashMap<>();
            for (RawRecord r : raws) {
                try {
                    examples.add(parser.parse(r));
                    bySource.put(r.file() + ":" + r.line(), r);
                } catch (DataException e) {
                    if (!dataOptions.skipInvalid) {
                        throw e;
                    }
                    invalid.add(e);
                }
            }
            if (examples.isEmpty()) {
                throw new IllegalArgumentException("--data: " + data + " has no valid preference pair");
            }
            try (TextTokenizer tk = TextTokenizer.load(model);
                    CausalLm rm = CausalLm.load(model, Devices.resolve(device))) {
                if (!rm.isRewardModel()) {
                    throw new IllegalArgumentException(
                            "--model: " + model + " is a causal LM, not a reward model (its config.json names no"
                                    + " *ForSequenceClassification); train one with align4j reward train");
                }
                rm.setTrainable(false);
                PreferenceEncoder.Encoded enc = new PreferenceEncoder(tk, dataOptions.encodingOptions())
                        .encodeAll(examples, dataOptions.skipInvalid, PreferenceEncoder.Target.REWARD_MODEL);
                invalid.addAll(enc.invalid());
                if (enc.kept().isEmpty()) {
                    // nothing to score: say why before anything is written (a summary of no pairs has no meaning)
                    throw new IllegalArgumentException(
                            enc.dropped() > 0
                                    ? "--max-length: all " + enc.dropped() + " pair(s) are longer than --max-length "
                                            + dataOptions.maxLength + "; nothing to score (raise --max-length)"
                                    : "--data: no pair to score (" + invalid.size() + " invalid record(s) skipped)");
                }
                List<String> sources = new ArrayList<>();
                List<RawRecord> records = new ArrayList<>();
                for (PreferenceExample e : enc.kept()) {
                    sources.add(e.file().getFileName() + ":" + e.line());
                    records.add(bySource.get(e.file() + ":" + e.line()));
                }
                EncodedPair.checkFits(rm.config(), enc.pairs(), sources);
                int padId = RewardScorer.padId(rm, tk.padId());
                List<RewardScorer.PairRewards> rewards = ScoreJournal.scoreAll(
                        spec.name(),
                        output,
                        ScoreJournal.REWARDS,
                        new RewardScorer.PairRewards[sources.size()],
                        this::journalHeader,
                        sources,
                        spec.commandLine().getErr(),
                        (known, listener) ->
                                RewardScorer.score(rm, enc.pairs(), batchSize, maxBatchTokens, padId, known, listener));
                return new Scored(records, sources, rewards, enc.dropped(), invalid);
            }
        }

        /** What a journal's rewards depend on: the model, the data as read and encoded. */
        private Map<String, Object> journalHeader() {
            Map<String, Object> h = new LinkedHashMap<>();
            h.put("model", model.toAbsolutePath().normalize().toString());
            ScoreJournal.putDataFile(h, data);
            h.put("format", dataOptions.dataFormat().toString());
            h.put("encoding", dataOptions.encodingOptions().toString());
            return h;
        }

        /** A note on stderr about pairs not scored, or nothing. */
        void noteSkipped(PrintWriter err, Scored s) {
            if (s.dropped() > 0) {
                err.printf(
                        "note: %d pair(s) longer than --max-length %d were not scored%n",
                        s.dropped(), dataOptions.maxLength);
            }
            if (!s.invalid().isEmpty()) {
                err.printf(
                        "note: %d invalid record(s) skipped; first: %s%n",
                        s.invalid().size(), s.invalid().get(0).getMessage());
            }
            err.flush();
        }
    }

    /**
     * Pairs scored by a reward model.
     *
     * @param records each pair's record as read
     * @param sources each pair's file:line
     * @param rewards each pair's rewards
     * @param dropped pairs longer than --max-length
     * @param invalid records skipped with --skip-invalid
     */
    record Scored(
            List<RawRecord> records,
            List<String> sources,
            List<RewardScorer.PairRewards> rewards,
            int dropped,
            List<DataException> invalid) {
        /** @return TRL's metrics over the pairs: accuracy, margin, min/mean/max reward, mean chosen and rejected reward */
        Map<String, Object> summary() {
            double[] c = rewards.stream()
                    .mapToDouble(RewardScorer.PairRewards::chosen)
                    .toArray();
            double[] r = rewards.stream()
                    .mapToDouble(RewardScorer.PairRewards::rejected)
                    .toArray();
            double[] m = BradleyTerryLoss.metrics(c, r);
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("pairs", rewards.size());
            for (int i = 0; i < m.length; i++) {
                o.put(BradleyTerryLoss.METRIC_NAMES.get(i), m[i]);
            }
            return o;
        }
    }

    /** Rewards of every pair. */
    @Command(
            name = "score",
            mixinStandardHelpOptions = true,
            description = {
                "Score every pair with a reward model: one JSON line per pair (source, chosen_reward, rejected_reward,",
                "reward_margin), then TRL's metrics over the pairs (accuracy, margin, min/mean/max reward)."
            })
    static final class Score implements Callable<Integer> {
        @Mixin
        ScoringOptions scoring;

        @Option(
                names = "--output",
                paramLabel = "FILE",
                description = {
                    "Write the JSON lines here (default: the console, with the summary on stderr). Rewards are kept in",
                    "FILE.partial as they are scored: a stopped run started again resumes from it"
                })
        Path output;

        @Spec
        picocli.CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() throws IOException {
            if (output != null) {
                OutputFile.check("--output", output, "--data", scoring.data);
            }
            Scored s = scoring.score(spec, output);
            StringBuilder lines = new StringBuilder();
            for (int i = 0; i < s.rewards().size(); i++) {
                RewardScorer.PairRewards r = s.rewards().get(i);
                Map<String, Object> o = new LinkedHashMap<>();
                o.put("source", s.sources().get(i));
                o.put("chosen_reward", r.chosen());
                o.put("rejected_reward", r.rejected());
                o.put("reward_margin", r.margin());
                lines.append(Json.write(o)).append('\n');
            }
            PrintWriter out = spec.commandLine().getOut();
            PrintWriter err = spec.commandLine().getErr();
            String summary = Json.write(s.summary());
            if (output != null) {
                AtomicDirectory.writeFile(output, lines.toString().getBytes(StandardCharsets.UTF_8));
                ScoreJournal.remove(output);
                out.println(summary);
            } else {
                out.print(lines);
                err.println(summary);
            }
            out.flush();
            scoring.noteSkipped(err, s);
            return 0;
        }
    }

    /** Soft labels: each pair with the reward model's preference probability. */
    @Command(
            name = "label",
            mixinStandardHelpOptions = true,
            description = {
                "Label every pair with the reward model's preference probability p = sigmoid((r_c - r_r)/T): each record as read,",
                "plus 'preference' (what ipo-soft and soft-label DPO read), 'reward_chosen' and 'reward_rejected', as JSON lines."
            })
    static final class Label implements Callable<Integer> {
        @Mixin
        ScoringOptions scoring;

        @Option(
                names = "--output",
                required = true,
                paramLabel = "FILE",
                description = {
                    "The labelled pairs (JSON lines). Rewards are kept in FILE.partial as they are scored: a stopped",
                    "run started again resumes from it"
                })
        Path output;

        @Option(
                names = "--temperature",
                defaultValue = "1",
                paramLabel = "T",
                description =
                        "T > 0: 1 is the Bradley-Terry probability the model was trained for; above 1 softer, below sharper (default: ${DEFAULT-VALUE})")
        double temperature;

        @Spec
        picocli.CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() throws IOException {
            if (!(temperature > 0) || Double.isInfinite(temperature)) {
                throw new IllegalArgumentException("--temperature: must be a finite number > 0, got " + temperature);
            }
            OutputFile.check("--output", output, "--data", scoring.data);
            Scored s = scoring.score(spec, output);
            StringBuilder lines = new StringBuilder();
            double sum = 0;
            for (int i = 0; i < s.rewards().size(); i++) {
                RewardScorer.PairRewards r = s.rewards().get(i);
                ObjectNode o = ((ObjectNode) s.records().get(i).value()).deepCopy();
                double p = r.preference(temperature);
                sum += p;
                o.put("preference", p);
                o.put("reward_chosen", r.chosen());
                o.put("reward_rejected", r.rejected());
                lines.append(Json.write(o)).append('\n');
            }
            AtomicDirectory.writeFile(output, lines.toString().getBytes(StandardCharsets.UTF_8));
            ScoreJournal.remove(output);
            PrintWriter out = spec.commandLine().getOut();
            out.printf(
                    Locale.ROOT,
                    "wrote %d pairs to %s: mean p %.4f at temperature %s; %s%n",
                    s.rewards().size(),
                    output,
                    sum / s.rewards().size(),
                    TrainConfig.defaultFormat(temperature),
                    Json.write(s.summary()));
            out.flush();
            scoring.noteSkipped(spec.commandLine().getErr(), s);
            return 0;
        }
    }
}
