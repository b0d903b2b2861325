package org.align4j.trainer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.align4j.model.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A run folder belongs to one run: nothing of an earlier run is lost, and nothing a run reads is deleted. */
class RunFolderTest {
    @TempDir
    Path tmp;

    private Map<String, Object> config(Path out, int steps) {
        Map<String, Object> c = new LinkedHashMap<>();
        c.put("model", Fixtures.model("gpt2-tiny").toString());
        c.put("reference_model", Fixtures.model("gpt2-tiny-ref").toString());
        c.put("data", Fixtures.root().resolve("prefs.jsonl").toString());
        c.put("output", out.toString());
        c.put("batch_size", 4);
        c.put("max_steps", steps);
        c.put("save_every", 1);
        c.put("keep_last", 1);
        c.put("learning_rate", 1e-3);
        return c;
    }

    private void train(Map<String, Object> c, RunFolder.Mode mode) throws IOException {
        try (PreferenceTrainer t = PreferenceTrainer.create(TrainConfig.resolve(null, c), mode)) {
            t.train();
        }
    }

    @Test
    void aFreshRunIntoAUsedFolderIsRefusedAndLosesNothing() throws IOException {
        Path out = tmp.resolve("run");
        train(config(out, 2), RunFolder.Mode.fresh());
        List<String> before = Files.readAllLines(out.resolve("metrics.jsonl"));
        assertThatThrownBy(() -> train(config(out, 3), RunFolder.Mode.fresh()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("key 'output': " + out)
                .hasMessageContaining("already holds a run")
                .hasMessageContaining("--resume")
                .hasMessageContaining("--overwrite");
        assertThat(Files.readAllLines(out.resolve("metrics.jsonl"))).isEqualTo(before);
        assertThat(out.resolve("checkpoint-2")).isDirectory();
        // --overwrite starts over; --resume without a checkpoint is an error, not a fresh start
        train(config(out, 1), RunFolder.Mode.overwrite());
        assertThat(Files.readAllLines(out.resolve("metrics.jsonl"))).hasSize(1);
        Path empty = tmp.resolve("empty");
        assertThatThrownBy(() -> train(config(empty, 1), RunFolder.Mode.resumeLatest()))
                .hasMessageContaining("--resume: ")
                .hasMessageContaining("has no checkpoint to resume from");
    }

    @Test
    void aRunThatFailedBeforeItsFirstStepLeavesAFolderANewRunMayUse() throws IOException {
        Path out = tmp.resolve("failed");
        Map<String, Object> bad = config(out, 1);
        bad.put("data", tmp.resolve("missing.jsonl").toString());
        assertThatThrownBy(() -> train(bad, RunFolder.Mode.fresh())).hasMessageContaining("missing.jsonl");
        Files.writeString(
                out.resolve("train.log"), "what the CLI logged of the failed attempt\n"); // as the CLI leaves it
        train(config(out, 1), RunFolder.Mode.fresh());
        assertThat(out.resolve("final")).isDirectory();
    }

    /**
     * {@code --overwrite} with a bad input (a missing data file, a broken record, a folder killed mid-start)
     * loses nothing: the earlier run is set aside, and back when the new one ends before its first step.
     */
    @Test
    void anOverwriteThatFailsBeforeItsFirstStepKeepsTheEarlierRun() throws IOException {
        Path out = tmp.resolve("kept");
        train(config(out, 2), RunFolder.Mode.fresh());
        List<String> metrics = Files.readAllLines(out.resolve("metrics.jsonl"));
        Files.writeString(out.resolve("train.log"), "the earlier run's log\n");
        Map<String, Object> missing = config(out, 1);
        missing.put("data", tmp.resolve("missing.jsonl").toString());
        assertThatThrownBy(() -> train(missing, RunFolder.Mode.overwrite())).hasMessageContaining("missing.jsonl");
        Path broken = Files.writeString(tmp.resolve("broken.jsonl"), "{\"prompt\": \"a\", \"chosen\": \"b\",\n");
        Map<String, Object> bad = config(out, 1);
        bad.put("data", broken.toString());
        assertThatThrownBy(() -> train(bad, RunFolder.Mode.overwrite())).hasMessageContaining("broken.jsonl:1");
        assertThat(Files.readAllLines(out.resolve("metrics.jsonl"))).isEqualTo(metrics);
        assertThat(out.resolve("checkpoint-2")).isDirectory();
        assertThat(out.resolve("final")).isDirectory();
        assertThat(Files.readString(out.resolve("train.log"))).startsWith("the earlier run's log");
        assertThat(out.resolve(RunFolder.ASIDE)).doesNotExist();
        // a process killed after setting the earlier run aside: the next claim puts it back first
        try (RunFolder killed =
                RunFolder.claim(TrainConfig.resolve(null, config(out, 1)), RunFolder.Mode.overwrite())) {
            assertThat(out.resolve(RunFolder.ASIDE).resolve("metrics.jsonl")).exists();
            assertThat(out.resolve("metrics.jsonl")).doesNotExist();
            Path copy = tmp.resolve("aside-copy");
            Files.move(out.resolve(RunFolder.ASIDE), copy); // as a kill would leave it, out of close()'s reach
            killed.close();
            Files.move(copy, out.resolve(RunFolder.ASIDE));
        }
        assertThatThrownBy(() -> train(config(out, 1), RunFolder.Mode.fresh()))
                .hasMessageContaining("already holds a run");
        assertThat(Files.readAllLines(out.resolve("metrics.jsonl"))).isEqualTo(metrics);
        // and an overwrite that trains deletes it
        train(config(out, 1), RunFolder.Mode.overwrite());
        assertThat(Files.readAllLines(out.resolve("metrics.jsonl"))).hasSize(1);
        assertThat(out.resolve("checkpoint-2")).doesNotExist();
        assertThat(out.resolve(RunFolder.ASIDE)).doesNotExist();
    }

    @Test
    void resumingAFinishedRunTrainsNothingAndKeepsItsFinalModel() throws IOException {
        Path out = tmp.resolve("done");
        train(config(out, 2), RunFolder.Mode.fresh());
        Path weights = out.resolve("final/model.safetensors");
        var written = Files.getLastModifiedTime(weights);
        List<String> metrics = Files.readAllLines(out.resolve("metrics.jsonl"));
        try (PreferenceTrainer t =
                PreferenceTrainer.create(TrainConfig.resolve(null, config(out, 2)), RunFolder.Mode.resumeLatest())) {
            TrainResult r = t.train();
            assertThat(r.lastStep()).isEqualTo(2);
            assertThat(r.finalModel()).isEqualTo(out.resolve("final"));
        }
        assertThat(Files.getLastModifiedTime(weights)).isEqualTo(written);
        assertThat(Files.readAllLines(out.resolve("metrics.jsonl"))).isEqualTo(metrics);
    }

    @Test
    void aSecondRunOnAFolderInUseIsRefusedNamingTheHolder() throws IOException {
        Path out = tmp.resolve("busy");
        try (RunFolder first = RunFolder.claim(TrainConfig.resolve(null, config(out, 1)), RunFolder.Mode.fresh())) {
            assertThat(Files.readString(out.resolve(RunFolder.LOCK)))
                    .contains("pid " + ProcessHandle.current().pid());
            assertThatThrownBy(() -> RunFolder.claim(TrainConfig.resolve(null, config(out, 1)), RunFolder.Mode.fresh()))
                    .hasMessageContaining("is in use by another run (pid "
                            + ProcessHandle.current().pid());
        }
        RunFolder.claim(TrainConfig.resolve(null, config(out, 1)), RunFolder.Mode.fresh())
                .close(); // released
    }

    @Test
    void inputsInsideTheRunFolderAreNeverPrunedAndResumeWarnsAboutChanges() throws IOException {
        Path out = tmp.resolve("inputs");
        train(config(out, 2), RunFolder.Mode.fresh());
        // continue from the run's own checkpoint-2, as the model too, with keep_last 1 and a changed batch size
        Map<String, Object> c = config(out, 5);
        c.put("model", out.resolve("checkpoint-2").toString());
        c.put("batch_size", 2);
        Files.createDirectories(out.resolve(".checkpoint-3.tmp-killed")); // what kill -9 during a save leaves
        try (RunFolder folder = RunFolder.claim(TrainConfig.resolve(null, c), RunFolder.Mode.resumeLatest())) {
            assertThat(folder.changes())
                    .anySatisfy(s -> assertThat(s).startsWith("batch_size = 2 where checkpoint-2 ran with 4"))
                    .anySatisfy(s -> assertThat(s).startsWith("model = "));
            assertThat(out.resolve(".checkpoint-3.tmp-killed")).doesNotExist();
            try (PreferenceTrainer t = PreferenceTrainer.create(TrainConfig.resolve(null, c), folder)) {
                t.train();
            }
        }
        assertThat(out.resolve("checkpoint-2/model.safetensors"))
                .as("an input of the run")
                .exists();
        assertThat(out.resolve("checkpoint-5")).isDirectory();
        assertThat(out.resolve("checkpoint-4")).doesNotExist();
        assertThat(out.resolve("final/tokenizer.json")).exists();
        // and --overwrite would delete that input: refused
        assertThatThrownBy(() -> RunFolder.claim(TrainConfig.resolve(null, c), RunFolder.Mode.overwrite()))
                .hasMessageContaining("--overwrite: would delete")
                .hasMessageContaining("checkpoint-2");
    }

    @Test
    void anOnlineRlRunsConfigIsComparedWithItsMethodsKeysAndAnotherLossIsRefused() throws IOException {
        Path out = tmp.resolve("rl-keys");
        train(config(out, 1), RunFolder.Mode.fresh());
        // what grpo and rloo write beside the shared keys: TrainConfig alone would refuse them as unknown
        Path saved = out.resolve("checkpoint-1/config.yaml");
        Files.writeString(saved, Files.readString(saved) + "num_generations: 4\nmax_completion_length: 8\n");
        Map<String, Object> c = config(out, 2);
        c.put("batch_size", 2);
        try (RunFolder folder = RunFolder.claim(TrainConfig.resolve(null, c), RunFolder.Mode.resumeLatest())) {
            assertThat(folder.changes())
                    .anySatisfy(s -> assertThat(s).startsWith("batch_size = 2 where checkpoint-1 ran with 4"));
        }
        c.put("loss", "ipo");
        assertThatThrownBy(() -> RunFolder.claim(TrainConfig.resolve(null, c), RunFolder.Mode.resumeLatest()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("--resume: loss = ipo where checkpoint-1 ran with dpo");
    }

    @Test
    void anOutputThatIsAFileIsNamed() throws IOException {
        Path file = tmp.resolve("a-file");
        Files.writeString(file, "x");
        assertThatThrownBy(() -> RunFolder.claim(TrainConfig.resolve(null, config(file, 1)), RunFolder.Mode.fresh()))
                .hasMessage("key 'output': " + file + " is a file, not a folder");
    }
}
