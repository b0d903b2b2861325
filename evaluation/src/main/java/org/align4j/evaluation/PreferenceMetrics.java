package org.align4j.evaluation;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.align4j.data.EncodedPair;
import org.align4j.losses.RewardMetrics;
import org.align4j.model.CausalLm;

/**
 * Held-out preference metrics of a policy against its reference, with the names TRL logs.
 *
 * <p>The implicit reward of a completion is r = β·(log π(y∣x) − log π_ref(y∣x)) on summed log-probs.
 * The metrics are {@link RewardMetrics}'s, the trainer's and TRL's: a pair counts as ranked right only
 * when the chosen reward is strictly greater, so a tie counts 0 and an unchanged policy scores 0.
 * {@code kl} is the exact per-token KL(π ‖ π_ref) summed along the chosen completion, averaged over pairs.
 *
 * @param pairs pairs scored
 * @param rewardAccuracy share of pairs ranked right
 * @param rewardMargin mean chosen minus rejected reward
 * @param chosenReward mean chosen reward
 * @param rejectedReward mean rejected reward
 * @param chosenLogps mean policy log-prob of the chosen completion
 * @param rejectedLogps mean policy log-prob of the rejected completion
 * @param referenceChosenLogps the same under the reference
 * @param referenceRejectedLogps the same under the reference
 * @param kl mean Σ_t KL(π ‖ π_ref) along the chosen completion, nats
 */
public record PreferenceMetrics(
        int pairs,
        double rewardAccuracy,
        double rewardMargin,
        double chosenReward,
        double rejectedReward,
        double chosenLogps,
        double rejectedLogps,
        double referenceChosenLogps,
        double referenceRejectedLogps,
        double kl) {

    /**
     * Scores every pair under both models (no gradients, batched).
     *
     * @param policy π
     * @param reference π_ref
     * @param pairs encoded held-out pairs (at least one)
     * @param beta β of the implicit reward
     * @param batchSize pairs per forward pass
     * @param padId padding id
     * @return the metrics
     */
    public static PreferenceMetrics evaluate(
            CausalLm policy, CausalLm reference, List<EncodedPair> pairs, double beta, int batchSize, int padId) {
        if (pairs.isEmpty()) {
            throw new IllegalArgumentException("pairs: nothing to evaluate");
        }
        List<PairScorer.PairScore> pol = PairScorer.score(policy, pairs, batchSize, padId);
        List<PairScorer.PairScore> ref = PairScorer.score(reference, pairs, batchSize, padId);
        int n = pairs.size();
        double[] chosen = new double[n];
        double[] rejected = new double[n];
        double[] pc = new double[n];
        double[] pr = new double[n];
        double rc = 0;
        double rr = 0;
        for (int i = 0; i < n; i++) {
            pc[i] = pol.get(i).chosenLogps();
            pr[i] = pol.get(i).rejectedLogps();
            chosen[i] = beta * (pc[i] - ref.get(i).chosenLogps());
            rejected[i] = beta * (pr[i] - ref.get(i).rejectedLogps());
            rc += ref.get(i).chosenLogps();
            rr += ref.get(i).rejectedLogps();
        }
        Map<String, Double> m = RewardMetrics.of(chosen, rejected, pc, pr);
        List<int[]> prompts = new ArrayList<>(n);
        List<int[]> completions = new ArrayList<>(n);
        for (EncodedPair p : pairs) {
            prompts.add(p.prompt());
            completions.add(p.chosen());
        }
        double kl =
                Divergence.mean(Divergence.perSequenceKl(policy, reference, prompts, completions, padId, batchSize));
        return new PreferenceMetrics(
                n,
                m.get("rewards/accuracies"),
                m.get("rewards/margins"),
                m.get("rewards/chosen"),
                m.get("rewards/rejected"),
                m.get("logps/chosen"),
                m.get("logps/rejected"),
                rc / n,
                rr / n,
                kl);
    }

    /** @return the metrics under TRL's names (plus {@code kl} and the reference log-probs) */
    public Map<String, Double> asMap() {
        Map<String, Double> m = new LinkedHashMap<>();
        m.put("rewards/accuracies", rewardAccuracy);
        m.put("rewards/margins", rewardMargin);
        m.put("rewards/chosen", chosenReward);
        m.put("rewards/rejected", rejectedReward);
        m.put("logps/chosen", chosenLogps);
        m.put("logps/rejected", rejectedLogps);
        m.put("ref_logps/chosen", referenceChosenLogps);
        m.put("ref_logps/rejected", referenceRejectedLogps);
        m.put("kl", kl);
        return m;
    }
}
