package org.align4j.cli.bench;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.training.GradientCollector;
import ai.djl.util.cuda.CudaUtils;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import org.align4j.data.DataFormat;
import org.align4j.data.EncodedPair;
import org.align4j.data.EncodingOptions;
import org.align4j.data.PairOrder;
import org.align4j.data.PreferenceBatch;
import org.align4j.data.PreferenceData;
import org.align4j.data.PreferenceEncoder;
import org.align4j.losses.LossType;
import org.align4j.losses.PreferenceLoss;
import org.align4j.model.CausalLm;
import org.align4j.model.LogProbs;
import org.align4j.model.config.ModelConfig;
import org.align4j.model.kernels.TorchScriptKernel;
import org.align4j.model.lora.LoraConfig;
import org.align4j.model.nn.Compute;
import org.align4j.model.tokenizer.TextTokenizer;
import org.align4j.trainer.AdamW;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A DPO/IPO training-step benchmark on synthetic token ids, the same step the trainer runs: policy
 * forward and backward over 2B sequences (the LM head only at completion positions), the reference's
 * log-probs (a frozen copy's forward pass, or precomputed constants), the loss, global-norm clipping
 * and AdamW. Rows are L tokens, the last 3L/4 of them completion, as in the PyTorch anchor
 * ({@code ../shared/reference/perf.py}).
 *
 * <p>Model FLOPs per step (what MFU divides by the time): forward and backward of every non-embedding
 * weight for every token (6·N·tokens), the LM head only where a completion token is predicted
 * (6·V·H·scored), attention scores and values (12·layers·H·L per token, PaLM's count); a frozen copy
 * adds a third of each. The ceiling is a large fp32 matmul (bf16 inside a kernel for
 * {@code --precision bf16}) timed through the same engine in the same run.
 */
public final class StepBench {
    private static final Logger LOG = LoggerFactory.getLogger(StepBench.class);

    /**
     * What to run.
     *
     * @param model a model folder, or null for a preset
     * @param preset a preset name ({@link #PRESETS}) when model is null
     * @param pairs preference pairs per step (2B sequences)
     * @param seqLen L, tokens per sequence
     * @param device where it runs
     * @param steps timed steps
     * @param warmup untimed steps first
     * @param precision fp32, tf32 or bf16
     * @param attention eager or sdpa
     * @param reference copy or precomputed
     * @param loss a loss name ({@link LossType})
     * @param memoryEvery record the resident set size every this many steps (0 = never)
     * @param loraRank train LoRA adapters of this rank on every linear map (α = 2r) instead of every
     *     weight, the reference being the same model with adapters off; 0 for full fine-tuning
     * @param logitsChunkElements logits made at once by the log-probs (0: all at once)
     */
    public record Settings(
            Path model,
            String preset,
            int pairs,
            int seqLen,
            Device device,
            int steps,
            int warmup,
            String precision,
            String attention,
            String reference,
            String loss,
            int memoryEvery,
            int loraRank,
            long logitsChunkElements) {
        /** The settings of the benchmark before LoRA and chunked log-probs: full fine-tuning, default chunks. */
        public Settings(
                Path model,
                String preset,
                int pairs,
                int seqLen,
                Device device,
                int steps,
                int warmup,
                String precision,
                String attention,
                String reference,
                String loss,
                int memoryEvery) {
            this(
                    model,
                    preset,
                    pairs,
                    seqLen,
                    device,
                    steps,
                    warmup,
                    precision,
                    attention,
                    reference,
                    loss,
                    memoryEvery,
                    0,
                    LogProbs.DEFAULT_CHUNK_ELEMENTS);
        }
    }

    /**
     * Real preference data instead of synthetic rows ({@code bench --data}): the pairs are encoded with
     * the model's tokenizer as training encodes them, ordered as a training epoch orders them (seeded
     * shuffle, length grouping if asked), and each step takes the next batch of {@code pairs} pairs,
     * padded to its longest row as the trainer pads it, or packed without padding.
     *
     * @param path a data file or folder (any format training reads)
     * @param tokenizer the tokenizer folder (the model folder's when null)
     * @param groupByLength batch pairs of similar length (the trainer's {@code group_by_length})
     * @param paddingFree pack each batch's sequences into one row without padding (TRL's {@code padding_free})
     * @param maxLength longest prompt + completion in tokens (0: no limit)
     * @param seed the order's seed
     * @param shuffle shuffle the order (false: the file's order, as another framework given a sequential
     *     sampler takes it, so that both time the same batches)
     */
    public record Data(
            Path path,
            Path tokenizer,
            boolean groupByLength,
            boolean paddingFree,
            int maxLength,
            long seed,
            boolean shuffle) {
        /** Real data in a shuffled order, as training takes it. */
        public Data(Path path, Path tokenizer, boolean groupByLength, boolean paddingFree, int maxLength, long seed) {
            this(path, tokenizer, groupByLength, paddingFree, maxLength, seed, true);
        }
    }

    /**
     * The measurement.
     *
     * @param values the JSON fields, in order (tokens_per_s, step_ms_median, peak_bytes, mfu,
     *     matmul_ceiling_flops first)
     * @param profile with {@code --profile}: the table of {@link StepProfile#table()}, else empty
     */
    public record Result(Map<String, Object> values, List<String> profile) {
        /** @param values the JSON fields, without a profile */
        public Result(Map<String, Object> values) {
            this(values, List.of());
        }
    }

    /** Preset architectures: name → config. */
    public static final Map<String, ModelConfig> PRESETS = presets();

    private static Map<String, ModelConfig> presets() {
        Map<String, ModelConfig> p = new LinkedHashMap<>();
        p.put("tiny-10m", ModelConfig.newGpt2(16384, 256, 8, 4, 1024, 0, 0, 0));
        p.put("gpt2-124m", ModelConfig.newGpt2(50257, 768, 12, 12, 1024, 50256, 50256, 50256));
        p.put(
                "qwen2-0.5b",
                ModelConfig.newLlama("qwen2", 151936, 896, 24, 14, 2, 4864, 32768, true, 151643, 151645, 151643));
        return p;
    }

    private StepBench() {}

    /**
     * Runs the benchmark.
     *
     * @param s settings
     * @return the measurement
     * @throws IOException when /proc cannot be read
     */
    public static Result run(Settings s) throws IOException {
        return run(s, null);
    }

    /**
     * Runs the benchmark on synthetic rows, or on real data.
     *
     * @param s settings ({@code seqLen} is ignored with data)
     * @param data real data, or null for synthetic rows
     * @return the measurement
     * @throws IOException when /proc cannot be read
     */
    public static Result run(Settings s, Data data) throws IOException {
        return run(s, data, 0);
    }

    /**
     * Runs the benchmark, then profiles {@code profileSteps} more steps ({@link StepProfile}; CPU only):
     * the profiled steps are not part of the timed ones.
     *
     * @param s settings ({@code seqLen} is ignored with data)
     * @param data real data, or null for synthetic rows
     * @param profileSteps steps to profile after the timed ones (0: none)
     * @return the measurement, with the profile's table and {@code profile_*} fields when profiled
     * @throws IOException when /proc or the profiler's trace cannot be read
     */
    public static Result run(Settings s, Data data, int profileSteps) throws IOException {
        if (profileSteps < 0) {
            throw new IllegalArgumentException("--profile: steps to profile, at least 0, got " + profileSteps);
        }
        if (profileSteps > 0 && s.device().isGpu()) {
            throw new IllegalArgumentException(
                    "--profile: CPU only (a GPU's kernels run asynchronously; phases would need CUDA events)");
        }
        if (s.loraRank() < 0) {
            throw new IllegalArgumentException(
                    "--lora-r: a rank of at least 1 (or 0 for full fine-tuning), got " + s.loraRank());
        }
        if (s.pairs() <= 0 || (data == null && s.seqLen() < 4) || s.steps() <= 0 || s.warmup() < 0) {
            throw new IllegalArgumentException("--batch-pairs, --seq-len (>= 4), --steps: must be positive, got "
                    + s.pairs() + ", " + s.seqLen() + ", " + s.steps());
        }
        boolean bf16 = "bf16".equals(s.precision());
        ModelConfig config;
        CausalLm policy;
        if (s.model() != null) {
            policy = CausalLm.load(s.model(), s.device());
            config = policy.config();
        } else {
            config = PRESETS.get(s.preset());
            if (config == null) {
                throw new IllegalArgumentException(
                        "--preset: unknown '" + s.preset() + "'; choose one of " + PRESETS.keySet());
            }
            if (data != null) {
                config = withVocabulary(config, loadTokenizer(s, data), tokenizerDir(s, data));
            }
            policy = CausalLm.create(config, s.device(), 0);
        }
        List<EncodedPair> pairs = null;
        if (data != null) {
            try {
                pairs = encode(s, data, config);
                if (s.pairs() > pairs.size()) {
                    throw new IllegalArgumentException("--batch-pairs: " + s.pairs() + " is more than the "
                            + pairs.size() + " pairs of --data " + data.path() + " (a step would take them all)");
                }
            } catch (RuntimeException e) {
                policy.close();
                throw e;
            }
        } else if (s.seqLen() > config.maxPositions()) {
            policy.close();
            throw new IllegalArgumentException(
                    "--seq-len: " + s.seqLen() + " exceeds the model's " + config.maxPositions() + " positions");
        }
        CausalLm reference = null;
        try {
            policy.setCompute(Compute.parse(s.attention(), s.precision(), s.device()));
            policy.setLogitsChunkElements(s.logitsChunkElements());
            policy.setPaddingFree(data != null && data.paddingFree());
            policy.setTrainable(true);
            if (s.loraRank() > 0) {
                policy.addLora(
                        new LoraConfig(s.loraRank(), 2.0 * s.loraRank(), 0, new LoraConfig.AllLinear(), false), 0);
                if (!"copy".equals(s.reference()) && !"precomputed".equals(s.reference())) {
                    throw new IllegalArgumentException("--reference: copy or precomputed, got '" + s.reference() + "'");
                }
            } else if ("copy".equals(s.reference())) {
                reference = s.model() != null
                        ? CausalLm.load(s.model(), s.device())
                        : CausalLm.create(config, s.device(), 0);
                reference.setCompute(Compute.parse(s.attention(), s.precision(), s.device()));
                reference.setLogitsChunkElements(s.logitsChunkElements());
                reference.setPaddingFree(data != null && data.paddingFree());
                reference.setTrainable(false);
            } else if (!"precomputed".equals(s.reference())) {
                throw new IllegalArgumentException("--reference: copy or precomputed, got '" + s.reference() + "'");
            }
            Path scratch = profileSteps > 0 ? Files.createTempDirectory("align4j-profile") : null;
            StepProfile profile = scratch != null ? new StepProfile(config, scratch) : null;
            try {
                Result r = data != null
                        ? measureData(s, data, pairs, config, policy, reference, bf16, profile, profileSteps)
                        : measure(s, config, policy, reference, bf16, profile, profileSteps);
                if (profile == null) {
                    return r;
                }
                Map<String, Object> v = new LinkedHashMap<>(r.values());
                v.put("profile_steps", profile.steps());
                v.put("profile_ms_per_step", profile.perStep());
                v.put("profile_ms_by_part", profile.byPart());
                v.put("profile_unclassified_ms", profile.unclassified());
                v.put("profile_top_operators_ms", profile.topOperators(20));
                return new Result(v, profile.table());
            } finally {
                if (scratch != null) {
                    Files.deleteIfExists(scratch);
                }
            }
        } finally {
            if (reference != null) {
                reference.close();
            }
            policy.close();
        }
    }

    private static Result measure(
            Settings s,
            ModelConfig config,
            CausalLm policy,
            CausalLm reference,
            boolean bf16,
            StepProfile profile,
            int profileSteps)
            throws IOException {
        int rows = 2 * s.pairs();
        int len = s.seqLen();
        int prompt = len / 4;
        PreferenceLoss loss = LossType.parse(s.loss()).create(0.1);
        boolean mean = loss.reduction() == PreferenceLoss.Reduction.MEAN;
        AdamW opt = new AdamW(policy.trainableParameters(), 0.9, 0.999, 1e-8, 0.0);
        // with LoRA the frozen reference is the policy with its adapters off: no second model
        boolean adaptersOffReference = s.loraRank() > 0 && "copy".equals(s.reference());
        Random random = new Random(0);
        long[] ids = new long[rows * len];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = random.nextInt(config.vocabSize());
        }
        long[] completion = new long[rows * len];
        for (int r = 0; r < rows; r++) {
            Arrays.fill(completion, r * len + prompt, (r + 1) * len, 1);
        }
        NDManager base = policy.manager().newSubManager();
        try {
            long[] ones = new long[rows * len];
            Arrays.fill(ones, 1);
            List<Double> times = new ArrayList<>();
            List<Long> rss = new ArrayList<>();
            long peakGpu = 0;
            int timed = s.warmup() + s.steps();
            int total = timed + (profile != null ? profileSteps : 0);
            double lastLoss = Double.NaN;
            long t0All = 0;
            double seconds = 0;
            for (int step = 0; step < total; step++) {
                if (step == s.warmup()) {
                    t0All = System.nanoTime();
                }
                if (step == timed) {
                    seconds = (System.nanoTime() - t0All) / 1e9;
                }
                StepProfile prof = step >= timed ? profile : null;
                mark(prof, StepProfile.Phase.DATA);
                long t0 = System.nanoTime();
                try (NDManager scope = base.newSubManager()) {
                    // the batch is made in the step's scope, as the trainer does: every activation
                    // attaches to its first operand's manager and is freed with the step
                    NDArray idArr = scope.create(ids, new Shape(rows, len));
                    NDArray att = scope.create(ones, new Shape(rows, len));
                    NDArray cm = scope.create(completion, new Shape(rows, len));
                    NDArray rc = scope.zeros(new Shape(s.pairs()));
                    NDArray rr = rc;
                    if (reference != null || adaptersOffReference) {
                        mark(prof, StepProfile.Phase.REFERENCE);
                        LogProbs r;
                        if (adaptersOffReference) {
                            policy.setAdaptersEnabled(false);
                            r = policy.completionLogProbs(idArr, att, cm, false);
                            policy.setAdaptersEnabled(true);
                        } else {
                            r = reference.completionLogProbs(idArr, att, cm, false);
                        }
                        NDArray v = mean ? r.mean() : r.sum();
                        rc = v.get("0:" + s.pairs()).stopGradient();
                        rr = v.get(s.pairs() + ":").stopGradient();
                    }
                    NDArray value;
                    try (GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
                        mark(prof, StepProfile.Phase.FORWARD);
                        LogProbs p = policy.completionLogProbs(idArr, att, cm, true);
                        NDArray v = mean ? p.mean() : p.sum();
                        value = loss.compute(v.get("0:" + s.pairs()), v.get(s.pairs() + ":"), rc, rr, null)
                                .meanLoss();
                        mark(prof, StepProfile.Phase.BACKWARD);
                        gc.backward(value);
                    }
                    mark(prof, StepProfile.Phase.OPTIMIZER);
                    opt.clipGradients(1.0);
                    opt.step(1e-6);
                    // the one read per step: it waits for the device, so the step time is real
                    lastLoss = value.toType(DataType.FLOAT64, false).getDouble();
                }
                if (prof != null) {
                    prof.stepDone();
                }
                long t1 = System.nanoTime();
                if (step >= s.warmup() && step < timed) {
                    times.add((t1 - t0) / 1e6);
                }
                if (s.memoryEvery() > 0 && (step % s.memoryEvery() == 0 || step == total - 1)) {
                    rss.add(s.device().isGpu() ? gpuUsedBytes(s.device()) : residentBytes());
                }
                if (s.device().isGpu()) {
                    peakGpu = Math.max(peakGpu, gpuUsedBytes(s.device()));
                }
            }
            if (total == timed) {
                seconds = (System.nanoTime() - t0All) / 1e9;
            }
            double ceiling = matmulCeiling(policy.manager(), s.device(), bf16);
            double flops = stepFlops(
                    config,
                    policy.parameters(),
                    policy.hasAdapters() ? policy.trainableParameters() : Map.of(),
                    rows,
                    len,
                    len - prompt,
                    reference != null || adaptersOffReference);
            double[] sorted =
                    times.stream().mapToDouble(Double::doubleValue).sorted().toArray();
            double stepSeconds = seconds / s.steps();
            Map<String, Object> v = new LinkedHashMap<>();
            v.put("tokens_per_s", rows * (double) len / stepSeconds);
            v.put("step_ms_median", percentile(sorted, 0.5));
            v.put("peak_bytes", s.device().isGpu() ? peakGpu : peakResidentBytes());
            v.put("mfu", flops / stepSeconds / ceiling);
            v.put("matmul_ceiling_flops", ceiling);
            v.put("step_ms_p90", percentile(sorted, 0.9));
            v.put("model_flops_per_step", flops);
            v.put("achieved_flops", flops / stepSeconds);
            v.put("parameters", policy.parameterCount());
            v.put("model", s.model() != null ? s.model().toString() : s.preset());
            v.put("pairs", s.pairs());
            v.put("seq_len", len);
            v.put("device", s.device().toString());
            v.put("precision", s.precision());
            v.put("attention", s.attention());
            v.put("reference", adaptersOffReference ? "adapters-off" : s.reference());
            v.put("lora_rank", s.loraRank());
            v.put("trainable_parameters", count(policy.trainableParameters()));
            v.put("logits_chunk_elements", s.logitsChunkElements());
            v.put("loss", s.loss());
            v.put("steps", s.steps());
            v.put("warmup", s.warmup());
            v.put("last_loss", lastLoss);
            v.put(
                    "peak_bytes_kind",
                    s.device().isGpu()
                            ? "gpu memory in use (cudaMemGetInfo), highest seen after a step"
                            : "peak resident set size (VmHWM)");
            if (!rss.isEmpty()) {
                // resident set size on the CPU, GPU memory in use on a GPU, every memory_every steps
                String k = s.device().isGpu() ? "gpu_bytes_" : "rss_bytes_";
                v.put(k + "first", rss.get(0));
                v.put(k + "last", rss.get(rss.size() - 1));
                v.put(k + "max", rss.stream().mapToLong(Long::longValue).max().orElse(0));
                v.put(k + "samples", rss);
                v.put("memory_every", s.memoryEvery());
            }
            LOG.info("bench: {}", v);
            return new Result(v);
        } finally {
            opt.close();
            base.close();
        }
    }

    private static void mark(StepProfile profile, StepProfile.Phase phase) {
        if (profile != null) {
            profile.begin(phase);
        }
    }

    private static Path tokenizerDir(Settings s, Data d) {
        return d.tokenizer() != null ? d.tokenizer() : s.model();
    }

    private static TextTokenizer loadTokenizer(Settings s, Data d) {
        Path dir = tokenizerDir(s, d);
        if (dir == null) {
            throw new IllegalArgumentException(
                    "--tokenizer: a tokenizer folder is needed with --data and --preset (or give --model)");
        }
        return TextTokenizer.load(dir);
    }

    /** A preset's architecture with the data tokenizer's vocabulary (its embedding and head resized). */
    private static ModelConfig withVocabulary(ModelConfig preset, TextTokenizer tk, Path dir) throws IOException {
        // the vocabulary's size: one past the largest id of tokenizer.json's model vocabulary and added tokens
        var json = new ObjectMapper().readTree(dir.resolve("tokenizer.json").toFile());
        int vocab = 0;
        for (var it = json.path("model").path("vocab").elements(); it.hasNext(); ) {
            vocab = Math.max(vocab, it.next().asInt() + 1);
        }
        for (var t : json.path("added_tokens")) {
            vocab = Math.max(vocab, t.path("id").asInt() + 1);
        }
        ObjectNode c = preset.raw().deepCopy();
        c.put("vocab_size", vocab);
        c.put("eos_token_id", tk.eosId());
        c.put("bos_token_id", tk.eosId());
        if (c.has("pad_token_id")) {
            c.put("pad_token_id", tk.padId());
        }
        return ModelConfig.fromJson(c, null);
    }

    private static List<EncodedPair> encode(Settings s, Data d, ModelConfig config) {
        TextTokenizer tk = loadTokenizer(s, d);
        PreferenceData.Loaded loaded = PreferenceData.load(d.path(), DataFormat.AUTO, false);
        EncodingOptions options = new EncodingOptions(d.maxLength(), 0, EncodingOptions.Truncation.KEEP_END, false);
        List<EncodedPair> pairs = new PreferenceEncoder(tk, options)
                .encodeAll(loaded.examples(), false)
                .pairs();
        if (pairs.isEmpty()) {
            throw new IllegalArgumentException("--data: no pairs in " + d.path());
        }
        List<String> sources = new ArrayList<>();
        for (int i = 0; i < pairs.size(); i++) {
            sources.add(d.path() + " pair " + (i + 1));
        }
        EncodedPair.checkFits(config, pairs, sources);
        return pairs;
    }

    /**
     * Padded positions against real tokens over every batch of one epoch, as the trainer would batch
     * it: what a padded step computes for nothing.
     */
    static double[] epochPadding(
            List<EncodedPair> pairs, int batchPairs, long seed, boolean shuffle, boolean groupByLength) {
        int[] lengths = pairs.stream().mapToInt(EncodedPair::maxLength).toArray();
        long real = 0;
        long padded = 0;
        List<int[]> batches = PairOrder.epoch(lengths, batchPairs, seed, 0, shuffle, groupByLength, false);
        for (int[] b : batches) {
            int t = 0;
            for (int i : b) {
                t = Math.max(t, lengths[i]);
                real += pairs.get(i).tokens();
            }
            padded += 2L * b.length * t;
        }
        return new double[] {real, padded, batches.size()};
    }

    private static Result measureData(
            Settings s,
            Data d,
            List<EncodedPair> pairs,
            ModelConfig config,
            CausalLm policy,
            CausalLm reference,
            boolean bf16,
            StepProfile profile,
            int profileSteps)
            throws IOException {
        PreferenceLoss loss = LossType.parse(s.loss()).create(0.1);
        boolean mean = loss.reduction() == PreferenceLoss.Reduction.MEAN;
        AdamW opt = new AdamW(policy.trainableParameters(), 0.9, 0.999, 1e-8, 0.0);
        boolean adaptersOffReference = s.loraRank() > 0 && "copy".equals(s.reference());
        boolean referencePass = reference != null || adaptersOffReference;
        int[] lengths = pairs.stream().mapToInt(EncodedPair::maxLength).toArray();
        List<int[]> order = new ArrayList<>();
        int padId = loadTokenizer(s, d).padId();
        NDManager base = policy.manager().newSubManager();
        try {
            List<Double> times = new ArrayList<>();
            int timed = s.warmup() + s.steps();
            int total = timed + (profile != null ? profileSteps : 0);
            long realTokens = 0;
            long paddedPositions = 0;
            long computedPositions = 0;
            double flops = 0;
            double seconds = 0;
            double lastLoss = Double.NaN;
            int epoch = 0;
            for (int step = 0; step < total; step++) {
                StepProfile prof = step >= timed ? profile : null;
                mark(prof, StepProfile.Phase.DATA);
                if (order.isEmpty()) {
                    order.addAll(PairOrder.epoch(
                            lengths, s.pairs(), d.seed(), epoch++, d.shuffle(), d.groupByLength(), false));
                }
                List<EncodedPair> batchPairs = new ArrayList<>();
                for (int i : order.remove(0)) {
                    batchPairs.add(pairs.get(i));
                }
                long t0 = System.nanoTime();
                PreferenceBatch b;
                try (NDManager scope = base.newSubManager()) {
                    b = PreferenceBatch.of(scope, batchPairs, padId);
                    NDArray rc = scope.zeros(new Shape(b.pairs()));
                    NDArray rr = rc;
                    if (referencePass) {
                        mark(prof, StepProfile.Phase.REFERENCE);
                        LogProbs r;
                        if (adaptersOffReference) {
                            policy.setAdaptersEnabled(false);
                            r = policy.completionLogProbs(b.ids(), b.attentionMask(), b.completionMask(), false);
                            policy.setAdaptersEnabled(true);
                        } else {
                            r = reference.completionLogProbs(b.ids(), b.attentionMask(), b.completionMask(), false);
                        }
                        NDArray v = mean ? r.mean() : r.sum();
                        rc = v.get("0:" + b.pairs()).stopGradient();
                        rr = v.get(b.pairs() + ":").stopGradient();
                    }
                    NDArray value;
                    try (GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
                        mark(prof, StepProfile.Phase.FORWARD);
                        LogProbs p = policy.completionLogProbs(b.ids(), b.attentionMask(), b.completionMask(), true);
                        NDArray v = mean ? p.mean() : p.sum();
                        value = loss.compute(v.get("0:" + b.pairs()), v.get(b.pairs() + ":"), rc, rr, null)
                                .meanLoss();
                        mark(prof, StepProfile.Phase.BACKWARD);
                        gc.backward(value);
                    }
                    mark(prof, StepProfile.Phase.OPTIMIZER);
                    opt.clipGradients(1.0);
                    opt.step(1e-6);
                    lastLoss = value.toType(DataType.FLOAT64, false).getDouble();
                }
                if (prof != null) {
                    prof.stepDone();
                }
                long t1 = System.nanoTime();
                if (step >= s.warmup() && step < timed) {
                    times.add((t1 - t0) / 1e6);
                    seconds += (t1 - t0) / 1e9;
                    long real = 0;
                    long scored = 0;
                    double attention = 0;
                    for (EncodedPair p : batchPairs) {
                        real += p.tokens();
                        scored += p.chosen().length + p.rejected().length;
                        long lc = p.prompt().length + p.chosen().length;
                        long lr = p.prompt().length + p.rejected().length;
                        attention += (double) lc * lc + (double) lr * lr;
                    }
                    realTokens += real;
                    paddedPositions += 2L * b.pairs() * b.length();
                    computedPositions += policy.paddingFree() && policy.isNative() ? real : 2L * b.pairs() * b.length();
                    flops += dataStepFlops(
                            config,
                            policy.parameters(),
                            policy.hasAdapters() ? policy.trainableParameters() : Map.of(),
                            real,
                            scored,
                            attention,
                            referencePass);
                }
            }
            double ceiling = matmulCeiling(policy.manager(), s.device(), bf16);
            double[] sorted =
                    times.stream().mapToDouble(Double::doubleValue).sorted().toArray();
            double[] epochPad = epochPadding(pairs, s.pairs(), d.seed(), d.shuffle(), d.groupByLength());
            Map<String, Object> v = new LinkedHashMap<>();
            v.put("tokens_per_s", realTokens / seconds);
            v.put("step_ms_median", percentile(sorted, 0.5));
            v.put("peak_bytes", s.device().isGpu() ? gpuUsedBytes(s.device()) : peakResidentBytes());
            v.put("mfu", flops / seconds / ceiling);
            v.put("matmul_ceiling_flops", ceiling);
            v.put("step_ms_p90", percentile(sorted, 0.9));
            v.put("padding_share", 1 - (double) realTokens / computedPositions);
            v.put("padded_layout_share", 1 - (double) realTokens / paddedPositions);
            v.put("epoch_padded_layout_share", 1 - epochPad[0] / epochPad[1]);
            v.put("real_tokens", realTokens);
            v.put("computed_positions", computedPositions);
            v.put("padded_positions", paddedPositions);
            v.put("model_flops", flops);
            v.put("achieved_flops", flops / seconds);
            v.put("parameters", policy.parameterCount());
            v.put("model", s.model() != null ? s.model().toString() : s.preset());
            v.put("data", d.path().toString());
            v.put("data_pairs", pairs.size());
            v.put("pairs", s.pairs());
            v.put("padding_free", policy.paddingFree());
            v.put("group_by_length", d.groupByLength());
            v.put("shuffle", d.shuffle());
            v.put("device", s.device().toString());
            v.put("precision", s.precision());
            v.put("attention", s.attention());
            v.put("reference", adaptersOffReference ? "adapters-off" : s.reference());
            v.put("lora_rank", s.loraRank());
            v.put("loss", s.loss());
            v.put("steps", s.steps());
            v.put("warmup", s.warmup());
            v.put("seed", d.seed());
            v.put("last_loss", lastLoss);
            v.put(
                    "peak_bytes_kind",
                    s.device().isGpu()
                            ? "gpu memory in use (cudaMemGetInfo) at the end"
                            : "peak resident set size (VmHWM)");
            LOG.info("bench: {}", v);
            return new Result(v);
        } finally {
            opt.close();
            base.close();
        }
    }

    /**
     * Model FLOPs of a step on real sequences: as {@link #stepFlops}, counting real tokens only, the LM
     * head at completion tokens, and attention over each sequence's own length (Σ L² instead of tokens·L).
     */
    static double dataStepFlops(
            ModelConfig config,
            Map<String, Parameter> parameters,
            Map<String, Parameter> adapters,
            long tokens,
            long scored,
            double sumSquaredLengths,
            boolean referencePass) {
        long embedding = 0;
        long all = 0;
        for (var e : parameters.entrySet()) {
            long n = e.getValue().getArray().size();
            all += n;
            String name = e.getKey();
            if (name.endsWith("wte.weight")
                    || name.endsWith("wpe.weight")
                    || name.endsWith("embed_tokens.weight")
                    || name.startsWith("lm_head")) {
                embedding += n;
            }
        }
        double body = all - embedding;
        double head = (double) config.vocabSize() * config.hiddenSize();
        double attention = 12.0 * config.numLayers() * config.numHeads() * config.headDim() * sumSquaredLengths;
        double perWeight = adapters.isEmpty() ? 6 : 4;
        double train =
                perWeight * body * tokens + perWeight * head * scored + attention + 6.0 * count(adapters) * tokens;
        double forward = 2 * body * tokens + 2 * head * scored + attention / 3;
        return referencePass ? train + forward : train;
    }

    /**
     * Model FLOPs of one step (see the class comment). With LoRA adapters the frozen weights need no
     * weight gradient: forward and input gradient, 4·N per token instead of 6·N, plus 6 per adapter
     * parameter per token.
     *
     * @param config the architecture
     * @param parameters the policy's parameters by HF name
     * @param adapters the adapters' parameters (empty for full fine-tuning)
     * @param rows sequences (2B)
     * @param len L
     * @param completion completion tokens per row (the positions whose prediction is scored)
     * @param referencePass whether a reference forward pass runs (a frozen copy, or adapters off)
     * @return FLOPs
     */
    static double stepFlops(
            ModelConfig config,
            Map<String, Parameter> parameters,
            Map<String, Parameter> adapters,
            int rows,
            int len,
            int completion,
            boolean referencePass) {
        long embedding = 0;
        long all = 0;
        for (var e : parameters.entrySet()) {
            long n = e.getValue().getArray().size();
            all += n;
            String name = e.getKey();
            if (name.endsWith("wte.weight")
                    || name.endsWith("wpe.weight")
                    || name.endsWith("embed_tokens.weight")
                    || name.startsWith("lm_head")) {
                embedding += n;
            }
        }
        double body = all - embedding;
        double tokens = (double) rows * len;
        double scored = (double) rows * completion;
        double head = (double) config.vocabSize() * config.hiddenSize();
        double attention = 12.0 * config.numLayers() * config.numHeads() * config.headDim() * len;
        double perWeight = adapters.isEmpty() ? 6 : 4;
        double train = perWeight * body * tokens
                + perWeight * head * scored
                + attention * tokens
                + 6.0 * count(adapters) * tokens;
        double forward = 2 * body * tokens + 2 * head * scored + attention * tokens / 3;
        return referencePass ? train + forward : train;
    }

    private static long count(Map<String, Parameter> params) {
        long n = 0;
        for (Parameter p : params.values()) {
            n += p.getArray().size();
        }
        return n;
    }

    /** FLOP/s of a large square matmul, best of nine after one warm-up, through DJL (fp32) or a bf16 kernel. */
    static double matmulCeiling(NDManager parent, Device device, boolean bf16) {
        int n = device.isGpu() ? 8192 : 1536;
        try (NDManager m = parent.newSubManager();
                TorchScriptKernel k = bf16
                        ? TorchScriptKernel.load(
                                "MatMulBf16",
                                "def forward(self: __torch__.SELF,\n    a: Tensor,\n    b: Tensor) -> Tensor:\n"
                                        + "  return torch.to(torch.matmul(torch.to(a, 15), torch.to(b, 15)), 6)\n",
                                device)
                        : null) {
            NDArray a = m.randomNormal(new Shape(n, n));
            NDArray b = m.randomNormal(new Shape(n, n));
            double best = Double.MAX_VALUE;
            for (int i = 0; i < 10; i++) {
                long t0 = System.nanoTime();
                try (NDManager s = m.newSubManager()) {
                    NDArray c = k != null ? k.forward(false, a, b).head() : a.matMul(b);
                    c.get(0, 0).getFloat();
                }
                double dt = (System.nanoTime() - t0) / 1e9;
                if (i > 0) {
                    best = Math.min(best, dt);
                }
            }
            return 2.0 * n * n * (double) n / best;
        }
    }

    private static double percentile(double[] sorted, double q) {
        if (sorted.length == 0) {
            return Double.NaN;
        }
        int i = (int) Math.ceil(q * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
    }

    static long residentBytes() throws IOException {
        return statusField("VmRSS:");
    }

    static long peakResidentBytes() throws IOException {
        return statusField("VmHWM:");
    }

    private static long statusField(String field) throws IOException {
        Path status = Path.of("/proc/self/status");
        if (!Files.isReadable(status)) {
            return -1;
        }
        for (String line : Files.readAllLines(status)) {
            if (line.startsWith(field)) {
                String[] parts = line.substring(field.length()).trim().split("\\s+");
                return Long.parseLong(parts[0]) * 1024L;
            }
        }
        return -1;
    }

    private static long gpuUsedBytes(Device device) {
        var usage = CudaUtils.getGpuMemory(device);
        return usage.getCommitted();
    }

    /**
     * @param values the result
     * @return a short human-readable summary
     */
    public static String describe(Map<String, Object> values) {
        return String.format(
                Locale.ROOT,
                "%,.0f tokens/s, step %.1f ms median (p90 %.1f), peak %.2f GiB, MFU %.1f%% of a %.2f TFLOP/s matmul",
                (double) values.get("tokens_per_s"),
                (double) values.get("step_ms_median"),
                (double) values.get("step_ms_p90"),
                ((Number) values.get("peak_bytes")).doubleValue() / (1L << 30),
                100 * (double) values.get("mfu"),
                (double) values.get("matmul_ceiling_flops") / 1e12);
    }
}
