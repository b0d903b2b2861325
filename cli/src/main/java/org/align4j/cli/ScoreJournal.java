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
import org.align4j.evaluation.RewardScorer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The rewards of {@code reward score --output FILE} and {@code reward label --output FILE} as they are
 * scored, one JSON line per pair appended to {@code FILE.partial} after each batch, so that a run stopped
 * part-way (Ctrl-C, kill, a full disk) starts again where it was: the next run with the same model, data
 * and --max-length reads the journal and scores only the pairs it lacks. The journal's first line names
 * what it was made from; one made from anything else is set aside with a note (never mixed in). The final
 * output is written whole, to a temporary name then renamed, and the journal removed.
 */
final class ScoreJournal implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(ScoreJournal.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path path;
    private final List<String> sources;
    private final BufferedWriter writer;
    private final RewardScorer.PairRewards[] known;
    private final int resumed;

    private ScoreJournal(
            Path path, List<String> sources, BufferedWriter writer, RewardScorer.PairRewards[] known, int resumed) {
        this.path = path;
        this.sources = sources;
        this.writer = writer;
        this.known = known;
        this.resumed = resumed;
    }

    /** @return where the journal of an output file is kept */
    static Path of(Path output) {
        return output.resolveSibling(output.getFileName() + ".partial");
    }

    /**
     * Opens the journal of {@code output}, reading the rewards it already holds when it was made from the
     * same header.
     *
     * @param output the final output file
     * @param header what the scores depend on (model, data, encoding), compared whole
     * @param sources each pair's file:line, in order
     * @param err where a note on what was resumed or set aside goes
     * @return the journal, open for appending
     * @throws UncheckedIOException when it cannot be read or written
     */
    static ScoreJournal open(Path output, Map<String, Object> header, List<String> sources, PrintWriter err) {
        Path path = of(output);
        RewardScorer.PairRewards[] known = new RewardScorer.PairRewards[sources.size()];
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
                    for (int i = 1; i < lines.size(); i++) {
                        resumed += read(lines.get(i), sources, known) ? 1 : 0;
                    }
                    err.printf(
                            "note: resuming from %s: %d of %d pair(s) already scored%n", path, resumed, sources.size());
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
            return new ScoreJournal(path, sources, writer, known, resumed);
        } catch (IOException e) {
            throw new UncheckedIOException("the score journal " + path + ": " + e.getMessage(), e);
        }
    }

    /** One journal line into {@code known}; a torn or foreign line (a run killed while writing) is skipped. */
    private static boolean read(String line, List<String> sources, RewardScorer.PairRewards[] known) {
        try {
            JsonNode n = JSON.readTree(line);
            int i = n.path("i").asInt(-1);
            if (i < 0
                    || i >= known.length
                    || !sources.get(i).equals(n.path("source").asText())
                    || known[i] != null) {
                return false;
            }
            JsonNode c = n.get("chosen_reward");
            JsonNode r = n.get("rejected_reward");
            if (c == null || r == null || !c.isNumber() || !r.isNumber()) {
                return false;
            }
            known[i] = new RewardScorer.PairRewards(c.asDouble(), r.asDouble());
            return true;
        } catch (IOException e) {
            LOG.debug("skipping a torn journal line: {}", e.getMessage());
            return false;
        }
    }

    /** @return one entry per pair: the rewards read back from the journal, else null (filled as scoring goes) */
    RewardScorer.PairRewards[] known() {
        return known;
    }

    /** @return pairs read back from an earlier run */
    int resumed() {
        return resumed;
    }

    /**
     * Appends a batch's rewards and flushes them to the file.
     *
     * @param indices the pairs
     * @param rewards their rewards
     */
    void append(int[] indices, RewardScorer.PairRewards[] rewards) {
        try {
            for (int k = 0; k < indices.length; k++) {
                Map<String, Object> o = new LinkedHashMap<>();
                o.put("i", indices[k]);
                o.put("source", sources.get(indices[k]));
                o.put("chosen_reward", rewards[k].chosen());
                o.put("rejected_reward", rewards[k].rejected());
                writer.write(JSON.writeValueAsString(o));
                writer.newLine();
            }
            writer.flush();
        } catch (IOException e) {
            throw new UncheckedIOException("the score journal " + path + ": " + e.getMessage(), e);
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
