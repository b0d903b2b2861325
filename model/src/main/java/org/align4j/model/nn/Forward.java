package org.align4j.model.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.nn.Parameter;
import ai.djl.nn.norm.Dropout;
import ai.djl.training.ParameterStore;
import org.align4j.model.config.ModelConfig;

/**
 * What every piece of one forward pass needs: where parameter values come from, how the heavy pieces
 * are computed, training mode (dropout), and which adapter set takes part (PEFT's active adapter): the
 * policy of a LoRA run applies {@link LoraAdapter#DEFAULT}, its reference none (the same model with the
 * adapters switched off), and PPO's value model on the same base its own set.
 *
 * @param store where parameter values come from (DJL's contract for blocks)
 * @param compute how attention and projections are computed
 * @param training training mode
 * @param adapter the name of the adapter set whose adapters the projections apply (PEFT's {@code
 *     active_adapter}), or null for none
 * @param dropout the model's dropout in this pass ({@link ModelConfig.Dropout#NONE} outside training
 *     or when switched off)
 */
record Forward(ParameterStore store, Compute compute, boolean training, String adapter, ModelConfig.Dropout dropout) {
    /**
     * A parameter's value on the device of {@code like}, in float32; null for a null parameter (an
     * absent bias). See {@link #float32}.
     */
    NDArray value(Parameter p, NDArray like) {
        return p == null ? null : float32(store.getValue(p, like.getDevice(), training), like);
    }

    /**
     * A weight stored in float16 (a frozen reference loaded with {@code reference_dtype: fp16}) as a
     * float32 copy owned by {@code like}'s manager, freed with the pass (or its layer): the model keeps
     * half the bytes and computes as a float32 model whose weights were rounded to float16. Other
     * arrays as they are.
     */
    static NDArray float32(NDArray w, NDArray like) {
        if (w.getDataType() != DataType.FLOAT16) {
            return w;
        }
        NDArray up = w.toType(DataType.FLOAT32, false);
        up.attach(like.getManager());
        return up;
    }

    /**
     * torch's {@code dropout(x, p, training=True)} (libtorch's own op, so it draws from the engine's
     * generator as PyTorch does): each element zeroed with probability p, the rest scaled by 1/(1 − p).
     * x itself when p is 0, and x is closed when it is replaced (autograd keeps what it needs).
     */
    NDArray drop(NDArray x, double p) {
        if (p <= 0) {
            return x;
        }
        NDArray out = Dropout.dropout(x, (float) p, true).singletonOrThrow();
        x.close();
        return out;
    }
}
