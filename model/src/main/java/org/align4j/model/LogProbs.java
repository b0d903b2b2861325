package org.align4j.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import java.util.function.UnaryOperator;

/**
 * Per-sequence log-probabilities of completions under a causal LM.
 *
 * <p>For each row, Σ over positions t with {@code completionMask[t] = 1} of log p(ids[t] ∣
 * ids[&lt;t]), read from the logits at t − 1. Each term is the gathered logit minus the log-sum-exp of
 * that position's logits; the log-sum-exp is computed only over the positions that count, so no
 * second [B, T, V] array (such as a full log-softmax) is made.
 *
 * @param sum [B] summed log-probs
 * @param mean [B] sum divided by the number of completion tokens
 * @param tokens [B] completion token counts (float)
 */
public record LogProbs(NDArray sum, NDArray mean, NDArray tokens) {

    /**
     * Computes sequence log-probs; gradients flow back to {@code logits}.
     *
     * @param logits [B, T, V]
     * @param ids [B, T] int64
     * @param completionMask [B, T], 1 on the tokens to score; position 0 is never scored
     * @return sum, mean and count per row
     */
    public static LogProbs of(NDArray logits, NDArray ids, NDArray completionMask) {
        return score(logits, UnaryOperator.identity(), LogProbs::tokenLogProbs, ids, completionMask);
    }

    /**
     * Sequence log-probs from the final hidden states, applying the LM head only at the positions
     * that predict a completion token: a [N, V] array for the N completion tokens of the batch
     * instead of [B, T, V]. Gradients flow to the hidden states and the head's weights.
     *
     * @param hidden [B, T, H] final hidden states (after the final norm)
     * @param head the LM head, [N, H] → [N, V]
     * @param ids [B, T] int64
     * @param completionMask [B, T], 1 on the tokens to score; position 0 is never scored
     * @return sum, mean and count per row
     */
    public static LogProbs fromHidden(NDArray hidden, java.util.function.UnaryOperator<NDArray> head, NDArray ids, NDArray completionMask) {
        return fromHidden(hidden, head, LogProbs::tokenLogProbs, ids, completionMask);
    }

    /**
     * As {@link #fromHidden(NDArray, java.util.function.UnaryOperator, NDArray, NDArray)}, with the
     * per-token log-prob computed by {@code tokenLogProbs} (a fused kernel, say).
     *
     * @param hidden [B, T, H] final hidden states
     * @param head the LM head
     * @param tokenLogProbs ([N, V] logits, [N] targets) → [N] log-probs
     * @param ids [B, T] int64
     * @param completionMask [B, T]
     * @return sum, mean and count per row
     */
    public static LogProbs fromHidden(NDArray hidden, java.util.function.UnaryOperator<NDArray> head,
            java.util.function.BinaryOperator<NDArray> tokenLogProbs, NDArray ids, NDArray completionMask) {
        return score(hidden, head, tokenLogProbs, ids, completionMask);
    }

    /**
     * The shared path: take the positions that predict a completion token ([N, X] out of [B, T, X]),
     * map them to logits, score the targets, and sum each row's tokens with a [B, N] one-hot matmul.
     */
    private static LogProbs score(NDArray perPosition, UnaryOperator<NDArray> toLogits, java.util.function.BinaryOperator<NDArray> tokenLogProbs,
            NDArray ids, NDArray completionMask) {
        long b = ids.getShape().get(0);
        long t = ids.getShape().get(1);
        long x = perPosition.getShape().get(2);
        NDArray mask = completionMask.get(":, 1:").toType(DataType.BOOLEAN, false);
        NDArray scored = mask.reshape(b * (t - 1)).nonzero().reshape(-1);
        NDArray rows = toLogits.apply(perPosition.get(":, :-1, :").reshape(b * (t - 1), x).get(scored));
        NDArray targets = ids.get(":, 1:").reshape(b * (t - 1)).get(scored);
        NDArray perToken = tokenLogProbs.apply(rows, targets);
        NDArray rowIds = perPosition.getManager().arange(0, b, 1, DataType.INT64).reshape(b, 1);
        NDArray rowOfToken = rowIds.broadcast(b, t - 1).reshape(b * (t - 1)).get(scored);
        NDArray owner = rowIds.eq(rowOfToken.reshape(1, -1)).toType(DataType.FLOAT32, false);
        NDArray sum = owner.matMul(perToken.reshape(-1, 1)).reshape(b);
        NDArray tokens = mask.toType(DataType.FLOAT32, false).sum(new int[] {1});
        return new LogProbs(sum, sum.div(tokens.maximum(1f)), tokens);
    }

    /**
     * @param rows [N, V] logits
     * @param targets [N] int64
     * @return [N] the target's logit minus the row's log-sum-exp
     */
    public static NDArray tokenLogProbs(NDArray rows, NDArray targets) {
        return rows.gather(targets.reshape(-1, 1), 1).reshape(-1).sub(logSumExp(rows));
    }

    /** log Σ exp over the last axis, stabilised by the row maximum. */
    static NDArray logSumExp(NDArray rows) {
        NDArray max = rows.max(new int[] {1}, true).stopGradient();
        return rows.sub(max).exp().sum(new int[] {1}).log().add(max.reshape(-1));
    }
}
