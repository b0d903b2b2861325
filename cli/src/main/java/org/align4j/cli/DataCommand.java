package org.align4j.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.align4j.data.DataException;
import org.align4j.data.EncodedPair;
import org.align4j.data.EncodingOptions;
import org.align4j.data.Message;
import org.align4j.data.PreferenceData;
import org.align4j.data.PreferenceEncoder;
import org.align4j.data.PreferenceExample;
import org.align4j.model.tokenizer.TextTokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** Dataset tools. */
@Command(
        name = "data",
        mixinStandardHelpOptions = true,
        description = "Inspect preference datasets and measure encoding speed.",
        subcommands = {DataCommand.Inspect.class, DataCommand.Bench.class})
final class DataCommand implements Runnable {
    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    /** Counts, token lengths and parsed examples of a dataset. */
    @Command(
            name = "inspect",
            mixinStandardHelpOptions = true,
            description =
                    "Count pairs (valid, invalid, dropped by truncation), token-length percentiles, and show parsed pairs.")
    static final class Inspect implements Callable<Integer> {
        @Option(names = "--data", required = true, paramLabel = "PATH", description = "Data file or folder of shards")
        Path data;

        @Option(
                names = "--model",
                required = true,
                paramLabel = "DIR",
                description = "Model folder (its tokenizer and chat template)")
        Path model;

        @Option(names = "--show", defaultValue = "0", description = "Show the first N parsed pairs")
        int show;

        @Option(
                names = "--json",
                description =
                        "Print {\"pairs\", \"invalid\", \"dropped\", \"examples\": [{source, prompt_text, chosen_text, "
                                + "rejected_text, prompt_ids, chosen_ids, rejected_ids}]}: the texts after templating and the ids training scores")
        boolean json;

        @Mixin
        DataOptions dataOptions;

        @Spec
        picocli.CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() {
            PreferenceData.Loaded loaded = dataOptions.load(data);
            try (TextTokenizer tk = TextTokenizer.load(model)) {
                report(
                        spec.commandLine().getOut(),
                        new PreferenceEncoder(tk, dataOptions.encodingOptions()),
                        loaded,
                        dataOptions.skipInvalid,
                        show,
                        json);
            }
            return 0;
        }

        /**
         * Counts, token-length percentiles and the first {@code show} pairs as training sees them: what
         * {@code data inspect} prints, and {@code train --dry-run} too.
         */
        static void report(
                PrintWriter w,
                PreferenceEncoder encoder,
                PreferenceData.Loaded loaded,
                boolean skipInvalid,
                int show,
                boolean json) {
            PreferenceEncoder.Encoded enc = encoder.encodeAll(loaded.examples(), skipInvalid);
            List<DataException> invalid = new ArrayList<>(loaded.invalid());
            invalid.addAll(enc.invalid());
            List<Map<String, Object>> examples = new ArrayList<>();
            for (PreferenceExample e : loaded.examples()
                    .subList(0, Math.min(show, loaded.examples().size()))) {
                examples.add(shown(encoder, e));
            }
            if (json) {
                Map<String, Object> o = new LinkedHashMap<>();
                o.put("pairs", enc.pairs().size());
                o.put("invalid", invalid.size());
                o.put("dropped", enc.dropped());
                o.put("examples", examples);
                w.println(Json.write(o));
            } else {
                w.printf(
                        "pairs %d   invalid %d   dropped by truncation %d%n",
                        enc.pairs().size(), invalid.size(), enc.dropped());
                for (DataException e : invalid.subList(0, Math.min(5, invalid.size()))) {
                    w.println("  invalid: " + e.getMessage());
                }
                if (!enc.pairs().isEmpty()) {
                    w.println("tokens            p50     p90     p99     max");
                    row(
                            w,
                            "prompt",
                            enc.pairs().stream()
                                    .mapToInt(p -> p.prompt().length)
                                    .toArray());
                    row(
                            w,
                            "chosen",
                            enc.pairs().stream()
                                    .mapToInt(p -> p.chosen().length)
                                    .toArray());
                    row(
                            w,
                            "rejected",
                            enc.pairs().stream()
                                    .mapToInt(p -> p.rejected().length)
                                    .toArray());
                    row(
                            w,
                            "longest row",
                            enc.pairs().stream()
                                    .mapToInt(EncodedPair::maxLength)
                                    .toArray());
                }
                for (int i = 0; i < examples.size(); i++) {
                    Map<String, Object> x = examples.get(i);
                    w.printf("%n[%d] %s%n", i, x.get("source"));
                    if (x.containsKey("error")) {
                        w.printf("  invalid: %s%n", x.get("error"));
                        continue;
                    }
                    for (String part : List.of("prompt", "chosen", "rejected")) {
                        w.printf(
                                "  %s_text:%n%s%n  %s_ids: %s%n",
                                part, indent((String) x.get(part + "_text")), part, Arrays.toString((int[])
                                        x.get(part + "_ids")));
                    }
                    if (x.containsKey("dropped")) {
                        w.println("  dropped: cannot fit --max-length with one completion token");
                    }
                }
            }
            w.flush();
        }

        /** One pair as training sees it: texts after templating, ids after truncation (empty when dropped). */
        private static Map<String, Object> shown(PreferenceEncoder encoder, PreferenceExample e) {
            Map<String, Object> x = new LinkedHashMap<>();
            x.put("source", e.file().getFileName() + ":" + e.line());
            try {
                PreferenceEncoder.Texts t = encoder.texts(e);
                var p = encoder.encode(e);
                x.put("prompt_text", t.prompt());
                x.put("chosen_text", t.chosen());
                x.put("rejected_text", t.rejected());
                x.put("prompt_ids", p.map(EncodedPair::prompt).orElse(new int[0]));
                x.put("chosen_ids", p.map(EncodedPair::chosen).orElse(new int[0]));
                x.put("rejected_ids", p.map(EncodedPair::rejected).orElse(new int[0]));
                if (p.isEmpty()) {
                    x.put("dropped", true);
                }
            } catch (DataException ex) {
                x.put("error", ex.getMessage());
            }
            if (e.preference() != null) {
                x.put("preference", e.preference());
            }
            return x;
        }

        /** Template text shown as is, each line indented, with its line breaks visible. */
        static String indent(String text) {
            return "    | " + text.replace("\n", "\u21b5\n    | ");
        }

        static void row(PrintWriter w, String name, int[] values) {
            int[] s = values.clone();
            Arrays.sort(s);
            w.printf("%-14s %7d %7d %7d %7d%n", name, pct(s, 50), pct(s, 90), pct(s, 99), s[s.length - 1]);
        }

        private static int pct(int[] sorted, int p) {
            return sorted[Math.min(sorted.length - 1, (int) Math.ceil(p / 100.0 * sorted.length) - 1)];
        }
    }

    /** Encoding throughput on synthetic text. */
    @Command(
            name = "bench",
            mixinStandardHelpOptions = true,
            description =
                    "Measure encoding throughput (pairs/s, one thread) on synthetic pairs of about --tokens tokens.")
    static final class Bench implements Callable<Integer> {
        @Option(names = "--model", required = true, paramLabel = "DIR", description = "Model folder (its tokenizer)")
        Path model;

        @Option(names = "--pairs", defaultValue = "5000", description = "Pairs to encode (default: ${DEFAULT-VALUE})")
        int pairs;

        @Option(
                names = "--tokens",
                defaultValue = "256",
                description = "Approximate tokens per pair (default: ${DEFAULT-VALUE})")
        int tokens;

        @Option(names = "--json", description = "Print {\"pairs_per_s\": x, \"tokens_per_s\": x}")
        boolean json;

        @Option(
                names = "--chat",
                description =
                        "Conversational pairs (system, user, assistant, user; then the answers) through the model's chat template")
        boolean chat;

        @Spec
        picocli.CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() {
            try (TextTokenizer tk = TextTokenizer.load(model)) {
                PreferenceEncoder enc = new PreferenceEncoder(tk, EncodingOptions.unlimited());
                String words = "the quick brown fox jumps over the lazy dog while the capital of France is Paris and ";
                int perWord = Math.max(1, tk.encode(words).length);
                String body = words.repeat(Math.max(1, tokens / 3 / perWord));
                List<PreferenceExample> ex = new ArrayList<>();
                for (int i = 0; i < pairs; i++) {
                    if (chat) {
                        List<Message> prompt = List.of(
                                new Message("system", "You are a helpful assistant."),
                                new Message("user", "Question " + i + ": " + body),
                                new Message("assistant", "Let me think. " + body),
                                new Message("user", "Answer briefly."));
                        ex.add(PreferenceExample.conversation(
                                prompt,
                                List.of(new Message("assistant", "Answer " + i + " " + body)),
                                List.of(new Message("assistant", "Other " + i + " " + body)),
                                null,
                                Path.of("synthetic"),
                                i + 1));
                    } else {
                        ex.add(PreferenceExample.text(
                                "Question " + i + ": " + body,
                                " Answer " + i + " " + body,
                                " Other " + i + " " + body,
                                null,
                                Path.of("synthetic"),
                                i + 1));
                    }
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
                    w.printf(
                            "encoded %d pairs (%.0f tokens each, both rows) in %.2f s: %.0f pairs/s, %.0f tokens/s%n",
                            pairs, (double) tokenCount / pairs, s, pairs / s, tokenCount / s);
                }
                w.flush();
            }
            return 0;
        }
    }
}
