package org.align4j.model.generate;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * Picks the next token of every row on the device, with tensor operations: HF's logits warpers in
 * HF's order (temperature, top-k, top-p, min-p; transformers' {@code _get_logits_processor}), then an
 * inverse-CDF draw with one uniform number per row. Only the B uniforms go to the device and the B
 * chosen ids come back; the [B, V] logits never leave it.
 *
 * <p>The uniforms come from each row's own {@link RowStream}, so a row's tokens do not depend on the
 * other rows of the batch (one shared {@code Random} would make them).
 *
 * <p>Ties at a top-k or top-p boundary keep every tied token (HF keeps all ties of top-k too; for top-p
 * it keeps the ones its sort puts last); no fixture logits have such ties.
 */
public final class Sampling {
    private Sampling() {}

    /**
     * Applies temperature, top-k, top-p and min-p to a batch of logits: removed tokens get −∞.
     *
     * @param logits [B, V] float32 logits of the last position
     * @param cfg the warpers' settings
     * @return [B, V] the warped logits (divided by the temperature)
     */
    public static NDArray warp(NDArray logits, GenerationConfig cfg) {
        long v = logits.getShape().get(1);
        NDArray scores = cfg.temperature() == 1.0 ? logits : logits.div(cfg.temperature());
        NDArray negInf = scores.getManager().full(new Shape(1), Float.NEGATIVE_INFINITY);
        if (cfg.topK() > 0 && cfg.topK() < v) {
            // keep scores >= the k-th largest (HF: remove scores < topk(scores, k)[..., -1])
            NDArray kth = scores.sort(1).get(":, " + (v - cfg.topK())).reshape(-1, 1);
            scores = NDArrays.where(scores.gte(kth), scores, negInf);
        }
        if (cfg.topP() < 1) {
            // HF: sort ascending, remove the lowest tokens whose cumulative probability is <= 1 - p, keep at least one
            NDArray sorted = scores.sort(1);
            NDArray cumulative = sorted.softmax(1).cumSum(1);
            NDArray removed = cumulative.lte((float) (1 - cfg.topP())).toType(DataType.INT64, false);
            NDArray count = removed.sum(new int[] {1}).minimum(v - 1).reshape(-1, 1);
            NDArray threshold = sorted.gather(count, 1);
            scores = NDArrays.where(scores.gte(threshold), scores, negInf);
        }
        if (cfg.minP() > 0) {
            // HF: remove tokens whose probability is below min_p times the most likely token's
            NDArray probs = scores.softmax(1);
            NDArray floor = probs.max(new int[] {1}, true).mul((float) cfg.minP());
            scores = NDArrays.where(probs.gte(floor), scores, negInf);
        }
        return scores;
    }

    /**
     * Draws one token per row from softmax(scores) by inverting the cumulative distribution at the row's
     * uniform number: the first token whose cumulative probability reaches u. Removed tokens (−∞) have
     * probability 0 and are never drawn for u in (0, 1).
     *
     * @param scores [B, V] warped logits
     * @param uniforms one number in (0, 1) per row
     * @return [B] int64 token ids, on the device
     */
    public static NDArray draw(NDArray scores, double[] uniforms) {
        NDManager m = scores.getManager();
        long v = scores.getShape().get(1);
        // float64 for the running sum: a 128k-token vocabulary loses too much in float32
        NDArray cdf = scores.softmax(1).toType(DataType.FLOAT64, false).cumSum(1);
        NDArray total = cdf.get(":, -1").reshape(-1, 1);
        NDArray u = m.create(uniforms)
                .reshape(-1, 1)
                .toDevice(scores.getDevice(), false)
                .mul(total);
        return cdf.lt(u).toType(DataType.INT64, false).sum(new int[] {1}).minimum(v - 1);
    }

    /**
     * The next token of each row: greedy (the arg max) or a draw from the warped distribution.
     *
     * @param logits [B, V] logits of the last position
     * @param cfg decoding settings
     * @param uniforms one number in (0, 1) per row (ignored when greedy)
     * @return the B token ids
     */
    public static long[] next(NDArray logits, GenerationConfig cfg, double[] uniforms) {
        NDArray chosen = cfg.greedy() ? logits.argMax(1) : draw(warp(logits, cfg), uniforms);
        return chosen.toType(DataType.INT64, false).toLongArray();
    }
}
