package org.align4j.model.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.norm.Dropout;
import org.align4j.model.ScalarOps;

/** Scaled dot-product attention and its mask, written with DJL ops (HF's "eager" attention). */
final class EagerAttention {
    private EagerAttention() {}

    /**
     * The additive mask [B, 1, T, Tk]: 0 where query i may attend to key j, −max-float elsewhere
     * (key j is padding, in the future of i, or outside the sliding window).
     *
     * @param attentionMask [B, Tk] 1 for real tokens, 0 for padding (cached plus new tokens)
     * @param queryLength T, the new tokens at the end of the Tk positions
     * @param window sliding window in tokens, 0 for none
     */
    static NDArray mask(NDArray attentionMask, long queryLength, int window) {
        NDManager m = attentionMask.getManager();
        long keyLength = attentionMask.getShape().get(1);
        long past = keyLength - queryLength;
        NDArray keyPos = m.arange(0, keyLength, 1, DataType.INT64).reshape(1, keyLength);
        NDArray queryPos = m.arange(past, keyLength, 1, DataType.INT64).reshape(queryLength, 1);
        NDArray allowed = keyPos.lte(queryPos);
        if (window > 0) {
            allowed = allowed.logicalAnd(keyPos.gt(queryPos.sub(window)));
        }
        NDArray keyValid = attentionMask.eq(1).reshape(attentionMask.getShape().get(0), 1, 1, keyLength);
        NDArray both = keyValid.logicalAnd(allowed.reshape(1, 1, queryLength, keyLength));
        return both.toType(DataType.FLOAT32, false).sub(1f).mul(Float.MAX_VALUE);
    }

    /**
     * Position ids from the attention mask (cumulative count of real tokens minus one), so left- and
     * right-padded rows get the same positions as unpadded ones; the last {@code queryLength}.
     */
    static NDArray positions(NDArray attentionMask, long queryLength) {
        long keyLength = attentionMask.getShape().get(1);
        NDArray pos =
                attentionMask.toType(DataType.INT64, false).cumSum(1).sub(1).maximum(0);
        return keyLength == queryLength ? pos : pos.get(":, " + (keyLength - queryLength) + ":");
    }

    /**
     * Attention over heads.
     *
     * @param q [B, H, T, D]
     * @param k [B, KV, Tk, D]
     * @param v [B, KV, Tk, D]
     * @param mask [B, 1, T, Tk] additive
     * @param scale multiplies the scores
     * @param dropout probability of zeroing an attention probability (training passes; 0 for none),
     *     applied after the softmax as HF's eager attention does
     * @return [B, T, H·D]
     */
    static NDArray attend(NDArray q, NDArray k, NDArray v, NDArray mask, double scale, double dropout) {
        Shape qs = q.getShape();
        long b = qs.get(0);
        long h = qs.get(1);
        long t = qs.get(2);
        long d = qs.get(3);
        long kvHeads = k.getShape().get(1);
        if (kvHeads != h) {
            k = repeatHeads(k, h / kvHeads);
            v = repeatHeads(v, h / kvHeads);
        }
        NDArray scores =
                ScalarOps.times(q.matMul(k.transpose(0, 1, 3, 2)), scale).add(mask);
        NDArray probs = scores.softmax(-1);
        if (dropout > 0) {
            probs = Dropout.dropout(probs, (float) dropout, true).singletonOrThrow();
        }
        return probs.matMul(v).transpose(0, 2, 1, 3).reshape(b, t, h * d);
    }

    /** HF's repeat_kv: each key/value head serves {@code groups} consecutive query heads. */
    private static NDArray repeatHeads(NDArray x, long groups) {
        Shape s = x.getShape();
        return x.expandDims(2)
                .broadcast(s.get(0), s.get(1), groups, s.get(2), s.get(3))
                .reshape(s.get(0), s.get(1) * groups, s.get(2), s.get(3));
    }

    /** [B, T, heads·D] → [B, heads, T, D]. */
    static NDArray splitHeads(NDArray x, long heads, long headDim) {
        Shape s = x.getShape();
        return x.reshape(s.get(0), s.get(1), heads, headDim).transpose(0, 2, 1, 3);
    }
}
