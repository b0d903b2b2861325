package org.align4j.trainer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.align4j.distributed.Collectives;
import org.align4j.distributed.Launch;

/**
 * One training run from {@code key=value} arguments (TrainConfig's keys, plus {@code trainer=sft|preference}
 * {@code resume=CHECKPOINT} and {@code pid_dir=DIR}, where each process writes {@code rank-R.pid}): what {@link DataParallelTest} starts under {@code mpirun}, and runs in its
 * own JVM for the one-process baseline.
 */
public final class DataParallelMain {
    private DataParallelMain() {}

    /**
     * @param args {@code key=value} pairs
     * @throws Exception when training fails
     */
    public static void main(String[] args) throws Exception {
        run(args);
        Collectives.Shared.closeIfOpen();
    }

    static TrainResult run(String... args) throws Exception {
        Map<String, Object> keys = new LinkedHashMap<>();
        String trainer = "preference";
        String resume = null;
        for (String a : args) {
            int eq = a.indexOf('=');
            String k = a.substring(0, eq);
            String v = a.substring(eq + 1);
            switch (k) {
                case "trainer" -> trainer = v;
                case "resume" -> resume = v;
                case "pid_dir" ->
                    Files.writeString(
                            Path.of(v, "rank-" + Launch.fromEnvironment().rank() + ".pid"),
                            String.valueOf(ProcessHandle.current().pid()));
                default -> keys.put(k, value(v));
            }
        }
        TrainConfig config = TrainConfig.resolve(null, keys);
        RunFolder.Mode mode = resume == null ? RunFolder.Mode.fresh() : RunFolder.Mode.resumeFrom(Path.of(resume));
        try (TrainingLoop t =
                trainer.equals("sft") ? SftTrainer.create(config, mode) : PreferenceTrainer.create(config, mode)) {
            return t.train();
        }
    }

    private static Object value(String v) {
        if (v.matches("-?\\d+")) {
            return Integer.parseInt(v);
        }
        if (v.matches("-?[0-9.]+(e-?\\d+)?")) {
            return Double.parseDouble(v);
        }
        if (v.equals("true") || v.equals("false")) {
            return Boolean.parseBoolean(v);
        }
        return v;
    }
}
