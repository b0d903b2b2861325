package org.align4j.evaluation;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import org.align4j.data.EncodedPair;
import org.align4j.data.PreferenceBatch;
import org.align4j.model.CausalLm;
import org.align4j.model.generate.GenerationConfig;
import org.align4j.model.generate.Generator;

/**
 * How far a policy moved from its reference, in nats.
 *
 * <p>Two measures. {@link #perSequenceKl} is exact per position: along given completions it sums the
 * KL of the next-token distributions. {@link #sampledSequenceKl} estimates the KL of whole sequences,
 * KL(π ‖ π_ref) = E_{y∼π}[log π(y∣x) − log π_ref(y∣x)], by sampling y from the policy; it reports
 * the standard error of the mean so the estimate's precision is visible.
 */
public final class Divergence {
    private Divergence() {}

    /**
     * A Monte-Carlo estimate.
     *
     * @param mean the mean over samples
     * @param standardError the sample standard deviation divided by √n
     * @param samples n
     * @param values each sample's value
     */
    public record Estimate(double mean, double standardError, int samples, double[] values) {
        /**
         * @param values per-sample values (at least one)
         * @return their mean and its standard error
         */
        public static Estimate of(double[] values) {
            int n = values.length;
            if (n == 0) {
                throw new IllegalArgumentException("values: no samples");
            }
            double mean = Divergence.mean(values);
            double ss = 0;
            for (double v : values) {
                ss += (v - mean) * (v - mean);
            }
            double sd = n > 1 ? Math.sqrt(ss / (n - 1)) : Double.NaN;
            return new Estimate(mean, sd / Math.sqrt(n), n, values);
        }
    }

    /**
     * Σ over completion positions t of KL(π(·∣y_&lt;t) ‖ π_ref(·∣y_&lt;t)) = Σ_v π(v)(log π(v) − log π_ref(v)),
     * for each sequence. Computed without gradients.
     *
     * @param policy π
     * @param reference π_ref
     * @param prompts prompt ids per sequence
     * @param completions completion ids per sequence (the tokens whose predictions are compared)
     * @param padId padding id
     * @param batchSize sequences per forward pass
     * @return the summed KL of each sequence, in nats
     */
    public static double[] perSequenceKl(
            CausalLm policy,
            CausalLm reference,
            List<int[]> prompts,
            List<int[]> completions,
            int padId,
            int batchSize) {
        checkSizes(prompts, completions, batchSize);
        double[] out = new double[prompts.size()];
        for (int from = 0; from < prompts.size(); from += batchSize) {
            int to = Math.min(prompts.size(), from + batchSize);
            try (NDManager m = policy.manager().newSubManager()) {
                PreferenceBatch b = PreferenceBatch.completions(m, rows(prompts, completions, from, to), padId);
                NDArray lp = policy.logits(b.ids(), b.attentionMask(), false)
                        .get(":, :-1, :")
                        .logSoftmax(-1);
                NDArray lq = reference
                        .logits(b.ids(), b.attentionMask(), false)
                        .get(":, :-1, :")
                        .logSoftmax(-1);
                NDArray klPerPosition = lp.exp().mul(lp.sub(lq)).sum(new int[] {2});
                // the logits at t−1 predict token t: position t−1 counts when token t is a completion token
                NDArray counted = b.completionMask().get(":, 1:").toType(klPerPosition.getDataType(), false);
                float[] kl = klPerPosition.mul(counted).sum(new int[] {1}).toFloatArray();
                for (int r = 0; r < kl.length; r++) {
                    out[from + r] = kl[r];
                }
            }
        }
        return out;
    }

    /**
     * log p(completion ∣ prompt) of each sequence under a model, without gradients.
     *
     * @param lm the model
     * @param prompts prompt ids per sequence
     * @param completions completion ids per sequence
     * @param padId padding id
     * @param batchSize sequences per forward pass
     * @return Σ log p over each completion's tokens
     */
    public static double[] sequenceLogProbs(
            CausalLm lm, List<int[]> prompts, List<int[]> completions, int padId, int batchSize) {
        checkSizes(prompts, completions, batchSize);
        double[] out = new double[prompts.size()];
        for (int from = 0; from < prompts.size(); from += batchSize) {
            int to = Math.min(prompts.size(), from + batchSize);
            try (NDManager m = lm.manager().newSubManager()) {
                PreferenceBatch b = PreferenceBatch.completions(m, rows(prompts, completions, from, to), padId);
                float[] sum = lm.completionLogProbs(b.ids(), b.attentionMask(), b.completionMask(), false)
                        .sum()
                        .toFloatArray();
                for (int r = 0; r < sum.length; r++) {
                    out[from + r] = sum[r];
                }
            }
        }
        return out;
    }

    /**
     * Monte-Carlo sequence KL: draws {@code samplesPerPrompt} completions from the policy for each
     * prompt and averages log π(y∣x) − log π_ref(y∣x). The estimate is unbiased only when the samples
     * come from π itself, so the sampling must be plain: temperature 1, no top-k, no top-p.
     *
     * @param policy π (samples come from it)
     * @param reference π_ref
     * @param prompts prompt ids (each non-empty)
     * @param samplesPerPrompt completions drawn per prompt
     * @param sampling decoding settings (maximum length, seed, stopping at eos)
     * @param padId padding id
     * @param eosIds ids that end a completion
     * @param batchSize sequences per forward pass
     * @return the mean over all samples with its standard error
     */
    public static Estimate sampledSequenceKl(
            CausalLm policy,
            CausalLm reference,
            List<int[]> prompts,
            int samplesPerPrompt,
            GenerationConfig sampling,
            int padId,
            Collection<Integer> eosIds,
            int batchSize) {
        if (sampling.greedy() || sampling.temperature() != 1.0 || sampling.topK() != 0 || sampling.topP() != 1.0) {
            throw new IllegalArgumentException("sampling: the Monte-Carlo KL needs samples from the policy itself "
                    + "(temperature 1, top_k 0, top_p 1, not greedy), got " + sampling);
        }
        if (samplesPerPrompt <= 0) {
            throw new IllegalArgumentException("samplesPerPrompt: must be > 0, got " + samplesPerPrompt);
        }
        List<int[]> repeated = new ArrayList<>();
        for (int[] p : prompts) {
            for (int k = 0; k < samplesPerPrompt; k++) {
                repeated.add(p);
            }
        }
        Generator generator = new Generator(policy, padId, eosIds);
        List<int[]> samples = new ArrayList<>();
        for (int from = 0; from < repeated.size(); from += batchSize) {
            int to = Math.min(repeated.size(), from + batchSize);
            GenerationConfig c = new GenerationConfig(
                    sampling.maxNewTokens(),
                    false,
                    1.0,
                    0,
                    1.0,
                    0,
                    sampling.seed() + from,
                    sampling.stopAtEos(),
                    sampling.useCache());
            samples.addAll(generator.generate(repeated.subList(from, to), c));
        }
        double[] lp = sequenceLogProbs(policy, repeated, samples, padId, batchSize);
        double[] lq = sequenceLogProbs(reference, repeated, samples, padId, batchSize);
        double[] values = new double[lp.length];
        for (int i = 0; i < values.length; i++) {
            values[i] = lp[i] - lq[i];
        }
        return Estimate.of(values);
    }

    /**
     * @param values numbers
     * @return their mean, NaN when there are none
     */
    public static double mean(double[] values) {
        double s = 0;
        for (double v : values) {
            s += v;
        }
        return values.length == 0 ? Double.NaN : s / values.length;
    }

    private static List<EncodedPair> rows(List<int[]> prompts, List<int[]> completions, int from, int to) {
        List<EncodedPair> rows = new ArrayList<>(to - from);
        for (int i = from; i < to; i++) {
            rows.add(new EncodedPair(prompts.get(i), completions.get(i), new int[0], null));
        }
        return rows;
    }

    private static void checkSizes(List<int[]> prompts, List<int[]> completions, int batchSize) {
        if (prompts.size() != completions.size()) {
            throw new IllegalArgumentException("prompts and completions: " + prompts.size() + " prompts but "
                    + completions.size() + " completions");
        }
        if (batchSize <= 0) {
            throw new IllegalArgumentException("batchSize: must be > 0, got " + batchSize);
        }
    }
}
