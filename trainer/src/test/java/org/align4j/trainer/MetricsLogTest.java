package org.align4j.trainer;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** metrics.jsonl is strict JSON whatever the values: NaN and infinities are written as null. */
class MetricsLogTest {
    @TempDir
    Path tmp;

    @Test
    void nonFiniteValuesAreNullAndEveryLineIsStrictJson() throws Exception {
        Path file = tmp.resolve("metrics.jsonl");
        try (MetricsLog log = new MetricsLog(file, -1)) {
            Map<String, Double> m = new LinkedHashMap<>();
            m.put("loss", 0.5);
            m.put("reward", Double.NaN); // every reward abstained
            m.put("kl", Double.POSITIVE_INFINITY);
            m.put("clip", Double.NEGATIVE_INFINITY);
            log.write(1, m);
            log.write(2, Map.of("loss", 0.25));
        }
        List<String> lines = Files.readAllLines(file);
        assertThat(lines.get(0)).isEqualTo("{\"step\":1,\"loss\":0.5,\"reward\":null,\"kl\":null,\"clip\":null}");
        ObjectMapper strict = new ObjectMapper(); // Jackson's default parser refuses NaN tokens and reads "NaN" as text
        for (String line : lines) {
            JsonNode o = strict.readTree(line);
            o.fields()
                    .forEachRemaining(e -> assertThat(
                                    e.getValue().isNumber() || e.getValue().isNull())
                            .as("%s in %s", e.getKey(), line)
                            .isTrue());
        }
        // a resumed run reads the file back (keeping the steps up to the checkpoint)
        try (MetricsLog log = new MetricsLog(file, 1)) {
            log.write(2, Map.of("loss", Double.NaN));
        }
        assertThat(Files.readAllLines(file)).containsExactly(lines.get(0), "{\"step\":2,\"loss\":null}");
    }
}
