package org.align4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Arrays;
import java.util.Map;
import java.util.stream.Stream;
import org.align4j.model.Fixtures;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;

/**
 * {@code bench --data} on the fixture pairs: the same batches padded and padding-free count the same
 * real tokens, the padded steps compute padding and the padding-free ones none, and after the same two
 * optimizer steps both reach the same loss (values only; the times are not asserted).
 */
class BenchDataTest {
    private static JsonNode bench(String mode, String... more) throws Exception {
        String[] args = {
            "bench",
            "--model",
            Fixtures.model("gpt2-tiny").toString(),
            "--data",
            Fixtures.root().resolve("prefs.jsonl").toString(),
            "--batch-pairs",
            "2",
            "--steps",
            "2",
            "--warmup",
            "1",
            mode,
            "--json"
        };
        String[] all = Stream.concat(Arrays.stream(args), Arrays.stream(more)).toArray(String[]::new);
        CliTest.Result r = CliTest.run(all);
        assertThat(r.code()).as(r.err()).isZero();
        return CliTest.JSON.readTree(r.out().strip().lines().reduce((a, b) -> b).orElseThrow());
    }

    @Test
    void paddedAndPaddingFreeStepsAgree() throws Exception {
        JsonNode padded = bench("--no-padding-free");
        JsonNode free = bench("--padding-free");
        assertThat(free.get("real_tokens").asLong())
                .isEqualTo(padded.get("real_tokens").asLong())
                .isPositive();
        assertThat(padded.get("padding_share").asDouble())
                .isPositive()
                .isEqualTo(padded.get("padded_layout_share").asDouble());
        assertThat(free.get("padding_share").asDouble()).isZero();
        assertThat(free.get("padded_layout_share").asDouble())
                .isEqualTo(padded.get("padded_layout_share").asDouble());
        assertThat(free.get("last_loss").asDouble())
                .isCloseTo(padded.get("last_loss").asDouble(), Offset.offset(1e-5));
        assertThat(free.get("peak_bytes").asLong()).isPositive();
    }

    /**
     * {@code --profile}: the profiled steps' phases are all there, the parts of a phase add up to its
     * wall time, and the model's parts (LM head, attention, MLP) took time.
     */
    @Test
    void profileSplitsTheStep() throws Exception {
        JsonNode v = bench("--padding-free", "--profile", "2");
        assertThat(v.get("profile_steps").asInt()).isEqualTo(2);
        JsonNode phases = v.get("profile_ms_per_step");
        assertThat(phases.fieldNames())
                .toIterable()
                .containsExactly("data", "reference forward", "policy forward", "policy backward", "optimizer");
        phases.fields().forEachRemaining(phase -> {
            double sum = 0;
            for (var part : (Iterable<Map.Entry<String, JsonNode>>) phase.getValue()::fields) {
                if (!part.getKey().equals("wall")) {
                    sum += part.getValue().asDouble();
                }
            }
            // host time is wall minus top-level operators, so the parts add up unless operators overlap
            assertThat(sum)
                    .as(phase.getKey())
                    .isCloseTo(phase.getValue().get("wall").asDouble(), Offset.offset(0.05 + 0.02 * sum));
        });
        JsonNode parts = v.get("profile_ms_by_part");
        assertThat(parts.get("LM head matmul").asDouble()).isPositive();
        assertThat(parts.get("attention").asDouble()).isPositive();
        assertThat(parts.get("MLP").asDouble()).isPositive();
        assertThat(v.get("profile_top_operators_ms").size()).isPositive();
    }

    /** More pairs a step than the data has, and a profile on a GPU: one line naming the flag, exit 2. */
    @Test
    void impossibleBenchSettingsAreRefusedByFlag() {
        CliTest.Result many = CliTest.run(
                "bench",
                "--model",
                Fixtures.model("gpt2-tiny").toString(),
                "--data",
                Fixtures.root().resolve("prefs.jsonl").toString(),
                "--batch-pairs",
                "20");
        assertThat(many.code()).isEqualTo(2);
        assertThat(many.err().strip()).startsWith("error: --batch-pairs: 20 is more than the 8 pairs");
        CliTest.Result gpu = CliTest.run(
                "bench", "--model", Fixtures.model("gpt2-tiny").toString(), "--device", "gpu", "--profile", "1");
        assertThat(gpu.code()).isEqualTo(2);
        assertThat(gpu.err().strip()).startsWith("error: --profile: CPU only");
    }
}
