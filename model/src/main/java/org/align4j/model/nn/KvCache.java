package org.align4j.model.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;

/**
 * Keys and values of the tokens seen so far, per layer, as [B, kvHeads, T, headDim] (after rotary
 * embedding, before heads are repeated for GQA). A forward pass with a cache attends over the
 * cached tokens plus the new ones and appends the new keys and values.
 *
 * <p>With a capacity, each layer's arrays are allocated once at [B, kvHeads, capacity, headDim] and
 * new tokens are written into them in place, so a step copies only its own keys and values (growing by
 * concatenation copies the whole cache every step: quadratic in the length). Without one, the arrays
 * grow by concatenation.
 */
public final class KvCache {
    private final NDArray[] keys;
    private final NDArray[] values;
    private final long capacity;
    private long length;

    /** @param layers the number of decoder blocks */
    public KvCache(int layers) {
        this(layers, 0);
    }

    /**
     * @param layers the number of decoder blocks
     * @param capacity the most tokens it will hold (prompt and new tokens), or 0 to grow as needed
     */
    public KvCache(int layers, long capacity) {
        keys = new NDArray[layers];
        values = new NDArray[layers];
        this.capacity = capacity;
    }

    /** @return how many tokens are cached */
    public long length() {
        return length;
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

    /**
     * A cache whose row i holds row {@code rows[i]} of this one: the cached keys and values of a prompt
     * shared by several completions (GRPO's samples of one prompt) computed once and handed to each. The
     * gather is an autograd op: gradients of the copies add up in the shared rows. Same capacity and
     * length; this cache is left as it was.
     *
     * @param rows [B'] int64 row indices into this cache's B rows (repeats allowed)
     * @return a new cache of B' rows
     * @throws IllegalStateException when nothing is cached yet
     */
    public KvCache rows(NDArray rows) {
        if (keys[0] == null) {
            throw new IllegalStateException("an empty cache has no rows to select");
        }
        KvCache out = new KvCache(keys.length, capacity);
        out.length = length;
        for (int i = 0; i < keys.length; i++) {
            out.keys[i] = keys[i].get(rows);
            out.values[i] = values[i].get(rows);
        }
        return out;
    }

    /** Appends the new keys and values of one layer and returns the full ones. */
    NDArray[] append(int layer, NDArray k, NDArray v) {
        long before = layer == 0 ? length : length - k.getShape().get(2);
        long after = before + k.getShape().get(2);
        if (layer == 0) {
            length = after;
        }
        if (capacity > 0 && after <= capacity) {
            if (keys[layer] == null) {
                Shape s = k.getShape();
                keys[layer] = k.getManager().zeros(new Shape(s.get(0), s.get(1), capacity, s.get(3)), k.getDataType());
                values[layer] =
                        v.getManager().zeros(new Shape(s.get(0), s.get(1), capacity, s.get(3)), v.getDataType());
            }
            NDIndex at = new NDIndex(":, :, {}:{}", before, after);
            keys[layer].set(at, k);
            values[layer].set(at, v);
            NDIndex filled = new NDIndex(":, :, :{}", after);
            return new NDArray[] {keys[layer].get(filled), values[layer].get(filled)};
        }
        if (keys[layer] != null) {
            NDIndex filled = new NDIndex(":, :, :{}", before);
            k = NDArrays.concat(new NDList(keys[layer].get(filled), k), 2);
            v = NDArrays.concat(new NDList(values[layer].get(filled), v), 2);
        }
        keys[layer] = k;
        values[layer] = v;
        return new NDArray[] {k, v};
    }
}
