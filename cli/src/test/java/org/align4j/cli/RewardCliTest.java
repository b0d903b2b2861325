package org.align4j.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.align4j.model.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code align4j reward train | score | label}, and the soft labels feeding {@code train --loss ipo-soft}.
 * Rewards are checked against transformers' own ({@code reward/transformers-written/gpt2-tiny/rewards.json}).
 */
class RewardCliTest {
    @TempDir
    Path tmp;

    static final Path RM = Fixtures.reward("transformers-written/gpt2-tiny");
    static final String PREFS = Fixtures.root().resolve("prefs.jsonl").toString();

    private static List<JsonNode> lines(Path file) throws IOException {
        List<JsonNode> out = new ArrayList<>();
        for (String l : Files.readAllLines(file)) {
            out.add(CliTest.JSON.readTree(l));
        }
        return out;
    }

    private static JsonNode oracle() throws IOException {
        return CliTest.JSON.readTree(RM.resolve("rewards.json").toFile());
    }

    private static double sigmoid(double x) {
        return 1 / (1 + Math.exp(-x));
    }

    @Test
    void scoreGivesTransformersRewardsPerPair() throws IOException {
        CliTest.Result r = CliTest.run(
                "reward",
                "score",
                "--model",
                RM.toString(),
                "--data",
                PREFS,
                "--output",
                tmp.resolve("s.jsonl").toString(),
                "--batch-size",
                "3",
                "--max-batch-tokens",
                "64");
        assertThat(r.code()).as(r.err()).isZero();
        JsonNode fx = oracle();
        List<JsonNode> scores = lines(tmp.resolve("s.jsonl"));
        int n = scores.size();
        assertThat(n).isEqualTo(8);
        for (int i = 0; i < n; i++) {
            JsonNode s = scores.get(i);
            assertThat(s.get("source").asText()).isEqualTo("prefs.jsonl:" + (i + 1));
            assertThat(s.get("chosen_reward").asDouble())
                    .isCloseTo(fx.get("unpadded").get(i).asDouble(), within(1e-5));
            assertThat(s.get("rejected_reward").asDouble())
                    .isCloseTo(fx.get("unpadded").get(n + i).asDouble(), within(1e-5));
            assertThat(s.get("reward_margin").asDouble())
                    .isCloseTo(
                            s.get("chosen_reward").asDouble()
                                    - s.get("rejected_reward").asDouble(),
                            within(1e-12));
        }
        JsonNode summary = CliTest.JSON.readTree(r.out());
        assertThat(summary.get("pairs").asInt()).isEqualTo(8);
        assertThat(summary.has("accuracy") && summary.has("margin") && summary.has("mean_reward"))
                .isTrue();
    }

    /**
     * A run stopped after scoring (here: its output path is a non-empty folder, so the final write fails)
     * leaves FILE.partial; the next run resumes from it and scores nothing again (a tampered reward in the
     * journal comes out as it is), then removes it. A journal made with another --max-length is set aside.
     */
    @Test
    void aStoppedLabelRunResumesFromItsJournal() throws IOException {
        Path out = tmp.resolve("l.jsonl");
        String[] args = {
            "reward",
            "label",
            "--model",
            RM.toString(),
            "--data",
            PREFS,
            "--output",
            out.toString(),
            "--batch-size",
            "2"
        };
        // stopped after 3 of its 4 batches of 2 pairs, as if killed there
        CliTest.Result stopped = stoppedAfter(3, args);
        assertThat(stopped.code()).as(stopped.err()).isNotZero();
        assertThat(out).doesNotExist();
        Path journal = tmp.resolve("l.jsonl.partial");
        List<String> lines = new ArrayList<>(Files.readAllLines(journal));
        assertThat(lines).hasSize(1 + 6);
        // the first journaled pair's chosen reward, tampered: a resumed run must take it from the journal
        int first = 1;
        ObjectNode tampered = (ObjectNode) CliTest.JSON.readTree(lines.get(first));
        int pair = tampered.get("i").asInt();
        tampered.put("chosen_reward", 123.0);
        lines.set(first, CliTest.JSON.writeValueAsString(tampered));
        // a torn line (a run killed mid-write) is said and its pair scored again
        List<String> torn = new ArrayList<>(lines);
        int tear = torn.size() - 1;
        torn.set(tear, torn.get(tear).substring(0, 12));
        Files.write(journal, torn);
        CliTest.Result resumed = CliTest.run(args);
        assertThat(resumed.code()).as(resumed.err()).isZero();
        assertThat(resumed.err())
                .contains("resuming from " + journal
                        + ": 5 of 8 pair(s) already scored; 1 unreadable or repeated line(s) skipped");
        assertThat(journal).doesNotExist();
        JsonNode fx = oracle();
        List<JsonNode> rows = lines(out);
        assertThat(rows.get(pair).get("reward_chosen").asDouble()).isEqualTo(123.0);
        for (int i = 0; i < rows.size(); i++) {
            if (i != pair) {
                assertThat(rows.get(i).get("reward_chosen").asDouble())
                        .isCloseTo(fx.get("unpadded").get(i).asDouble(), within(1e-5));
            }
        }
        // a journal of another encoding is never mixed in
        Files.write(journal, lines);
        CliTest.Result other = CliTest.run(
                "reward",
                "label",
                "--model",
                RM.toString(),
                "--data",
                PREFS,
                "--output",
                out.toString(),
                "--max-length",
                "500");
        assertThat(other.code()).as(other.err()).isZero();
        assertThat(other.err()).contains("set aside as " + journal + ".old");
        assertThat(lines(out).get(pair).get("reward_chosen").asDouble())
                .isCloseTo(fx.get("unpadded").get(pair).asDouble(), within(1e-5));
    }

    /** A scoring run stopped by the journal's test hook after {@code batches} journaled batches. */
    static CliTest.Result stoppedAfter(int batches, String... args) {
        System.setProperty(ScoreJournal.STOP_AFTER_PROPERTY, String.valueOf(batches));
        try {
            return CliTest.run(args);
        } finally {
            System.clearProperty(ScoreJournal.STOP_AFTER_PROPERTY);
        }
    }

    @Test
    void labelWritesTheSigmoidOfTheMarginOverTAndIpoSoftTrainsOnIt() throws IOException {
        Path labelled = tmp.resolve("labelled.jsonl");
        CliTest.Result r = CliTest.run(
                "reward",
                "label",
                "--model",
                RM.toString(),
                "--data",
                PREFS,
                "--output",
                labelled.toString(),
                "--temperature",
                "0.5");
        assertThat(r.code()).as(r.err()).isZero();
        JsonNode fx = oracle();
        List<JsonNode> rows = lines(labelled);
        List<JsonNode> prefs = Fixtures.prefs();
        int n = rows.size();
        assertThat(n).isEqualTo(prefs.size());
        double sumTarget = 0;
        for (int i = 0; i < n; i++) {
            JsonNode row = rows.get(i);
            // the record as it was, plus the label
            assertThat(row.get("prompt").asText())
                    .isEqualTo(prefs.get(i).get("prompt").asText());
            assertThat(row.get("chosen").asText())
                    .isEqualTo(prefs.get(i).get("chosen").asText());
            double rc = fx.get("unpadded").get(i).asDouble();
            double rr = fx.get("unpadded").get(n + i).asDouble();
            assertThat(row.get("reward_chosen").asDouble()).isCloseTo(rc, within(1e-5));
            assertThat(row.get("reward_rejected").asDouble()).isCloseTo(rr, within(1e-5));
            double p = row.get("preference").asDouble();
            assertThat(p)
                    .as("pair %d: p = sigmoid((r_c - r_r)/T)", i)
                    .isCloseTo(sigmoid((rc - rr) / 0.5), within(1e-5));
            double target = (2 * p - 1) / (2 * 0.1);
            sumTarget += target * target;
        }
        // ipo-soft reads the labels: at step 1 the policy is its reference, every margin 0, so the loss is the mean
        // squared target
        CliTest.Result t = CliTest.run(
                "train",
                "--model",
                Fixtures.model("gpt2-tiny").toString(),
                "--data",
                labelled.toString(),
                "--output",
                tmp.resolve("ipo-soft").toString(),
                "--loss",
                "ipo-soft",
                "--beta",
                "0.1",
                "--batch-size",
                "8",
                "--max-steps",
                "2");
        assertThat(t.code()).as(t.err()).isZero();
        JsonNode step1 = CliTest.JSON.readTree(
                Files.readAllLines(tmp.resolve("ipo-soft/metrics.jsonl")).get(0));
        assertThat(step1.get("loss").asDouble()).isCloseTo(sumTarget / n, within(1e-4 * sumTarget / n));
    }

    @Test
    void trainWritesARewardModelThatScoresAndJudges() throws IOException {
        Path out = tmp.resolve("rm");
        CliTest.Result r = CliTest.run(
                "reward",
                "train",
                "--model",
                Fixtures.model("gpt2-tiny").toString(),
                "--data",
                PREFS,
                "--output",
                out.toString(),
                "--max-steps",
                "3",
                "--batch-size",
                "4",
                "--lr",
                "1e-3",
                "--center-rewards-coefficient",
                "0.01");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(out.resolve("final/config.json")).content().contains("GPT2ForSequenceClassification");
        assertThat(lines(out.resolve("metrics.jsonl")).get(0).has("accuracy")).isTrue();
        CliTest.Result w = CliTest.run(
                "evaluate",
                "winrate",
                "--policy",
                Fixtures.model("gpt2-tiny").toString(),
                "--reference",
                Fixtures.model("gpt2-tiny-ref").toString(),
                "--data",
                PREFS,
                "--max-new-tokens",
                "3",
                "--judge",
                "reward-model:" + out.resolve("final"),
                "--json");
        assertThat(w.code()).as(w.err()).isZero();
        JsonNode o = CliTest.JSON.readTree(w.out());
        assertThat(o.get("wins").asInt()
                        + o.get("losses").asInt()
                        + o.get("ties").asInt())
                .isEqualTo(8);
        CliTest.Result dry = CliTest.run(
                "reward",
                "train",
                "--model",
                Fixtures.model("gpt2-tiny").toString(),
                "--data",
                PREFS,
                "--output",
                tmp.resolve("dry").toString(),
                "--dry-run");
        assertThat(dry.code()).as(dry.err()).isZero();
        assertThat(dry.out())
                .contains("loss: reward")
                .contains("learning_rate: 1.0E-4")
                .contains("chosen_ids");
        assertThat(tmp.resolve("dry")).doesNotExist();
    }

    @Test
    void rewardTrainWithLoraWritesAnAdapterThatScoreAndMergeRead() throws IOException {
        Path out = tmp.resolve("rm-lora");
        CliTest.Result r = CliTest.run(
                "reward",
                "train",
                "--model",
                Fixtures.model("gpt2-tiny").toString(),
                "--data",
                PREFS,
                "--output",
                out.toString(),
                "--max-steps",
                "2",
                "--batch-size",
                "4",
                "--lr",
                "1e-3",
                "--lora-r",
                "2",
                "--lora-target",
                "c_attn");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(out.resolve("final/adapter_config.json"))
                .content()
                .contains("\"SEQ_CLS\"")
                .contains("\"score\"");
        assertThat(out.resolve("final/config.json")).doesNotExist();
        CliTest.Result s = CliTest.run(
                "reward",
                "score",
                "--model",
                out.resolve("final").toString(),
                "--data",
                PREFS,
                "--output",
                tmp.resolve("s.jsonl").toString());
        assertThat(s.code()).as(s.err()).isZero();
        List<JsonNode> adapterScores = lines(tmp.resolve("s.jsonl"));
        assertThat(adapterScores).hasSize(8);
        // merged into the base (with and without naming it), a full sequence classifier with the same rewards
        for (boolean named : new boolean[] {false, true}) {
            Path merged = tmp.resolve("merged-" + named);
            List<String> args = new ArrayList<>(
                    List.of("merge", "--adapter", out.resolve("final").toString(), "--output", merged.toString()));
            if (named) {
                args.addAll(List.of("--model", Fixtures.model("gpt2-tiny").toString()));
            }
            CliTest.Result m = CliTest.run(args.toArray(String[]::new));
            assertThat(m.code()).as(m.err()).isZero();
            assertThat(merged.resolve("config.json")).content().contains("GPT2ForSequenceClassification");
            CliTest.Result ms = CliTest.run(
                    "reward",
                    "score",
                    "--model",
                    merged.toString(),
                    "--data",
                    PREFS,
                    "--output",
                    tmp.resolve("m.jsonl").toString());
            assertThat(ms.code()).as(ms.err()).isZero();
            List<JsonNode> mergedScores = lines(tmp.resolve("m.jsonl"));
            for (int i = 0; i < 8; i++) {
                for (String k : List.of("chosen_reward", "rejected_reward")) {
                    double want = adapterScores.get(i).get(k).asDouble();
                    assertThat(mergedScores.get(i).get(k).asDouble())
                            .as("%s of pair %d", k, i)
                            .isCloseTo(want, within(1e-5 * Math.max(1, Math.abs(want))));
                }
            }
        }
        CliTest.Result bad = CliTest.run(
                "reward",
                "train",
                "--model",
                Fixtures.model("gpt2-tiny").toString(),
                "--data",
                PREFS,
                "--output",
                tmp.resolve("bad").toString(),
                "--lora-r",
                "2",
                "--lora-target",
                "nope");
        assertThat(bad.code()).isEqualTo(2);
        assertThat(bad.err().strip().lines().count()).as(bad.err()).isEqualTo(1);
        assertThat(bad.err()).contains("lora").contains("nope");
    }

    @Test
    void quickstartsRewardFlagsAreCheckedByName() {
        CliTest.Result without = CliTest.run(
                "quickstart",
                "--label-noise",
                "0.2",
                "--output",
                tmp.resolve("q1").toString());
        assertThat(without.code()).isEqualTo(2);
        assertThat(without.err()).contains("--label-noise").contains("--rlhf");
        CliTest.Result noise = CliTest.run(
                "quickstart",
                "--rlhf",
                "--label-noise",
                "0.7",
                "--output",
                tmp.resolve("q2").toString());
        assertThat(noise.code()).isEqualTo(2);
        assertThat(noise.err().strip()).isEqualTo("error: --label-noise: a share in [0, 0.5), got 0.7");
        CliTest.Result steps = CliTest.run(
                "quickstart",
                "--rlhf",
                "--reward-steps",
                "0",
                "--output",
                tmp.resolve("q3").toString());
        assertThat(steps.code()).isEqualTo(2);
        assertThat(steps.err()).contains("--reward-steps");
        assertThat(tmp.resolve("q2")).doesNotExist();
    }

    @Test
    void badInputIsOneLineWithStatusTwo() {
        String model = Fixtures.model("gpt2-tiny").toString();
        CliTest.Result causal = CliTest.run("reward", "score", "--model", model, "--data", PREFS);
        assertThat(causal.code()).isEqualTo(2);
        assertThat(causal.err()).contains("--model").contains("not a reward model");
        CliTest.Result temperature = CliTest.run(
                "reward",
                "label",
                "--model",
                RM.toString(),
                "--data",
                PREFS,
                "--output",
                tmp.resolve("l").toString(),
                "--temperature",
                "0");
        assertThat(temperature.code()).isEqualTo(2);
        assertThat(temperature.err()).contains("--temperature");
        CliTest.Result cut =
                CliTest.run("reward", "score", "--model", RM.toString(), "--data", PREFS, "--max-prompt-length", "4");
        assertThat(cut.code()).isEqualTo(2);
        assertThat(cut.err()).contains("--max-prompt-length");
        CliTest.Result budget =
                CliTest.run("reward", "score", "--model", RM.toString(), "--data", PREFS, "--max-batch-tokens", "0");
        assertThat(budget.code()).isEqualTo(2);
        assertThat(budget.err().strip()).doesNotContain("\n").startsWith("error: --max-batch-tokens");
        // an output that is the data, or a folder: refused before any scoring, by flag (score wrote over its data)
        for (String command : List.of("score", "label")) {
            Path data = tmp.resolve(command + "-data.jsonl");
            try {
                Files.copy(Path.of(PREFS), data);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            CliTest.Result same = CliTest.run(
                    "reward",
                    command,
                    "--model",
                    RM.toString(),
                    "--data",
                    data.toString(),
                    "--output",
                    data.toString());
            assertThat(same.code()).as(command).isEqualTo(2);
            assertThat(same.err().strip()).startsWith("error: --output: ").contains("is the --data file");
            assertThat(data).hasSameTextualContentAs(Path.of(PREFS));
            CliTest.Result folder = CliTest.run(
                    "reward", command, "--model", RM.toString(), "--data", PREFS, "--output", tmp.toString());
            assertThat(folder.code()).as(command).isEqualTo(2);
            assertThat(folder.err().strip()).startsWith("error: --output: ").contains("is a folder");
            assertThat(tmp.resolveSibling(tmp.getFileName() + ".partial")).doesNotExist();
        }
        // a link to the data, given as the output: the same file, refused
        Path data = tmp.resolve("score-data.jsonl");
        Path link = tmp.resolve("link.jsonl");
        try {
            Files.createSymbolicLink(link, data);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        CliTest.Result linked = CliTest.run(
                "reward", "score", "--model", RM.toString(), "--data", data.toString(), "--output", link.toString());
        assertThat(linked.code()).isEqualTo(2);
        assertThat(linked.err().strip()).startsWith("error: --output: ").contains("is the --data file");
        assertThat(link).isSymbolicLink();
        // a missing folder of the output is made
        CliTest.Result nested = CliTest.run(
                "reward",
                "score",
                "--model",
                RM.toString(),
                "--data",
                PREFS,
                "--output",
                tmp.resolve("a/b/s.jsonl").toString());
        assertThat(nested.code()).as(nested.err()).isZero();
        assertThat(tmp.resolve("a/b/s.jsonl")).exists();
        // every pair longer than --max-length: said by name, and label writes no (empty) file
        Path none = tmp.resolve("none.jsonl");
        CliTest.Result allLong = CliTest.run(
                "reward",
                "label",
                "--model",
                RM.toString(),
                "--data",
                PREFS,
                "--output",
                none.toString(),
                "--max-length",
                "2");
        assertThat(allLong.code()).isEqualTo(2);
        assertThat(allLong.err().strip())
                .startsWith("error: --max-length: all ")
                .contains("nothing to score");
        assertThat(none).doesNotExist();
        CliTest.Result loss = CliTest.run(
                "train",
                "--model",
                model,
                "--data",
                PREFS,
                "--output",
                tmp.resolve("x").toString(),
                "--loss",
                "reward");
        assertThat(loss.code()).isEqualTo(2);
        assertThat(loss.err()).contains("reward train");
        CliTest.Result beta = CliTest.run(
                "reward",
                "train",
                "--model",
                model,
                "--data",
                PREFS,
                "--output",
                tmp.resolve("y").toString(),
                "--beta",
                "0.2");
        assertThat(beta.code()).isEqualTo(2);
        assertThat(beta.err()).contains("--beta").contains("does not use it");
        CliTest.Result judge = CliTest.run(
                "evaluate",
                "winrate",
                "--policy",
                model,
                "--reference",
                model,
                "--data",
                PREFS,
                "--judge",
                "reward-model:" + model);
        assertThat(judge.code()).isEqualTo(2);
        assertThat(judge.err()).contains("--judge").contains("not a reward model");
        for (CliTest.Result res : List.of(causal, temperature, cut, loss, beta, judge)) {
            assertThat(res.err().strip().lines().count()).as(res.err()).isEqualTo(1);
        }
    }
}
