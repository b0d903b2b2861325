package org.align4j.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import java.util.List;
import java.util.function.BinaryOperator;
import java.util.function.UnaryOperator;

/**
 * Per-sequence log-probabilities of completions under a causal LM.
 *
 * <p>For each row, Σ over positions t with {@code completionMask[t] = 1} of log p(ids[t] ∣
 * ids[&lt;t]), read from the logits at t − 1. Each term is the gathered logit minus the log-sum-exp of
 * that position's logits; the log-sum-exp is computed only over the positions that count, so no
 * second [B, T, V] array (such as a full log-softmax) is made.
 *
 * <p>From final hidden states ({@link #fromHidden}), the LM head and the log-softmax run in chunks of
 * positions, each chunk's logits freed before the next is made, so the [tokens × vocab] logits never
 * exist at once (151,936 columns for Qwen: 0.6 MB a token). Values and gradients are those of the
 * unchunked computation; only the order of floating-point sums over chunks differs.
 *
 * <p>A floating-point completion mask weighs each token's log-prob by its value in the sum (LD-DPO's
 * ld_alpha on the tokens past the shorter completion); tokens with weight 0 are not scored. Token
 * statistics ({@link #STATISTICS}), when asked for, are made from each chunk's logits while they
 * exist, without gradient.
 *
 * @param sum [B] summed log-probs (weighted by a floating-point completion mask)
 * @param mean [B] sum divided by the number of completion tokens
 * @param tokens [B] completion token counts (float)
 * @param statistics [B, {@code STATISTICS.size()}] per-row sums of the token statistics, float32 without
 *     gradient, or null when not asked for
 */
public record LogProbs(NDArray sum, NDArray mean, NDArray tokens, NDArray statistics) {
    /** The default size of one chunk of logits: 2^24 elements, 64 MiB in float32. */
    public static final long DEFAULT_CHUNK_ELEMENTS = 1L << 24;

    /**
     * The columns of {@link #statistics}, each a per-row sum over the scored tokens of: the entropy of
     * the next-token distribution (−Σ p log p), the mean logit over the vocabulary, whether the argmax
     * is the target (1 or 0), log Σ_v p_v² (WPO's normaliser), and the token's log-prob unweighted.
     */
    public static final List<String> STATISTICS =
            List.of("entropy", "mean_logit", "argmax_hit", "log_sum_p_squared", "unweighted_log_prob");

    /**
     * Without token statistics.
     *
     * @param sum [B] summed log-probs
     * @param mean [B] sum divided by the number of completion tokens
     * @param tokens [B] completion token counts
     */
    public LogProbs(NDArray sum, NDArray mean, NDArray tokens) {
        this(sum, mean, tokens, null);
    }

    /**
     * Computes sequence log-probs; gradients flow back to {@code logits}.
     *
     * @param logits [B, T, V]
     * @param ids [B, T] int64
     * @param completionMask [B, T], 1 on the tokens to score; position 0 is never scored
     * @return sum, mean and count per row
     */
    public static LogProbs of(NDArray logits, NDArray ids, NDArray completionMask) {
        return of(logits, ids, completionMask, false);
    }

    /**
     * As {@link #of(NDArray, NDArray, NDArray)}, with the token statistics when asked for.
     *
     * @param logits [B, T, V]
     * @param ids [B, T] int64
     * @param completionMask [B, T]
     * @param statistics also sum {@link #STATISTICS} per row
     * @return sum, mean, count and statistics per row
     */
    public static LogProbs of(NDArray logits, NDArray ids, NDArray completionMask, boolean statistics) {
        return score(
                logits,
                UnaryOperator.identity(),
                LogProbs::tokenLogProbs,
                null,
                ids,
                completionMask,
                Long.MAX_VALUE,
                statistics);
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
    public static LogProbs fromHidden(
            NDArray hidden, UnaryOperator<NDArray> head, NDArray ids, NDArray completionMask) {
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
    public static LogProbs fromHidden(
            NDArray hidden,
            UnaryOperator<NDArray> head,
            BinaryOperator<NDArray> tokenLogProbs,
            NDArray ids,
            NDArray completionMask) {
        return fromHidden(hidden, head, tokenLogProbs, ids, completionMask, Long.MAX_VALUE);
    }

    /**
     * As {@link #fromHidden(NDArray, UnaryOperator, BinaryOperator, NDArray, NDArray)}, with the LM head
     * and the per-token log-probs applied to at most {@code chunkPositions} positions at a time: peak
     * memory holds one chunk's [chunk, V] logits (and what autograd keeps of each chunk), not [N, V].
     *
     * @param hidden [B, T, H] final hidden states
     * @param head the LM head, [n, H] → [n, V]
     * @param tokenLogProbs ([n, V] logits, [n] targets) → [n] log-probs
     * @param ids [B, T] int64
     * @param completionMask [B, T]
     * @param chunkPositions positions per chunk, at least 1 ({@code Long.MAX_VALUE}: one piece)
     * @return sum, mean and count per row
     */
    public static LogProbs fromHidden(
            NDArray hidden,
            UnaryOperator<NDArray> head,
            BinaryOperator<NDArray> tokenLogProbs,
            NDArray ids,
            NDArray completionMask,
            long chunkPositions) {
        return fromHidden(hidden, head, tokenLogProbs, ids, completionMask, chunkPositions, false);
    }

    /**
     * As {@link #fromHidden(NDArray, UnaryOperator, BinaryOperator, NDArray, NDArray, long)}, with the
     * token statistics ({@link #STATISTICS}) made from each chunk's logits when asked for.
     *
     * @param hidden [B, T, H] final hidden states
     * @param head the LM head
     * @param tokenLogProbs ([n, V] logits, [n] targets) → [n] log-probs
     * @param ids [B, T] int64
     * @param completionMask [B, T]
     * @param chunkPositions positions per chunk, at least 1
     * @param statistics also sum {@link #STATISTICS} per row
     * @return sum, mean, count and statistics per row
     */
    public static LogProbs fromHidden(
            NDArray hidden,
            UnaryOperator<NDArray> head,
            BinaryOperator<NDArray> tokenLogProbs,
            NDArray ids,
            NDArray completionMask,
            long chunkPositions,
            boolean statistics) {
        if (chunkPositions < 1) {
            throw new IllegalArgumentException("chunkPositions: at least 1, got " + chunkPositions);
        }
        return score(hidden, head, tokenLogProbs, null, ids, completionMask, chunkPositions, statistics);
    }

    /**
     * As {@link #fromHidden(NDArray, UnaryOperator, BinaryOperator, NDArray, NDArray, long)}, for a head
     * whose weight W [V, H] receives no gradient (the base model of a LoRA run). The gradient of a
     * token's log-prob with respect to its hidden state is then W[target] − softmax(W·h)·W, an [H]
     * vector: it is computed with the log-prob, chunk by chunk, and the chunk's logits are freed, so
     * autograd keeps [n, H] instead of a [n, V] log-softmax per chunk. Values are identical to the
     * other path's; gradients equal up to floating-point rounding.
     *
     * @param hidden [B, T, H] final hidden states
     * @param head the LM head, [n, H] → [n, V]
     * @param headWeight W, the head's weight [V, H] (frozen)
     * @param tokenLogProbs ([n, V] logits, [n] targets) → [n] log-probs
     * @param ids [B, T] int64
     * @param completionMask [B, T]
     * @param chunkPositions positions per chunk, at least 1
     * @return sum, mean and count per row
     */
    public static LogProbs fromHiddenFrozenHead(
            NDArray hidden,
            UnaryOperator<NDArray> head,
            NDArray headWeight,
            BinaryOperator<NDArray> tokenLogProbs,
            NDArray ids,
            NDArray completionMask,
            long chunkPositions) {
        return fromHiddenFrozenHead(
                hidden, head, headWeight, tokenLogProbs, ids, completionMask, chunkPositions, false);
    }

    /**
     * As {@link #fromHiddenFrozenHead(NDArray, UnaryOperator, NDArray, BinaryOperator, NDArray, NDArray,
     * long)}, with the token statistics when asked for.
     *
     * @param hidden [B, T, H] final hidden states
     * @param head the LM head, [n, H] → [n, V]
     * @param headWeight W, the head's weight [V, H] (frozen)
     * @param tokenLogProbs ([n, V] logits, [n] targets) → [n] log-probs
     * @param ids [B, T] int64
     * @param completionMask [B, T]
     * @param chunkPositions positions per chunk, at least 1
     * @param statistics also sum {@link #STATISTICS} per row
     * @return sum, mean, count and statistics per row
     */
    public static LogProbs fromHiddenFrozenHead(
            NDArray hidden,
            UnaryOperator<NDArray> head,
            NDArray headWeight,
            BinaryOperator<NDArray> tokenLogProbs,
            NDArray ids,
            NDArray completionMask,
            long chunkPositions,
            boolean statistics) {
        if (chunkPositions < 1) {
            throw new IllegalArgumentException("chunkPositions: at least 1, got " + chunkPositions);
        }
        return score(hidden, head, tokenLogProbs, headWeight, ids, completionMask, chunkPositions, statistics);
    }

    /**
     * Positions per chunk for a vocabulary: as many as keep one chunk's logits within {@code
     * chunkElements}, at least one.
     *
     * @param chunkElements elements of one chunk of logits; {@code Long.MAX_VALUE} or 0 for no chunking
     * @param vocab V
     * @return positions per chunk
     */
    public static long chunkPositions(long chunkElements, long vocab) {
        return chunkElements <= 0 || chunkElements == Long.MAX_VALUE
                ? Long.MAX_VALUE
                : Math.max(1, chunkElements / vocab);
    }

    /**
     * The sequence log-probs from {@link #scoreTokens}: each token's log-prob weighed by a floating-point
     * completion mask, summed per row; the token statistics summed per row when asked for.
     */
    private static LogProbs score(
            NDArray perPosition,
            UnaryOperator<NDArray> toLogits,
            BinaryOperator<NDArray> tokenLogProbs,
            NDArray frozenHead,
            NDArray ids,
            NDArray completionMask,
            long chunk,
            boolean statistics) {
        NDList tokenStatistics = statistics ? new NDList() : null;
        TokenLogProbs t = scoreTokens(
                perPosition,
                toLogits,
                tokenLogProbs,
                frozenHead,
                1.0,
                false,
                ids,
                completionMask,
                chunk,
                tokenStatistics);
        NDArray perToken = t.logProbs();
        if (completionMask.getDataType().isFloating()) {
            long b = ids.getShape().get(0);
            long positions = ids.getShape().get(1) - 1;
            NDArray weights = completionMask.get(":, 1:").reshape(b * positions);
            NDArray scored = weights.toType(DataType.BOOLEAN, false).nonzero().reshape(-1);
            perToken = perToken.mul(weights.get(scored).toType(perToken.getDataType(), false));
        }
        NDArray sum = t.sumPerRow(perToken);
        NDArray rowStatistics = statistics ? t.owner().matMul(tokenStatistics.singletonOrThrow()) : null;
        return new LogProbs(sum, sum.div(t.tokens().maximum(1f)), t.tokens(), rowStatistics);
    }

    /**
     * The shared path of sequence and per-token log-probs: take the positions that predict a completion
     * token ([N, X] out of [B, T, X]), map them to logits (÷ temperature inside {@code toLogits}) and score
     * the targets chunk by chunk above {@code chunk} positions, with each position's entropy when asked.
     */
    static TokenLogProbs scoreTokens(
            NDArray perPosition,
            UnaryOperator<NDArray> toLogits,
            BinaryOperator<NDArray> tokenLogProbs,
            NDArray frozenHead,
            double temperature,
            boolean withEntropy,
            NDArray ids,
            NDArray completionMask,
            long chunk) {
        return scoreTokens(
                perPosition,
                toLogits,
                tokenLogProbs,
                frozenHead,
                temperature,
                withEntropy,
                ids,
                completionMask,
                chunk,
                null);
    }

    /**
     * As {@link #scoreTokens(NDArray, UnaryOperator, BinaryOperator, NDArray, double, boolean, NDArray,
     * NDArray, long)}, adding to {@code statistics} (when not null) one [N, {@link #STATISTICS}] array of
     * each token's statistics, made from each chunk's logits.
     */
    static TokenLogProbs scoreTokens(
            NDArray perPosition,
            UnaryOperator<NDArray> toLogits,
            BinaryOperator<NDArray> tokenLogProbs,
            NDArray frozenHead,
            double temperature,
            boolean withEntropy,
            NDArray ids,
            NDArray completionMask,
            long chunk,
            NDList statistics) {
        long b = ids.getShape().get(0);
        long t = ids.getShape().get(1);
        long x = perPosition.getShape().get(2);
        NDArray mask = completionMask.get(":, 1:").toType(DataType.BOOLEAN, false);
        NDArray scored = mask.reshape(b * (t - 1)).nonzero().reshape(-1);
        NDArray selected = perPosition.get(":, :-1, :").reshape(b * (t - 1), x).get(scored);
        NDArray targets = ids.get(":, 1:").reshape(b * (t - 1)).get(scored);
        long n = targets.getShape().get(0);
        NDArray perToken;
        NDArray entropy = null;
        if (n <= chunk && frozenHead == null) {
            NDArray logits = toLogits.apply(selected);
            perToken = tokenLogProbs.apply(logits, targets);
            entropy = withEntropy ? entropy(logits) : null;
            if (statistics != null) {
                statistics.add(statistics(logits, targets, perToken));
            }
        } else {
            NDManager owner = selected.getManager();
            NDList parts = new NDList();
            NDList entropies = new NDList();
            NDList statisticParts = new NDList();
            for (long from = 0; from < n; from += chunk) {
                String range = from + ":" + Math.min(n, from + chunk);
                // a chunk's logits and temporaries live in their own scope, closed before the next chunk;
                // autograd keeps its own references to what the backward pass needs
                try (NDManager scope = owner.newSubManager()) {
                    NDArray rows = selected.get(range);
                    rows.attach(scope);
                    NDArray[] part = frozenHead == null
                            ? plainChunk(
                                    rows, toLogits, tokenLogProbs, targets.get(range), withEntropy, statistics != null)
                            : frozenHeadLogProbs(
                                    rows,
                                    toLogits,
                                    tokenLogProbs,
                                    frozenHead,
                                    temperature,
                                    targets.get(range),
                                    withEntropy,
                                    statistics != null,
                                    scope);
                    part[0].attach(owner);
                    parts.add(part[0]);
                    if (part[1] != null) {
                        part[1].attach(owner);
                        entropies.add(part[1]);
                    }
                    if (part[2] != null) {
                        part[2].attach(owner);
                        statisticParts.add(part[2]);
                    }
                }
            }
            // NDArrays.concat of a single array returns a copy cut from autograd
            perToken = parts.size() == 1 ? parts.head() : NDArrays.concat(parts);
            if (withEntropy) {
                entropy = entropies.size() == 1 ? entropies.head() : NDArrays.concat(entropies);
            }
            if (statistics != null) {
                statistics.add(statisticParts.size() == 1 ? statisticParts.head() : NDArrays.concat(statisticParts));
            }
        }
        NDArray rowIds =
                perPosition.getManager().arange(0, b, 1, DataType.INT64).reshape(b, 1);
        NDArray rowOfToken = rowIds.broadcast(b, t - 1).reshape(b * (t - 1)).get(scored);
        NDArray owner = rowIds.eq(rowOfToken.reshape(1, -1)).toType(DataType.FLOAT32, false);
        NDArray tokens = mask.toType(DataType.FLOAT32, false).sum(new int[] {1});
        return new TokenLogProbs(perToken, entropy, rowOfToken, owner, tokens);
    }

    private static NDArray[] plainChunk(
            NDArray rows,
            UnaryOperator<NDArray> toLogits,
            BinaryOperator<NDArray> tokenLogProbs,
            NDArray targets,
            boolean withEntropy,
            boolean withStatistics) {
        NDArray logits = toLogits.apply(rows);
        NDArray logProbs = tokenLogProbs.apply(logits, targets);
        return new NDArray[] {
            logProbs,
            withEntropy ? entropy(logits) : null,
            withStatistics ? statistics(logits, targets, logProbs) : null
        };
    }

    /**
     * [n, {@link #STATISTICS}] per token, without gradient: entropy, mean logit, argmax hit, log Σ p², log-prob.
     */
    private static NDArray statistics(NDArray logits, NDArray targets, NDArray tokenLogProbs) {
        NDArray z = logits.stopGradient().toType(DataType.FLOAT32, false);
        NDArray lse = logSumExp(z);
        NDArray p = z.sub(lse.reshape(-1, 1)).exp();
        NDArray entropy = lse.sub(p.mul(z).sum(new int[] {1}));
        NDArray meanLogit = z.mean(new int[] {1});
        NDArray hit = z.argMax(1).eq(targets).toType(DataType.FLOAT32, false);
        NDArray logSumPSquared = logSumExp(z.mul(2)).sub(lse.mul(2));
        NDArray logProb = tokenLogProbs.stopGradient().toType(DataType.FLOAT32, false);
        return NDArrays.stack(new NDList(entropy, meanLogit, hit, logSumPSquared, logProb), 1);
    }

    /** Σ −p·log p of each row's softmax, without a graph: lse(z) − Σ softmax(z)·z. */
    static NDArray entropy(NDArray logits) {
        NDArray z = logits.stopGradient();
        return logSumExp(z).sub(z.softmax(1).mul(z).sum(new int[] {1}));
    }

    /**
     * One chunk's log-probs with a frozen head: the value without a graph, plus h·g − stop(h·g) (zero in
     * value) whose gradient with respect to h is g = (W[target] − softmax(W·h/τ)·W)/τ at temperature τ.
     */
    private static NDArray[] frozenHeadLogProbs(
            NDArray rows,
            UnaryOperator<NDArray> toLogits,
            BinaryOperator<NDArray> tokenLogProbs,
            NDArray weight,
            double temperature,
            NDArray targets,
            boolean withEntropy,
            boolean withStatistics,
            NDManager scope) {
        NDArray logits = toLogits.apply(rows.stopGradient());
        NDArray value = tokenLogProbs.apply(logits, targets).stopGradient();
        NDArray targetRows = weight.get(targets);
        targetRows.attach(scope);
        NDArray direction = targetRows.sub(logits.softmax(1).matMul(weight)).stopGradient();
        if (temperature != 1.0) {
            direction = direction.div(temperature);
        }
        NDArray dot = rows.mul(direction).sum(new int[] {1});
        NDArray logProbs = value.add(dot.sub(dot.stopGradient()));
        return new NDArray[] {
            logProbs, withEntropy ? entropy(logits) : null, withStatistics ? statistics(logits, targets, value) : null
        };
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
