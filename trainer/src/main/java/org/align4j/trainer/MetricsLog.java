package org.align4j.trainer;

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

/** {@code OUTPUT/metrics.jsonl}: one JSON object per logged step (and per evaluation), each with {@code step}. */
final class MetricsLog implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final BufferedWriter out;

    /**
     * Opens the log; on resume, lines after the resumed step (logged by the interrupted run after its
     * last checkpoint) are dropped so the file reads as one uninterrupted run.
     */
    MetricsLog(Path file, long resumedStep) throws IOException {
        if (resumedStep >= 0 && Files.exists(file)) {
            List<String> kept = new ArrayList<>();
            for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
                if (!line.isBlank() && JSON.readTree(line).path("step").asLong() <= resumedStep) {
                    kept.add(line);
                }
            }
            AtomicDirectory.writeFile(file, (String.join("\n", kept) + (kept.isEmpty() ? "" : "\n")).getBytes(StandardCharsets.UTF_8));
        } else {
            Files.deleteIfExists(file);
        }
        out = Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    }

    void write(long step, Map<String, Double> metrics) throws IOException {
        ObjectNode o = JSON.createObjectNode();
        o.put("step", step);
        metrics.forEach(o::put);
        out.write(JSON.writeValueAsString(o));
        out.newLine();
        out.flush();
    }

    @Override
    public void close() throws IOException {
        out.close();
    }
}
