package org.align4j.cli;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.align4j.data.DataException;
import org.align4j.data.EncodedPair;
import org.align4j.data.PreferenceData;
import org.align4j.data.PreferenceEncoder;
import org.align4j.data.PreferenceExample;
import org.align4j.model.tokenizer.TextTokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** Dataset tools. */
@Command(name = "data", mixinStandardHelpOptions = true, description = "Inspect preference datasets and measure encoding speed.",
        subcommands = {DataCommand.Inspect.class, DataCommand.Bench.class})
final class DataCommand implements Runnable {
    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    /** Counts, token lengths and parsed examples of a dataset. */
    @Command(name = "inspect", mixinStandardHelpOptions = true,
            description = "Count pairs (valid, invalid, dropped by truncation), token-length percentiles, and show parsed pairs.")
    static final class Inspect implements Callable<Integer> {
        @Option(names = "--data", required = true, paramLabel = "PATH", description = "Data file or folder of shards")
        Path data;

        @Option(names = "--model", required = true, paramLabel = "DIR", description = "Model folder (its tokenizer and chat template)")
        Path model;

        @Option(names = "--show", defaultValue = "0", description = "Show the first N parsed pairs")
        int show;

        @Option(names = "--json", description = "Print {\"pairs\", \"invalid\", \"dropped\", \"examples\": [{prompt, chosen, rejected}]}")
        boolean json;

        @Mixin
        DataOptions dataOptions;

        @Spec
        picocli.CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() {
            PreferenceData.Loaded loaded = dataOptions.load(data);
            try (TextTokenizer tk = TextTokenizer.load(model)) {
                DataOptions.Encoded enc = dataOptions.encode(tk, loaded.examples());
                var w = spec.commandLine().getOut();
                List<PreferenceExample> shown = loaded.examples().subList(0, Math.min(show, loaded.examples().size()));
                if (json) {
                    Map<String, Object> o = new LinkedHashMap<>();
                    o.put("pairs", enc.pairs().size());
                    o.put("invalid", loaded.invalid().size());
                    o.put("dropped", enc.dropped());
                    List<Map<String, Object>> examples = new ArrayList<>();
                    for (PreferenceExample e : shown) {
                        Map<String, Object> x = new LinkedHashMap<>();
                        x.put("prompt", e.promptText());
                        x.put("chosen", e.chosenText());
                        x.put("rejected", e.rejectedText());
                        if (e.preference() != null) {
                            x.put("preference", e.preference());
                        }
                        examples.add(x);
                    }
                    o.put("examples", examples);
                    w.println(Json.write(o));
                } else {
                    w.printf("pairs %d   invalid %d   dropped by truncation %d%n", enc.pairs().size(), loaded.invalid().size(), enc.dropped());
                    for (DataException e : loaded.invalid().subList(0, Math.min(5, loaded.invalid().size()))) {
                        w.println("  invalid: " + e.getMessage());
                    }
                    if (!enc.pairs().isEmpty()) {
                        w.println("tokens            p50     p90     p99     max");
                        row(w, "prompt", enc.pairs().stream().mapToInt(p -> p.prompt().length).toArray());
                        row(w, "chosen", enc.pairs().stream().mapToInt(p -> p.chosen().length).toArray());
                        row(w, "rejected", enc.pairs().stream().mapToInt(p -> p.rejected().length).toArray());
                        row(w, "longest row", enc.pairs().stream().mapToInt(EncodedPair::maxLength).toArray());
                    }
                    for (int i = 0; i < shown.size(); i++) {
                        PreferenceExample e = shown.get(i);
                        w.printf("%n[%d] %s:%d%n  prompt:   %s%n  chosen:   %s%n  rejected: %s%n", i, e.file().getFileName(), e.line(),
                                e.promptText(), e.chosenText(), e.rejectedText());
                    }
                }
                w.flush();
            }
            return 0;
        }

        private static void row(java.io.PrintWriter w, String name, int[] values) {
            int[] s = values.clone();
            Arrays.sort(s);
            w.printf("%-14s %7d %7d %7d %7d%n", name, pct(s, 50), pct(s, 90), pct(s, 99), s[s.length - 1]);
        }

        private static int pct(int[] sorted, int p) {
            return sorted[Math.min(sorted.length - 1, (int) Math.ceil(p / 100.0 * sorted.length) - 1)];
        }
    }

    /** Encoding throughput on synthetic text. */
    @Command(name = "bench", mixinStandardHelpOptions = true,
            description = "Measure encoding throughput (pairs/s, one thread) on synthetic pairs of about --tokens tokens.")
    static final class Bench implements Callable<Integer> {
        @Option(names = "--model", required = true, paramLabel = "DIR", description = "Model folder (its tokenizer)")
        Path model;

        @Option(names = "--pairs", defaultValue = "5000", description = "Pairs to encode (default: ${DEFAULT-VALUE})")
        int pairs;

        @Option(names = "--tokens", defaultValue = "256", description = "Approximate tokens per pair (default: ${DEFAULT-VALUE})")
        int tokens;

        @Option(names = "--json", description = "Print {\"pairs_per_s\": x, \"tokens_per_s\": x}")
        boolean json;

        @Spec
        picocli.CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() {
            try (TextTokenizer tk = TextTokenizer.load(model)) {
                PreferenceEncoder enc = new PreferenceEncoder(tk, org.align4j.data.EncodingOptions.unlimited());
                String words = "the quick brown fox jumps over the lazy dog while the capital of France is Paris and ";
                int perWord = Math.max(1, tk.encode(words).length);
                String body = words.repeat(Math.max(1, tokens / 3 / perWord));
                List<PreferenceExample> ex = new ArrayList<>();
                for (int i = 0; i < pairs; i++) {
                    ex.add(PreferenceExample.text("Question " + i + ": " + body, " Answer " + i + " " + body, " Other " + i + " " + body,
                            null, Path.of("synthetic"), i + 1));
                }
                for (int i = 0; i < Math.min(500, pairs); i++) {
                    enc.encode(ex.get(i)); // warm-up
                }
                long t0 = System.nanoTime();
                long tokenCount = 0;
                for (PreferenceExample e : ex) {
                    tokenCount += enc.encode(e).orElseThrow().tokens();
                }
                double s = (System.nanoTime() - t0) / 1e9;
                var w = spec.commandLine().getOut();
                if (json) {
                    w.println(Json.write(Map.of("pairs_per_s", pairs / s, "tokens_per_s", tokenCount / s)));
                } else {
                    w.printf("encoded %d pairs (%.0f tokens each, both rows) in %.2f s: %.0f pairs/s, %.0f tokens/s%n", pairs,
                            (double) tokenCount / pairs, s, pairs / s, tokenCount / s);
                }
                w.flush();
            }
            return 0;
        }
    }
}
