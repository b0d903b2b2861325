package org.align4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import org.align4j.model.Fixtures;
import org.align4j.trainer.Checkpoints;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Interruptions of a real align4j process: SIGKILL after a checkpoint, and SIGTERM (Ctrl-C's sibling) mid-run. */
class KillAndResumeTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final int STEPS = 6;

    @TempDir
    Path tmp;

    List<String> trainArgs(Path output, boolean resume) throws IOException {
        Path data = tmp.resolve("four.jsonl");
        if (!Files.exists(data)) {
            Files.write(
                    data,
                    Files.readAllLines(Fixtures.root().resolve("prefs.jsonl")).subList(0, 4));
        }
        List<String> a = new ArrayList<>(List.of(
                "train",
                "--model",
                Fixtures.model("gpt2-tiny").toString(),
                "--reference-model",
                Fixtures.model("gpt2-tiny-ref").toString(),
                "--data",
                data.toString(),
                "--output",
                output.toString(),
                "--loss",
                "dpo",
                "--batch-size",
                "2",
                "--max-steps",
                Integer.toString(STEPS),
                "--lr",
                "1e-2",
                "--schedule",
                "cosine",
                "--save-every",
                "3"));
        if (resume) {
            a.add("--resume");
        }
        return a;
    }

    /** The console output of the process started last. */
    Path lastLog;

    /** @return the console output of the process started last, for a failed assertion's message */
    String lastOutput() throws IOException {
        return lastLog == null ? "" : Files.readString(lastLog);
    }

    Process start(List<String> args, long stepDelayMs) throws IOException {
        List<String> cmd = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx1g",
                "-Djava.io.tmpdir=" + tmp,
                "-Dalign4j.stepDelayMs=" + stepDelayMs,
                "-Dai.djl.pytorch.num_threads=1",
                "-cp",
                System.getProperty("java.class.path"),
                "org.align4j.cli.Align4j"));
        cmd.addAll(args);
        lastLog = tmp.resolve("proc-" + System.nanoTime() + ".log");
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(lastLog.toFile());
        pb.environment()
                .put(
                        "DJL_CACHE_DIR",
                        System.getenv()
                                .getOrDefault(
                                        "DJL_CACHE_DIR", tmp.resolve("djl").toString()));
        return pb.start();
    }

    static TreeMap<Long, Double> losses(Path metrics) throws IOException {
        TreeMap<Long, Double> out = new TreeMap<>();
        for (String line : Files.readAllLines(metrics)) {
            JsonNode n = JSON.readTree(line);
            if (n.has("loss")) {
                assertThat(out.put(n.get("step").asLong(), n.get("loss").asDouble()))
                        .as("step %s logged once", n.get("step"))
                        .isNull();
            }
        }
        return out;
    }

    static boolean logged(Path metrics, long step) throws IOException {
        return Files.exists(metrics)
                && Files.readAllLines(metrics).stream().anyMatch(l -> l.startsWith("{\"step\":" + step + ","));
    }

    static void waitFor(Callable<Boolean> condition, Process p) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (!condition.call()) {
            assertThat(p.isAlive()).as("process still running").isTrue();
            assertThat(System.nanoTime()).as("waited too long").isLessThan(deadline);
            Thread.sleep(50);
        }
    }

    TreeMap<Long, Double> straightRun() throws Exception {
        Path out = tmp.resolve("straight");
        Process p = start(trainArgs(out, false), 0);
        assertThat(p.waitFor(180, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).isZero();
        return losses(out.resolve("metrics.jsonl"));
    }

    @Test
    void killedProcessResumesFromItsCheckpointWithTheSameLosses() throws Exception {
        TreeMap<Long, Double> expected = straightRun();
        assertThat(expected).hasSize(STEPS);

        Path out = tmp.resolve("killed");
        Process p = start(trainArgs(out, false), 400);
        Path metrics = out.resolve("metrics.jsonl");
        waitFor(() -> Files.isRegularFile(out.resolve("checkpoint-3/trainer_state.json")) && logged(metrics, 4), p);
        p.destroyForcibly().waitFor(30, TimeUnit.SECONDS); // SIGKILL: no chance to save anything
        assertThat(Files.exists(out.resolve("checkpoint-4"))).isFalse();

        Process resumed = start(trainArgs(out, true), 0);
        assertThat(resumed.waitFor(180, TimeUnit.SECONDS)).isTrue();
        assertThat(resumed.exitValue()).isZero();
        TreeMap<Long, Double> got = losses(metrics);
        assertThat(got.keySet()).containsExactlyElementsOf(expected.keySet());
        for (long s : expected.keySet()) {
            assertThat(got.get(s)).as("step %d", s).isCloseTo(expected.get(s), Offset.offset(1e-6));
        }
    }

    @Test
    void sigtermSavesACheckpointAndExitsCleanly() throws Exception {
        TreeMap<Long, Double> expected = straightRun();
        Path out = tmp.resolve("terminated");
        Process p = start(trainArgs(out, false), 400);
        Path metrics = out.resolve("metrics.jsonl");
        waitFor(() -> logged(metrics, 1), p);
        p.destroy(); // SIGTERM
        assertThat(p.waitFor(120, TimeUnit.SECONDS)).isTrue();
        var checkpoint = Checkpoints.latest(out);
        assertThat(checkpoint).as("a checkpoint written on SIGTERM").isPresent();
        long savedAt = Checkpoints.readState(checkpoint.get()).step();
        // before the step-3 checkpoint of --save-every: this one was written because of the signal
        assertThat(savedAt).isBetween(1L, 2L);
        Process resumed = start(trainArgs(out, true), 0);
        assertThat(resumed.waitFor(180, TimeUnit.SECONDS)).isTrue();
        assertThat(resumed.exitValue()).isZero();
        TreeMap<Long, Double> got = losses(metrics);
        for (long s : expected.keySet()) {
            assertThat(got.get(s)).as("step %d", s).isCloseTo(expected.get(s), Offset.offset(1e-6));
        }
    }

    List<String> grpoArgs(Path output, boolean resume) throws IOException {
        return rlArgs(
                "grpo",
                output,
                resume,
                "--num-iterations",
                "2",
                "--beta",
                "0.1",
                "--num-generations",
                "2",
                "--batch-size",
                "4");
    }

    /** PPO: 2 epochs x 2 mini-batches of 2 samples per rollout, 4 steps each; an adaptive KL coefficient. */
    List<String> ppoArgs(Path output, boolean resume) throws IOException {
        return rlArgs(
                "ppo",
                output,
                resume,
                "--batch-size",
                "2",
                "--num-mini-batches",
                "2",
                "--num-ppo-epochs",
                "2",
                "--kl-coef",
                "0.1",
                "--kl-target",
                "0.01",
                "--kl-horizon",
                "50");
    }

    List<String> rlArgs(String command, Path output, boolean resume, String... extra) throws IOException {
        Path data = tmp.resolve("prompts.jsonl");
        if (!Files.exists(data)) {
            StringBuilder b = new StringBuilder();
            for (int i = 0; i < 12; i++) {
                b.append("{\"prompt\": \"").append(i).append("+3=\"}\n");
            }
            Files.writeString(data, b);
        }
        List<String> a = new ArrayList<>(List.of(
                command,
                "--model",
                Fixtures.model("gpt2-tiny").toString(),
                "--data",
                data.toString(),
                "--output",
                output.toString(),
                "--max-completion-length",
                "4",
                "--max-steps",
                Integer.toString(STEPS),
                "--lr",
                "1e-2",
                "--save-every",
                "3",
                "--reward-funcs",
                "regex:.*[0-9a-m].*"));
        a.addAll(List.of(extra));
        if (resume) {
            a.add("--resume");
        }
        return a;
    }

    /** Each logged step's loss, reward and completion length (a changed sample changes the last two). */
    static TreeMap<Long, List<Double>> rlSteps(Path metrics) throws IOException {
        TreeMap<Long, List<Double>> out = new TreeMap<>();
        for (String line : Files.readAllLines(metrics)) {
            JsonNode n = JSON.readTree(line);
            if (n.has("loss")) {
                out.put(
                        n.get("step").asLong(),
                        List.of(
                                n.get("loss").asDouble(),
                                n.path("reward").asDouble(Double.NaN),
                                n.path("completions/mean_length").asDouble(Double.NaN)));
            }
        }
        return out;
    }

    @Test
    void aKilledGrpoRunResumesMidGenerationWithTheSameSamplesAndLosses() throws Exception {
        killMidGenerationAndResume("grpo", this::grpoArgs);
    }

    @Test
    void aKilledPpoRunResumesMidRolloutWithTheSameValueModelKlCoefficientAndLosses() throws Exception {
        killMidGenerationAndResume("ppo", this::ppoArgs);
    }

    @Test
    void aKilledLoraPpoRunResumesMidRolloutWithTheSameValueAdapterSetAndLosses() throws Exception {
        // the value model is an adapter set on the policy's base: its adapters, head and moments come back
        killMidGenerationAndResume("lora-ppo", (out, resume) -> {
            List<String> a = new ArrayList<>(ppoArgs(out, resume));
            a.addAll(List.of("--lora-r", "2", "--lora-alpha", "4"));
            return a;
        });
        assertThat(tmp.resolve("lora-ppo-killed/checkpoint-3/value_model/adapter_config.json"))
                .isRegularFile();
    }

    /** The arguments of a run into a folder, fresh or resumed. */
    @FunctionalInterface
    interface RunArgs {
        List<String> of(Path output, boolean resume) throws IOException;
    }

    void killMidGenerationAndResume(String name, RunArgs args) throws Exception {
        Path straight = tmp.resolve(name + "-straight");
        Process s = start(args.of(straight, false), 0);
        assertThat(s.waitFor(180, TimeUnit.SECONDS)).isTrue();
        assertThat(s.exitValue()).as(lastOutput()).isZero();
        TreeMap<Long, List<Double>> expected = rlSteps(straight.resolve("metrics.jsonl"));
        assertThat(expected).hasSize(STEPS);

        Path out = tmp.resolve(name + "-killed");
        Process p = start(args.of(out, false), 400);
        Path metrics = out.resolve("metrics.jsonl");
        // checkpoint-3 holds the rollout step 4 uses too (grpo: num_iterations 2, steps 3-4; ppo: steps 1-4): kill
        // after step 4
        waitFor(() -> Files.isRegularFile(out.resolve("checkpoint-3/rollout.json")) && logged(metrics, 4), p);
        p.destroyForcibly().waitFor(30, TimeUnit.SECONDS);
        Process resumed = start(args.of(out, true), 0);
        assertThat(resumed.waitFor(180, TimeUnit.SECONDS)).isTrue();
        assertThat(resumed.exitValue()).as(lastOutput()).isZero();
        TreeMap<Long, List<Double>> got = rlSteps(metrics);
        assertThat(got.keySet()).containsExactlyElementsOf(expected.keySet());
        for (long step : expected.keySet()) {
            for (int k = 0; k < 3; k++) {
                double want = expected.get(step).get(k);
                if (Double.isNaN(want)) {
                    assertThat(got.get(step).get(k))
                            .as("step %d value %d", step, k)
                            .isNaN();
                } else {
                    assertThat(got.get(step).get(k))
                            .as("step %d value %d", step, k)
                            .isCloseTo(want, Offset.offset(1e-6));
                }
            }
        }
    }
}
