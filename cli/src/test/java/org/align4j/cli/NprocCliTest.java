package org.align4j.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.align4j.model.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code --nproc N}: this command again under {@code mpirun -np N}, or a one-line refusal naming the flag. */
class NprocCliTest {
    @TempDir
    Path tmp;

    private String[] train(String output, String... more) {
        List<String> a = new ArrayList<>(List.of(
                "train",
                "--model",
                Fixtures.model("gpt2-tiny").toString(),
                "--reference-model",
                Fixtures.model("gpt2-tiny-ref").toString(),
                "--data",
                Fixtures.root().resolve("prefs.jsonl").toString(),
                "--output",
                tmp.resolve(output).toString(),
                "--max-steps",
                "3",
                "--learning-rate",
                "1e-3",
                "--log-every",
                "1",
                "--threads",
                "1"));
        a.addAll(List.of(more));
        return a.toArray(String[]::new);
    }

    @Test
    void badNprocAndOnlineRlAreRefusedByFlag() {
        CliTest.Result r = CliTest.run(train("zero", "--nproc", "0"));
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err().strip()).isEqualTo("error: --nproc: must be >= 1, got 0");
        assertThat(tmp.resolve("zero")).doesNotExist();
        CliTest.Result rl = CliTest.run(
                "grpo",
                "--model",
                Fixtures.model("gpt2-tiny").toString(),
                "--data",
                Fixtures.root().resolve("prefs.jsonl").toString(),
                "--output",
                tmp.resolve("rl").toString(),
                "--reward-funcs",
                "exact",
                "--nproc",
                "2");
        assertThat(rl.code()).isEqualTo(2);
        assertThat(rl.err().strip()).isEqualTo("error: --nproc: align4j grpo (online RL) runs as one process only");
    }

    @Test
    void twoProcessesOfBatchTwoLogTheLossesOfOneOfBatchFour() throws Exception {
        boolean found = false;
        for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            found |= Files.isExecutable(Path.of(dir, "mpirun"));
        }
        assumeTrue(
                found, "mpirun is not installed: the multi-process tests need Open MPI (apt-get install openmpi-bin)");
        assertThat(CliTest.run(train("one", "--batch-size", "4")).code()).isZero();
        CliTest.Result two = CliTest.run(train("two", "--batch-size", "2", "--nproc", "2"));
        assertThat(two.code()).as(two.err()).isZero();
        List<String> a = Files.readAllLines(tmp.resolve("one/metrics.jsonl"));
        List<String> b = Files.readAllLines(tmp.resolve("two/metrics.jsonl"));
        assertThat(b).hasSameSizeAs(a).hasSize(3);
        ObjectMapper json = new ObjectMapper();
        for (int i = 0; i < a.size(); i++) {
            double want = json.readTree(a.get(i)).get("loss").asDouble();
            double got = json.readTree(b.get(i)).get("loss").asDouble();
            assertThat(Math.abs(got - want))
                    .as("step %d: %s vs %s", i + 1, got, want)
                    .isLessThanOrEqualTo(1e-6 * want);
        }
        assertThat(tmp.resolve("two/final/model.safetensors")).exists();
        // rank 1 neither logs into the run folder nor prints a second summary
        assertThat(Files.readString(tmp.resolve("two/train.log"))).doesNotContain("rank 1 of 2");
    }
}
