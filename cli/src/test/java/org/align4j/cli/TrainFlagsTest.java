package org.align4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import org.align4j.model.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The train and sft flags as a TRL user types them: TRL's names train, typos get a guess, options that would do nothing are refused. */
class TrainFlagsTest {
    @TempDir
    Path tmp;

    @Test
    void aTrlStyleYamlTrains() throws Exception {
        Path yaml = tmp.resolve("dpo.yaml");
        Files.writeString(
                yaml,
                String.join(
                        "\n",
                        "model_name_or_path: " + Fixtures.model("gpt2-tiny"),
                        "data: " + Fixtures.root().resolve("prefs.jsonl"),
                        "output_dir: " + tmp.resolve("run"),
                        "loss_type: sigmoid",
                        "beta: 0.1",
                        "learning_rate: 1.0e-4",
                        "per_device_train_batch_size: 2",
                        "gradient_accumulation_steps: 2",
                        "num_train_epochs: 1",
                        "max_steps: 2",
                        "warmup_ratio: 0.5",
                        "lr_scheduler_type: cosine",
                        "logging_steps: 1",
                        "save_steps: 1",
                        "save_total_limit: 1",
                        "precompute_ref_log_probs: true",
                        "max_grad_norm: 1.0",
                        "seed: 7",
                        "report_to: none",
                        ""));
        CliTest.Result r = CliTest.run("train", "--config", yaml.toString(), "--epochs", "3");
        assertThat(r.code()).as(r.err()).isEqualTo(2);
        assertThat(r.err()).contains("--epochs: max_steps 2 is also given");
        r = CliTest.run("train", "--config", yaml.toString());
        assertThat(r.code()).as(r.err()).isZero();
        String saved = Files.readString(tmp.resolve("run/config.yaml"));
        assertThat(saved)
                .contains(
                        "batch_size: 2",
                        "grad_accum: 2",
                        "schedule: cosine",
                        "reference: precomputed",
                        "keep_last: 1",
                        "seed: 7");
        assertThat(Files.readAllLines(tmp.resolve("run/metrics.jsonl"))).hasSize(2);
    }

    @Test
    void trlFlagNamesAndBothSpellingsAreAccepted() throws Exception {
        CliTest.Result r = CliTest.run(
                "train",
                "--model_name_or_path",
                Fixtures.model("gpt2-tiny").toString(),
                "--data",
                Fixtures.root().resolve("prefs.jsonl").toString(),
                "--output_dir",
                tmp.resolve("flags").toString(),
                "--per_device_train_batch_size",
                "4",
                "--learning_rate",
                "1e-4",
                "--max-steps",
                "1",
                "--precompute_ref_log_probs");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(Files.readString(tmp.resolve("flags/config.yaml")))
                .contains("batch_size: 4", "reference: precomputed");
    }

    @Test
    void badFlagsAreOneLineNamingTheFlag() {
        CliTest.Result typo = CliTest.run("train", "--lerning-rate", "1e-3");
        assertThat(typo.code()).isEqualTo(2);
        assertThat(typo.err().strip())
                .doesNotContain("\n")
                .startsWith("error: Unknown option")
                .contains("did you mean --learning-rate");
        CliTest.Result ls = CliTest.run(
                "train", "--model", "m", "--data", "d", "--output", "o", "--loss", "ipo", "--label_smoothing", "0.2");
        assertThat(ls.err().strip())
                .isEqualTo(
                        "error: --label-smoothing: loss ipo does not use it (dpo, cdpo, robust, exo-pair, aot, aot-unpaired, cpo do)");
        CliTest.Result sftLoss = CliTest.run("sft", "--model", "m", "--data", "d", "--output", "o", "--loss", "dpo");
        assertThat(sftLoss.err().strip()).isEqualTo("error: --loss: this command trains loss sft only, got dpo");
        CliTest.Result sftBeta = CliTest.run("sft", "--model", "m", "--data", "d", "--output", "o", "--beta", "0.3");
        assertThat(sftBeta.err().strip())
                .isEqualTo("error: --beta: loss sft does not use it (every preference objective does)");
        CliTest.Result refused =
                CliTest.run("train", "--model", "m", "--data", "d", "--output", "o", "--gradient_checkpointing");
        assertThat(refused.err().strip())
                .startsWith("error: --gradient_checkpointing: TRL's 'gradient_checkpointing' has no align4j meaning");
        CliTest.Result infinite =
                CliTest.run("train", "--model", "m", "--data", "d", "--output", "o", "--lr", "Infinity");
        assertThat(infinite.err().strip()).isEqualTo("error: --learning-rate: must be a finite number, got Infinity");
    }

    @Test
    void helpShowsDefaultsAndSftItsOwn() {
        CliTest.Result train = CliTest.run("train", "--help");
        assertThat(train.out().replaceAll("\\s+", " "))
                .contains("(default: 1e-6)", "(default: dpo)")
                .doesNotContain("per_device_train_batch_size", "per-device");
        CliTest.Result sft = CliTest.run("sft", "--help");
        assertThat(sft.out().replaceAll("\\s+", " ")).contains("(default: 2e-5)");
    }

    @Test
    void aDryRunShowsTheConfigDataAndFirstExampleAndWritesNothing() {
        Path out = tmp.resolve("dry");
        CliTest.Result r = CliTest.run(
                "train",
                "--model",
                Fixtures.model("gpt2-tiny").toString(),
                "--data",
                Fixtures.root().resolve("prefs.jsonl").toString(),
                "--output",
                out.toString(),
                "--eval-fraction",
                "0.25",
                "--loss",
                "ipo",
                "--dry-run");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out())
                .contains(
                        "loss: ipo",
                        "# model: gpt2, 2 layers",
                        "# held out: 2 of 8 examples",
                        "pairs 6",
                        "p50",
                        "prompt_text:",
                        "chosen_ids: [");
        assertThat(out).doesNotExist();
        CliTest.Result sft = CliTest.run(
                "sft",
                "--model",
                Fixtures.model("gpt2-tiny").toString(),
                "--data",
                Fixtures.root().resolve("prefs.jsonl").toString(),
                "--output",
                out.toString(),
                "--dry-run");
        assertThat(sft.code()).as(sft.err()).isZero();
        assertThat(sft.out()).contains("loss: sft", "learning_rate: 2.0E-5", "pairs 8");
    }
}
