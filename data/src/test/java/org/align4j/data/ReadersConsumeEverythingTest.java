package org.align4j.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every reader reads all of its input or names what it could not read: no record is dropped because of
 * its line ends, no key given twice is resolved silently, nothing after the data is ignored, a large
 * record is read, and a special file is refused instead of blocking.
 */
class ReadersConsumeEverythingTest {
    @TempDir
    Path tmp;

    private static final String PAIR = "{\"prompt\": \"a\", \"chosen\": \" b\", \"rejected\": \" c\"}";

    @Test
    void oldMacLineEndsAreNamedNotLost() throws Exception {
        Path f = tmp.resolve("mac.jsonl");
        Files.writeString(f, PAIR + "\r" + PAIR + "\r" + PAIR + "\r");
        assertThatThrownBy(() -> PreferenceData.load(f, DataFormat.AUTO, false))
                .isInstanceOf(DataException.class)
                .hasMessageContaining("mac.jsonl:1")
                .hasMessageContaining("carriage return");
        // Windows line ends are line ends
        Path w = tmp.resolve("windows.jsonl");
        Files.writeString(w, PAIR + "\r\n" + PAIR + "\r\n");
        assertThat(PreferenceData.load(w, DataFormat.AUTO, false).examples()).hasSize(2);
    }

    @Test
    void aKeyGivenTwiceIsRefusedInLinesAndArrays() throws Exception {
        Path f = tmp.resolve("dup.jsonl");
        Files.writeString(
                f, PAIR + "\n" + "{\"prompt\": \"a\", \"chosen\": \" b\", \"rejected\": \" c\", \"prompt\": \"z\"}\n");
        assertThatThrownBy(() -> PreferenceData.load(f, DataFormat.AUTO, false))
                .hasMessageContaining("dup.jsonl:2")
                .hasMessageContaining("Duplicate field 'prompt'");
        Path a = tmp.resolve("dup.json");
        Files.writeString(
                a, "[" + PAIR + ", {\"prompt\": \"a\", \"chosen\": \" b\", \"chosen\": \" x\", \"rejected\": \" c\"}]");
        assertThatThrownBy(() -> PreferenceData.load(a, DataFormat.AUTO, false))
                .hasMessageContaining("dup.json:2")
                .hasMessageContaining("Duplicate field 'chosen'");
    }

    @Test
    void contentAfterTheDataIsRefused() throws Exception {
        Path f = tmp.resolve("two.jsonl");
        Files.writeString(f, PAIR + " " + PAIR + "\n");
        assertThatThrownBy(() -> PreferenceData.load(f, DataFormat.AUTO, false))
                .hasMessageContaining("two.jsonl:1")
                .hasMessageContaining("Trailing token");
        Path a = tmp.resolve("two.json");
        Files.writeString(a, "[" + PAIR + "]\n[" + PAIR + "]\n");
        assertThatThrownBy(() -> PreferenceData.load(a, DataFormat.AUTO, false))
                .hasMessageContaining("two.json")
                .hasMessageContaining("content after the array's closing ']' at line 2");
    }

    @Test
    void aRecordOfTwentyFiveMillionCharactersIsRead() throws Exception {
        // Jackson's default limit is 20 million characters a string; --max-length is what should cut a long record
        String big = "x".repeat(25_000_000);
        Path f = tmp.resolve("big.jsonl");
        Files.writeString(f, "{\"prompt\": \"" + big + "\", \"chosen\": \" b\", \"rejected\": \" c\"}\n" + PAIR + "\n");
        List<PreferenceExample> ex =
                PreferenceData.load(f, DataFormat.AUTO, false).examples();
        assertThat(ex).hasSize(2);
        assertThat(ex.get(0).prompt()).hasSize(25_000_000);
    }

    @Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS)
    void aFifoIsRefusedWithoutBlocking() throws Exception {
        Path fifo = tmp.resolve("pipe.jsonl");
        Process mk = new ProcessBuilder("mkfifo", fifo.toString()).start();
        assertThat(mk.waitFor(10, TimeUnit.SECONDS) && mk.exitValue() == 0).isTrue();
        assertThatThrownBy(() -> PreferenceData.load(fifo, DataFormat.AUTO, false))
                .isInstanceOf(DataException.class)
                .hasMessageContaining("pipe.jsonl")
                .hasMessageContaining("not a regular file");
    }
}
