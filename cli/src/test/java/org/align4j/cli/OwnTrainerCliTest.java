package org.align4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.align4j.model.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@code align4j kto}, {@code orpo} and {@code cpo} through the command line: runs that write TRL's metrics
 * and their own keys into config.yaml, and bad input (a KTO record without a label or with one that is not
 * true or false, pairs without the unpairing switch, one trainer's option given to another) as one line
 * naming the field, key or flag, exit 2.
 */
class OwnTrainerCliTest {
    @TempDir
    Path tmp;

    private static String model() {
        return Fixtures.model("gpt2-tiny").toString();
    }

    private static String prefs() {
        return Fixtures.root().resolve("prefs.jsonl").toString();
    }

    private Path feedback() throws Exception {
        Path data = tmp.resolve("feedback.jsonl");
        Files.writeString(data, """
                {"prompt": "What is 2+2?", "completion": " 4", "label": true}
                {"prompt": "What is 2+3?", "completion": " 6", "label": false}
                {"prompt": "What is 3+3?", "completion": " 6", "label": true}
                {"prompt": "What is 1+1?", "completion": " 3", "label": false}
                """);
        return data;
    }

    private static List<String> args(String command, String data, Path output, String... more) {
        List<String> a = new ArrayList<>(List.of(
                command, "--model", model(), "--data", data, "--output", output.toString(), "--max-steps", "2"));
        a.addAll(List.of(more));
        return a;
    }

    @Test
    void ktoTrainsOnLabelledCompletionsAndResumesWithItsOwnKeys() throws Exception {
        Path run = tmp.resolve("kto");
        CliTest.Result r = CliTest.run(args(
                        "kto",
                        feedback().toString(),
                        run,
                        "--batch-size",
                        "2",
                        "--desirable-weight",
                        "1.2",
                        "--lr",
                        "1e-3")
                .toArray(String[]::new));
        assertThat(r.code()).as(r.err()).isZero();
        String metrics = Files.readString(run.resolve("metrics.jsonl"));
        for (String name : List.of("\"kl\"", "\"rewards/chosen\"", "\"logps/rejected\"", "\"rewards/margins\"")) {
            assertThat(metrics).contains(name);
        }
        assertThat(Files.readString(run.resolve("config.yaml")))
                .contains("loss: kto")
                .contains("loss_type: kto")
                .contains("desirable_weight: 1.2");
        CliTest.Result resumed = CliTest.run("kto", "--output", run.toString(), "--resume", "--max-steps", "3");
        assertThat(resumed.code()).as(resumed.err()).isZero();
        assertThat(Files.readString(run.resolve("metrics.jsonl"))).contains("\"step\":3");
    }

    @Test
    void ktoUnpairsPairsWhenAsked() {
        Path run = tmp.resolve("kto-pairs");
        CliTest.Result r =
                CliTest.run(args("kto", prefs(), run, "--unpair-preference-dataset", "--batch-size", "8", "--dry-run")
                        .toArray(String[]::new));
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("16 examples (8 desirable, 8 undesirable)");
    }

    @Test
    void orpoAndCpoTrainWithoutAReference() {
        CliTest.Result orpo = CliTest.run(
                args("orpo", prefs(), tmp.resolve("orpo"), "--batch-size", "4").toArray(String[]::new));
        assertThat(orpo.code()).as(orpo.err()).isZero();
        CliTest.Result simpo = CliTest.run(args(
                        "cpo",
                        prefs(),
                        tmp.resolve("simpo"),
                        "--loss-type",
                        "simpo",
                        "--cpo-alpha",
                        "0",
                        "--simpo-gamma",
                        "1.0",
                        "--beta",
                        "2.0")
                .toArray(String[]::new));
        assertThat(simpo.code()).as(simpo.err()).isZero();
        assertThat(tmp.resolve("orpo/metrics.jsonl")).content().contains("\"log_odds_chosen\"");
        assertThat(tmp.resolve("simpo/config.yaml"))
                .content()
                .contains("loss: cpo")
                .contains("loss_type: simpo")
                .contains("cpo_alpha: 0.0")
                .contains("gamma: 1.0");
    }

    @ParameterizedTest
    @CsvSource(
            delimiter = '|',
            value = {
                "{\"prompt\": \"a\", \"completion\": \" b\"}|kto|:1: field 'label': missing",
                "{\"prompt\": \"a\", \"completion\": \" b\", \"label\": \"yes\"}|kto|:1: field 'label': expected true or false",
                "{\"prompt\": \"a\", \"completion\": \" b\", \"label\": 1}|kto|:1: field 'label': expected true or false",
                "{\"prompt\": \"a\", \"chosen\": \" b\", \"rejected\": \" c\"}|kto|:1: field 'chosen': a preference pair",
                "{\"prompt\": \"a\", \"label\": true}|kto|:1: field 'completion': missing",
            })
    void aBadKtoRecordIsOneLineNamingTheField(String record, String command, String message) throws Exception {
        Path data = tmp.resolve("bad.jsonl");
        Files.writeString(data, record + "\n");
        CliTest.Result r =
                CliTest.run(args(command, data.toString(), tmp.resolve("run")).toArray(String[]::new));
        assertThat(r.code()).as(r.err()).isEqualTo(2);
        assertThat(r.err().strip()).doesNotContain("\n").startsWith("error: " + data + message);
    }

    @Test
    void pairsWithoutTheSwitchNameIt() {
        CliTest.Result r = CliTest.run(args("kto", prefs(), tmp.resolve("run")).toArray(String[]::new));
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err().strip()).doesNotContain("\n").contains("--unpair-preference-dataset");
    }

    @ParameterizedTest
    @CsvSource(
            delimiter = '|',
            value = {
                "train|--desirable-weight 2|error: --desirable_weight: TRL's 'desirable_weight' is KTOConfig's: the align4j kto command reads it",
                "train|--cpo-alpha 0.5|error: --cpo_alpha: TRL's 'cpo_alpha' is CPOConfig's: the align4j cpo command reads it",
                "orpo|--undesirable-weight 2|error: --undesirable_weight: TRL's 'undesirable_weight' is KTOConfig's",
                "orpo|--loss-type sigmoid|error: --loss-type: has no effect here: orpo is one objective",
                "orpo|--alpha 0.5|error: --alpha: TRL's 'alpha' is CPOConfig's",
                "orpo|--label-smoothing 0.1|error: --label-smoothing: loss orpo does not use it",
                "orpo|--reference-model m|error: --reference-model: has no effect here: orpo is reference-free",
                "cpo|--unpair-preference-dataset|error: --unpair_preference_dataset: TRL's 'unpair_preference_dataset' is KTOConfig's",
                "cpo|--desirable-weight 2|error: --desirable_weight: TRL's 'desirable_weight' is KTOConfig's",
                "cpo|--loss-type hinge --label-smoothing 0.1|error: key 'label_smoothing': has no effect here: loss_type hinge",
                "cpo|--loss-type alphapo --cpo-alpha 1|error: --cpo-alpha: has no effect here: loss_type alphapo",
                "cpo|--loss-type kto|error: --loss-type: one of sigmoid, hinge, ipo, simpo, alphapo, got 'kto'",
                "kto|--cpo-alpha 1|error: --cpo_alpha: TRL's 'cpo_alpha' is CPOConfig's",
                "kto|--loss-type sigmoid|error: --loss-type: one of kto, apo_zero_unpaired, got 'sigmoid'",
                "kto|--label-smoothing 0.1|error: --label-smoothing: loss kto does not use it",
                "kto|--ld-alpha 0.5|error: --ld-alpha: has no effect here: DPO's modifiers apply to align4j train's objectives",
                "kto|--batch-size 1|error: key 'batch_size': kto needs at least 2 examples per micro-batch",
                "kto|--group-by-length|error: --group-by-length: has no effect here: kto takes the data in order",
                "kto|--desirable-weight 0|error: --desirable-weight: must be > 0",
                "train|--loss kto|error: --loss: kto has a trainer of its own: the align4j kto command",
            })
    void oneTrainersOptionGivenToAnotherIsOneLineAndExitTwo(String command, String flags, String message) {
        List<String> a = new ArrayList<>(List.of(command, "--model", "m", "--data", "d", "--output", "o"));
        a.addAll(List.of(flags.split(" ")));
        CliTest.Result r = CliTest.run(a.toArray(String[]::new));
        assertThat(r.code()).as(r.err()).isEqualTo(2);
        assertThat(r.err().strip()).doesNotContain("\n").startsWith(message);
    }

    @Test
    void aYamlKeyOfAnotherTrainerIsNamedWithItsLine() throws Exception {
        Path yaml = tmp.resolve("kto.yaml");
        Files.writeString(yaml, "model: m\ndata: d\noutput: o\ndesirable_weight: 1.3\ncpo_alpha: 0.5\n");
        CliTest.Result r = CliTest.run("kto", "--config", yaml.toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err().strip())
                .doesNotContain("\n")
                .startsWith("error: " + yaml + ":5: key 'cpo_alpha': TRL's 'cpo_alpha' is CPOConfig's");
    }
}
