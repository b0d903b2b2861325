package org.align4j.spark;

import java.io.IOException;
import java.io.Serializable;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.align4j.data.EncodedPair;
import org.align4j.evaluation.PairScorer;
import org.align4j.model.CausalLm;
import org.align4j.model.Devices;
import org.align4j.trainer.Failure;
import org.align4j.trainer.PrecomputedReference;
import org.align4j.trainer.TrainConfig;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A run's reference log-probs scored on Apache Spark: the pairs of each split, encoded on the driver
 * exactly as the trainer encodes them ({@link PrecomputedReference#plan}), are spread over
 * partitions; each task loads the reference model once and scores its pairs with the trainer's own
 * scorer ({@link PairScorer}); the scores land as Parquet beside the trainer's cache
 * ({@code CACHE/reference-logps-KEY.parquet}: {@code index}, {@code chosen_logps},
 * {@code rejected_logps}, {@code chosen_logps_mean}, {@code rejected_logps_mean}) and, gathered in
 * order, in the cache file itself ({@code reference-logps-KEY.safetensors}), so that {@code align4j
 * train --reference precomputed --cache-dir CACHE} with the same config reads them and loads no
 * reference model. A split whose cache file exists is skipped.
 *
 * <p>The model folder and the cache folder must be readable (and the cache writable) at the same path
 * from the driver and every executor: a shared file system. Each task holds one model; give as many
 * partitions as there are task slots (executors × cores), or fewer when a model is large.
 */
public final class ReferenceScoring {
    private static final Logger LOG = LoggerFactory.getLogger(ReferenceScoring.class);

    private static final StructType SCHEMA = new StructType()
            .add("index", DataTypes.IntegerType, false)
            .add("chosen_logps", DataTypes.FloatType, false)
            .add("rejected_logps", DataTypes.FloatType, false)
            .add("chosen_logps_mean", DataTypes.FloatType, false)
            .add("rejected_logps_mean", DataTypes.FloatType, false);

    private ReferenceScoring() {}

    /**
     * Scores every split of the run that is not cached yet.
     *
     * @param spark the session
     * @param config the run's resolved config (its model, reference model, data, held-out split, encoding
     *     options, {@code cache_dir}, {@code eval_batch_size} and {@code device} are used)
     * @param partitions how many tasks share the pairs of a split, at least 1
     * @return the cache files of the run's splits, each now present
     * @throws IOException when the model, data or cache folder cannot be read or written
     * @throws IllegalArgumentException naming the key when the config or data is unusable
     */
    public static List<Path> score(SparkSession spark, TrainConfig config, int partitions) throws IOException {
        checkPartitions(partitions);
        return score(spark, config, PrecomputedReference.plan(config), partitions);
    }

    private static void checkPartitions(int partitions) {
        if (partitions < 1) {
            throw new IllegalArgumentException("PARTITIONS: must be at least 1, got " + partitions);
        }
    }

    private static List<Path> score(
            SparkSession spark, TrainConfig config, PrecomputedReference.Plan plan, int partitions) throws IOException {
        JavaSparkContext sc = JavaSparkContext.fromSparkContext(spark.sparkContext());
        List<Path> files = new ArrayList<>();
        for (PrecomputedReference.CacheEntry entry : plan.splits()) {
            files.add(entry.file());
            if (Files.isRegularFile(entry.file())) {
                LOG.info("Reference log-probs of the {} split already cached in {}", entry.split(), entry.file());
                continue;
            }
            List<Item> items = new ArrayList<>(entry.pairs().size());
            for (int i = 0; i < entry.pairs().size(); i++) {
                EncodedPair p = entry.pairs().get(i);
                items.add(new Item(i, p.prompt(), p.chosen(), p.rejected()));
            }
            long t0 = System.nanoTime();
            JavaRDD<Row> rows = sc.parallelize(items, Math.min(partitions, Math.max(1, items.size())))
                    .mapPartitions(new ScorePartition(
                            plan.modelDir().toString(), config.device(), plan.batchSize(), plan.padId()));
            String name = entry.file().getFileName().toString();
            Path parquet = entry.file()
                    .resolveSibling(name.substring(0, name.length() - ".safetensors".length()) + ".parquet");
            spark.createDataFrame(rows, SCHEMA).write().mode(SaveMode.Overwrite).parquet(parquet.toString());
            writeCache(spark.read().parquet(parquet.toString()), entry);
            LOG.info(
                    "Reference log-probs of {} {} pairs scored on Spark in {} s ({} partitions): {} and {}",
                    items.size(),
                    entry.split(),
                    String.format("%.1f", (System.nanoTime() - t0) / 1e9),
                    partitions,
                    parquet,
                    entry.file());
        }
        return files;
    }

    /** Gathers the scores in pair order and writes the trainer's cache file. */
    private static void writeCache(Dataset<Row> scores, PrecomputedReference.CacheEntry entry) throws IOException {
        int n = entry.pairs().size();
        float[][] v = new float[4][n];
        boolean[] seen = new boolean[n];
        for (Row r : scores.collectAsList()) {
            int i = r.getInt(0);
            if (i < 0 || i >= n || seen[i]) {
                throw new IllegalStateException(
                        "scores of the " + entry.split() + " split: index " + i + " out of range or repeated");
            }
            seen[i] = true;
            for (int k = 0; k < 4; k++) {
                v[k][i] = r.getFloat(k + 1);
            }
        }
        for (int i = 0; i < n; i++) {
            if (!seen[i]) {
                throw new IllegalStateException(
                        "scores of the " + entry.split() + " split: pair " + i + " was not scored");
            }
        }
        PrecomputedReference.writeCache(entry.file(), v[0], v[1], v[2], v[3]);
    }

    /** One pair on its way to an executor: its index in the split and its token ids. */
    static final class Item implements Serializable {
        private static final long serialVersionUID = 1L;
        final int index;
        final int[] prompt;
        final int[] chosen;
        final int[] rejected;

        Item(int index, int[] prompt, int[] chosen, int[] rejected) {
            this.index = index;
            this.prompt = prompt;
            this.chosen = chosen;
            this.rejected = rejected;
        }
    }

    /** A task: loads the reference model once, scores its pairs, frees the model. */
    static final class ScorePartition implements FlatMapFunction<Iterator<Item>, Row> {
        private static final long serialVersionUID = 1L;
        private final String modelDir;
        private final String device;
        private final int batchSize;
        private final int padId;

        ScorePartition(String modelDir, String device, int batchSize, int padId) {
            this.modelDir = modelDir;
            this.device = device;
            this.batchSize = batchSize;
            this.padId = padId;
        }

        @Override
        public Iterator<Row> call(Iterator<Item> in) {
            List<Integer> indices = new ArrayList<>();
            List<EncodedPair> pairs = new ArrayList<>();
            in.forEachRemaining(it -> {
                indices.add(it.index);
                pairs.add(new EncodedPair(it.prompt, it.chosen, it.rejected, null));
            });
            List<Row> out = new ArrayList<>(pairs.size());
            if (pairs.isEmpty()) {
                return out.iterator();
            }
            try (CausalLm lm = CausalLm.load(Path.of(modelDir), Devices.resolve(device))) {
                lm.setTrainable(false);
                List<PairScorer.PairScore> scores = PairScorer.score(lm, pairs, batchSize, padId);
                for (int i = 0; i < scores.size(); i++) {
                    PairScorer.PairScore s = scores.get(i);
                    out.add(RowFactory.create(
                            indices.get(i),
                            (float) s.chosenLogps(),
                            (float) s.rejectedLogps(),
                            (float) s.chosenLogpsMean(),
                            (float) s.rejectedLogpsMean()));
                }
            }
            return out.iterator();
        }
    }

    static final String USAGE = "usage: spark-submit --class org.align4j.spark.ReferenceScoring"
            + " --jars pytorch-native-cpu-2.7.1-linux-x86_64.jar align4j-spark-VERSION.jar RUN.yaml [PARTITIONS]";

    /**
     * {@code spark-submit --class org.align4j.spark.ReferenceScoring --jars NATIVE.jar align4j-spark-VERSION.jar
     * RUN.yaml [PARTITIONS]}: scores the reference log-probs of the run that {@code RUN.yaml} describes (the
     * YAML {@code align4j train --config} reads), with the default partitions of the cluster unless given.
     *
     * <p>The config, the data, the tokenizer and the reference model's files are read and checked on the driver
     * before Spark starts. A failure prints one line on stderr and exits as the align4j CLI does ({@link
     * Failure}): 2 for bad input, named by file, key or argument (a YAML that does not parse, a model folder
     * that is missing); 1 for a fault of the machine or anything unexpected. The stack trace goes to the log
     * (logger {@code org.align4j.spark.ReferenceScoring}, at DEBUG), and to stderr too with {@code
     * ALIGN4J_DEBUG=1}.
     *
     * @param args the run's YAML, then optionally the number of partitions
     */
    public static void main(String[] args) {
        int code = run(args);
        if (code != 0) {
            System.exit(code);
        }
    }

    /**
     * {@link #main} without the exit.
     *
     * @param args the run's YAML, then optionally the number of partitions
     * @return the exit status: 0, 1 or 2
     */
    static int run(String[] args) {
        if (args.length < 1 || args.length > 2) {
            System.err.println(USAGE);
            return 2;
        }
        try {
            Integer partitions = args.length > 1 ? partitions(args[1]) : null;
            if (partitions != null) {
                checkPartitions(partitions);
            }
            TrainConfig config = TrainConfig.resolve(Path.of(args[0]), Map.of());
            // the cheap checks first: config, data, tokenizer and model files, before any Spark machinery
            PrecomputedReference.Plan plan = PrecomputedReference.plan(config);
            SparkSession spark = SparkSession.builder()
                    .appName("align4j reference log-probs")
                    .getOrCreate();
            try {
                int n = partitions != null ? partitions : spark.sparkContext().defaultParallelism();
                score(spark, config, plan, n).forEach(f -> LOG.info("cached: {}", f));
            } finally {
                spark.stop();
            }
            return 0;
        } catch (Exception ex) {
            Failure f = Failure.of(unwrap(ex));
            LOG.debug("ReferenceScoring failed: {}", f.message(), ex);
            boolean debug = "1".equals(System.getenv("ALIGN4J_DEBUG"));
            System.err.println("error: " + f.message()
                    + (f.code() == 1 && !debug ? " (ALIGN4J_DEBUG=1 prints the stack trace)" : ""));
            if (debug) {
                ex.printStackTrace(System.err);
            }
            System.err.flush();
            return f.code();
        }
    }

    private static int partitions(String text) {
        try {
            return Integer.parseInt(text.strip());
        } catch (NumberFormatException ex) {
            throw new IllegalArgumentException("PARTITIONS: expected a whole number of at least 1, got '" + text + "'");
        }
    }

    /** A task's failure reaches the driver wrapped in Spark's exceptions: the align4j exception inside says what. */
    private static Throwable unwrap(Throwable ex) {
        Throwable t = ex;
        while (t.getCause() != null
                && t.getCause() != t
                && t.getClass().getName().startsWith("org.apache.spark.")) {
            t = t.getCause();
        }
        return t;
    }
}
