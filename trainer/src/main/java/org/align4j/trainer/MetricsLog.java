package org.align4j.trainer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.align4j.model.io.AtomicDirectory;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code OUTPUT/metrics.jsonl}: one JSON object per logged step (and per evaluation), each with {@code step}. A
 * value that is not a number (a reward mean when every reward abstained, logged by TRL as the float {@code
 * nan}) or is infinite is written as {@code null}: every line is strict JSON (RFC 8259 has no NaN), which
 * Python's {@code json}, {@code jq} and pandas read as None/null/NaN.
 */
final class MetricsLog implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(MetricsLog.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private final BufferedWriter out;

    /**
     * Opens the log; on resume, lines after the resumed step (logged by the interrupted run after its
     * last checkpoint) are dropped so the file reads as one uninterrupted run. A last line cut short by
     * a kill is dropped too; a broken line before it is an error naming the line.
     */
    MetricsLog(Path file, long resumedStep) throws IOException {
        if (resumedStep >= 0 && Files.exists(file)) {
            List<String> kept = new ArrayList<>();
            List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
            for (int i = 0; i < lines.size(); i++) {
                String line = lines.get(i);
                if (line.isBlank()) {
                    continue;
                }
                JsonNode row;
                try {
                    row = JSON.readTree(line);
                } catch (IOException e) {
                    if (i == lines.size() - 1) {
                        LOG.warn("{}:{}: a line cut short (the run was killed while writing it); dropped", file, i + 1);
                        continue;
                    }
                    throw new IllegalArgumentException(
                            file + ":" + (i + 1) + ": not valid JSON; the metrics log of this run is damaged");
                }
                if (row.path("step").asLong() <= resumedStep) {
                    kept.add(line);
                }
            }
            AtomicDirectory.writeFile(
                    file, (String.join("\n", kept) + (kept.isEmpty() ? "" : "\n")).getBytes(StandardCharsets.UTF_8));
        } else {
            Files.deleteIfExists(file);
        }
        out = Files.newBufferedWriter(
                file, StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    }

    void write(long step, Map<String, Double> metrics) throws IOException {
        ObjectNode o = JSON.createObjectNode();
        o.put("step", step);
        metrics.forEach((k, v) -> {
            if (v == null || !Double.isFinite(v)) {
                o.putNull(k); // JSON has no NaN or infinity: null, where TRL's logs hold the float nan
            } else {
                o.put(k, v);
            }
        });
        out.write(JSON.writeValueAsString(o));
        out.newLine();
        out.flush();
    }

    @Override
    public void close() throws IOException {
        out.close();
    }
}
