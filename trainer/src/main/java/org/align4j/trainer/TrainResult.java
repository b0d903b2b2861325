package org.align4j.trainer;

import java.nio.file.Path;
import java.util.Map;

/**
 * How a run ended.
 *
 * @param lastStep the last step taken
 * @param interrupted whether a SIGINT/SIGTERM (or {@link TrainingLoop#requestStop()}) ended it early
 * @param lastMetrics metrics of the last logged step
 * @param evalMetrics the last held-out metrics (empty without an eval set)
 * @param finalModel the HF folder of the trained model ({@code OUTPUT/final}), or null if interrupted
 * @param lastCheckpoint the newest checkpoint folder
 */
public record TrainResult(
        long lastStep,
        boolean interrupted,
        Map<String, Double> lastMetrics,
        Map<String, Double> evalMetrics,
        Path finalModel,
        Path lastCheckpoint) {}
