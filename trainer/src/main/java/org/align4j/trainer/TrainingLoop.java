package org.align4j.trainer;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.align4j.data.PairOrder;
import org.align4j.model.CausalLm;
import org.align4j.model.ScalarOps;
import org.align4j.model.io.AtomicDirectory;
import org.align4j.model.io.SafetensorsWriter;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The loop every trainer shares: micro-batches in a seeded order, gradient accumulation, global-norm
 * clipping, AdamW under a schedule, metrics, evaluation, atomic checkpoints, exact resume, and a clean
 * stop on SIGINT/SIGTERM. Subclasses say what one micro-batch computes.
 */
public abstract class TrainingLoop {
    private static final Logger LOG = LoggerFactory.getLogger(TrainingLoop.class);

    /** Test aid: slows every step by this many milliseconds, so an interruption can be timed. */
    private static final long STEP_DELAY_MS = Long.getLong("align4j.stepDelayMs", 0);

    /** The resolved config. */
    protected final TrainConfig config;

    /** The model being trained. */
    protected final CausalLm policy;

    private final Path output;
    private final Path tokenizerDir;
    private final List<TrainingListener> listeners = new ArrayList<>();
    private volatile boolean stopRequested;
    private final CountDownLatch finished = new CountDownLatch(1);

    /**
     * What one micro-batch contributed.
     *
     * @param values [1 + k] on the device: the micro-batch's mean loss (already back-propagated), then
     *     its k metrics; read to the host only when the step logs
     * @param names the names of {@code values}' entries, "loss" first
     * @param count examples in it (pairs or sequences), the weight of its values
     * @param tokens tokens processed
     */
    protected record MicroResult(NDArray values, List<String> names, int count, long tokens) {
        /**
         * @param loss the micro-batch's loss (a scalar on the device)
         * @param metrics further metrics as a 1-D device array, or null
         * @param names the names of {@code metrics}' entries
         * @param count pairs or examples
         * @param tokens tokens
         * @return the result, loss first, detached from autograd, nothing read to the host
         */
        public static MicroResult of(NDArray loss, NDArray metrics, List<String> names, int count, long tokens) {
            NDArray l = loss.stopGradient().toType(ai.djl.ndarray.types.DataType.FLOAT64, false).reshape(1);
            NDArray values = metrics == null ? l : ai.djl.ndarray.NDArrays.concat(new ai.djl.ndarray.NDList(l, metrics));
            List<String> all = new ArrayList<>();
            all.add("loss");
            all.addAll(names);
            return new MicroResult(values, all, count, tokens);
        }
    }

    /**
     * @param config the resolved config
     * @param policy the model to train (trainable)
     * @param tokenizerDir whose tokenizer files are copied into checkpoints
     * @param output the run folder
     */
    protected TrainingLoop(TrainConfig config, CausalLm policy, Path tokenizerDir, Path output) {
        this.config = config;
        this.policy = policy;
        this.tokenizerDir = tokenizerDir;
        this.output = output;
    }

    /**
     * Puts LoRA adapters on a freshly loaded policy as the config asks: the adapter folder it names, or
     * new adapters of rank {@code lora_r} (seeded by {@code seed}). A policy resumed from a LoRA
     * checkpoint already carries its adapters and is left as it is.
     *
     * @param policy the loaded policy
     * @param config the run's config
     * @throws IllegalArgumentException naming {@code lora_target} when a target module matches nothing
     */
    protected static void prepareAdapters(CausalLm policy, TrainConfig config) {
        if (policy.hasAdapters()) {
            return;
        }
        if (config.adapter() != null) {
            policy.loadAdapter(Path.of(config.adapter()));
        } else if (config.loraR() > 0) {
            try {
                policy.addLora(config.loraConfig(), config.seed());
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("key 'lora_target': " + e.getMessage(), e);
            }
        }
    }

    /** @param listener hears the run's progress */
    public void addListener(TrainingListener listener) {
        listeners.add(listener);
    }

    /** Asks the loop to save a checkpoint and stop after the current step (what SIGINT does). */
    public void requestStop() {
        stopRequested = true;
    }

    /** @return training examples (pairs or sequences) */
    protected abstract int trainSize();

    /** @return each training example's padded length, for length grouping */
    protected abstract int[] trainLengths();

    /** @return a short description of example {@code i} for error messages (its file and line) */
    protected abstract String describe(int i);

    /**
     * Forward and backward pass of one micro-batch inside {@code collector}.
     *
     * @param indices the examples
     * @param scope owner of every array made
     * @param collector the gradient collector (call its backward with the loss scaled by {@code scale})
     * @param scale 1/gradAccum
     * @return what it contributed
     */
    protected abstract MicroResult microStep(int[] indices, NDManager scope, GradientCollector collector, double scale);

    /** @return held-out metrics (names without prefix), or an empty map without an eval set */
    protected abstract Map<String, Double> evaluate();

    /**
     * Runs (or resumes) training.
     *
     * @param resume continue from the newest checkpoint in the run folder, if any
     * @return how it ended
     * @throws IOException when the run folder cannot be written
     */
    public TrainResult train(boolean resume) throws IOException {
        Files.createDirectories(output);
        Checkpoints.State state = new Checkpoints.State(0, 0, 0);
        // with LoRA adapters only they train: neither gradients nor optimizer state for the base weights
        AdamW optimizer = new AdamW(policy.trainableParameters(), config.adamBeta1(), config.adamBeta2(), config.adamEpsilon(),
                config.weightDecay());
        if (resume) {
            var latest = Checkpoints.latest(output);
            if (latest.isPresent()) {
                state = Checkpoints.readState(latest.get());
                loadOptimizer(optimizer, latest.get(), state.step());
                LOG.info("Resuming from {} (step {}, epoch {}, batch {})", latest.get(), state.step(), state.epoch(), state.batchInEpoch());
            }
        }
        int[] lengths = trainLengths();
        long totalSteps = config.totalSteps(trainSize());
        LrSchedule schedule = new LrSchedule(config.learningRate(), config.warmupStepsOf(totalSteps), (int) totalSteps, config.schedule());
        Thread hook = new Thread(this::onSignal, "align4j-stop");
        Runtime.getRuntime().addShutdownHook(hook);
        Files.writeString(output.resolve("config.yaml"), config.toYaml(), StandardCharsets.UTF_8);
        Map<String, Double> lastMetrics = Map.of();
        Map<String, Double> evalMetrics = Map.of();
        Path lastCheckpoint = Checkpoints.latest(output).orElse(null);
        boolean interrupted = false;
        int epoch = state.epoch();
        int batchInEpoch = state.batchInEpoch();
        List<int[]> order = PairOrder.epoch(lengths, config.batchSize(), config.seed(), epoch, true, config.groupByLength(), false);
        long step = state.step();
        final long firstStep = state.step() + 1;
        listeners.forEach(l -> l.onStart(firstStep, totalSteps));
        try (MetricsLog metrics = new MetricsLog(output.resolve("metrics.jsonl"), resume ? state.step() : -1)) {
            while (step < totalSteps) {
                if (stopRequested) {
                    interrupted = true;
                    break;
                }
                long t0 = System.nanoTime();
                // each micro-batch's loss and metrics stay on the device until this step logs (or fails)
                NDManager stats = policy.manager().newSubManager();
                List<NDArray> microValues = new ArrayList<>();
                List<int[]> microBatches = new ArrayList<>();
                List<String> names = List.of();
                int count = 0;
                long tokens = 0;
                for (int a = 0; a < config.gradAccum(); a++) {
                    if (batchInEpoch >= order.size()) {
                        epoch++;
                        batchInEpoch = 0;
                        order = PairOrder.epoch(lengths, config.batchSize(), config.seed(), epoch, true, config.groupByLength(), false);
                    }
                    int[] batch = order.get(batchInEpoch++);
                    MicroResult r;
                    try (NDManager scope = policy.manager().newSubManager();
                            GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
                        r = microStep(batch, scope, gc, 1.0 / config.gradAccum());
                        r.values().attach(stats);
                    }
                    microValues.add(ScalarOps.times(r.values(), r.count()));
                    microBatches.add(batch);
                    names = r.names();
                    count += r.count();
                    tokens += r.tokens();
                }
                if (listeners.stream().anyMatch(TrainingListener::wantsGradientNorms)) {
                    Map<String, Double> norms = gradientNorms();
                    final long next = step + 1;
                    listeners.forEach(l -> l.onGradientNorms(next, norms));
                }
                double lr = schedule.at(step);
                // the one host read of a step that does not log: the gradient norm, which a NaN loss also makes NaN
                double gradNorm = optimizer.clipGradients(config.maxGradNorm());
                if (!Double.isFinite(gradNorm)) {
                    for (int i = 0; i < microValues.size(); i++) {
                        double loss = microValues.get(i).getDouble(0);
                        if (!Double.isFinite(loss)) {
                            optimizer.zeroGradients();
                            stats.close();
                            throw diverged(step + 1, microBatches.get(i), "loss is " + loss);
                        }
                    }
                    double lossSum = 0;
                    for (NDArray v : microValues) {
                        lossSum += v.getDouble(0);
                    }
                    List<String> bad = new ArrayList<>();
                    gradientNorms().forEach((name, norm) -> {
                        if (!Double.isFinite(norm)) {
                            bad.add(name);
                        }
                    });
                    optimizer.zeroGradients();
                    stats.close();
                    throw diverged(step + 1, order.get(batchInEpoch - 1), "gradient norm is " + gradNorm + " (loss " + lossSum / count
                            + "; non-finite gradients in " + bad.size() + " parameter(s), first: " + bad.subList(0, Math.min(3, bad.size())) + ")");
                }
                optimizer.step(lr);
                step++;
                if (STEP_DELAY_MS > 0) {
                    try {
                        Thread.sleep(STEP_DELAY_MS);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
                double seconds = (System.nanoTime() - t0) / 1e9;
                Map<String, Double> m = new LinkedHashMap<>();
                boolean logs = step % config.logEvery() == 0 || step == totalSteps;
                if (logs) {
                    NDArray sum = microValues.get(0);
                    for (int i = 1; i < microValues.size(); i++) {
                        sum = sum.add(microValues.get(i));
                    }
                    double[] values = sum.toDoubleArray();
                    for (int i = 0; i < values.length; i++) {
                        m.put(names.get(i), values[i] / count);
                    }
                }
                stats.close();
                m.put("learning_rate", lr);
                m.put("grad_norm", gradNorm);
                m.put("tokens_per_second", tokens / seconds);
                m.put("epoch", epoch + (double) batchInEpoch / order.size());
                if (logs) {
                    lastMetrics = m;
                    metrics.write(step, m);
                }
                final long s = step;
                listeners.forEach(l -> l.onStep(s, m));
                if (config.evalEvery() > 0 && step % config.evalEvery() == 0 && step < totalSteps) {
                    evalMetrics = runEval(metrics, step);
                }
                if (config.saveEvery() > 0 && step % config.saveEvery() == 0 && step < totalSteps) {
                    lastCheckpoint = save(optimizer, new Checkpoints.State(step, epoch, batchInEpoch));
                }
            }
            Checkpoints.State end = new Checkpoints.State(step, epoch, batchInEpoch);
            Path finalModel = null;
            if (!interrupted) {
                evalMetrics = runEval(metrics, step);
                lastCheckpoint = save(optimizer, end);
                finalModel = output.resolve("final");
                policy.save(finalModel, tokenizerDir);
            } else if (lastCheckpoint == null || Checkpoints.stepOf(lastCheckpoint) != step) {
                lastCheckpoint = save(optimizer, end);
                LOG.warn("Stopped at step {}: checkpoint saved to {}; run again with --resume to continue", step, lastCheckpoint);
            }
            return new TrainResult(step, interrupted, lastMetrics, evalMetrics, finalModel, lastCheckpoint);
        } finally {
            optimizer.close();
            listeners.forEach(TrainingListener::onEnd);
            finished.countDown();
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException shuttingDown) {
                // the JVM is already exiting because of a signal; the hook is waiting for us
            }
        }
    }

    private Map<String, Double> gradientNorms() {
        Map<String, Double> norms = new LinkedHashMap<>();
        policy.trainableParameters().forEach((name, param) -> {
            NDArray p = param.getArray();
            if (p.hasGradient()) {
                try (NDArray g = p.getGradient(); NDArray sq = g.square(); NDArray s = sq.sum()) {
                    norms.put(name, Math.sqrt(s.toType(ai.djl.ndarray.types.DataType.FLOAT64, false).getDouble()));
                }
            }
        });
        return norms;
    }

    private Map<String, Double> runEval(MetricsLog metrics, long step) throws IOException {
        Map<String, Double> raw = evaluate();
        if (raw.isEmpty()) {
            return raw;
        }
        Map<String, Double> m = new LinkedHashMap<>();
        raw.forEach((k, v) -> m.put("eval_" + k, v));
        metrics.write(step, m);
        listeners.forEach(l -> l.onEval(step, m));
        return m;
    }

    private TrainingDivergedException diverged(long step, int[] batch, String what) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < Math.min(batch.length, 8); i++) {
            sb.append(i == 0 ? "" : ", ").append(describe(batch[i]));
        }
        String msg = "step " + step + ": " + what + " on the batch of " + sb + (batch.length > 8 ? ", ..." : "")
                + "; training stopped, the last good checkpoint is kept" + Checkpoints.latest(output).map(p -> " (" + p + ")").orElse("");
        LOG.error(msg);
        return new TrainingDivergedException(msg);
    }

    private Path save(AdamW optimizer, Checkpoints.State state) throws IOException {
        Path dir = output.resolve(Checkpoints.PREFIX + state.step());
        AtomicDirectory.write(dir, tmp -> {
            policy.writeTo(tmp, tokenizerDir, org.align4j.model.CausalLm.DEFAULT_SHARD_BYTES);
            SafetensorsWriter.write(tmp.resolve(Checkpoints.OPTIMIZER), onCpu(optimizer.state()));
            Files.writeString(tmp.resolve(Checkpoints.STATE), Checkpoints.stateJson(state, config.seed()));
            Files.writeString(tmp.resolve("config.yaml"), config.toYaml());
        });
        Checkpoints.prune(output, config.keepLast());
        LOG.info("Checkpoint {} saved", dir);
        listeners.forEach(l -> l.onCheckpoint(state.step(), dir));
        return dir;
    }

    private static Map<String, NDArray> onCpu(Map<String, NDArray> tensors) {
        Map<String, NDArray> out = new LinkedHashMap<>();
        tensors.forEach((k, v) -> out.put(k, v.getDevice().isGpu() ? v.toDevice(ai.djl.Device.cpu(), true) : v));
        return out;
    }

    private void loadOptimizer(AdamW optimizer, Path checkpoint, long steps) {
        Path f = checkpoint.resolve(Checkpoints.OPTIMIZER);
        try (NDManager m = policy.manager().newSubManager();
                org.align4j.model.io.SafetensorsFile file = org.align4j.model.io.SafetensorsFile.open(f)) {
            Map<String, NDArray> tensors = new LinkedHashMap<>();
            for (String name : file.tensors().keySet()) {
                tensors.put(name, file.read(name, m));
            }
            optimizer.load(tensors, steps);
        } catch (IllegalArgumentException e) {
            throw new IllegalStateException(f + ": " + e.getMessage(), e);
        }
    }

    /** SIGINT/SIGTERM: ask the loop to stop, then wait (bounded) for its checkpoint to be written. */
    private void onSignal() {
        if (finished.getCount() == 0) {
            return;
        }
        stopRequested = true;
        LOG.warn("Stop requested: finishing the current step and saving a checkpoint");
        try {
            if (!finished.await(10, TimeUnit.MINUTES)) {
                LOG.error("Gave up waiting for the checkpoint after 10 minutes");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** @return the run folder */
    public Path output() {
        return output;
    }

}
