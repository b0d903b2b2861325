package org.align4j.trainer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import org.align4j.data.PreferenceBatch;

/** Where the reference log-probs of a batch come from: a frozen model, or a cache computed once. */
public interface ReferencePolicy extends AutoCloseable {
    /**
     * Reference log-probs of a batch, all [B] float32 attached to {@code scope}.
     *
     * @param chosenSum Σ log p_ref over each chosen completion
     * @param rejectedSum Σ over each rejected completion
     * @param chosenMean chosenSum divided by the token count
     * @param rejectedMean rejectedSum divided by the token count
     */
    record LogProbs(NDArray chosenSum, NDArray rejectedSum, NDArray chosenMean, NDArray rejectedMean) {}

    /**
     * @param batch the padded batch
     * @param split which dataset the pairs come from (train or eval)
     * @param pairIndices the batch's pairs, as indices into that dataset
     * @param scope owner of the returned arrays
     * @return the reference log-probs
     */
    LogProbs logProbs(PreferenceBatch batch, Split split, int[] pairIndices, NDManager scope);

    /** The two datasets of a run. */
    enum Split {
        /** the training pairs */
        TRAIN,
        /** the held-out pairs */
        EVAL
    }

    @Override
    void close();
}
