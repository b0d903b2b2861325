package org.align4j.evaluation;

import ai.djl.ndarray.NDManager;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntConsumer;
import org.align4j.data.EncodedPair;
import org.align4j.data.PreferenceBatch;
import org.align4j.data.TokenBudget;
import org.align4j.model.CausalLm;
import org.align4j.model.LogProbs;

/** Scores preference pairs under a model, batched and without gradients. */
public final class PairScorer {
    /**
     * Log-probs of one pair's completions.
     *
     * @param chosenLogps Σ log p over the chosen completion tokens
     * @param rejectedLogps Σ over the rejected ones
     * @param chosenLogpsMean the chosen sum divided by its token count
     * @param rejectedLogpsMean the rejected sum divided by its token count
     * @param chosenTokens chosen completion tokens
     * @param rejectedTokens rejected completion tokens
     */
    public record PairScore(
            double chosenLogps,
            double rejectedLogps,
            double chosenLogpsMean,
            double rejectedLogpsMean,
            int chosenTokens,
            int rejectedTokens) {}

    private PairScorer() {}

    /**
     * @param lm the model
     * @param pairs encoded pairs
     * @param batchSize pairs per forward pass
     * @param padId padding id
     * @return one score per pair, in order
     */
    public static List<PairScore> score(CausalLm lm, List<EncodedPair> pairs, int batchSize, int padId) {
        if (batchSize <= 0) {
            throw new IllegalArgumentException("batchSize: must be > 0, got " + batchSize);
        }
        List<PairScore> out = new ArrayList<>(pairs.size());
        for (int from = 0; from < pairs.size(); from += batchSize) {
            List<EncodedPair> chunk = pairs.subList(from, Math.min(pairs.size(), from + batchSize));
            try (NDManager step = lm.manager().newSubManager()) {
                PreferenceBatch b = PreferenceBatch.of(step, chunk, padId);
                LogProbs lp = lm.completionLogProbs(b.ids(), b.attentionMask(), b.completionMask(), false);
                float[] sum = lp.sum().toFloatArray();
                float[] mean = lp.mean().toFloatArray();
                float[] tokens = lp.tokens().toFloatArray();
                int n = chunk.size();
                for (int i = 0; i < n; i++) {
                    out.add(new PairScore(
                            sum[i], sum[n + i], mean[i], mean[n + i], (int) tokens[i], (int) tokens[n + i]));
                }
            }
        }
        return out;
    }

    /**
     * As {@link #score(CausalLm, List, int, int)}, in batches bounded by padded tokens ({@link
     * TokenBudget#plan}: longest pairs first), so memory is bounded by {@code maxBatchTokens} whatever
     * the mix of lengths. Rows are right-padded and each completion's log-probs are read at its own
     * tokens, so a pair's scores do not depend on its batch (up to float rounding).
     *
     * @param lm the model
     * @param pairs encoded pairs
     * @param maxPairs at most this many pairs per forward pass (&gt; 0)
     * @param maxBatchTokens at most this many padded positions per forward pass, 2B × longest row (&gt;
     *     0); a longer pair is scored alone
     * @param padId padding id
     * @param progress told the number of pairs of each batch once it is scored
     * @return one score per pair, in the order of {@code pairs}
     * @throws IllegalArgumentException when a bound is not positive
     */
    public static List<PairScore> score(
            CausalLm lm, List<EncodedPair> pairs, int maxPairs, long maxBatchTokens, int padId, IntConsumer progress) {
        return score(
                lm,
                pairs,
                maxPairs,
                maxBatchTokens,
                padId,
                new PairScore[pairs.size()],
                (indices, scores) -> progress.accept(indices.length));
    }

    /**
     * As {@link #score(CausalLm, List, int, long, int, IntConsumer)}, skipping the pairs whose scores are
     * already known (a resumed run), and telling {@code listener} each batch's scores as they come.
     *
     * @param lm the model
     * @param pairs encoded pairs
     * @param maxPairs at most this many pairs per forward pass (&gt; 0)
     * @param maxBatchTokens at most this many padded positions per forward pass (&gt; 0)
     * @param padId padding id
     * @param known one entry per pair: its scores when already known, else null; filled in place
     * @param listener told each new batch's scores
     * @return one score per pair, in the order of {@code pairs}
     * @throws IllegalArgumentException when a bound is not positive or {@code known} has another length
     */
    public static List<PairScore> score(
            CausalLm lm,
            List<EncodedPair> pairs,
            int maxPairs,
            long maxBatchTokens,
            int padId,
            PairScore[] known,
            BudgetedScoring.Listener<PairScore> listener) {
        return BudgetedScoring.score(
                pairs,
                known,
                maxPairs,
                maxBatchTokens,
                batch -> {
                    try (NDManager step = lm.manager().newSubManager()) {
                        PreferenceBatch b = PreferenceBatch.of(step, batch, padId);
                        LogProbs lp = lm.completionLogProbs(b.ids(), b.attentionMask(), b.completionMask(), false);
                        float[] sum = lp.sum().toFloatArray();
                        float[] mean = lp.mean().toFloatArray();
                        float[] tokens = lp.tokens().toFloatArray();
                        int n = batch.size();
                        PairScore[] out = new PairScore[n];
                        for (int i = 0; i < n; i++) {
                            out[i] = new PairScore(
                                    sum[i], sum[n + i], mean[i], mean[n + i], (int) tokens[i], (int) tokens[n + i]);
                        }
                        return out;
                    }
                },
                listener);
    }
}
