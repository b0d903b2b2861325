package org.align4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import org.align4j.evaluation.BudgetedScoring;
import org.align4j.evaluation.PairScorer;
import org.align4j.evaluation.RewardScorer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The values of {@code reward score --output FILE}, {@code reward label --output FILE} and {@code
 * logprobs --data ... --output FILE} as they are scored, one JSON line per pair appended to {@code FILE.partial} after each batch, so that a run stopped
 * part-way (Ctrl-C, kill, a full disk) starts again where it was: the next run with the same model, data
 * and --max-length reads the journal and scores only the pairs it lacks. The journal's first line names
 * what it was made from; one made from anything else is set aside with a note (never mixed in). The final
 * output is written whole, to a temporary name then renamed, and the journal removed.
 */
final class ScoreJournal<T> implements AutoCloseable {
    /**
     * A pair's value as journal fields and back.
     *
     * @param <T> the value
     */
    interface Codec<T> {
        /**
         * @param value a pair's value
         * @return its fields (numbers)
         */
        Map<String, Object> write(T value);

        /**
         * @param line a journal line
         * @return the value it holds, or null when a field is missing or not a number
         */
        T read(JsonNode line);
    }

    /** Reward models' rewards: {@code chosen_reward}, {@code rejected_reward}. */
    static final Codec<RewardScorer.PairRewards> REWARDS = new Codec<>() {
        @Override
        public Map<String, Object> write(RewardScorer.PairRewards r) {
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("chosen_reward", r.chosen());
            o.put("rejected_reward", r.rejected());
            return o;
        }

        @Override
        public RewardScorer.PairRewards read(JsonNode n) {
            return numbers(n, "chosen_reward", "rejected_reward")
                    ? new RewardScorer.PairRewards(
                            n.get("chosen_reward").asDouble(),
                            n.get("rejected_reward").asDouble())
                    : null;
        }
    };

    /** A policy's log-probs of a pair's completions ({@code logprobs --data}). */
    static final Codec<PairScorer.PairScore> LOGPROBS = new Codec<>() {
        @Override
        public Map<String, Object> write(PairScorer.PairScore s) {
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("chosen_logps", s.chosenLogps());
            o.put("rejected_logps", s.rejectedLogps());
            o.put("chosen_logps_mean", s.chosenLogpsMean());
            o.put("rejected_logps_mean", s.rejectedLogpsMean());
            o.put("chosen_tokens", s.chosenTokens());
            o.put("rejected_tokens", s.rejectedTokens());
            return o;
        }

        @Override
        public PairScorer.PairScore read(JsonNode n) {
            return numbers(
                            n,
                            "chosen_logps",
                            "rejected_logps",
                            "chosen_logps_mean",
                            "rejected_logps_mean",
                            "chosen_tokens",
                            "rejected_tokens")
                    ? new PairScorer.PairScore(
                            n.get("chosen_logps").asDouble(),
                            n.get("rejected_logps").asDouble(),
                            n.get("chosen_logps_mean").asDouble(),
                            n.get("rejected_logps_mean").asDouble(),
                            n.get("chosen_tokens").asInt(),
                            n.get("rejected_tokens").asInt())
                    : null;
        }
    };

    private static boolean numbers(JsonNode n, String... fields) {
        for (String f : fields) {
            JsonNode v = n.get(f);
            if (v == null || !v.isNumber()) {
                return false;
            }
        }
        return true;
    }

    private static final Logger LOG = LoggerFactory.getLogger(ScoreJournal.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * For tests of resuming only: a run stops with an error after journaling this many batches, as if
     * killed there (system property {@code align4j.test.scoreJournalStopAfter}; unset in normal runs).
     */
    static final String STOP_AFTER_PROPERTY = "align4j.test.scoreJournalStopAfter";

    private int batches;

    private final Path path;
    private final List<String> sources;
    private final BufferedWriter writer;
    private final Codec<T> codec;
    private final T[] known;
    private final int resumed;

    private ScoreJournal(
            Path path, List<String> sources, BufferedWriter writer, Codec<T> codec, T[] known, int resumed) {
        this.path = path;
        this.sources = sources;
        this.writer = writer;
        this.codec = codec;
        this.known = known;
        this.resumed = resumed;
    }

    /**
     * Puts what identifies the data file into a journal header: its absolute path and, for a regular file,
     * its size and modification time (a changed file gets a new journal).
     *
     * @param header the header being made
     * @param data the {@code --data} file
     * @throws UncheckedIOException naming {@code --data} when its size or time cannot be read
     */
    static void putDataFile(Map<String, Object> header, Path data) {
        header.put("data", data.toAbsolutePath().normalize().toString());
        if (Files.isRegularFile(data)) {
            try {
                header.put("data_bytes", Files.size(data));
                header.put("data_modified", Files.getLastModifiedTime(data).toMillis());
            } catch (IOException e) {
                throw new UncheckedIOException("--data: " + data + ": " + e.getMessage(), e);
            }
        }
    }

    /** @return where the journal of an output file is kept */
    static Path of(Path output) {
        return output.resolveSibling(output.getFileName() + ".partial");
    }

    /**
     * Opens the journal of {@code output}, reading the values it already holds when it was made from the
     * same header.
     *
     * @param <T> a pair's value
     * @param output the final output file
     * @param codec a value's journal fields
     * @param empty an array of one null entry per pair (its type)
     * @param header what the scores depend on (model, data, encoding), compared whole
     * @param sources each pair's file:line, in order
     * @param err where a note on what was resumed or set aside goes
     * @return the journal, open for appending
     * @throws UncheckedIOException when it cannot be read or written
     */
    static <T> ScoreJournal<T> open(
            Path output, Codec<T> codec, T[] empty, Map<String, Object> header, List<String> sources, PrintWriter err) {
        Path path = of(output);
        T[] known = empty;
        int resumed = 0;
        try {
            Map<String, Object> head = new LinkedHashMap<>(header);
            head.put("pairs", sources.size());
            head.put(
                    "sources_hash",
                    Integer.toHexString(String.join("\n", sources).hashCode()));
            String headLine = JSON.writeValueAsString(Map.of("align4j_score_journal", head));
            boolean append = false;
            if (Files.isRegularFile(path)) {
                List<String> lines = Files.readAllLines(path, StandardCharsets.UTF_8);
                if (!lines.isEmpty() && lines.get(0).equals(headLine)) {
                    append = true;
                    int unread = 0;
                    for (int i = 1; i < lines.size(); i++) {
                        if (read(lines.get(i), sources, codec, known)) {
                            resumed++;
                        } else {
                            unread++;
                        }
                    }
                    err.printf(
                            "note: resuming from %s: %d of %d pair(s) already scored%s%n",
                            path,
                            resumed,
                            sources.size(),
                            unread > 0
                                    ? "; " + unread + " unreadable or repeated line(s) skipped (their pairs are"
                                            + " scored again)"
                                    : "");
                } else {
                    Path aside = path.resolveSibling(path.getFileName() + ".old");
                    Files.move(path, aside, StandardCopyOption.REPLACE_EXISTING);
                    err.printf(
                            "note: %s was made from another model, data or --max-length; set aside as %s, starting"
                                    + " over%n",
                            path, aside);
                }
                err.flush();
            }
            BufferedWriter writer = append
                    ? Files.newBufferedWriter(path, StandardCharsets.UTF_8, StandardOpenOption.APPEND)
                    : Files.newBufferedWriter(path, StandardCharsets.UTF_8);
            if (!append) {
                writer.write(headLine);
                writer.newLine();
                writer.flush();
            }
            return new ScoreJournal<>(path, sources, writer, codec, known, resumed);
        } catch (IOException e) {
            throw new UncheckedIOException("the score journal " + path + ": " + e.getMessage(), e);
        }
    }

    /**
     * Scores the pairs the journal lacks.
     *
     * @param <T> a pair's value
     */
    @FunctionalInterface
    interface Scorer<T> {
        /**
         * @param known one entry per pair: its value when already known, else null
         * @param listener to be told each new batch's values
         * @return every pair's value, in order
         */
        List<T> score(T[] known, BudgetedScoring.Listener<T> listener);
    }

    /**
     * Scores every pair under a progress bar, through the journal of {@code output} when there is one: the
     * values it holds are not scored again, new ones are appended batch by batch, and it is closed (not
     * removed: the caller removes it once the whole output is written, {@link #remove}).
     *
     * @param <T> a pair's value
     * @param bar the progress bar's name
     * @param output the output file, or null (no journal)
     * @param codec a value's journal fields
     * @param empty an array of one null entry per pair
     * @param header what the values depend on, asked for only with an output
     * @param sources each pair's file:line
     * @param err where the journal's notes go
     * @param scorer scores the pairs not known yet
     * @return every pair's value, in order
     */
    static <T> List<T> scoreAll(
            String bar,
            Path output,
            Codec<T> codec,
            T[] empty,
            Supplier<Map<String, Object>> header,
            List<String> sources,
            PrintWriter err,
            Scorer<T> scorer) {
        ScoreJournal<T> journal = output == null ? null : open(output, codec, empty, header.get(), sources, err);
        try (PairsProgress progress = RunConsole.pairsBar(bar, sources.size())) {
            if (journal == null) {
                return scorer.score(empty, (indices, values) -> progress.stepBy(indices.length));
            }
            progress.skip(journal.resumed());
            return scorer.score(journal.known(), (indices, values) -> {
                journal.append(indices, values);
                progress.stepBy(indices.length);
            });
        } finally {
            if (journal != null) {
                journal.close();
            }
        }
    }

    /** One journal line into {@code known}; a torn or foreign line (a run killed while writing) is skipped. */
    private static <T> boolean read(String line, List<String> sources, Codec<T> codec, T[] known) {
        try {
            JsonNode n = JSON.readTree(line);
            int i = n.path("i").asInt(-1);
            if (i < 0
                    || i >= known.length
                    || !sources.get(i).equals(n.path("source").asText())
                    || known[i] != null) {
                return false;
            }
            T value = codec.read(n);
            if (value == null) {
                return false;
            }
            known[i] = value;
            return true;
        } catch (IOException e) {
            LOG.debug("skipping a torn journal line: {}", e.getMessage());
            return false;
        }
    }

    /** @return one entry per pair: the values read back from the journal, else null (filled as scoring goes) */
    T[] known() {
        return known;
    }

    /** @return pairs read back from an earlier run */
    int resumed() {
        return resumed;
    }

    /**
     * Appends a batch's values and flushes them to the file.
     *
     * @param indices the pairs
     * @param values their values
     */
    void append(int[] indices, T[] values) {
        try {
            for (int k = 0; k < indices.length; k++) {
                Map<String, Object> o = new LinkedHashMap<>();
                o.put("i", indices[k]);
                o.put("source", sources.get(indices[k]));
                o.putAll(codec.write(values[k]));
                writer.write(JSON.writeValueAsString(o));
                writer.newLine();
            }
            writer.flush();
        } catch (IOException e) {
            throw new UncheckedIOException("the score journal " + path + ": " + e.getMessage(), e);
        }
        batches++;
        String stop = System.getProperty(STOP_AFTER_PROPERTY);
        if (stop != null && batches >= Integer.parseInt(stop)) {
            throw new IllegalStateException(
                    "stopped after " + batches + " journaled batch(es) (" + STOP_AFTER_PROPERTY + ")");
        }
    }

    /**
     * Removes the journal of an output once the whole output is written.
     *
     * @param output the output file
     */
    static void remove(Path output) {
        try {
            Files.deleteIfExists(of(output));
        } catch (IOException e) {
            LOG.warn("could not remove {}: {}", of(output), e.getMessage());
        }
    }

    @Override
    public void close() {
        try {
            writer.close();
        } catch (IOException e) {
            LOG.warn("closing {}: {}", path, e.getMessage());
        }
    }
}
