package org.align4j.trainer;

/**
 * Learning rate by optimizer step, as HF's {@code get_*_schedule_with_warmup}: linear warm-up from 0
 * over {@code warmup} steps, then constant, linear decay to 0, or cosine decay to 0 at {@code total}.
 *
 * @param peak the peak learning rate
 * @param warmup warm-up steps
 * @param total total optimizer steps
 * @param kind constant, linear or cosine decay after warm-up
 */
public record LrSchedule(double peak, int warmup, int total, TrainConfig.Schedule kind) {
    /**
     * @param step optimizer steps already taken (0 for the first update)
     * @return the learning rate of that update
     */
    public double at(long step) {
        if (step < warmup) {
            return peak * step / Math.max(1, warmup);
        }
        double progress = (double) (step - warmup) / Math.max(1, total - warmup);
        return switch (kind) {
            case CONSTANT -> peak;
            case LINEAR -> peak * Math.max(0, 1 - progress);
            case COSINE -> peak * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * Math.min(1, progress))));
        };
    }
}
