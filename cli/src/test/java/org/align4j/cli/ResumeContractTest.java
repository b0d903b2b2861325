package org.align4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.align4j.model.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A run resumes only what it can continue exactly: another LoRA shape, another objective or another
 * trainer is refused by name, before anything trains; and {@code --output RUN --resume} alone continues
 * the run as it was started, saying from which checkpoint.
 */
class ResumeContractTest {
    @TempDir
    Path tmp;

    private static String[] args(String command, Path out, String... more) {
        List<String> a = new ArrayList<>(List.of(
                command,
                "--model",
                Fixtures.model("gpt2-tiny").toString(),
                "--data",
                Fixtures.root().resolve("prefs.jsonl").toString(),
                "--output",
                out.toString(),
                "--batch-size",
                "4",
                "--save-every",
                "1"));
        a.addAll(Arrays.asList(more));
        return a.toArray(String[]::new);
    }

    private static void trained(CliTest.Result r) {
        assertThat(r.code()).as(r.err()).isZero();
    }

    private static void refused(CliTest.Result r, String message) {
        assertThat(r.code()).as(r.err()).isEqualTo(2);
        assertThat(r.err().strip()).startsWith("error: " + message).doesNotContain("\n");
    }

    @Test
    void anotherLoraShapeIsRefusedByName() {
        Path out = tmp.resolve("lora");
        trained(CliTest.run(args("train", out, "--lora-r", "4", "--max-steps", "1")));
        refused(
                CliTest.run(args("train", out, "--lora-r", "8", "--max-steps", "2", "--resume")),
                "--resume: lora_r = 8 where checkpoint-1 ran with 4; a checkpoint continues only the run that saved it");
        refused(
                CliTest.run(args("train", out, "--lora-r", "4", "--lora-alpha", "64", "--max-steps", "2", "--resume")),
                "--resume: lora_alpha = 64.0 where checkpoint-1 ran with 32.0");
        refused(
                CliTest.run(
                        args("train", out, "--lora-r", "4", "--lora-target", "c_proj", "--max-steps", "2", "--resume")),
                "--resume: lora_target = c_proj where checkpoint-1 ran with");
        assertThat(out.resolve("checkpoint-2")).doesNotExist();
    }

    @Test
    void anotherObjectiveOrTrainerIsRefusedByName() {
        Path dpo = tmp.resolve("dpo");
        trained(CliTest.run(args("train", dpo, "--max-steps", "1")));
        refused(
                CliTest.run(args("train", dpo, "--loss", "ipo", "--max-steps", "2", "--resume")),
                "--resume: loss = ipo where checkpoint-1 ran with dpo");
        Path reward = tmp.resolve("reward");
        trained(CliTest.run(withTrain(args("reward", reward, "--max-steps", "1"))));
        refused(
                CliTest.run(args("train", reward, "--max-steps", "2", "--resume")),
                "--resume: loss = dpo where checkpoint-1 ran with reward");
        refused(
                CliTest.run(args("sft", dpo, "--max-steps", "2", "--resume")),
                "--resume: loss = sft where checkpoint-1 ran with dpo");
        assertThat(reward.resolve("checkpoint-2")).doesNotExist();
    }

    /** {@code reward train ...}: the subcommand after reward. */
    private static String[] withTrain(String[] a) {
        List<String> l = new ArrayList<>(Arrays.asList(a));
        l.add(1, "train");
        return l.toArray(String[]::new);
    }

    @Test
    void outputAndResumeAloneContinueTheRunAsItWasStarted() throws Exception {
        Path out = tmp.resolve("run");
        trained(CliTest.run(args("train", out, "--max-steps", "1", "--beta", "0.2")));
        CliTest.Result r = CliTest.run("train", "--output", out.toString(), "--resume", "--max-steps", "2");
        trained(r);
        assertThat(r.err())
                .contains("resuming from " + out.toAbsolutePath().resolve("checkpoint-1"))
                .contains("changed: max_steps = 2 where checkpoint-1 ran with 1");
        assertThat(out.resolve("checkpoint-2")).isDirectory();
        assertThat(Files.readString(out.resolve("checkpoint-2/config.yaml"))).contains("beta: 0.2");
    }
}
