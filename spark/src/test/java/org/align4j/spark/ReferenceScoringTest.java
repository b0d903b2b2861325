package org.align4j.spark;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.align4j.model.Fixtures;
import org.align4j.model.io.SafetensorsFile;
import org.align4j.trainer.PreferenceTrainer;
import org.align4j.trainer.TrainConfig;
import org.align4j.trainer.TrainingListener;
import org.apache.spark.sql.SparkSession;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Reference log-probs scored on Spark ({@code local[2]}, two tasks each with its own model) equal
 * those the trainer computes in one process, and the trainer reads them from the cache unchanged.
 */
class ReferenceScoringTest {
    private static final String[] NAMES = {"chosen_logps", "rejected_logps", "chosen_logps_mean", "rejected_logps_mean"
    };
    private static SparkSession spark;

    @TempDir
    Path tmp;

    @BeforeAll
    static void start() {
        Path target = Path.of(System.getProperty("java.io.tmpdir"));
        spark = SparkSession.builder()
                .master("local[2]")
                .appName("align4j-test")
                .config("spark.ui.enabled", "false")
                .config("spark.sql.shuffle.partitions", "2")
                .config("spark.local.dir", target.resolve("spark-local").toString())
                .config(
                        "spark.sql.warehouse.dir",
                        target.resolve("spark-warehouse").toString())
                .getOrCreate();
    }

    @AfterAll
    static void stop() {
        spark.stop();
    }

    private Map<String, Object> run(String output, String cache) {
        Map<String, Object> o = new LinkedHashMap<>();
        o.put("model", Fixtures.model("gpt2-tiny").toString());
        o.put("reference_model", Fixtures.model("gpt2-tiny-ref").toString());
        o.put("data", Fixtures.root().resolve("prefs.jsonl").toString());
        o.put("output", tmp.resolve(output).toString());
        o.put("reference", "precomputed");
        o.put("cache_dir", tmp.resolve(cache).toString());
        o.put("eval_fraction", 0.25);
        o.put("eval_batch_size", 3);
        o.put("batch_size", 2);
        o.put("max_steps", 2);
        o.put("learning_rate", 1e-3);
        return o;
    }

    @Test
    void sparkScoresEqualTheTrainersOwnAndTheTrainerReadsThem() throws IOException {
        List<Path> files = ReferenceScoring.score(spark, TrainConfig.resolve(null, run("unused", "spark-cache")), 2);
        assertThat(files).hasSize(2); // the training split and the held-out one
        for (Path f : files) {
            assertThat(f).isRegularFile();
            String parquet = f.getFileName().toString().replace(".safetensors", ".parquet");
            assertThat(f.resolveSibling(parquet).resolve("_SUCCESS")).isRegularFile();
        }
        // the trainer computes its own in one process, into another cache folder: same file names, same values
        List<Double> local = losses(run("local", "local-cache"));
        for (Path f : files) {
            Path mine = tmp.resolve("local-cache").resolve(f.getFileName());
            assertThat(mine)
                    .as("the trainer names the cache file by the same key")
                    .isRegularFile();
            float[][] a = read(f);
            float[][] b = read(mine);
            for (int k = 0; k < 4; k++) {
                assertThat(a[k]).hasSameSizeAs(b[k]);
                for (int i = 0; i < a[k].length; i++) {
                    assertThat((double) a[k][i])
                            .as("%s %s[%d]", f.getFileName(), NAMES[k], i)
                            .isCloseTo(b[k][i], Offset.offset(1e-6 * Math.abs(b[k][i])));
                }
            }
        }
        // a run pointed at the Spark cache reads it (the files are not rewritten) and trains as the local one
        List<FileTime> before = new ArrayList<>();
        for (Path f : files) {
            before.add(Files.getLastModifiedTime(f));
        }
        List<Double> fromSpark = losses(run("spark-run", "spark-cache"));
        for (int i = 0; i < files.size(); i++) {
            assertThat(Files.getLastModifiedTime(files.get(i))).isEqualTo(before.get(i));
        }
        assertThat(fromSpark).hasSize(2);
        for (int i = 0; i < 2; i++) {
            assertThat(fromSpark.get(i)).as("step %d", i + 1).isCloseTo(local.get(i), Offset.offset(1e-6));
        }
        // scoring again finds everything cached and computes nothing
        assertThat(ReferenceScoring.score(spark, TrainConfig.resolve(null, run("unused", "spark-cache")), 2))
                .isEqualTo(files);
        for (int i = 0; i < files.size(); i++) {
            assertThat(Files.getLastModifiedTime(files.get(i))).isEqualTo(before.get(i));
        }
    }

    private static float[][] read(Path file) {
        float[][] v = new float[4][];
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                SafetensorsFile f = SafetensorsFile.open(file)) {
            for (int k = 0; k < 4; k++) {
                v[k] = f.read(NAMES[k], m).toFloatArray();
            }
        }
        return v;
    }

    private static List<Double> losses(Map<String, Object> cfg) throws IOException {
        List<Double> out = new ArrayList<>();
        try (PreferenceTrainer t = PreferenceTrainer.create(TrainConfig.resolve(null, cfg), false)) {
            t.addListener(new TrainingListener() {
                @Override
                public void onStep(long step, Map<String, Double> metrics) {
                    out.add(metrics.get("loss"));
                }
            });
            t.train();
        }
        return out;
    }
}
