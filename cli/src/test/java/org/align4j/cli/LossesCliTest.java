package org.align4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.align4j.losses.LossType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** {@code align4j losses} lists every objective, the README shows the same table, and a mix's bad options are one line. */
class LossesCliTest {
    @Test
    void everyObjectiveIsListedWithItsTrlNamePaperAndOptions() {
        CliTest.Result r = CliTest.run("losses");
        assertThat(r.code()).as(r.err()).isZero();
        for (LossType t : LossType.values()) {
            assertThat(r.out()).contains(t.toString()).contains(t.paper()).contains(t.description());
            t.trlName().ifPresent(n -> assertThat(r.out()).contains(n));
        }
        assertThat(r.out()).contains("options: beta, label_smoothing, f_divergence_type, ld_alpha, use_weighting");
    }

    @Test
    void theReadmeShowsTheTableTheCommandPrints() throws IOException {
        Path readme = Path.of(System.getProperty("maven.multiModuleProjectDirectory", ".."))
                .resolve("README.md");
        String text = Files.readString(Files.exists(readme) ? readme : Path.of("..", "README.md"));
        for (String row : LossesCommand.markdownTable()) {
            assertThat(text)
                    .as("README's table of objectives (./align4j losses --markdown)")
                    .contains(row);
        }
        CliTest.Result r = CliTest.run("losses", "--markdown");
        assertThat(r.out().strip()).isEqualTo(String.join("\n", LossesCommand.markdownTable()));
    }

    @ParameterizedTest
    @CsvSource(
            delimiter = '|',
            value = {
                "--loss ipo --ld-alpha 0.5|--ld-alpha: loss ipo does not use it",
                "--loss nca_pair --f-divergence-type js_divergence|--f-divergence-type: loss nca-pair has no f-divergence form",
                "--loss sigmoid,bco_pair,sft --loss-weights 0.8,0.2|--loss-weights: 2 weights for 3 objectives (dpo+bco-pair+sft)",
                "--loss_type aot --use_weighting|--use-weighting: loss aot does not take per-pair weights",
                "--loss dpo --f-alpha-divergence-coef 0.3|--f-alpha-divergence-coef: has no effect here",
                "--loss dpo,rpo|--loss: unknown objective 'rpo'"
            })
    void anOptionAnObjectiveDoesNotReadIsOneLineAndExitTwo(String flags, String message) {
        String[] args = ("train --model m --data d --output o " + flags).split(" ");
        CliTest.Result r = CliTest.run(args);
        assertThat(r.code()).as(r.err()).isEqualTo(2);
        assertThat(r.err().strip()).doesNotContain("\n").startsWith("error: " + message);
    }

    @Test
    void sftRefusesTheMixAndItsModifiers() {
        CliTest.Result mix = CliTest.run("sft", "--model", "m", "--data", "d", "--output", "o", "--loss", "dpo,sft");
        assertThat(mix.code()).isEqualTo(2);
        assertThat(mix.err().strip()).isEqualTo("error: --loss: this command trains loss sft only, not a mix");
        CliTest.Result ld = CliTest.run("sft", "--model", "m", "--data", "d", "--output", "o", "--ld-alpha", "0.5");
        assertThat(ld.err().strip())
                .isEqualTo("error: --ld-alpha: has no effect here: sft trains no preference objective");
    }
}
