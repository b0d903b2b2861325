package org.align4j.cli;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.align4j.data.EncodedPair;
import org.align4j.data.PreferenceEncoder;
import org.align4j.data.TokenBudget;
import org.align4j.evaluation.PairScorer;
import org.align4j.model.CausalLm;
import org.align4j.model.LogProbs;
import org.align4j.model.io.AtomicDirectory;
import org.align4j.model.tokenizer.TextTokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** Scores completions: one prompt/completion, or every pair of a preference dataset. */
@Command(
        name = "logprobs",
        mixinStandardHelpOptions = true,
        header = "Score completions by their log-probabilities under a model.",
        description = {
            "Log-probability of a completion after a prompt (the completion is scored as its tokens plus one eos),",
            "or, with --data, of the chosen and rejected completions of every pair (one JSON line per pair)."
        })
final class LogprobsCommand implements Callable<Integer> {
    @Mixin
    ModelOptions modelOptions;

    @Option(
            names = "--prompt",
            description =
                    "Prompt text, with the tokenizer's special tokens (a bos for Llama-3) as training encodes a plain prompt")
    String prompt;

    @Option(names = "--completion", description = "Completion text to score")
    String completion;

    @Option(names = "--data", paramLabel = "PATH", description = "Score every pair of this dataset (file or folder)")
    Path data;

    @Option(
            names = "--output",
            paramLabel = "FILE",
            description =
                    "With --data: write the JSON lines here (default: stdout); the scores are kept in FILE.partial "
                            + "as they come, and a stopped run started again resumes from it")
    Path output;

    @Option(
            names = "--batch-size",
            defaultValue = "8",
            description =
                    "With --data: at most this many pairs per forward pass, and at most "
                            + TokenBudget.DEFAULT_MAX_TOKENS
                            + " padded positions (pairs taken longest first; output in input order) (default: ${DEFAULT-VALUE})")
    int batchSize;

    @Mixin
    DataOptions dataOptions;

    @Option(names = "--no-eos", description = "Do not append eos to the completion")
    boolean noEos;

    @Option(names = "--json", description = "Print {\"logps\": sum, \"logps_mean\": mean, \"tokens\": n}")
    boolean json;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws IOException {
        Flags.refuseUnless(
                spec,
                data == null,
                "with --data, whose pairs are encoded as training encodes them (one eos per completion)",
                "--no-eos");
        Flags.refuseUnless(
                spec,
                data != null,
                "without --data",
                "--output",
                "--batch-size",
                "--format",
                "--skip-invalid",
                "--max-length",
                "--max-prompt-length",
                "--truncation",
                "--chat-template");
        if (data != null) {
            if (prompt != null || completion != null) {
                throw new IllegalArgumentException(
                        "--data: give either --data or --prompt with --completion, not both");
            }
            return scoreDataset();
        }
        if (prompt == null || completion == null) {
            throw new IllegalArgumentException("--prompt and --completion: both are needed (or --data PATH)");
        }
        try (TextTokenizer tk = modelOptions.loadTokenizer();
                CausalLm lm = modelOptions.loadModel();
                NDManager m = lm.manager().newSubManager()) {
            // as training encodes a plain pair: the prompt with the tokenizer's special tokens, the completion apart
            int[] p = tk.encodeWithSpecialTokens(prompt);
            int[] c = tk.encode(completion);
            if (p.length == 0) {
                throw new IllegalArgumentException(
                        "--prompt: encodes to no tokens; the first completion token needs a prompt token before it");
            }
            // one eos after the completion, unless its text already ends with one (as TRL appends it only when missing)
            boolean eos = !noEos && (c.length == 0 || c[c.length - 1] != tk.eosId());
            if (!noEos && tk.eosId() < 0) {
                throw new IllegalArgumentException("--model: the tokenizer names no eos token; pass --no-eos");
            }
            int n = p.length + c.length + (eos ? 1 : 0);
            if (n == p.length) {
                throw new IllegalArgumentException("--completion: encodes to no tokens");
            }
            long[] ids = new long[n];
            int[] row = new int[n];
            long[] completionMask = new long[n];
            for (int i = 0; i < n; i++) {
                row[i] = i < p.length ? p[i] : i < p.length + c.length ? c[i - p.length] : tk.eosId();
                ids[i] = row[i];
                completionMask[i] = i < p.length ? 0 : 1;
            }
            if (lm.config() != null) {
                lm.config().problemWith(row).ifPresent(problem -> {
                    throw new IllegalArgumentException("--prompt and --completion: " + problem);
                });
            }
            NDArray idArr = m.create(ids, new Shape(1, n));
            NDArray mask = idArr.onesLike();
            LogProbs lp = lm.completionLogProbs(idArr, mask, m.create(completionMask, new Shape(1, n)), false);
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("logps", (double) lp.sum().getFloat(0));
            out.put("logps_mean", (double) lp.mean().getFloat(0));
            out.put("tokens", (int) lp.tokens().getFloat(0));
            var w = spec.commandLine().getOut();
            if (json) {
                w.println(Json.write(out));
            } else {
                w.printf(
                        "logps %.6f  mean %.6f  over %d tokens%n",
                        out.get("logps"), out.get("logps_mean"), out.get("tokens"));
            }
            w.flush();
        }
        return 0;
    }

    /** What a journal's log-probs depend on: the command's arguments (but threads) and the data file's size and time. */
    private Map<String, Object> journalHeader() {
        Map<String, Object> h = new LinkedHashMap<>();
        List<String> args = new ArrayList<>(spec.commandLine().getParseResult().originalArgs());
        int threadsAt = args.indexOf("--threads");
        if (threadsAt >= 0 && threadsAt + 1 < args.size()) {
            args.subList(threadsAt, threadsAt + 2).clear();
        }
        args.removeIf(a -> a.startsWith("--threads="));
        h.put("args", args);
        ScoreJournal.putDataFile(h, data);
        return h;
    }

    private int scoreDataset() throws IOException {
        if (output != null) {
            OutputFile.check("--output", output, "--data", data);
        }
        try (TextTokenizer tk = modelOptions.loadTokenizer();
                CausalLm lm = modelOptions.loadModel()) {
            PreferenceEncoder.Encoded enc =
                    dataOptions.encode(tk, dataOptions.load(data).examples());
            List<String> sources =
                    enc.kept().stream().map(e -> e.file() + ":" + e.line()).toList();
            if (lm.config() != null) {
                EncodedPair.checkFits(lm.config(), enc.pairs(), sources);
            }
            List<PairScorer.PairScore> scores = ScoreJournal.scoreAll(
                    "logprobs",
                    output,
                    ScoreJournal.LOGPROBS,
                    new PairScorer.PairScore[sources.size()],
                    this::journalHeader,
                    sources,
                    spec.commandLine().getErr(),
                    (known, listener) -> PairScorer.score(
                            lm, enc.pairs(), batchSize, TokenBudget.DEFAULT_MAX_TOKENS, tk.padId(), known, listener));
            StringBuilder lines = new StringBuilder();
            for (PairScorer.PairScore s : scores) {
                // the output's fields are the journal's
                lines.append(Json.write(ScoreJournal.LOGPROBS.write(s))).append('\n');
            }
            if (output != null) {
                AtomicDirectory.writeFile(output, lines.toString().getBytes(StandardCharsets.UTF_8));
                ScoreJournal.remove(output);
            } else {
                PrintWriter w = spec.commandLine().getOut();
                w.print(lines);
                w.flush();
            }
            if (enc.dropped() > 0) {
                spec.commandLine()
                        .getErr()
                        .println("note: " + enc.dropped() + " pair(s) dropped by truncation were not scored");
                spec.commandLine().getErr().flush();
            }
        }
        return 0;
    }
}
