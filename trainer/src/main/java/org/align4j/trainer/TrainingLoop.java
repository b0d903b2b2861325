package org.align4j.trainer;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.nn.Parameter;
import ai.djl.training.GradientCollector;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.align4j.data.EncodedPair;
import org.align4j.data.PairOrder;
import org.align4j.distributed.Collectives;
import org.align4j.distributed.Launch;
import org.align4j.distributed.Watchdog;
import org.align4j.model.CausalLm;
import org.align4j.model.ScalarOps;
import org.align4j.model.io.AtomicDirectory;
import org.align4j.model.io.CheckpointException;
import org.align4j.model.io.SafetensorsFile;
import org.align4j.model.io.SafetensorsWriter;
import org.align4j.model.lora.LoraConfig;
import org.align4j.model.tokenizer.TextTokenizer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The loop every trainer shares: micro-batches in a seeded order, gradient accumulation, global-norm
 * clipping, AdamW under a schedule, metrics, evaluation, atomic checkpoints, exact resume, and a clean
 * stop on SIGINT/SIGTERM. Subclasses say what one micro-batch computes.
 *
 * <p>Data parallel: in a process started by {@code mpirun} or {@code srun} ({@link Launch}), each of the W
 * processes takes its slice of every global batch of {@code batch_size} × W examples (by the batch's indices,
 * so the global batch does not depend on W), scales its gradients by the global weight of the step, sums
 * them over the processes after the step's last backward pass ({@link Collectives#allReduceSum}, a few flat
 * buckets), and then clips and steps AdamW like every other process; W processes of batch b therefore train
 * as one process of batch b × W. The initial trained weights are rank 0's; logged metrics are over every
 * process; rank 0 alone writes the run folder, checkpoints behind a barrier; a {@link Watchdog} ends a process
 * whose step hangs.
 */
public abstract class TrainingLoop implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(TrainingLoop.class);
    /** A prime stride between the generator seeds of consecutive steps (micro-batches take the seeds between). */
    private static final long DROPOUT_SEED_STRIDE = 1_000_003L;

    /** Test aid: slows every step by this many milliseconds, so an interruption can be timed. */
    private static final long STEP_DELAY_MS = Long.getLong("align4j.stepDelayMs", 0);

    /** The resolved config. */
    protected final TrainConfig config;

    /** The model being trained. */
    protected final CausalLm policy;

    private final Path output;
    private final RunFolder folder;
    private final Path tokenizerDir;
    /** The newest checkpoint whose weights have since given a finite loss: the one a diverged run names as good. */
    private Path verified;
    /** The newest checkpoint saved whose weights no step has used yet. */
    private Path unverified;

    private final List<TrainingListener> listeners = new ArrayList<>();
    /** Real tokens trained on since this process started the run (TRL's num_tokens, which a resumed run restarts too). */
    private long tokensSeen;

    private volatile boolean stopRequested;
    private final CountDownLatch finished = new CountDownLatch(1);

    /** Ends a process of several whose step hangs; null for one process. */
    private Watchdog watchdog;
    /** What the watchdog names to resume from. */
    private volatile String resumeHint;

    /** ZeRO stage 1: the rank that updates each trained parameter; null when every process updates all. */
    private Map<String, Integer> owners;

    /** Where this process stands in its job (rank 0 of 1 unless started by an MPI launcher). */
    private final Launch launch;
    /** The job's collectives, from the first step on (MPI is initialised by {@link #train}). */
    private Collectives collectives;

    /**
     * What one micro-batch contributed.
     *
     * @param values [1 + k] on the device: the micro-batch's loss (already back-propagated), then its k
     *     metrics, each the mean over the micro-batch's examples (or, for the loss of SFT, its tokens);
     *     read to the host only when the step logs; a metric a micro-batch may lack comes with its presence
     *     ({@link #PRESENT})
     * @param names the names of {@code values}' entries, "loss" first
     * @param tokens tokens processed
     */
    protected record MicroResult(NDArray values, List<String> names, long tokens) {
        /**
         * @param loss the micro-batch's loss (a scalar on the device)
         * @param metrics further metrics as a 1-D device array, or null
         * @param names the names of {@code metrics}' entries
         * @param tokens tokens
         * @return the result, loss first, detached from autograd, nothing read to the host
         */
        public static MicroResult of(NDArray loss, NDArray metrics, List<String> names, long tokens) {
            NDArray l = loss.stopGradient().toType(DataType.FLOAT64, false).reshape(1);
            NDArray values = metrics == null ? l : NDArrays.concat(new NDList(l, metrics));
            List<String> all = new ArrayList<>();
            all.add("loss");
            all.addAll(names);
            return new MicroResult(values, all, tokens);
        }
    }

    /**
     * @param config the resolved config
     * @param policy the model to train (trainable)
     * @param tokenizerDir whose tokenizer files are copied into checkpoints
     * @param folder the claimed run folder (released by {@link #close})
     */
    protected TrainingLoop(TrainConfig config, CausalLm policy, Path tokenizerDir, RunFolder folder) {
        this.config = config;
        this.policy = policy;
        this.tokenizerDir = tokenizerDir;
        this.folder = folder;
        this.output = folder.output();
        this.launch = Launch.fromEnvironment();
    }

    /**
     * Refuses a run of several processes for a trainer that does not train data-parallel yet.
     *
     * @param command the command, named in the message ("align4j grpo")
     * @throws IllegalArgumentException when this process was started as one of several by an MPI launcher
     */
    public static void requireSingleProcess(String command) {
        Launch l = Launch.fromEnvironment();
        if (l.distributed()) {
            throw new IllegalArgumentException(command + " runs as one process only: data-parallel training over "
                    + l.worldSize() + " processes (" + l.launcher() + ") is built for sft, train, kto, orpo, cpo and"
                    + " reward train; run it without mpirun/srun/--nproc");
        }
    }

    /** @return the number of data-parallel processes of the run (1 unless started by an MPI launcher) */
    protected int worldSize() {
        return launch.worldSize();
    }

    /** Releases the run folder; subclasses free their models, then call this. */
    @Override
    public void close() {
        folder.close();
    }

    /**
     * Puts LoRA adapters on a freshly loaded policy as the config asks: the adapter folder it names, or
     * new adapters of rank {@code lora_r} (seeded by {@code seed}). A policy resumed from a LoRA
     * checkpoint already carries its adapters. With {@code disable_dropout} the adapters' dropout is
     * off, as TRL's.
     *
     * @param policy the loaded policy
     * @param config the run's config
     * @throws IllegalArgumentException naming {@code lora_target} when a target module matches nothing
     */
    protected static void prepareAdapters(CausalLm policy, TrainConfig config) {
        if (!policy.hasAdapters()) {
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
        if (policy.hasAdapters() && config.disableDropout()) {
            // TRL's disable_dropout zeroes every dropout module, PEFT's lora_dropout included
            policy.setAdapterDropout(0);
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

    /** @return held-out examples (pairs or sequences) */
    protected abstract int evalSize();

    /** @return what is optimised, in a few words: the objective, its β, the reference policy */
    protected abstract String objectiveSummary();

    /**
     * What this run will do, before it starts: model, objective, data, steps and batch, output. The
     * loop logs it when training starts; the CLI prints it.
     *
     * @return a few lines
     */
    public List<String> header() {
        long total = totalSteps();
        int perStep = config.batchSize() * config.gradAccum() * worldSize();
        String unit = config.loss().isPairwise() ? "pairs" : "examples";
        return List.of(
                String.format(
                        Locale.ROOT,
                        "model: %s (%s, %d layers, %,d parameters) on %s, %s, %s attention, %s",
                        config.model(),
                        policy.config().modelType(),
                        policy.config().numLayers(),
                        policy.parameterCount(),
                        policy.device(),
                        TrainConfig.configName(config.precision()),
                        TrainConfig.configName(config.attention()),
                        policy.paddingFree()
                                ? "padding-free (a micro-batch with padding runs packed, one without as rows)"
                                : "padded batches"),
                "objective: " + objectiveSummary(),
                String.format(Locale.ROOT, "data: %,d training %s, %,d held out", trainSize(), unit, evalSize()),
                String.format(
                        Locale.ROOT,
                        "steps: %,d of %d %s (batch %d x grad_accum %d%s), %.2f epochs; lr %s, %s schedule, %d warm-up",
                        total,
                        perStep,
                        unit,
                        config.batchSize(),
                        config.gradAccum(),
                        worldSize() > 1 ? " x " + worldSize() + " processes" : "",
                        (double) total * perStep / trainSize(),
                        TrainConfig.defaultFormat(config.learningRate()),
                        TrainConfig.configName(config.schedule()),
                        config.warmupStepsOf(total)),
                adapterSummary(),
                "output: " + output);
    }

    private String targets(LoraConfig lora) {
        Object v = lora.targets().peftValue();
        if (v instanceof List<?> names) {
            return String.join(", ", names.stream().map(String::valueOf).toList());
        }
        return v == null
                ? String.join(", ", LoraConfig.defaultTargets(policy.config().modelType()))
                : String.valueOf(v);
    }

    private String adapterSummary() {
        if (!policy.hasAdapters()) {
            return "adapters: none (full fine-tuning of " + String.format(Locale.ROOT, "%,d", policy.parameterCount())
                    + " parameters)";
        }
        long trainable = policy.trainableParameters().values().stream()
                .mapToLong(p -> p.getArray().size())
                .sum();
        LoraConfig lora = policy.lora();
        return String.format(
                Locale.ROOT,
                "adapters: LoRA r %d, alpha %s, dropout %s on %s; %,d trainable of %,d parameters",
                lora.r(),
                TrainConfig.defaultFormat(lora.alpha()),
                TrainConfig.defaultFormat(config.disableDropout() ? 0 : lora.dropout()),
                targets(lora),
                trainable,
                policy.parameterCount()); // the count includes the adapters
    }

    /** @return each training example's padded length, for length grouping */
    protected abstract int[] trainLengths();

    /** @return a short description of example {@code i} for error messages (its file and line) */
    protected abstract String describe(int i);

    /**
     * How much a micro-batch weighs in its optimizer step: its pairs for a preference objective, its
     * scored completion tokens for SFT (as transformers weighs by {@code num_items_in_batch}). The step's
     * loss is the weighted mean of its micro-batches' losses, so it does not depend on how a step is split.
     *
     * @param indices the examples of the micro-batch
     * @return its weight, &gt; 0
     */
    protected abstract long weight(int[] indices);

    /**
     * Forward and backward pass of one micro-batch inside {@code collector}.
     *
     * @param indices the examples
     * @param scope owner of every array made
     * @param collector the gradient collector (call its backward with the micro-batch's mean loss times {@code scale})
     * @param scale the micro-batch's share of the step: its {@link #weight} over the step's total
     * @return what it contributed
     */
    protected abstract MicroResult microStep(int[] indices, NDManager scope, GradientCollector collector, double scale);

    /** @return held-out metrics (names without prefix), or an empty map without an eval set */
    protected abstract Map<String, Double> evaluate();

    /**
     * @return the held-out pairs whose prompts {@code eval_samples} answers (the chosen completion is
     *     the expected answer); empty for a run that generates nothing
     */
    protected List<EncodedPair> heldOutPairs() {
        return List.of();
    }

    /** @return the policy's tokenizer, for {@code eval_samples}; null for a run that generates nothing */
    protected TextTokenizer tokenizer() {
        return null;
    }

    /** @return examples the data order hands out at a time ({@code batch_size}; an RL run's prompts per generation) */
    protected int examplesPerBatch() {
        return config.batchSize();
    }

    /** @return whether an epoch's last, smaller batch is dropped (an RL generation needs a full batch of prompts) */
    protected boolean dropLast() {
        return false;
    }

    /** @return whether each epoch's order is shuffled (by the seed and the epoch) */
    protected boolean shuffle() {
        return true;
    }

    /** @return the run's optimizer steps ({@code max_steps}, or what {@code epochs} of the data take) */
    protected long totalSteps() {
        return config.totalSteps(trainSize(), worldSize());
    }

    /**
     * The micro-batches of one optimizer step, as indices {@link #microStep} understands: by default
     * {@code grad_accum} batches of the data order. An online RL run takes a batch of prompts when it
     * generates and hands out slices of its rollout instead.
     *
     * @param step the optimizer step about to run (0-based)
     * @param nextBatch the next batch of the data order
     * @return the micro-batches
     */
    protected List<int[]> stepBatches(long step, Supplier<int[]> nextBatch) {
        List<int[]> batches = new ArrayList<>(config.gradAccum());
        for (int a = 0; a < config.gradAccum(); a++) {
            batches.add(nextBatch.get());
        }
        return batches;
    }

    /**
     * Metrics of a step that no micro-batch computes (an RL run's rewards and completion lengths, made
     * when it generated), logged with the step's own.
     *
     * @param step the step just taken (1-based)
     * @return names and values, empty by default
     */
    protected Map<String, Double> stepExtras(long step) {
        return Map.of();
    }

    /**
     * Writes what the trainer needs beyond weights, optimizer and data position to continue exactly (an
     * RL run's current rollout) into a checkpoint being written.
     *
     * @param checkpoint the checkpoint's temp folder
     * @throws IOException on write failure
     */
    protected void saveState(Path checkpoint) throws IOException {}

    /**
     * Reads back what {@link #saveState} wrote, when resuming.
     *
     * @param checkpoint the checkpoint resumed from
     */
    protected void restoreState(Path checkpoint) {}

    /**
     * Parameters beside the policy's that the same optimizer trains and clips with it (PPO's value model),
     * by names that do not collide with the policy's; their gradients come from {@link #microStep}, their
     * optimizer state is in checkpoints with the policy's, and the subclass saves and restores the weights
     * ({@link #saveState}, and its own loading when resuming).
     *
     * @return name → parameter; empty by default
     */
    protected Map<String, Parameter> otherTrainedParameters() {
        return Map.of();
    }

    private Map<String, Parameter> trainedParameters() {
        Map<String, Parameter> other = otherTrainedParameters();
        if (other.isEmpty()) {
            return policy.trainableParameters();
        }
        Map<String, Parameter> all = new LinkedHashMap<>(policy.trainableParameters());
        all.putAll(other);
        return all;
    }

    /** @return the run's settings as written to {@code config.yaml} (an RL run adds its method's own keys) */
    protected String configYaml() {
        return config.toYaml();
    }

    /** Where the run is in its data: the epoch, the order of its micro-batches, and the next one. */
    private final class Cursor {
        private final int[] lengths = trainLengths();
        private int epoch;
        private int batchInEpoch;
        private List<int[]> order;

        Cursor(Checkpoints.State state) {
            epoch = state.epoch();
            batchInEpoch = state.batchInEpoch();
            order = PairOrder.epoch(
                    lengths,
                    examplesPerBatch() * worldSize(),
                    config.seed(),
                    epoch,
                    shuffle(),
                    config.groupByLength(),
                    dropLast());
        }

        int[] next() {
            if (batchInEpoch >= order.size()) {
                epoch++;
                batchInEpoch = 0;
                order = PairOrder.epoch(
                        lengths,
                        examplesPerBatch() * worldSize(),
                        config.seed(),
                        epoch,
                        shuffle(),
                        config.groupByLength(),
                        dropLast());
            }
            return order.get(batchInEpoch++);
        }

        double epochs() {
            return epoch + (double) batchInEpoch / order.size();
        }

        Checkpoints.State state(long step) {
            return new Checkpoints.State(step, epoch, batchInEpoch);
        }
    }

    /**
     * One optimizer step's forward and backward passes, their results still on the device.
     *
     * @param batches the step's micro-batches (this process's slices of the global ones)
     * @param weights each one's {@link #weight} (0 for a slice this process had none of)
     * @param values each one's values times its weight ({@link MicroResult#values})
     * @param names the names of the values
     * @param total the sum of the weights over every process: the step's global weight
     * @param tokens tokens this process processed
     * @param stats owner of the values until the step logs
     */
    private record Accumulated(
            List<int[]> batches,
            long[] weights,
            List<NDArray> values,
            List<String> names,
            long total,
            long tokens,
            NDManager stats) {
        /** @return this process's weighted sums of the step's values, read to the host */
        double[] sums() {
            NDArray sum = values.get(0);
            for (int i = 1; i < values.size(); i++) {
                sum = sum.add(values.get(i));
            }
            return sum.toDoubleArray();
        }

        /**
         * @param sums weighted sums of the values (this process's, or every process's)
         * @return the weighted means (the logged loss is the one differentiated)
         */
        double[] means(double[] sums) {
            double[] v = sums.clone();
            for (int i = 0; i < v.length; i++) {
                v[i] /= total;
            }
            return v;
        }
    }

    /**
     * Runs training: from the start, or from the checkpoint the trainer was created to resume.
     *
     * @return how it ended
     * @throws IOException when the run folder cannot be written
     * @throws TrainingDivergedException when a loss or gradient becomes NaN or infinite (naming the step, the
     *     records of the batch and the last checkpoint that gave a finite loss)
     */
    public TrainResult train() throws IOException {
        boolean resume = folder.resumeFrom().isPresent();
        Files.createDirectories(output);
        folder.started(); // an earlier run that --overwrite set aside goes now, not when the folder was claimed
        header().forEach(line -> LOG.info("{}", line));
        folder.changes().forEach(c -> LOG.warn("Resuming with {}", c));
        // the config's dropout in training passes unless disable_dropout, as TRL (model.train() vs
        // disable_dropout_in_model); evaluation and reference passes never drop
        policy.setDropout(!config.disableDropout());
        // with LoRA adapters only they train: neither gradients nor optimizer state for the base weights
        owners = config.zeroStage() == 1 && worldSize() > 1 ? owners(trainedParameters(), worldSize()) : null;
        AdamW optimizer = new AdamW(
                trainedParameters(),
                owned(),
                config.adamBeta1(),
                config.adamBeta2(),
                config.adamEpsilon(),
                config.weightDecay());
        Checkpoints.State state =
                resume ? restore(optimizer, folder.resumeFrom().get()) : new Checkpoints.State(0, 0, 0);
        long totalSteps = totalSteps();
        Path done = output.resolve("final");
        if (resume && state.step() >= totalSteps && Files.isDirectory(done)) {
            LOG.warn(
                    "Nothing to train: {} is at step {} of {} and {} is written; both are left as they are"
                            + " (raise max_steps to train further)",
                    folder.resumeFrom().get(),
                    state.step(),
                    totalSteps,
                    done);
            optimizer.close();
            finished.countDown();
            return new TrainResult(
                    state.step(),
                    false,
                    Map.of(),
                    Map.of(),
                    done,
                    folder.resumeFrom().get());
        }
        LrSchedule schedule = new LrSchedule(
                config.learningRate(), config.warmupStepsOf(totalSteps), (int) totalSteps, config.schedule());
        collectives = Collectives.fromEnvironment();
        boolean root = collectives.isRoot();
        if (worldSize() > 1) {
            // every process starts from rank 0's weights (the same files and seed give the same, but a LoRA
            // initialisation or a non-deterministic load must not make the processes diverge)
            collectives.broadcast(trainedParameters().values().stream()
                    .map(Parameter::getArray)
                    .toList());
            resumeHint = folder.resumeFrom()
                    .map(p -> (Object) p)
                    .orElse("the start (no checkpoint saved yet)")
                    .toString();
            watchdog = new Watchdog(
                    launch.rank(), Watchdog.configuredMinimum(), Watchdog.configuredLongPhase(), () -> resumeHint);
            LOG.info(
                    "Data parallel: rank {} of {} ({}), global batch {}; watchdog limit at least {} s",
                    launch.rank(),
                    worldSize(),
                    launch.launcher(),
                    examplesPerBatch() * worldSize(),
                    Watchdog.configuredMinimum().toSeconds());
        }
        Thread hook = new Thread(this::onSignal, "align4j-stop");
        Runtime.getRuntime().addShutdownHook(hook);
        if (root) {
            Files.writeString(output.resolve("config.yaml"), configYaml(), StandardCharsets.UTF_8);
        }
        Map<String, Double> lastMetrics = Map.of();
        Map<String, Double> evalMetrics = Map.of();
        Path lastCheckpoint = folder.resumeFrom().orElse(null);
        unverified = lastCheckpoint;
        boolean interrupted = false;
        EvalJudging judging = null;
        Cursor cursor = new Cursor(state);
        long step = state.step();
        final long firstStep = step + 1;
        listeners.forEach(l -> l.onStart(firstStep, totalSteps));
        // rank 0 alone writes the run folder
        try (MetricsLog metrics = root ? new MetricsLog(output.resolve("metrics.jsonl"), resume ? step : -1) : null) {
            if (config.evalSamples() > 0 && root) {
                judging = EvalJudging.create(config, tokenizer(), heldOutPairs(), policy);
            }
            phase("the first step");
            boolean stopAgreed = false;
            while (step < totalSteps) {
                // with several processes, a stop asked of any one of them is agreed at the end of a step
                if (worldSize() > 1 ? stopAgreed : stopRequested) {
                    interrupted = true;
                    break;
                }
                long t0 = System.nanoTime();
                Accumulated acc = forwardBackward(cursor, step);
                reportGradientNorms(step + 1);
                double lr = schedule.at(step);
                double gradNorm = clipOrStop(optimizer, acc, step + 1);
                if (unverified != null) {
                    verified = unverified; // its weights have just given a finite loss and gradient
                    unverified = null;
                }
                optimizer.step(lr);
                if (owners != null) {
                    // ZeRO stage 1: each process updated its share; every process gets every share
                    for (int r = 0; r < worldSize(); r++) {
                        collectives.broadcast(ownedBy(r), r);
                    }
                }
                step++;
                delayForTests();
                boolean logs = step % config.logEvery() == 0 || step == totalSteps;
                double[] sums = logs ? acc.sums() : null;
                long stepTokens = acc.tokens();
                if (worldSize() > 1) {
                    // one small all-reduce a step: tokens, a stop asked, and the logged values' weighted sums
                    double[] local = new double[2 + (sums == null ? 0 : sums.length)];
                    local[0] = stepTokens;
                    local[1] = stopRequested ? 1 : 0;
                    if (sums != null) {
                        System.arraycopy(sums, 0, local, 2, sums.length);
                    }
                    double[] all = collectives.allReduceSum(local);
                    stepTokens = (long) all[0];
                    stopAgreed = all[1] > 0;
                    sums = sums == null ? null : Arrays.copyOfRange(all, 2, all.length);
                }
                tokensSeen += stepTokens;
                Map<String, Double> m = stepMetrics(
                        acc,
                        sums,
                        lr,
                        gradNorm,
                        (System.nanoTime() - t0) / 1e9,
                        cursor.epochs(),
                        stepTokens,
                        tokensSeen);
                if (logs) {
                    m.putAll(stepExtras(step));
                }
                if (logs) {
                    lastMetrics = m;
                    if (metrics != null) {
                        metrics.write(step, m);
                    }
                    LOG.info("step {}/{}: {}", step, totalSteps, format(m));
                }
                final long s = step;
                listeners.forEach(l -> l.onStep(s, m));
                tick(step);
                if (config.evalEvery() > 0 && step % config.evalEvery() == 0 && step < totalSteps) {
                    phase("evaluation");
                    evalMetrics = runEval(metrics, step, judging);
                    tick(step);
                }
                if (config.saveEvery() > 0 && step % config.saveEvery() == 0 && step < totalSteps) {
                    phase("checkpoint-" + step);
                    lastCheckpoint = save(optimizer, cursor.state(step));
                    tick(step);
                }
            }
            Path finalModel = null;
            if (!interrupted) {
                phase("evaluation and the final save");
                evalMetrics = runEval(metrics, step, judging);
                lastCheckpoint = save(optimizer, cursor.state(step));
                finalModel = output.resolve("final");
                if (root) {
                    policy.save(finalModel, tokenizerDir);
                    // the run is complete: keep_last alone decides now (the last good checkpoint was kept only to
                    // recover from a divergence)
                    Checkpoints.prune(output, config.keepLast(), folder.protectedPaths());
                }
                if (worldSize() > 1) {
                    collectives.barrier(); // every process returns paths that exist
                }
            } else if (lastCheckpoint == null || Checkpoints.stepOf(lastCheckpoint) != step) {
                lastCheckpoint = save(optimizer, cursor.state(step));
                LOG.warn(
                        "Stopped at step {}: checkpoint saved to {}; run again with --resume to continue",
                        step,
                        lastCheckpoint);
            }
            return new TrainResult(step, interrupted, lastMetrics, evalMetrics, finalModel, lastCheckpoint);
        } finally {
            if (watchdog != null) {
                watchdog.close();
                watchdog = null;
            }
            if (judging != null) {
                judging.close();
            }
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

    /** Loads a checkpoint's optimizer state and says where its run stood (the policy was loaded from it). */
    private Checkpoints.State restore(AdamW optimizer, Path checkpoint) {
        Checkpoints.State state = Checkpoints.readState(checkpoint);
        int savedBatch = Checkpoints.globalBatchOf(checkpoint);
        int globalBatch = examplesPerBatch() * worldSize();
        if (savedBatch > 0 && savedBatch != globalBatch) {
            // the position counts global batches (batch_size x processes): continue after the same examples
            long examples = (long) state.batchInEpoch() * savedBatch;
            int batches = (int) Math.min(Integer.MAX_VALUE, (examples + globalBatch - 1) / globalBatch);
            if (examples % globalBatch == 0 && !config.groupByLength()) {
                LOG.info(
                        "{} ran with global batches of {} examples, this run's are {}: continuing after the same {}"
                                + " examples of epoch {}",
                        checkpoint.getFileName(),
                        savedBatch,
                        globalBatch,
                        examples,
                        state.epoch());
            } else {
                LOG.warn(
                        "{} ran with global batches of {} examples, this run's are {}: epoch {} continues at batch {}"
                                + " of the new size, not exactly after the {} examples it trained on{}",
                        checkpoint.getFileName(),
                        savedBatch,
                        globalBatch,
                        state.epoch(),
                        batches,
                        examples,
                        config.groupByLength() ? " (group_by_length orders each batch size differently)" : "");
            }
            state = new Checkpoints.State(state.step(), state.epoch(), batches);
        }
        loadOptimizer(optimizer, checkpoint, state.step());
        restoreState(checkpoint);
        LOG.info(
                "Resuming from {} (step {}, epoch {}, batch {})",
                checkpoint,
                state.step(),
                state.epoch(),
                state.batchInEpoch());
        return state;
    }

    /**
     * The forward and backward passes of one optimizer step: its micro-batches are chosen first, so each
     * one's gradient is scaled by its share of the whole step's weight (pairs, or SFT's tokens).
     */
    private Accumulated forwardBackward(Cursor cursor, long step) {
        List<int[]> globals = stepBatches(step, cursor::next);
        int world = worldSize();
        List<int[]> batches = new ArrayList<>(globals.size());
        long[] weights = new long[globals.size()];
        long total = 0;
        for (int a = 0; a < globals.size(); a++) {
            int[] global = globals.get(a);
            // every process knows every slice's weight: the global total needs no communication
            for (int r = 0; r < world; r++) {
                int[] slice = slice(global, r, world);
                long w = slice.length == 0 ? 0 : weight(slice);
                total += w;
                if (r == launch.rank()) {
                    batches.add(slice);
                    weights[a] = w;
                }
            }
        }
        // each micro-batch's loss and metrics stay on the device until this step logs (or fails)
        NDManager stats = policy.manager().newSubManager();
        List<NDArray> values = new ArrayList<>();
        List<String> names = List.of();
        long tokens = 0;
        for (int a = 0; a < batches.size(); a++) {
            MicroResult r;
            // dropout masks as a function of (seed, step, micro-batch) alone: a resumed run draws the
            // same ones (the rule trl_fixtures.py seeds TRL with before each forward pass)
            // same ones (the rule trl_fixtures.py seeds TRL with before each forward pass); process r's slices take
            // the seeds of micro-batches r x n + a, so W processes draw what one process accumulating W x n draws
            CausalLm.seedGenerators(
                    config.seed() + DROPOUT_SEED_STRIDE * step + (long) launch.rank() * globals.size() + a);
            // a global batch smaller than the world leaves a process without examples: it runs one of the batch's
            // with a weight of 0, so that its gradients and metrics exist and add nothing
            boolean none = batches.get(a).length == 0;
            int[] indices = none ? new int[] {globals.get(a)[0]} : batches.get(a);
            try (NDManager scope = policy.manager().newSubManager();
                    GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
                r = microStep(indices, scope, gc, (double) weights[a] / total);
                r.values().attach(stats);
            }
            values.add(ScalarOps.times(r.values(), weights[a]));
            names = r.names();
            tokens += none ? 0 : r.tokens();
        }
        if (world > 1) {
            allReduceGradients();
        }
        return new Accumulated(batches, weights, values, names, total, tokens, stats);
    }

    /**
     * @param global the indices of a global batch
     * @param rank a process
     * @param world the number of processes
     * @return the process's contiguous slice of it (sizes differ by at most one; empty when the batch is
     *     smaller than the world)
     */
    static int[] slice(int[] global, int rank, int world) {
        int from = (int) ((long) global.length * rank / world);
        int to = (int) ((long) global.length * (rank + 1) / world);
        return Arrays.copyOfRange(global, from, to);
    }

    /** Sums the trained parameters' gradients over every process, in place (each already scaled by the global weight). */
    private void allReduceGradients() {
        List<NDArray> grads = new ArrayList<>();
        try {
            for (Parameter p : trainedParameters().values()) {
                NDArray a = p.getArray();
                if (a.hasGradient()) {
                    grads.add(a.getGradient());
                }
            }
            collectives.allReduceSum(grads);
        } finally {
            grads.forEach(NDArray::close);
        }
    }

    private void reportGradientNorms(long step) {
        if (listeners.stream().anyMatch(TrainingListener::wantsGradientNorms)) {
            Map<String, Double> norms = gradientNorms();
            listeners.forEach(l -> l.onGradientNorms(step, norms));
        }
    }

    /**
     * Clips the gradients to {@code max_grad_norm} and returns their norm: the one host read of a step
     * that does not log. A NaN or Inf loss makes it non-finite too; then the run stops, naming the
     * records of the batch at fault.
     */
    private double clipOrStop(AdamW optimizer, Accumulated acc, long step) {
        double gradNorm = optimizer.clipGradients(config.maxGradNorm());
        if (Double.isFinite(gradNorm)) {
            return gradNorm;
        }
        try {
            for (int i = 0; i < acc.values().size(); i++) {
                double loss = acc.values().get(i).getDouble(0) / acc.weights()[i];
                if (!Double.isFinite(loss)) {
                    throw diverged(step, acc.batches().get(i), "loss is " + loss);
                }
            }
            List<String> bad = new ArrayList<>();
            gradientNorms().forEach((name, norm) -> {
                if (!Double.isFinite(norm)) {
                    bad.add(name);
                }
            });
            throw diverged(
                    step,
                    acc.batches().get(acc.batches().size() - 1),
                    "gradient norm is " + gradNorm + " (loss " + acc.means(acc.sums())[0]
                            + (worldSize() > 1 ? " on rank " + launch.rank() : "") + "; "
                            + (bad.isEmpty()
                                    ? "every gradient is finite but their norm overflowed: the loss's scale is far too"
                                            + " large (a coefficient of the objective?)"
                                    : "non-finite gradients in " + bad.size() + " parameter(s), first: "
                                            + bad.subList(0, Math.min(3, bad.size())))
                            + ")");
        } finally {
            optimizer.zeroGradients();
            acc.stats().close();
        }
    }

    /** The step's metrics: the accumulated values when the step logs, and what the host knows anyway. */
    private static Map<String, Double> stepMetrics(
            Accumulated acc,
            double[] sums,
            double lr,
            double gradNorm,
            double seconds,
            double epochs,
            long stepTokens,
            long tokensSeen) {
        Map<String, Double> m = new LinkedHashMap<>();
        if (sums != null) {
            double[] values = acc.means(sums);
            for (int i = 0; i < values.length; i++) {
                m.put(acc.names().get(i), values[i]);
            }
            onlyWherePresent(m);
        }
        acc.stats().close();
        m.put("learning_rate", lr);
        m.put("grad_norm", gradNorm);
        m.put("tokens_per_second", stepTokens / seconds);
        m.put("num_tokens", (double) tokensSeen);
        m.put("epoch", epochs);
        return m;
    }

    /**
     * The suffix of a metric's presence: a micro-batch that computes metric {@code X} only sometimes (KTO's
     * {@code rewards/chosen} needs a desirable example in it, as TRL logs it) returns {@code X} as its value
     * times 1 or 0 and {@code X#present} as that 1 or 0; the step then logs X's mean over the micro-batches
     * that have it, or nothing when none has.
     */
    public static final String PRESENT = "#present";

    /**
     * Turns means of values × presence and of presences into each metric's mean where present, dropping
     * the presences and the metrics no micro-batch had.
     *
     * @param m metric name → mean over micro-batches (modified)
     */
    static void onlyWherePresent(Map<String, Double> m) {
        for (String name : List.copyOf(m.keySet())) {
            if (!name.endsWith(PRESENT)) {
                continue;
            }
            String metric = name.substring(0, name.length() - PRESENT.length());
            double share = m.remove(name);
            if (share == 0) {
                m.remove(metric);
            } else {
                m.computeIfPresent(metric, (k, v) -> v / share);
            }
        }
    }

    private void tick(long step) {
        if (watchdog != null) {
            watchdog.progress(step);
        }
    }

    private void phase(String what) {
        if (watchdog != null) {
            watchdog.longPhase(what);
        }
    }

    private static void delayForTests() {
        if (STEP_DELAY_MS > 0) {
            try {
                Thread.sleep(STEP_DELAY_MS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private Map<String, Double> gradientNorms() {
        Map<String, Double> norms = new LinkedHashMap<>();
        trainedParameters().forEach((name, param) -> {
            NDArray p = param.getArray();
            if (p.hasGradient()) {
                try (NDArray g = p.getGradient();
                        NDArray sq = g.square();
                        NDArray s = sq.sum()) {
                    norms.put(name, Math.sqrt(s.toType(DataType.FLOAT64, false).getDouble()));
                }
            }
        });
        return norms;
    }

    private Map<String, Double> runEval(MetricsLog metrics, long step, EvalJudging judging) throws IOException {
        Map<String, Double> raw = new LinkedHashMap<>(evaluate());
        if (judging != null) {
            raw.putAll(judging.judge(policy, config.evalJudge(), output.resolve("samples.jsonl")));
        }
        if (raw.isEmpty()) {
            return raw;
        }
        Map<String, Double> m = new LinkedHashMap<>();
        raw.forEach((k, v) -> m.put("eval_" + k, v));
        if (metrics != null) {
            metrics.write(step, m);
        }
        LOG.info("eval at step {}: {}", step, format(m));
        listeners.forEach(l -> l.onEval(step, m));
        return m;
    }

    private static String format(Map<String, Double> m) {
        StringBuilder sb = new StringBuilder();
        m.forEach((k, v) -> sb.append(sb.length() == 0 ? "" : ", ")
                .append(k)
                .append(' ')
                .append(String.format(Locale.ROOT, "%.6g", v)));
        return sb.toString();
    }

    private TrainingDivergedException diverged(long step, int[] batch, String what) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < Math.min(batch.length, 8); i++) {
            sb.append(i == 0 ? "" : ", ").append(describe(batch[i]));
        }
        // not logged here: whoever catches it reports it once (the CLI: on the console and in train.log)
        return new TrainingDivergedException("step " + step + ": " + what + " on the batch of " + sb
                + (batch.length > 8 ? ", ..." : "") + "; training stopped; " + setAsideUnverified());
    }

    /**
     * A diverged run: the checkpoint saved since the last finite step holds the weights that diverged,
     * so it is renamed {@code checkpoint-N.diverged} (kept for a look, never resumed); the message names
     * the newest checkpoint whose weights gave a finite loss.
     */
    private String setAsideUnverified() {
        if (unverified != null
                && (collectives == null || collectives.isRoot())
                && Files.isDirectory(unverified)
                && !folder.protectedPaths().contains(unverified.toAbsolutePath().normalize())) {
            Path aside = unverified.resolveSibling(unverified.getFileName() + ".diverged");
            try {
                AtomicDirectory.deleteRecursively(aside);
                Files.move(unverified, aside);
                LOG.warn("{} holds the weights that diverged: renamed to {}", unverified, aside.getFileName());
            } catch (IOException e) {
                LOG.warn("Cannot rename {}: {}", unverified, e.getMessage());
            }
        }
        return verified != null
                ? "the last checkpoint whose weights gave a finite loss is " + verified
                : "no checkpoint of this run has given a finite loss; start again from the model (a lower learning rate?)";
    }

    /** Every parameter and optimizer moment finite: a checkpoint never holds NaN or Inf. */
    private void requireFinite(AdamW optimizer, long step) {
        List<String> bad = new ArrayList<>();
        policy.parameters().forEach((name, p) -> {
            if (!isFinite(p.getArray())) {
                bad.add(name);
            }
        });
        otherTrainedParameters().forEach((name, p) -> {
            if (!isFinite(p.getArray())) {
                bad.add(name);
            }
        });
        optimizer.state().forEach((name, a) -> {
            if (!isFinite(a)) {
                bad.add(name);
            }
        });
        if (!bad.isEmpty()) {
            throw new TrainingDivergedException("step " + step + ": non-finite values in " + bad.size()
                    + " tensor(s) (first: " + bad.subList(0, Math.min(3, bad.size()))
                    + "), so nothing was saved; training stopped; " + setAsideUnverified());
        }
    }

    private static boolean isFinite(NDArray a) {
        try (NDArray sum = a.abs().sum()) {
            return Double.isFinite(sum.toType(DataType.FLOAT64, false).getDouble());
        }
    }

    private Path save(AdamW optimizer, Checkpoints.State state) throws IOException {
        requireFinite(optimizer, state.step()); // on every process: they hold the same values, and all stop
        Path dir = output.resolve(Checkpoints.PREFIX + state.step());
        try (NDManager gathered = policy.manager().newSubManager()) {
            Map<String, NDArray> moments = optimizerState(optimizer, gathered);
            if (collectives.isRoot()) {
                AtomicDirectory.write(dir, tmp -> {
                    policy.writeTo(tmp, tokenizerDir, CausalLm.DEFAULT_SHARD_BYTES);
                    SafetensorsWriter.write(tmp.resolve(Checkpoints.OPTIMIZER), onCpu(moments));
                    Files.writeString(
                            tmp.resolve(Checkpoints.STATE),
                            Checkpoints.stateJson(state, config.seed(), worldSize(), examplesPerBatch() * worldSize()));
                    Files.writeString(tmp.resolve("config.yaml"), configYaml());
                    saveState(tmp);
                });
                List<Path> keep = new ArrayList<>(folder.protectedPaths());
                if (verified != null) {
                    keep.add(verified.toAbsolutePath().normalize());
                }
                Checkpoints.prune(output, config.keepLast(), keep);
            }
        }
        if (worldSize() > 1) {
            // no process goes on before the checkpoint is complete: a failure from here on resumes from it
            collectives.barrier();
            resumeHint = dir.toString();
        }
        unverified = dir;
        LOG.info("Checkpoint {} saved", dir);
        listeners.forEach(l -> l.onCheckpoint(state.step(), dir));
        return dir;
    }

    /**
     * ZeRO stage 1: which process updates each trained parameter and keeps its moments. Whole parameters are
     * shared out greedily by size, in order (as FairScale's OSS does), so every process computes the same.
     */
    private static Map<String, Integer> owners(Map<String, Parameter> params, int world) {
        long[] load = new long[world];
        Map<String, Integer> out = new LinkedHashMap<>();
        params.forEach((name, p) -> {
            int r = 0;
            for (int i = 1; i < world; i++) {
                if (load[i] < load[r]) {
                    r = i;
                }
            }
            load[r] += p.getArray().size();
            out.put(name, r);
        });
        LOG.info(
                "ZeRO stage 1: AdamW's moments of {} of {} trained values on this process",
                load[Launch.fromEnvironment().rank()],
                Arrays.stream(load).sum());
        return out;
    }

    /** @return the names of the parameters this process's optimizer updates */
    private Set<String> owned() {
        Map<String, Parameter> params = trainedParameters();
        if (owners == null) {
            return params.keySet();
        }
        Set<String> mine = new LinkedHashSet<>();
        owners.forEach((name, r) -> {
            if (r == launch.rank()) {
                mine.add(name);
            }
        });
        return mine;
    }

    /** @return the arrays of the parameters process {@code r} updates */
    private List<NDArray> ownedBy(int r) {
        List<NDArray> out = new ArrayList<>();
        trainedParameters().forEach((name, p) -> {
            if (owners.get(name) == r) {
                out.add(p.getArray());
            }
        });
        return out;
    }

    /**
     * The whole optimizer state, as one process keeps it: with ZeRO stage 1 each moment comes from its owner
     * (one broadcast each, so that no process holds more than one foreign moment at a time but rank 0, which
     * writes them).
     */
    private Map<String, NDArray> optimizerState(AdamW optimizer, NDManager scratch) {
        Map<String, NDArray> mine = optimizer.state();
        if (owners == null) {
            return mine;
        }
        Map<String, NDArray> all = new LinkedHashMap<>();
        for (String prefix : List.of("exp_avg.", "exp_avg_sq.")) {
            for (Map.Entry<String, Parameter> e : trainedParameters().entrySet()) {
                int r = owners.get(e.getKey());
                String name = prefix + e.getKey();
                NDArray p = e.getValue().getArray();
                NDArray a = r == launch.rank() ? mine.get(name) : scratch.zeros(p.getShape(), p.getDataType());
                collectives.broadcast(List.of(a), r);
                if (collectives.isRoot()) {
                    all.put(name, a);
                } else if (r != launch.rank()) {
                    a.close();
                }
            }
        }
        return all;
    }

    private static Map<String, NDArray> onCpu(Map<String, NDArray> tensors) {
        Map<String, NDArray> out = new LinkedHashMap<>();
        tensors.forEach((k, v) -> out.put(k, v.getDevice().isGpu() ? v.toDevice(Device.cpu(), true) : v));
        return out;
    }

    private void loadOptimizer(AdamW optimizer, Path checkpoint, long steps) {
        Path f = checkpoint.resolve(Checkpoints.OPTIMIZER);
        try (NDManager m = policy.manager().newSubManager();
                SafetensorsFile file = SafetensorsFile.open(f)) {
            Map<String, NDArray> tensors = new LinkedHashMap<>();
            for (String name : file.tensors().keySet()) {
                if (optimizer.state().containsKey(name)) { // a process of a sharded optimizer reads its share only
                    tensors.put(name, file.read(name, m));
                }
            }
            optimizer.load(tensors, steps);
        } catch (IllegalArgumentException e) {
            throw new CheckpointException(f, e.getMessage(), e);
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
