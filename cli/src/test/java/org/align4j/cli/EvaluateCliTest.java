package org.align4j.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.offset;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.align4j.evaluation.Bandit;
import org.align4j.model.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class EvaluateCliTest {
    @Test
    void banditJsonHasIpoAtItsClosedFormAndDpoAtTheDeterministicPolicy(@TempDir Path tmp) throws Exception {
        CliTest.Result r =
                CliTest.run("evaluate", "bandit", "--betas", "0.1,0.5,1", "--output", tmp.toString(), "--json");
        assertThat(r.code()).as(r.err()).isZero();
        JsonNode out = CliTest.JSON.readTree(r.out());
        assertThat(out.fieldNames()).toIterable().containsExactly("dpo", "ipo");
        for (String beta : List.of("0.1", "0.5", "1")) {
            double[] expected = Bandit.ipoClosedForm(Double.parseDouble(beta));
            JsonNode ipo = out.get("ipo").get(beta);
            assertThat(ipo.get("converged").asBoolean())
                    .as("ipo %s at its minimum", beta)
                    .isTrue();
            assertThat(ipo.get("pi")).as("ipo " + beta).hasSize(3);
            for (int a = 0; a < 3; a++) {
                assertThat(ipo.get("pi").get(a).asDouble())
                        .as("ipo %s pi[%d]", beta, a)
                        .isCloseTo(expected[a], offset(1e-9));
            }
            JsonNode dpo = out.get("dpo").get(beta);
            assertThat(dpo.get("converged").asBoolean())
                    .as("dpo %s never reaches a minimum", beta)
                    .isFalse();
            assertThat(dpo.get("steps").asInt()).isEqualTo(Bandit.DEFAULT_STEPS);
            assertThat(dpo.get("pi").get(0).asDouble())
                    .as("dpo %s goes past ipo's pi(a)", beta)
                    .isGreaterThan(ipo.get("pi").get(0).asDouble());
        }
        assertThat(tmp.resolve("curves.csv")).exists();
        assertThat(tmp.resolve("bandit.png")).exists();
        assertThat(Files.readString(tmp.resolve("bandit.html"))).contains("What it shows");
    }

    @Test
    void preferencesReproduceTheFixtureRewardsAndSelfKlIsZero(@TempDir Path tmp) throws Exception {
        Path data = firstFourPairs(tmp);
        String policy = Fixtures.model("gpt2-tiny").toString();
        CliTest.Result r = CliTest.run(
                "evaluate",
                "preferences",
                "--policy",
                policy,
                "--reference",
                Fixtures.model("gpt2-tiny-ref").toString(),
                "--data",
                data.toString(),
                "--beta",
                "0.1",
                "--kl-prompts",
                "2",
                "--kl-samples",
                "3",
                "--max-new-tokens",
                "4",
                "--json");
        assertThat(r.code()).as(r.err()).isZero();
        JsonNode out = CliTest.JSON.readTree(r.out());
        JsonNode ref = Fixtures.referenceJson("gpt2-tiny");
        double chosen = 0;
        double rejected = 0;
        for (int i = 0; i < 4; i++) {
            chosen += ref.get("rewards_chosen").get(i).asDouble() / 4;
            rejected += ref.get("rewards_rejected").get(i).asDouble() / 4;
        }
        assertThat(out.get("pairs").asInt()).isEqualTo(4);
        assertThat(out.get("rewards/chosen").asDouble()).isCloseTo(chosen, offset(1e-4));
        assertThat(out.get("rewards/rejected").asDouble()).isCloseTo(rejected, offset(1e-4));
        assertThat(out.get("kl").asDouble()).isPositive();
        assertThat(out.get("kl_samples").asInt()).isEqualTo(6);
        assertThat(out.get("kl_sampled_se").asDouble()).isPositive();

        CliTest.Result self = CliTest.run(
                "evaluate",
                "preferences",
                "--policy",
                policy,
                "--reference",
                policy,
                "--data",
                data.toString(),
                "--kl-prompts",
                "2",
                "--kl-samples",
                "3",
                "--max-new-tokens",
                "4",
                "--json");
        JsonNode s = CliTest.JSON.readTree(self.out());
        assertThat(s.get("kl").asDouble()).isZero();
        assertThat(s.get("kl_sampled").asDouble()).isZero();
        assertThat(s.get("rewards/accuracies").asDouble())
                .as("every pair ties: 0, as TRL counts")
                .isZero();
    }

    @Test
    void winRateOfTheQuickstartTaskJudgedAgainstTheChosenAnswer(@TempDir Path tmp) throws Exception {
        // a model against itself: every prompt ties, whatever it answers
        Path data = firstFourPairs(tmp);
        String policy = Fixtures.model("gpt2-tiny").toString();
        CliTest.Result self = CliTest.run(
                "evaluate",
                "winrate",
                "--policy",
                policy,
                "--reference",
                policy,
                "--data",
                data.toString(),
                "--max-new-tokens",
                "4",
                "--samples",
                tmp.resolve("samples.jsonl").toString(),
                "--json");
        assertThat(self.code()).as(self.err()).isZero();
        JsonNode out = CliTest.JSON.readTree(self.out());
        assertThat(out.get("ties").asInt()).isEqualTo(4);
        assertThat(out.get("win_rate").asDouble()).isEqualTo(0.5);
        assertThat(out.get("ci95")).hasSize(2);
        List<String> lines = Files.readAllLines(tmp.resolve("samples.jsonl"));
        assertThat(lines).hasSize(4);
        JsonNode first = CliTest.JSON.readTree(lines.get(0));
        assertThat(first.get("expected").asText())
                .isEqualTo(Fixtures.prefs().get(0).get("chosen").asText().trim());
        assertThat(first.get("policy").asText())
                .isEqualTo(first.get("reference").asText());
        CliTest.Result bad = CliTest.run(
                "evaluate",
                "winrate",
                "--policy",
                policy,
                "--reference",
                policy,
                "--data",
                data.toString(),
                "--judge",
                "llm");
        assertThat(bad.code()).isEqualTo(2);
        assertThat(bad.err()).contains("--judge");
    }

    @Test
    void reportGeneratesSamplesOfAFinishedRun(@TempDir Path tmp) throws Exception {
        Path run = tmp.resolve("dpo");
        String prefs = Fixtures.root().resolve("prefs.jsonl").toString();
        CliTest.Result train = CliTest.run(
                "train",
                "--model",
                Fixtures.model("gpt2-tiny").toString(),
                "--data",
                prefs,
                "--eval-data",
                prefs,
                "--output",
                run.toString(),
                "--max-steps",
                "2",
                "--batch-size",
                "2",
                "--lr",
                "1e-3");
        assertThat(train.code()).as(train.err()).isZero();
        CliTest.Result r = CliTest.run(
                "evaluate",
                "report",
                run.toString(),
                "--samples",
                "3",
                "--max-new-tokens",
                "3",
                "--output",
                tmp.resolve("out").toString());
        assertThat(r.code()).as(r.err()).isZero();
        List<String> lines = Files.readAllLines(run.resolve("samples.jsonl"));
        assertThat(lines).hasSize(3);
        JsonNode first = CliTest.JSON.readTree(lines.get(0));
        assertThat(first.fieldNames()).toIterable().containsExactly("prompt", "chosen", "reference", "policy");
        assertThat(Files.readString(tmp.resolve("out/index.html")))
                .contains("<th>chosen (data)</th>")
                .contains("<th>reference</th>");
        CliTest.Result unfinished = CliTest.run(
                "evaluate",
                "report",
                tmp.toString(),
                "--samples",
                "1",
                "--output",
                tmp.resolve("o2").toString());
        assertThat(unfinished.code()).isEqualTo(2);
        assertThat(unfinished.err()).contains("final/");
    }

    @Test
    void reportOfTwoRunsAndAClearErrorForAFolderThatIsNoRun(@TempDir Path tmp) throws Exception {
        for (String run : List.of("dpo", "ipo")) {
            Files.createDirectories(tmp.resolve(run));
            Files.writeString(
                    tmp.resolve(run).resolve("metrics.jsonl"),
                    "{\"step\":1,\"loss\":0.69}\n{\"step\":2,\"loss\":0.6}\n{\"step\":2,\"eval_kl\":0.01}\n");
        }
        CliTest.Result r = CliTest.run(
                "evaluate",
                "report",
                tmp.resolve("dpo").toString(),
                tmp.resolve("ipo").toString(),
                "--output",
                tmp.resolve("out").toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(Files.readString(tmp.resolve("out/index.html"))).contains("align4j: dpo vs ipo");
        assertThat(tmp.resolve("out/charts/loss.png")).exists();
        CliTest.Result bad = CliTest.run(
                "evaluate",
                "report",
                tmp.toString(),
                "--output",
                tmp.resolve("out2").toString());
        assertThat(bad.code()).isEqualTo(2);
        assertThat(bad.err()).contains("metrics.jsonl").contains("not found");
    }

    /** The fixture's first four pairs (the ones its reference numbers cover) as a JSONL file. */
    static Path firstFourPairs(Path dir) throws IOException {
        StringBuilder sb = new StringBuilder();
        for (JsonNode p : Fixtures.prefs().subList(0, 4)) {
            sb.append(p.toString()).append('\n');
        }
        return Files.writeString(dir.resolve("four.jsonl"), sb);
    }
}
