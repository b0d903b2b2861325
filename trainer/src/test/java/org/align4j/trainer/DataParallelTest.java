package org.align4j.trainer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.align4j.model.Fixtures;
import org.align4j.model.io.SafetensorsFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Data parallel over Open MPI: two processes of batch b train exactly as one process of batch 2b (losses,
 * gradient norms, final weights), and a checkpoint of either continues at the other world size. Runs {@code
 * mpirun -np 2} on this machine; skipped, saying how to enable it, without {@code mpirun}.
 */
class DataParallelTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    private List<String> dpo(String output, int batchSize, String... more) {
        List<String> a = new ArrayList<>(List.of(
                "model=" + Fixtures.model("gpt2-tiny"),
                "reference_model=" + Fixtures.model("gpt2-tiny-ref"),
                "data=" + Fixtures.root().resolve("prefs.jsonl"),
                "output=" + tmp.resolve(output),
                "loss=dpo",
                "learning_rate=0.001",
                "max_steps=5",
                "log_every=1",
                "save_every=2",
                "keep_last=5",
                // dropout masks follow the micro-batches' shapes: only a run without dropout is the same however split
                "disable_dropout=true",
                "batch_size=" + batchSize));
        a.addAll(List.of(more));
        return a;
    }

    /**
     * Attention's query/key/value bias: the key part's gradient is rounding noise (softmax does not change when
     * every key moves by the same vector), which AdamW turns into steps of the learning rate's size, so it
     * differs between any two splits of a batch, in one process too (2e-4 here); every other weight is within
     * 1e-5.
     */
    private static final String NOISE_ONLY = ".*attn\\.c_attn\\.bias";

    @Test
    void twoProcessesOfBatchTwoTrainAsOneOfBatchFourAndResumeAtEitherWorldSize() throws Exception {
        Path mpirun = requireMpirun();
        DataParallelMain.run(dpo("one", 4).toArray(String[]::new));
        DataParallelMain.run(dpo("accum", 2, "grad_accum=2").toArray(String[]::new));
        mpirun(mpirun, 2, dpo("two", 2));
        // the same micro-batches, summed by MPI instead of by autograd: bit for bit the same run
        assertSameRun("2 processes x 2 vs 1 x 2 x grad_accum 2", tmp.resolve("accum"), tmp.resolve("two"), 1, 0, 0, "");
        // the whole batch at once: the same up to float rounding
        assertSameRun("2 processes x 2 vs 1 x 4", tmp.resolve("one"), tmp.resolve("two"), 1, 1e-6, 1e-5, NOISE_ONLY);
        assertThat(tmp.resolve("two/.align4j.lock")).exists(); // rank 0's; rank 1 wrote nothing
        assertThat(tmp.resolve("two/checkpoint-2/trainer_state.json"))
                .content()
                .contains("\"world_size\" : 2")
                .contains("\"global_batch_size\" : 4");

        // a two-process checkpoint continued by one process (its data position converted to batches of 2) ...
        DataParallelMain.run(dpo("two-then-one", 2, "grad_accum=2", "resume=" + tmp.resolve("two/checkpoint-2"))
                .toArray(String[]::new));
        assertSameRun("2 -> 1 processes", tmp.resolve("two"), tmp.resolve("two-then-one"), 3, 0, 0, "");
        // ... and a one-process checkpoint by two
        mpirun(mpirun, 2, dpo("one-then-two", 2, "resume=" + tmp.resolve("one/checkpoint-2")));
        assertSameRun("1 -> 2 processes", tmp.resolve("one"), tmp.resolve("one-then-two"), 3, 1e-6, 1e-5, NOISE_ONLY);
    }

    /**
     * ZeRO stage 1: each process keeps AdamW's moments of its share of the parameters and broadcasts what it
     * updated; the run is bit for bit the unsharded one, and its checkpoints hold the whole state (a single
     * process continues one exactly).
     */
    @Test
    void zeroStageOneTrainsAndResumesAsTheUnshardedRun() throws Exception {
        Path mpirun = requireMpirun();
        mpirun(mpirun, 2, dpo("unsharded", 2));
        String out = mpirun(mpirun, 2, dpo("zero1", 2, "zero_stage=1"));
        // each process keeps the moments of a part: the parts add up to the whole
        Matcher share = Pattern.compile("AdamW's moments of (\\d+) of (\\d+) trained values")
                .matcher(out);
        long sum = 0;
        long total = 0;
        int shares = 0;
        while (share.find()) {
            long part = Long.parseLong(share.group(1));
            total = Long.parseLong(share.group(2));
            assertThat(part).isBetween(1L, total - 1);
            sum += part;
            shares++;
        }
        assertThat(shares).as(out).isEqualTo(2);
        assertThat(sum).isEqualTo(total);
        assertSameRun("ZeRO-1 vs unsharded", tmp.resolve("unsharded"), tmp.resolve("zero1"), 1, 0, 0, "");
        try (NDManager m = NDManager.newBaseManager()) {
            Map<String, NDArray> a = weights(tmp.resolve("unsharded/checkpoint-4"), m);
            Map<String, NDArray> b = weights(tmp.resolve("zero1/checkpoint-4"), m);
            assertThat(b.keySet())
                    .isEqualTo(a.keySet())
                    .anyMatch(k -> k.startsWith("optimizer.safetensors:exp_avg_sq."));
            for (String k : a.keySet()) {
                assertThat(b.get(k).contentEquals(a.get(k))).as(k).isTrue();
            }
        }
        DataParallelMain.run(dpo("zero1-then-one", 2, "grad_accum=2", "resume=" + tmp.resolve("zero1/checkpoint-2"))
                .toArray(String[]::new));
        assertSameRun("ZeRO-1 -> 1 process", tmp.resolve("unsharded"), tmp.resolve("zero1-then-one"), 3, 0, 0, "");
    }

    @Test
    void slicesPartitionEveryGlobalBatchInOrder() {
        int[] global = {7, 3, 5, 1, 0};
        assertThat(TrainingLoop.slice(global, 0, 1)).containsExactly(global);
        assertThat(TrainingLoop.slice(global, 0, 2)).containsExactly(7, 3);
        assertThat(TrainingLoop.slice(global, 1, 2)).containsExactly(5, 1, 0);
        assertThat(TrainingLoop.slice(new int[] {4}, 0, 2)).isEmpty();
        assertThat(TrainingLoop.slice(new int[] {4}, 1, 2)).containsExactly(4);
    }

    @Test
    void withDropoutEachProcessDrawsTheMasksOfItsMicroBatch() throws Exception {
        Path mpirun = requireMpirun();
        DataParallelMain.run(
                dpo("dropout-accum", 2, "grad_accum=2", "disable_dropout=false").toArray(String[]::new));
        mpirun(mpirun, 2, dpo("dropout-two", 2, "disable_dropout=false"));
        assertSameRun("dropout", tmp.resolve("dropout-accum"), tmp.resolve("dropout-two"), 1, 0, 0, "");
    }

    @Test
    void sftAndLoraTrainAsOneProcessOfTheWholeBatch() throws Exception {
        Path mpirun = requireMpirun();
        // SFT weighs tokens: every process scales by the global token count of the step
        run(mpirun, "sft", 2, "trainer=sft", "loss=sft");
        // LoRA: only the adapters' gradients are reduced; 3 + 3 per step leaves 1 + 1 at each epoch's end (where
        // one process of batch 3 x grad_accum 2 takes other examples: no accumulation to compare with)
        run(mpirun, "lora", 3, "lora_r=4");
    }

    /**
     * One process of batch 2b, one of b x grad_accum 2 and two of b: the two processes must equal the
     * accumulation bit for bit (where the epoch has whole global batches), and the whole batch up to rounding (the weights to 1e-4: a split of a batch
     * moves some weights by 2e-5 in one process too).
     */
    private void run(Path mpirun, String name, int b, String... more) throws Exception {
        List<String> whole = new ArrayList<>(dpo(name + "-one", 2 * b, more));
        List<String> accum = new ArrayList<>(dpo(name + "-accum", b, more));
        accum.add("grad_accum=2");
        List<String> two = new ArrayList<>(dpo(name + "-two", b, more));
        for (List<String> args : List.of(whole, accum, two)) {
            if (args.contains("loss=sft")) {
                args.removeIf(a -> a.startsWith("reference_model="));
            }
        }
        DataParallelMain.run(whole.toArray(String[]::new));
        mpirun(mpirun, 2, two);
        if (8 % (2 * b) == 0) { // the fixture's 8 pairs: every global batch is whole
            DataParallelMain.run(accum.toArray(String[]::new));
            assertSameRun(
                    name + " vs accumulation", tmp.resolve(name + "-accum"), tmp.resolve(name + "-two"), 1, 0, 0, "");
        }
        assertSameRun(name, tmp.resolve(name + "-one"), tmp.resolve(name + "-two"), 1, 1e-6, 1e-4, NOISE_ONLY);
    }

    /**
     * Losses and gradient norms from step {@code from} on, and the final weights, of two runs.
     *
     * @param rel largest relative difference of a loss or gradient norm
     * @param abs largest difference of a weight, except in tensors named by {@code noiseOnly}
     */
    private static void assertSameRun(
            String what, Path expected, Path got, int from, double rel, double abs, String noiseOnly)
            throws IOException {
        Map<Integer, JsonNode> e = steps(expected);
        Map<Integer, JsonNode> g = steps(got);
        assertThat(g.keySet()).as(what).contains(5);
        for (int step = from; step <= 5; step++) {
            for (String m : List.of("loss", "grad_norm")) {
                double want = e.get(step).get(m).asDouble();
                double have = g.get(step).get(m).asDouble();
                assertThat(Math.abs(have - want))
                        .as("%s: %s at step %d: %s vs %s", what, m, step, have, want)
                        .isLessThanOrEqualTo(rel * Math.abs(want));
            }
        }
        double worst = 0;
        String worstName = "none";
        try (NDManager m = NDManager.newBaseManager()) {
            Map<String, NDArray> a = weights(expected.resolve("final"), m);
            Map<String, NDArray> b = weights(got.resolve("final"), m);
            assertThat(b.keySet()).as(what).isEqualTo(a.keySet());
            for (String name : a.keySet()) {
                if (!noiseOnly.isEmpty() && name.matches(noiseOnly)) {
                    continue;
                }
                float d = a.get(name).sub(b.get(name)).abs().max().getFloat();
                if (d > worst) {
                    worst = d;
                    worstName = name;
                }
            }
        }
        assertThat(worst)
                .as("%s: largest difference of the final weights (in %s)", what, worstName)
                .isLessThanOrEqualTo(abs);
    }

    private static Map<Integer, JsonNode> steps(Path run) throws IOException {
        Map<Integer, JsonNode> out = new LinkedHashMap<>();
        for (String line : Files.readAllLines(run.resolve("metrics.jsonl"), StandardCharsets.UTF_8)) {
            JsonNode n = JSON.readTree(line);
            if (n.has("loss")) {
                out.put(n.get("step").asInt(), n);
            }
        }
        return out;
    }

    private static Map<String, NDArray> weights(Path dir, NDManager m) throws IOException {
        Map<String, NDArray> out = new LinkedHashMap<>();
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f :
                    files.filter(p -> p.toString().endsWith(".safetensors")).toList()) {
                try (SafetensorsFile file = SafetensorsFile.open(f)) {
                    for (String name : file.tensors().keySet()) {
                        out.put(f.getFileName() + ":" + name, file.read(name, m));
                    }
                }
            }
        }
        return out;
    }

    static Path requireMpirun() {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            Path p = Path.of(dir, "mpirun");
            if (Files.isExecutable(p)) {
                return p;
            }
        }
        assumeTrue(
                false, "mpirun is not installed: the multi-process tests need Open MPI (apt-get install openmpi-bin)");
        return null;
    }

    /** Runs {@link DataParallelMain} under {@code mpirun -np N} with this test's classpath; fails on a non-zero exit. */
    static String mpirun(Path mpirun, int ranks, List<String> args) throws IOException, InterruptedException {
        Path log = Files.createTempFile("mpirun", ".log");
        Process p = start(mpirun, ranks, args, log, List.of(), Map.of());
        boolean ended = p.waitFor(4, TimeUnit.MINUTES);
        if (!ended) {
            p.destroyForcibly();
        }
        String out = Files.readString(log, StandardCharsets.UTF_8);
        Files.delete(log);
        assertThat(ended).as("mpirun ended within 4 minutes: %s", out).isTrue();
        assertThat(p.exitValue()).as("mpirun's exit status: %s", out).isZero();
        return out;
    }

    private static Process start(
            Path mpirun, int ranks, List<String> args, Path log, List<String> jvm, Map<String, String> env)
            throws IOException {
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        List<String> cmd = new ArrayList<>(List.of(mpirun.toString(), "-np", String.valueOf(ranks)));
        cmd.addAll(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx1g",
                "-Dai.djl.pytorch.num_threads=1",
                "-Dai.djl.offline=true"));
        cmd.addAll(jvm);
        cmd.addAll(List.of("-cp", cp, DataParallelMain.class.getName()));
        cmd.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("OMPI_ALLOW_RUN_AS_ROOT", "1");
        pb.environment().put("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
        pb.environment().put("OMPI_MCA_oob_tcp_if_include", "lo");
        pb.environment().put("OMPI_MCA_btl_tcp_if_include", "lo");
        pb.environment().put("OMP_NUM_THREADS", "1");
        pb.environment().putAll(env);
        return pb.start();
    }

    /**
     * A process that stops answering (SIGSTOP) leaves the other blocked in an all-reduce: its watchdog ends it
     * within its limit, naming the rank and the checkpoint to resume from, and mpirun ends the job; one that
     * is killed (SIGKILL) ends the job through mpirun within seconds. The run folder holds only complete
     * checkpoints either way.
     */
    @Test
    void aStoppedOrKilledProcessEndsTheJob() throws Exception {
        Path mpirun = requireMpirun();
        for (String signal : List.of("STOP", "KILL")) {
            Path pids = Files.createDirectories(tmp.resolve("pids-" + signal));
            Path run = tmp.resolve("hang-" + signal);
            Path log = tmp.resolve(signal + ".log");
            List<String> args = new ArrayList<>(dpo("hang-" + signal, 2, "pid_dir=" + pids));
            args.removeIf(a -> a.startsWith("max_steps="));
            args.add("max_steps=100000");
            Process p = start(
                    mpirun,
                    2,
                    args,
                    log,
                    List.of("-Dalign4j.stepDelayMs=20"),
                    Map.of("ALIGN4J_WATCHDOG_SECONDS", "3", "ALIGN4J_WATCHDOG_LONG_SECONDS", "20"));
            try {
                // a few steps and a checkpoint first
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
                while (!(Files.isDirectory(run.resolve("checkpoint-4")) && Files.exists(pids.resolve("rank-1.pid")))) {
                    assertThat(p.isAlive())
                            .as("%s", Files.exists(log) ? Files.readString(log) : "")
                            .isTrue();
                    assertThat(System.nanoTime()).as("4 steps within 90 s").isLessThan(deadline);
                    Thread.sleep(100);
                }
                String pid = Files.readString(pids.resolve("rank-1.pid")).strip();
                long t0 = System.nanoTime();
                new ProcessBuilder("kill", "-" + signal, pid)
                        .inheritIO()
                        .start()
                        .waitFor();
                boolean ended = p.waitFor(60, TimeUnit.SECONDS);
                double seconds = (System.nanoTime() - t0) / 1e9;
                String out = Files.readString(log, StandardCharsets.UTF_8);
                assertThat(ended)
                        .as("job ended after SIG%s of rank 1: %s", signal, out)
                        .isTrue();
                assertThat(p.exitValue()).as(out).isNotZero();
                if (signal.equals("STOP")) {
                    // 3 s without progress (10 x a step of ~0.1 s is less), checked every 0.15 s
                    assertThat(out).contains("Rank 0 made no progress").contains("Resume with --resume from");
                    assertThat(seconds).as(out).isLessThan(30);
                } else {
                    assertThat(out).contains("signal 9");
                    assertThat(seconds).as(out).isLessThan(10);
                }
            } finally {
                p.destroyForcibly();
                if (Files.exists(pids.resolve("rank-1.pid"))) {
                    // a stopped process outlives mpirun only if mpirun itself was killed
                    new ProcessBuilder(
                                    "kill",
                                    "-KILL",
                                    Files.readString(pids.resolve("rank-1.pid")).strip())
                            .start()
                            .waitFor();
                }
            }
            try (Stream<Path> s = Files.list(run)) {
                for (Path c : s.filter(f -> f.getFileName().toString().startsWith("checkpoint-"))
                        .toList()) {
                    assertThat(c.resolve("trainer_state.json"))
                            .as("complete: %s", c)
                            .exists();
                }
            }
        }
    }
}
