package org.align4j.model.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;

/**
 * What every piece of one forward pass needs: where parameter values come from, how the heavy pieces
 * are computed, training mode (dropout), and whether adapters take part (the reference policy of a
 * LoRA run is the same model with them switched off).
 *
 * @param store where parameter values come from (DJL's contract for blocks)
 * @param compute how attention and projections are computed
 * @param training training mode
 * @param adapters whether the adapters a projection carries are applied
 */
record Forward(ParameterStore store, Compute compute, boolean training, boolean adapters) {
    /** A parameter's value on the device of {@code like}; null for a null parameter (an absent bias). */
    NDArray value(Parameter p, NDArray like) {
        return p == null ? null : store.getValue(p, like.getDevice(), training);
    }
}
