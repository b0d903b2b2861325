package org.align4j.evaluation;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.align4j.data.EncodedPair;
import org.align4j.data.TokenBudget;

/**
 * The batching shared by the scorers of whole files ({@link RewardScorer}, {@link PairScorer}): the pairs
 * not scored yet, taken longest first in batches bounded by padded tokens ({@link TokenBudget#plan}), each
 * batch's values handed to a listener as they come (to write them out, to resume from), and every pair's
 * value returned in the pairs' order.
 */
public final class BudgetedScoring {
    private BudgetedScoring() {}

    /**
     * Scores one batch.
     *
     * @param <T> a pair's value
     */
    @FunctionalInterface
    public interface BatchScorer<T> {
        /**
         * @param batch the batch's pairs
         * @return one value per pair, in order
         */
        T[] score(List<EncodedPair> batch);
    }

    /**
     * Hears each batch's values once they are scored.
     *
     * @param <T> a pair's value
     */
    @FunctionalInterface
    public interface Listener<T> {
        /**
         * @param indices the batch's pairs, as indices into the scored list
         * @param values their values, in the same order
         */
        void scored(int[] indices, T[] values);
    }

    /**
     * @param <T> a pair's value
     * @param pairs every pair
     * @param known one entry per pair: its value when already scored (a resumed run), else null; filled in
     *     place
     * @param maxPairs at most this many pairs per batch (&gt; 0)
     * @param maxBatchTokens at most this many padded positions per batch, 2B × longest row (&gt; 0); a
     *     longer pair goes alone
     * @param scorer scores a batch
     * @param listener told each new batch's values
     * @return every pair's value, in the order of {@code pairs}
     * @throws IllegalArgumentException when a bound is not positive or {@code known} has another length
     */
    public static <T> List<T> score(
            List<EncodedPair> pairs,
            T[] known,
            int maxPairs,
            long maxBatchTokens,
            BatchScorer<T> scorer,
            Listener<T> listener) {
        if (maxPairs <= 0) {
            throw new IllegalArgumentException("maxPairs: must be > 0, got " + maxPairs);
        }
        if (maxBatchTokens <= 0) {
            throw new IllegalArgumentException("maxBatchTokens: must be > 0, got " + maxBatchTokens);
        }
        if (known.length != pairs.size()) {
            throw new IllegalArgumentException("known: one entry per pair, " + pairs.size() + ", got " + known.length);
        }
        List<Integer> todo = new ArrayList<>();
        for (int i = 0; i < known.length; i++) {
            if (known[i] == null) {
                todo.add(i);
            }
        }
        if (todo.isEmpty()) {
            return Arrays.asList(known);
        }
        List<EncodedPair> rest = todo.stream().map(pairs::get).toList();
        for (int[] batch : TokenBudget.plan(rest, maxPairs, maxBatchTokens)) {
            T[] values = scorer.score(TokenBudget.pick(rest, batch));
            int[] indices = new int[batch.length];
            for (int i = 0; i < batch.length; i++) {
                indices[i] = todo.get(batch[i]);
                known[indices[i]] = values[i];
            }
            listener.scored(indices, values);
        }
        return Arrays.asList(known);
    }
}
