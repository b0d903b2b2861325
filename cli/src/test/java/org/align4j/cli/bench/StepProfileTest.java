package org.align4j.cli.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Path;
import java.util.Map;
import org.align4j.model.config.ModelConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The profile's arithmetic on a hand-written trace in the layout libtorch's legacy profiler writes
 * (chrome-trace "X" events with µs start, duration and input shapes): own time = duration − children's,
 * parts by name and shapes, host time = wall − time in top-level operators.
 */
class StepProfileTest {
    // H 8, I 24, V 100
    private static final ModelConfig CONFIG = ModelConfig.newLlama("llama", 100, 8, 1, 2, 2, 24, 64, true, 1, 2, 2);

    private static JsonNode trace(String events) throws Exception {
        return new ObjectMapper().readTree("[" + events + "]");
    }

    private static String event(String name, double ts, double dur, String shapes) {
        return "{\"name\": \"" + name + "\", \"ph\": \"X\", \"ts\": " + ts + ", \"dur\": " + dur
                + ", \"tid\": 1, \"pid\": \"CPU Functions\", \"shape\": " + shapes + "}";
    }

    @Test
    void ownTimesByPartAndHostTime(@TempDir Path dir) throws Exception {
        StepProfile p = new StepProfile(CONFIG, dir);
        // backward: an autograd node (no shapes) around a head product (V in its shapes) and a transpose
        // on [N, V]; an MLP product; a 4-d attention op; an add on [N, H]; a shapeless op at top level
        p.add(
                StepProfile.Phase.BACKWARD,
                1000,
                trace(String.join(
                        ",",
                        event("autograd::engine::evaluate_function: MmBackward0", 0, 300, "[]"),
                        event("MmBackward0", 5, 290, "[[5, 100]]"),
                        event("aten::t", 10, 20, "[[5, 100]]"),
                        event("aten::mm", 40, 200, "[[100, 5], [5, 8]]"),
                        event("aten::mm", 300, 50, "[[5, 24], [24, 8]]"),
                        event("aten::_softmax", 350, 40, "[[1, 2, 5, 5], [], []]"),
                        event("aten::add", 390, 10, "[[5, 8], [5, 8], []]"),
                        event("aten::nonzero", 400, 100, "[]"))));
        p.stepDone();
        Map<String, Double> parts = p.perStep().get("policy backward");
        // µs → ms
        assertThat(parts.get("wall")).isCloseTo(1.0, within(1e-9));
        // MmBackward0's own 290 - 20 - 200 and the product's 200; the shapeless wrapper's own 10 is "other"
        assertThat(parts.get("LM head matmul")).isCloseTo(0.270, within(1e-9));
        assertThat(parts.get("log-softmax, gather")).isCloseTo(0.020, within(1e-9));
        assertThat(parts.get("MLP")).isCloseTo(0.050, within(1e-9));
        assertThat(parts.get("attention")).isCloseTo(0.040, within(1e-9));
        assertThat(parts.get("norms, residual")).isCloseTo(0.010, within(1e-9));
        assertThat(parts.get("other operators")).isCloseTo(0.110, within(1e-9));
        // top-level operators cover 300 + 50 + 40 + 10 + 100 = 500 of the 1000 µs
        assertThat(parts.get("host (Java, JNI)")).isCloseTo(0.500, within(1e-9));
        assertThat(p.unclassified()).isCloseTo(0.110, within(1e-9));
        assertThat(p.table()).anyMatch(l -> l.contains("LM head matmul"));
    }

    @Test
    void dataAndOptimizerPhasesOwnTheirTime(@TempDir Path dir) throws Exception {
        StepProfile p = new StepProfile(CONFIG, dir);
        p.add(StepProfile.Phase.OPTIMIZER, 100, trace(event("aten::mm", 0, 60, "[[100, 8], [8, 100]]")));
        p.add(StepProfile.Phase.DATA, 30, trace(""));
        p.stepDone();
        assertThat(p.perStep().get("optimizer")).containsOnlyKeys("wall", "optimizer");
        assertThat(p.perStep().get("optimizer").get("optimizer")).isCloseTo(0.100, within(1e-9));
        assertThat(p.byPart().get("data")).isCloseTo(0.030, within(1e-9));
    }
}
