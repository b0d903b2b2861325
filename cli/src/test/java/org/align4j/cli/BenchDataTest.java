package org.align4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import org.align4j.model.Fixtures;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;

/**
 * {@code bench --data} on the fixture pairs: the same batches padded and padding-free count the same
 * real tokens, the padded steps compute padding and the padding-free ones none, and after the same two
 * optimizer steps both reach the same loss (values only; the times are not asserted).
 */
class BenchDataTest {
    private static JsonNode bench(String mode) throws Exception {
        CliTest.Result r = CliTest.run(
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
                "--json");
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
}
