package org.align4j.trainer;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.align4j.data.EncodedPair;
import org.align4j.data.PreferenceBatch;
import org.align4j.data.TokenBudget;
import org.align4j.distributed.Launch;
import org.align4j.evaluation.PairScorer;
import org.align4j.model.CausalLm;
import org.align4j.model.io.CheckpointException;
import org.align4j.model.io.ModelFolder;
import org.align4j.model.io.SafetensorsFile;
import org.align4j.model.io.SafetensorsWriter;
import org.align4j.model.tokenizer.TextTokenizer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reference log-probs computed once over the whole dataset and cached on disk, so that only the
 * policy is in memory while training. The cache file's name is a SHA-256 over everything the
 * log-probs depend on: the encoded pairs (which capture data, tokenizer and encoding settings), the
 * reference model's config and the full content of its weight files (and adapter, if the folder is a
 * PEFT adapter), and how they are scored ({@link #SCORING}). Hashing a multi-gigabyte checkpoint takes
 * seconds, so each file's digest is remembered in {@code CACHE/weight-digests.json} under its path,
 * size and modification time; a changed file is hashed again.
 */
public final class PrecomputedReference implements ReferencePolicy {
    private static final Logger LOG = LoggerFactory.getLogger(PrecomputedReference.class);

    /** How the cached values are computed: fp32 weights, the default compute path, summed and mean log-probs. Change it when that changes. */
    static final String SCORING = "align4j-reference-logps/2: fp32, default compute, sum and mean";

    private final Map<Split, float[][]> values = new LinkedHashMap<>();

    private PrecomputedReference() {}

    /**
     * Loads the cached log-probs, computing and caching them first if needed.
     *
     * @param modelDir the reference model folder
     * @param device where to compute
     * @param train training pairs
     * @param eval held-out pairs (may be empty)
     * @param cacheDir cache folder
     * @param padId padding id
     * @param batchSize at most this many pairs per forward pass, and at most {@link TokenBudget#DEFAULT_MAX_TOKENS}
     *     padded positions (pairs taken longest first)
     * @return the reference
     * @throws IOException on cache read/write failure
     */
    public static PrecomputedReference load(
            Path modelDir,
            Device device,
            List<EncodedPair> train,
            List<EncodedPair> eval,
            Path cacheDir,
            int padId,
            int batchSize)
            throws IOException {
        return load(modelDir, device, train, eval, cacheDir, padId, batchSize, "pairs", null);
    }

    /**
     * As {@link #load(Path, Device, List, List, Path, int, int)}, telling {@code listener} how far each split's
     * pass is ({@link TrainingListener#onPrepare}: the CLI's progress bar).
     *
     * @param modelDir the reference model
     * @param device where to run it
     * @param train training pairs
     * @param eval held-out pairs
     * @param cacheDir cache folder
     * @param padId padding id
     * @param batchSize at most this many pairs per forward pass
     * @param unit what the listener is told it counts: {@code pairs}, or {@code examples} (KTO's, one row each)
     * @param listener hears each split's progress, or null
     * @return the reference
     * @throws IOException on cache read/write failure
     */
    public static PrecomputedReference load(
            Path modelDir,
            Device device,
            List<EncodedPair> train,
            List<EncodedPair> eval,
            Path cacheDir,
            int padId,
            int batchSize,
            String unit,
            TrainingListener listener)
            throws IOException {
        PrecomputedReference ref = new PrecomputedReference();
        String modelKey = modelKey(modelDir, cacheDir);
        CausalLm lm = null;
        try {
            for (Split split : Split.values()) {
                List<EncodedPair> pairs = split == Split.TRAIN ? train : eval;
                if (pairs.isEmpty()) {
                    ref.values.put(split, new float[4][0]);
                    continue;
                }
                Path file = cacheFile(cacheDir, modelKey, pairs);
                if (Files.isRegularFile(file)) {
                    ref.values.put(split, read(file, pairs.size()));
                    LOG.info("Reference log-probs for {} {} pairs read from cache {}", pairs.size(), split, file);
                    continue;
                }
                if (lm == null) {
                    lm = CausalLm.load(modelDir, device);
                    lm.setTrainable(false);
                }
                long t0 = System.nanoTime();
                Progress progress = new Progress(split, pairs.size(), unit, listener);
                List<PairScorer.PairScore> scores =
                        PairScorer.score(lm, pairs, batchSize, TokenBudget.DEFAULT_MAX_TOKENS, padId, progress::add);
                float[][] v = new float[4][pairs.size()];
                for (int i = 0; i < scores.size(); i++) {
                    PairScorer.PairScore s = scores.get(i);
                    v[0][i] = (float) s.chosenLogps();
                    v[1][i] = (float) s.rejectedLogps();
                    v[2][i] = (float) s.chosenLogpsMean();
                    v[3][i] = (float) s.rejectedLogpsMean();
                }
                if (Launch.fromEnvironment().rank() == 0) {
                    write(file, v); // of several processes, rank 0 alone writes (the others computed the same)
                }
                ref.values.put(split, v);
                LOG.info(
                        "Reference log-probs for {} {} pairs computed in {} s, cached in {}",
                        pairs.size(),
                        split,
                        String.format("%.1f", (System.nanoTime() - t0) / 1e9),
                        file);
            }
        } finally {
            if (lm != null) {
                lm.close();
            }
        }
        return ref;
    }

    /**
     * A log line every ten seconds while a split is scored (pairs done, pairs/s, and the time left), and
     * every batch to the listener.
     */
    private static final class Progress {
        private final Split split;
        private final int total;
        private final TrainingListener listener;
        private final String unit;
        private final String what;
        private final long t0 = System.nanoTime();
        private long lastLog = t0;
        private int done;

        Progress(Split split, int total, String unit, TrainingListener listener) {
            this.split = split;
            this.total = total;
            this.unit = unit;
            this.listener = listener == null ? new TrainingListener() {} : listener;
            this.what = "reference log-probs (" + split + ")";
            LOG.info("Computing reference log-probs for {} {} pairs (longest first) ...", total, split);
            this.listener.onPrepare(what, unit, 0, total);
        }

        void add(int pairs) {
            done += pairs;
            listener.onPrepare(what, unit, done, total);
            long now = System.nanoTime();
            if (now - lastLog >= 10_000_000_000L && done < total) {
                lastLog = now;
                double rate = done / ((now - t0) / 1e9);
                LOG.info(
                        "Reference log-probs: {}/{} {} pairs, {} pairs/s, at most {} s left (the longest come first)",
                        done,
                        total,
                        split,
                        String.format("%.1f", rate),
                        String.format("%.0f", (total - done) / rate));
            }
        }
    }

    private static Path cacheFile(Path cacheDir, String modelKey, List<EncodedPair> pairs) {
        return cacheDir.resolve("reference-logps-" + key(modelKey, pairs) + ".safetensors");
    }

    /**
     * What a run needs precomputed, for scoring it elsewhere (on Spark, say): the reference model, and
     * each split's pairs encoded exactly as the trainer will encode them, with the cache file it will
     * read their log-probs from.
     *
     * @param modelDir the reference model folder
     * @param cacheDir the cache folder ({@code cache_dir}, or OUTPUT/cache)
     * @param padId the tokenizer's padding id
     * @param batchSize pairs per forward pass ({@code eval_batch_size})
     * @param splits the training split, then the held-out one when the run has one
     */
    public record Plan(Path modelDir, Path cacheDir, int padId, int batchSize, List<CacheEntry> splits) {}

    /**
     * One split of a {@link Plan}.
     *
     * @param split "train" or "eval"
     * @param pairs the encoded pairs, in the trainer's order
     * @param file the cache file the trainer reads for them; it exists when they are already scored
     */
    public record CacheEntry(String split, List<EncodedPair> pairs, Path file) {}

    /**
     * The {@link Plan} of a preference run: loads the policy's tokenizer and the data (held-out split
     * included) as {@link PreferenceTrainer} does, and names each split's cache file by the same key
     * (the reference's config and weights, hashed in full, and the encoded pairs).
     *
     * @param config a resolved config with a reference ({@code reference: precomputed} or not)
     * @return the plan
     * @throws IOException when the model folder or the cache folder cannot be read
     * @throws IllegalArgumentException naming the key when the data cannot be loaded
     */
    public static Plan plan(TrainConfig config) throws IOException {
        try (TextTokenizer tokenizer = TextTokenizer.load(Path.of(config.model()))) {
            RunData data = RunData.load(config, tokenizer, RunData.PAIRS);
            Path modelDir = ModelFolder.resolve(Path.of(config.referenceModelOrModel()));
            Path cacheDir = config.referenceCacheDir();
            String modelKey = modelKey(modelDir, cacheDir);
            List<CacheEntry> splits = new ArrayList<>();
            splits.add(new CacheEntry("train", data.train(), cacheFile(cacheDir, modelKey, data.train())));
            if (!data.eval().isEmpty()) {
                splits.add(new CacheEntry("eval", data.eval(), cacheFile(cacheDir, modelKey, data.eval())));
            }
            return new Plan(modelDir, cacheDir, tokenizer.padId(), config.evalBatchSize(), splits);
        }
    }

    /**
     * Writes one split's cache file as the trainer reads it (written to a temporary name, then renamed).
     *
     * @param file the {@link CacheEntry#file}
     * @param chosen summed log-probs of the chosen completions, one per pair in the split's order
     * @param rejected summed log-probs of the rejected completions
     * @param chosenMean mean log-probs per token of the chosen completions
     * @param rejectedMean mean log-probs per token of the rejected completions
     * @throws IOException when the file cannot be written
     * @throws IllegalArgumentException when the arrays differ in length or hold a non-finite value
     */
    public static void writeCache(Path file, float[] chosen, float[] rejected, float[] chosenMean, float[] rejectedMean)
            throws IOException {
        float[][] v = {chosen, rejected, chosenMean, rejectedMean};
        for (int i = 0; i < 4; i++) {
            if (v[i].length != chosen.length) {
                throw new IllegalArgumentException(
                        NAMES[i] + ": " + v[i].length + " values for " + chosen.length + " pairs");
            }
            for (float x : v[i]) {
                if (!Float.isFinite(x)) {
                    throw new IllegalArgumentException(NAMES[i] + ": a non-finite log-prob (" + x + ")");
                }
            }
        }
        write(file, v);
    }

    private static final String[] NAMES = {"chosen_logps", "rejected_logps", "chosen_logps_mean", "rejected_logps_mean"
    };

    private static float[][] read(Path file, int n) {
        float[][] v = new float[4][];
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                SafetensorsFile f = SafetensorsFile.open(file)) {
            for (int i = 0; i < 4; i++) {
                v[i] = f.read(NAMES[i], m).toFloatArray();
                if (v[i].length != n) {
                    throw new CheckpointException(
                            file, "tensor '" + NAMES[i] + "' has " + v[i].length + " values for " + n + " pairs");
                }
            }
        }
        return v;
    }

    private static void write(Path file, float[][] v) throws IOException {
        Files.createDirectories(file.getParent());
        Path tmp = file.resolveSibling("." + file.getFileName() + ".tmp-" + System.nanoTime());
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            Map<String, NDArray> tensors = new LinkedHashMap<>();
            for (int i = 0; i < 4; i++) {
                tensors.put(NAMES[i], m.create(v[i]));
            }
            SafetensorsWriter.write(tmp, tensors);
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /**
     * The files of a model folder that decide its log-probs: its config, every safetensors weight file
     * (single or sharded, with the index) and a PEFT adapter's config and weights, hashed in full
     * (digests remembered in the cache folder).
     */
    static String modelKey(Path dir, Path cacheDir) throws IOException {
        MessageDigest d = sha256();
        d.update(SCORING.getBytes(StandardCharsets.UTF_8));
        List<Path> files = new ArrayList<>();
        try (Stream<Path> s = Files.list(dir)) {
            s.filter(p -> {
                        String n = p.getFileName().toString();
                        return n.equals("config.json")
                                || n.equals("adapter_config.json")
                                || n.equals("model.safetensors.index.json")
                                || n.startsWith("model") && n.endsWith(".safetensors")
                                || n.equals("adapter_model.safetensors");
                    })
                    .sorted()
                    .forEach(files::add);
        }
        WeightDigests digests = WeightDigests.open(cacheDir.resolve("weight-digests.json"));
        for (Path f : files) {
            d.update(f.getFileName().toString().getBytes(StandardCharsets.UTF_8));
            d.update(digests.of(f).getBytes(StandardCharsets.UTF_8));
        }
        digests.save();
        return HexFormat.of().formatHex(d.digest());
    }

    static String key(String modelKey, List<EncodedPair> pairs) {
        MessageDigest d = sha256();
        d.update(modelKey.getBytes(StandardCharsets.UTF_8));
        ByteBuffer buf = ByteBuffer.allocate(4);
        for (EncodedPair p : pairs) {
            for (int[] ids : new int[][] {p.prompt(), p.chosen(), p.rejected()}) {
                buf.clear();
                d.update(buf.putInt(ids.length).array());
                for (int id : ids) {
                    buf.clear();
                    d.update(buf.putInt(id).array());
                }
            }
        }
        return HexFormat.of().formatHex(d.digest()).substring(0, 32);
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public LogProbs logProbs(PreferenceBatch batch, Split split, int[] pairIndices, NDManager scope) {
        float[][] v = values.get(split);
        float[][] picked = new float[4][pairIndices.length];
        for (int k = 0; k < 4; k++) {
            for (int i = 0; i < pairIndices.length; i++) {
                picked[k][i] = v[k][pairIndices[i]];
            }
        }
        return new LogProbs(
                scope.create(picked[0]), scope.create(picked[1]), scope.create(picked[2]), scope.create(picked[3]));
    }

    @Override
    public void close() {
        values.clear();
    }
}
