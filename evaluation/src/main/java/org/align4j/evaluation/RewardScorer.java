package org.align4j.evaluation;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntConsumer;
import org.align4j.data.EncodedPair;
import org.align4j.data.PreferenceBatch;
import org.align4j.data.TokenBudget;
import org.align4j.model.CausalLm;

/**
 * Scores preference pairs, or single sequences, with a reward model ({@link CausalLm#isRewardModel()}),
 * batched and without gradients; and turns a pair's rewards into the Bradley–Terry probability that the
 * chosen response is preferred.
 */
public final class RewardScorer {
    /**
     * A pair's rewards.
     *
     * @param chosen r_c, the reward of prompt + chosen response
     * @param rejected r_r, the reward of prompt + rejected response
     */
    public record PairRewards(double chosen, double rejected) {
        /** @return r_c − r_r */
        public double margin() {
            return chosen - rejected;
        }

        /**
         * @param temperature T &gt; 0
         * @return P(chosen ≻ rejected) = σ((r_c − r_r)/T) ({@link #preference(double, double)})
         */
        public double preference(double temperature) {
            return RewardScorer.preference(margin(), temperature);
        }
    }

    private RewardScorer() {}

    /**
     * The Bradley–Terry preference probability of a reward margin at a temperature: σ(margin/T). T = 1 is
     * the probability the reward model was trained to give; T &gt; 1 softens the labels (closer to ½), T
     * &lt; 1 sharpens them. Computed without overflow for any margin.
     *
     * @param margin r_c − r_r
     * @param temperature T &gt; 0
     * @return p in [0, 1]
     * @throws IllegalArgumentException when T is not a finite number &gt; 0
     */
    public static double preference(double margin, double temperature) {
        if (!(temperature > 0) || Double.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature: must be a finite number > 0, got " + temperature);
        }
        double x = margin / temperature;
        return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
    }

    /**
     * @param rm the reward model
     * @param pairs pairs as whole sequences ({@code PreferenceEncoder.encodeSequences}: empty prompts)
     * @param batchSize pairs per forward pass (&gt; 0)
     * @param padId the pad id the reward model locates rewards by ({@link #padId})
     * @return the rewards of each pair, in order
     */
    public static List<PairRewards> score(CausalLm rm, List<EncodedPair> pairs, int batchSize, int padId) {
        if (batchSize <= 0) {
            throw new IllegalArgumentException("batchSize: must be > 0, got " + batchSize);
        }
        List<PairRewards> out = new ArrayList<>(pairs.size());
        for (int from = 0; from < pairs.size(); from += batchSize) {
            List<EncodedPair> chunk = pairs.subList(from, Math.min(pairs.size(), from + batchSize));
            try (NDManager step = rm.manager().newSubManager()) {
                PreferenceBatch b = PreferenceBatch.of(step, chunk, padId);
                NDArray r = rm.rewards(b.ids(), b.attentionMask(), false, true);
                float[] f = r.toFloatArray();
                int n = chunk.size();
                for (int i = 0; i < n; i++) {
                    out.add(new PairRewards(f[i], f[n + i]));
                }
            }
        }
        return out;
    }

    /**
     * Scores pairs in batches bounded by padded tokens ({@link TokenBudget#plan}): the pairs are taken
     * longest first, so memory is bounded by {@code maxBatchTokens} whatever the mix of lengths, and the
     * rewards come back in the pairs' order. A batch's rows are right-padded, and a reward is read at a
     * row's last token, so a pair's rewards do not depend on its batch (up to float rounding).
     *
     * @param rm the reward model
     * @param pairs pairs as whole sequences ({@code PreferenceEncoder.encodeSequences}: empty prompts)
     * @param maxPairs at most this many pairs per forward pass (&gt; 0)
     * @param maxBatchTokens at most this many padded positions per forward pass, 2B × longest row (&gt;
     *     0); a longer pair is scored alone
     * @param padId the pad id the reward model locates rewards by ({@link #padId})
     * @param progress told the number of pairs of each batch once it is scored
     * @return the rewards of each pair, in the order of {@code pairs}
     * @throws IllegalArgumentException when a bound is not positive
     */
    public static List<PairRewards> score(
            CausalLm rm, List<EncodedPair> pairs, int maxPairs, long maxBatchTokens, int padId, IntConsumer progress) {
        return score(
                rm,
                pairs,
                maxPairs,
                maxBatchTokens,
                padId,
                new PairRewards[pairs.size()],
                (indices, rewards) -> progress.accept(indices.length));
    }

    /**
     * As {@link #score(CausalLm, List, int, long, int, IntConsumer)}, skipping the pairs whose rewards are
     * already known (a resumed run), and telling {@code listener} each batch's rewards as it is scored.
     *
     * @param rm the reward model
     * @param pairs pairs as whole sequences
     * @param maxPairs at most this many pairs per forward pass (&gt; 0)
     * @param maxBatchTokens at most this many padded positions per forward pass (&gt; 0)
     * @param padId the pad id the reward model locates rewards by
     * @param known one entry per pair: its rewards when already scored, else null; filled in place
     * @param listener told each new batch's rewards
     * @return the rewards of each pair, in the order of {@code pairs}
     * @throws IllegalArgumentException when a bound is not positive or {@code known} has another length
     */
    public static List<PairRewards> score(
            CausalLm rm,
            List<EncodedPair> pairs,
            int maxPairs,
            long maxBatchTokens,
            int padId,
            PairRewards[] known,
            BudgetedScoring.Listener<PairRewards> listener) {
        return BudgetedScoring.score(
                pairs,
                known,
                maxPairs,
                maxBatchTokens,
                batch -> {
                    try (NDManager step = rm.manager().newSubManager()) {
                        PreferenceBatch b = PreferenceBatch.of(step, batch, padId);
                        float[] f = rm.rewards(b.ids(), b.attentionMask(), false, true)
                                .toFloatArray();
                        int n = batch.size();
                        PairRewards[] rewards = new PairRewards[n];
                        for (int i = 0; i < n; i++) {
                            rewards[i] = new PairRewards(f[i], f[n + i]);
                        }
                        return rewards;
                    }
                },
                listener);
    }

    /**
     * @param rm a reward model
     * @param tokenizerPadId its tokenizer's pad id
     * @return the id to pad its batches with: its config's {@code pad_token_id} (what it locates rewards
     *     by), else the tokenizer's
     */
    public static int padId(CausalLm rm, int tokenizerPadId) {
        return rm.config().padTokenId() >= 0 ? rm.config().padTokenId() : tokenizerPadId;
    }
}
