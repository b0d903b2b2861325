package org.align4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.UncheckedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.align4j.model.Fixtures;
import org.align4j.trainer.Failure;
import org.align4j.trainer.TrainingDivergedException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every error is one line naming what is at fault; exit 2 is bad input, 1 a failed run or a fault of the
 * machine; the stack trace goes to train.log, never to the console (unless --debug).
 */
class ErrorContractTest {
    @TempDir
    Path tmp;

    private static String prefs() {
        return Fixtures.root().resolve("prefs.jsonl").toString();
    }

    @Test
    void aPairLongerThanTheModelsPositionsIsNamedBeforeAnyStep() throws Exception {
        // gpt2-tiny has 256 learned positions; one pair of ~400 tokens
        Path data = tmp.resolve("long.jsonl");
        Files.writeString(
                data,
                Files.readString(Fixtures.root().resolve("prefs.jsonl")) + "{\"prompt\": \""
                        + "tell me more ".repeat(130) + "\", \"chosen\": \" ok\", \"rejected\": \" no\"}\n");
        CliTest.Result r = CliTest.run(
                "train",
                "--model",
                Fixtures.model("gpt2-tiny").toString(),
                "--data",
                data.toString(),
                "--output",
                tmp.resolve("run").toString(),
                "--max-steps",
                "1");
        assertThat(r.code()).as(r.err()).isEqualTo(2);
        assertThat(r.err().strip())
                .startsWith("error: long.jsonl:9: ")
                .contains("more than the model's 256 positions (config.json n_positions)")
                .contains("set max_length (--max-length) to 256 or less")
                .doesNotContain("\n")
                .doesNotContain("at org.");
        // the same record through logprobs --data, and a long prompt through generate
        CliTest.Result lp =
                CliTest.run("logprobs", "--model", Fixtures.model("gpt2-tiny").toString(), "--data", data.toString());
        assertThat(lp.err().strip()).contains("long.jsonl:9: ").contains("256 positions");
        CliTest.Result gen = CliTest.run(
                "generate",
                "--model",
                Fixtures.model("gpt2-tiny").toString(),
                "--prompt",
                "hello ".repeat(200),
                "--greedy",
                "--max-new-tokens",
                "100");
        assertThat(gen.code()).isEqualTo(2);
        assertThat(gen.err().strip())
                .startsWith("error: --prompt and --max-new-tokens: ")
                .contains("256 positions")
                .contains("keep the sum at 256 or less")
                .doesNotContain("max_length");
    }

    @Test
    void aVocabularySmallerThanTheTokenizersIsNamed() throws Exception {
        Path model = tmp.resolve("small-vocab");
        Files.createDirectories(model);
        try (var files = Files.list(Fixtures.model("gpt2-tiny"))) {
            for (Path f : files.toList()) {
                Files.copy(f, model.resolve(f.getFileName()));
            }
        }
        // a config that claims 300 tokens: the tokenizer's ids go up to 599
        Files.writeString(
                model.resolve("config.json"),
                Files.readString(model.resolve("config.json")).replace("\"vocab_size\": 600", "\"vocab_size\": 300"));
        CliTest.Result r = CliTest.run(
                "logprobs",
                "--model",
                model.toString(),
                "--prompt",
                "What is the capital of France?",
                "--completion",
                " Paris.");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err().strip()).isNotEmpty().doesNotContain("\n");
    }

    @Test
    void aDivergedRunExitsWith1AndKeepsItsStackTraceInTrainLog() throws Exception {
        Path out = tmp.resolve("diverged");
        CliTest.Result r = CliTest.run(
                "train",
                "--model",
                Fixtures.model("gpt2-tiny").toString(),
                "--data",
                prefs(),
                "--output",
                out.toString(),
                "--max-steps",
                "4",
                "--lr",
                "1e30",
                "--schedule",
                "constant",
                "--max-grad-norm",
                "0",
                "--save-every",
                "1");
        assertThat(r.code()).as(r.err()).isEqualTo(1);
        assertThat(r.err().lines().filter(l -> l.startsWith("error: "))).hasSize(1);
        assertThat(r.err())
                .contains("training stopped")
                .contains("stack trace in " + out.toAbsolutePath().resolve("train.log"))
                .doesNotContain("at org.align4j");
        assertThat(Files.readString(out.resolve("train.log")))
                .contains(TrainingDivergedException.class.getName())
                .contains("at org.align4j");
    }

    @Test
    void faultsOfTheMachineAreOneLineWithExit1() {
        // a full disk also says how much is free there (of the nearest folder that exists)
        Failure full = Align4j.failure(
                new FileSystemException("/runs/x/checkpoint-8/model.safetensors", null, "No space left on device"));
        assertThat(full.code()).isEqualTo(1);
        assertThat(full.message())
                .startsWith("cannot write or read /runs/x/checkpoint-8/model.safetensors: No space left on device (")
                .endsWith(" MiB free on that disk)");
        assertThat(Align4j.failure(new UncheckedIOException(new AccessDeniedException("/runs/x"))))
                .isEqualTo(new Failure(1, "cannot write or read /runs/x: permission denied"));
        assertThat(Align4j.failure(new IllegalArgumentException("--device: expected cpu, gpu or gpu:N, got 'gpu:x'"))
                        .code())
                .isEqualTo(2);
        assertThat(Align4j.failure(new NullPointerException("x")).message())
                .startsWith("internal error: java.lang.NullPointerException");
    }

    @Test
    void badDeviceNamesAreNamed() {
        CliTest.Result r = CliTest.run(
                "logprobs",
                "--model",
                Fixtures.model("gpt2-tiny").toString(),
                "--prompt",
                "a",
                "--completion",
                "b",
                "--device",
                "gpu:x");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err().strip()).startsWith("error: device: expected cpu, gpu or gpu:N, got 'gpu:x'");
    }
}
