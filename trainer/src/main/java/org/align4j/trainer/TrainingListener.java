package org.align4j.trainer;

import java.nio.file.Path;
import java.util.Map;

/** Hears what a training run does (the CLI's progress bar is one). All methods default to nothing. */
public interface TrainingListener {
    /**
     * Progress of a pass made before the first step (the precomputed reference's log-probs, split by split);
     * heard only by listeners given to the trainer's {@code create}, since it runs while the trainer is made.
     *
     * @param what what is computed, e.g. {@code reference log-probs (TRAIN)}
     * @param unit what is counted, plural: {@code pairs}, or {@code examples} (KTO)
     * @param done items done so far (equal to {@code total} once, at the end)
     * @param total items in all
     */
    default void onPrepare(String what, String unit, long done, long total) {}

    /**
     * @param firstStep the first step this run will take (1, or one past the resumed checkpoint)
     * @param totalSteps the last step
     */
    default void onStart(long firstStep, long totalSteps) {}

    /**
     * @param step the step just taken
     * @param metrics its metrics: learning_rate, grad_norm, tokens_per_second and epoch every step;
     *     loss and TRL's reward metrics only on logging steps (every {@code log_every}), because reading
     *     them waits for the device
     */
    default void onStep(long step, Map<String, Double> metrics) {}

    /** @return whether to compute per-parameter gradient norms each step (costs one pass over the gradients) */
    default boolean wantsGradientNorms() {
        return false;
    }

    /**
     * @param step the step about to be applied
     * @param norms L2 norm of each parameter's gradient before clipping, by parameter name
     */
    default void onGradientNorms(long step, Map<String, Double> norms) {}

    /**
     * @param step the step after which the evaluation ran
     * @param metrics held-out metrics, names prefixed {@code eval_}
     */
    default void onEval(long step, Map<String, Double> metrics) {}

    /**
     * @param step the step saved
     * @param dir the checkpoint folder
     */
    default void onCheckpoint(long step, Path dir) {}

    /** The run ended (finished, stopped, or failed). */
    default void onEnd() {}
}
