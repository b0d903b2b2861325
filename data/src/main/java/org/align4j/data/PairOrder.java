package org.align4j.data;

import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Random;

/**
 * The order in which pairs are batched: a deterministic function of (seed, epoch), so an interrupted
 * run that resumes at (epoch, batch) sees exactly the batches it would have seen.
 *
 * <p>With length grouping, the shuffled pairs are cut into windows of 50 batches, each window sorted by
 * length and cut into batches, and the batches shuffled: batches hold pairs of similar length (less
 * padding) while the order stays random.
 */
public final class PairOrder {
    private static final int GROUP_WINDOW_BATCHES = 50;

    private PairOrder() {}

    /**
     * @param lengths each pair's padded length (its {@link EncodedPair#maxLength()})
     * @param batchSize pairs per batch
     * @param seed run seed
     * @param epoch epoch number (0-based)
     * @param shuffle shuffle at all
     * @param groupByLength group pairs of similar length
     * @param dropLast drop a last, smaller batch
     * @return the batches of the epoch, as pair indices
     */
    public static List<int[]> epoch(
            int[] lengths,
            int batchSize,
            long seed,
            int epoch,
            boolean shuffle,
            boolean groupByLength,
            boolean dropLast) {
        if (batchSize <= 0) {
            throw new IllegalArgumentException("batchSize: must be > 0, got " + batchSize);
        }
        int n = lengths.length;
        List<Integer> order = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            order.add(i);
        }
        Random random = new Random(seed * 1_000_003L + epoch);
        if (shuffle) {
            Collections.shuffle(order, random);
        }
        if (groupByLength) {
            int window = batchSize * GROUP_WINDOW_BATCHES;
            for (int from = 0; from < n; from += window) {
                order.subList(from, Math.min(n, from + window)).sort(Comparator.comparingInt(i -> -lengths[i]));
            }
        }
        List<int[]> batches = new ArrayList<>();
        for (int from = 0; from < n; from += batchSize) {
            int to = Math.min(n, from + batchSize);
            if (dropLast && to - from < batchSize) {
                break;
            }
            batches.add(
                    order.subList(from, to).stream().mapToInt(Integer::intValue).toArray());
        }
        if (groupByLength && shuffle) {
            Collections.shuffle(batches, random);
        }
        return batches;
    }
}
