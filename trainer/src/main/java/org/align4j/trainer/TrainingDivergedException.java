package org.align4j.trainer;

/** A NaN or Inf loss or gradient: the run stops, naming the step and batch, and keeps its last good checkpoint. */
public class TrainingDivergedException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** @param message the step, the batch and what was not finite */
    public TrainingDivergedException(String message) {
        super(message);
    }
}
