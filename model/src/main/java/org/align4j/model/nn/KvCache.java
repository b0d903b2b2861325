package org.align4j.model.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;

/**
 * Keys and values of the tokens seen so far, per layer, as [B, kvHeads, T, headDim] (after rotary
 * embedding, before heads are repeated for GQA). A forward pass with a cache attends over the
 * cached tokens plus the new ones and appends the new keys and values.
 */
public final class KvCache {
    private final NDArray[] keys;
    private final NDArray[] values;

    /** @param layers the number of decoder blocks */
    public KvCache(int layers) {
        keys = new NDArray[layers];
        values = new NDArray[layers];
    }

    /** @return how many tokens are cached */
    public long length() {
        return keys[0] == null ? 0 : keys[0].getShape().get(2);
    }

    /**
     * Moves the cached arrays to a longer-lived manager (the arrays of a step are freed with it).
     *
     * @param manager the new owner
     */
    public void attach(NDManager manager) {
        for (int i = 0; i < keys.length; i++) {
            if (keys[i] != null) {
                keys[i].attach(manager);
                values[i].attach(manager);
            }
        }
    }

    /** Appends the new keys and values of one layer and returns the full ones. */
    NDArray[] append(int layer, NDArray k, NDArray v) {
        if (keys[layer] != null) {
            k = NDArrays.concat(new NDList(keys[layer], k), 2);
            v = NDArrays.concat(new NDList(values[layer], v), 2);
        }
        keys[layer] = k;
        values[layer] = v;
        return new NDArray[] {k, v};
    }
}
