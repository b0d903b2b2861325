package org.align4j.data;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.IntStream;

/**
 * Batches for a scoring pass (no gradients) bounded by padded tokens rather than rows: the pairs are
 * sorted by their longer row, longest first, and cut greedily so that a batch's 2B rows padded to its
 * longest row hold at most {@code maxTokens} positions. Mixed lengths then pad little, and memory
 * (activations, the eager path's [2B, heads, T, T] attention scores) is bounded by the budget instead of
 * by the longest row times the batch size. A pair longer than the budget on its own is a batch alone.
 * Longest first, so that a pass that does not fit fails at once rather than at the end.
 */
public final class TokenBudget {
    /** The default budget of a scoring batch: padded positions over both rows of every pair. */
    public static final int DEFAULT_MAX_TOKENS = 8192;

    private TokenBudget() {}

    /**
     * @param pairs the pairs, in their order
     * @param maxPairs at most this many pairs a batch (&gt; 0)
     * @param maxTokens at most this many padded positions a batch, 2B × (longest row) (&gt; 0)
     * @return each batch as indices into {@code pairs}; every index exactly once
     * @throws IllegalArgumentException when a bound is not positive
     */
    public static List<int[]> plan(List<EncodedPair> pairs, int maxPairs, long maxTokens) {
        if (maxPairs <= 0) {
            throw new IllegalArgumentException("maxPairs: must be > 0, got " + maxPairs);
        }
        if (maxTokens <= 0) {
            throw new IllegalArgumentException("maxTokens: must be > 0, got " + maxTokens);
        }
        int[] order = IntStream.range(0, pairs.size())
                .boxed()
                .sorted(Comparator.comparingInt((Integer i) -> -pairs.get(i).maxLength())
                        .thenComparingInt(i -> i))
                .mapToInt(Integer::intValue)
                .toArray();
        List<int[]> batches = new ArrayList<>();
        int from = 0;
        while (from < order.length) {
            long longest = Math.max(1, pairs.get(order[from]).maxLength());
            int to = from + 1;
            while (to < order.length && to - from < maxPairs && 2L * (to - from + 1) * longest <= maxTokens) {
                to++;
            }
            int[] b = new int[to - from];
            System.arraycopy(order, from, b, 0, b.length);
            batches.add(b);
            from = to;
        }
        return batches;
    }

    /**
     * @param pairs all pairs
     * @param indices one batch's indices
     * @return those pairs, in the batch's order
     */
    public static List<EncodedPair> pick(List<EncodedPair> pairs, int[] indices) {
        List<EncodedPair> out = new ArrayList<>(indices.length);
        for (int i : indices) {
            out.add(pairs.get(i));
        }
        return out;
    }
}
