package org.align4j.evaluation;

import java.util.ArrayList;
import java.util.List;
import java.util.function.ToDoubleBiFunction;
import org.align4j.data.EncodedPair;
import org.align4j.data.EncodingOptions;
import org.align4j.data.PreferenceEncoder;
import org.align4j.model.CausalLm;
import org.align4j.model.generate.GenerationConfig;
import org.align4j.model.generate.Generator;
import org.align4j.model.tokenizer.TextTokenizer;

/**
 * How often the policy's answer beats the reference's under a judge, with a 95% Wilson score
 * interval. A tie counts half a win.
 *
 * @param wins prompts where the policy's answer won
 * @param losses prompts where the reference's answer won
 * @param ties prompts judged even
 * @param rate (wins + ties/2) / n
 * @param lower lower end of the 95% interval
 * @param upper upper end of the 95% interval
 */
public record WinRate(int wins, int losses, int ties, double rate, double lower, double upper) {
    private static final double Z95 = 1.959963984540054;

    /**
     * Compares two answers to one prompt. Implement it for a task whose answers can be checked by a
     * program (a sum, a unit test, an exact match), wrap a scorer with {@link #byScore}, or let a reward
     * model judge open-ended answers ({@link #byRewardModel}).
     */
    @FunctionalInterface
    public interface Judge {
        /** A judge's verdict. */
        enum Verdict {
            FIRST,
            SECOND,
            TIE
        }

        /**
         * @param prompt the prompt text
         * @param first the first answer (the policy's)
         * @param second the second answer (the reference's)
         * @return which is better
         */
        Verdict compare(String prompt, String first, String second);

        /**
         * @param score a score per answer, higher is better (e.g. 1 when correct, else 0)
         * @return a judge preferring the higher score, a tie when equal
         */
        static Judge byScore(ToDoubleBiFunction<String, String> score) {
            return (prompt, first, second) -> {
                int c = Double.compare(score.applyAsDouble(prompt, first), score.applyAsDouble(prompt, second));
                return c > 0 ? Verdict.FIRST : c < 0 ? Verdict.SECOND : Verdict.TIE;
            };
        }

        /**
         * A reward model as the judge, for open-ended answers: each answer is scored as prompt + answer +
         * eos (TRL RewardTrainer's plain-text sequence, tokenized with the reward model's own tokenizer,
         * special tokens included), both in one forward pass; the higher reward wins, equal rewards tie.
         * The prompt should be the text the policy answered (chat-templated, if it was), so that the
         * reward model reads what it was trained on.
         *
         * @param rewardModel a reward model ({@link CausalLm#isRewardModel()}); the judge borrows it
         * @param tokenizer its tokenizer
         * @return the judge
         * @throws IllegalArgumentException when the model is a causal LM, not a reward model
         */
        static Judge byRewardModel(CausalLm rewardModel, TextTokenizer tokenizer) {
            if (!rewardModel.isRewardModel()) {
                throw new IllegalArgumentException(
                        rewardModel.source() + ": not a reward model (config.json's architectures names no "
                                + "*ForSequenceClassification); train one with align4j reward train");
            }
            PreferenceEncoder encoder = new PreferenceEncoder(tokenizer, EncodingOptions.unlimited());
            int pad = RewardScorer.padId(rewardModel, tokenizer.padId());
            return (prompt, first, second) -> {
                if (first.equals(second)) {
                    return Verdict.TIE; // one text, one reward (two rows of a batch may round apart)
                }
                EncodedPair pair = new EncodedPair(
                        new int[0],
                        encoder.encodeSequence(prompt, first),
                        encoder.encodeSequence(prompt, second),
                        null);
                RewardScorer.PairRewards r =
                        RewardScorer.score(rewardModel, List.of(pair), 1, pad).get(0);
                int c = Double.compare(r.chosen(), r.rejected());
                return c > 0 ? Verdict.FIRST : c < 0 ? Verdict.SECOND : Verdict.TIE;
            };
        }
    }

    /**
     * One judged prompt.
     *
     * @param prompt the prompt text
     * @param policy the policy's answer
     * @param reference the reference's answer
     * @param verdict FIRST when the policy won
     */
    public record Sample(String prompt, String policy, String reference, Judge.Verdict verdict) {}

    /**
     * A win rate with the samples it came from.
     *
     * @param winRate the rate and interval
     * @param samples every judged prompt, in order
     */
    public record Result(WinRate winRate, List<Sample> samples) {}

    /**
     * @param verdicts one verdict per prompt (FIRST = policy won)
     * @return the win rate and its interval
     */
    public static WinRate of(List<Judge.Verdict> verdicts) {
        int w = 0;
        int l = 0;
        int t = 0;
        for (Judge.Verdict v : verdicts) {
            switch (v) {
                case FIRST -> w++;
                case SECOND -> l++;
                default -> t++;
            }
        }
        int n = w + l + t;
        if (n == 0) {
            throw new IllegalArgumentException("verdicts: none");
        }
        double p = (w + 0.5 * t) / n;
        double z2 = Z95 * Z95;
        double centre = (p + z2 / (2 * n)) / (1 + z2 / n);
        double half = Z95 * Math.sqrt(p * (1 - p) / n + z2 / (4.0 * n * n)) / (1 + z2 / n);
        return new WinRate(w, l, t, p, Math.max(0, centre - half), Math.min(1, centre + half));
    }

    /**
     * Generates an answer from each model for each prompt and judges them.
     *
     * @param policy π
     * @param reference π_ref
     * @param tokenizer the tokenizer both models use
     * @param prompts prompt texts
     * @param decoding decoding settings for both models
     * @param judge the judge
     * @param batchSize prompts per generation batch
     * @return the win rate and the judged samples
     */
    public static Result evaluate(
            CausalLm policy,
            CausalLm reference,
            TextTokenizer tokenizer,
            List<String> prompts,
            GenerationConfig decoding,
            Judge judge,
            int batchSize) {
        List<String> mine = generate(policy, tokenizer, prompts, decoding, batchSize);
        List<String> theirs = generate(reference, tokenizer, prompts, decoding, batchSize);
        List<Sample> samples = new ArrayList<>(prompts.size());
        List<Judge.Verdict> verdicts = new ArrayList<>(prompts.size());
        for (int i = 0; i < prompts.size(); i++) {
            Judge.Verdict v = judge.compare(prompts.get(i), mine.get(i), theirs.get(i));
            verdicts.add(v);
            samples.add(new Sample(prompts.get(i), mine.get(i), theirs.get(i), v));
        }
        return new Result(of(verdicts), samples);
    }

    /**
     * @param lm a model
     * @param tokenizer its tokenizer
     * @param prompts prompt texts
     * @param decoding decoding settings
     * @param batchSize prompts per batch
     * @return the decoded answers (special tokens skipped)
     */
    public static List<String> generate(
            CausalLm lm, TextTokenizer tokenizer, List<String> prompts, GenerationConfig decoding, int batchSize) {
        List<int[]> ids = new ArrayList<>(prompts.size());
        for (String p : prompts) {
            ids.add(tokenizer.encode(p));
        }
        return generateFromIds(lm, tokenizer, ids, decoding, batchSize);
    }

    /**
     * @param lm a model
     * @param tokenizer its tokenizer
     * @param prompts prompt ids (chat-templated or not, as encoded)
     * @param decoding decoding settings
     * @param batchSize prompts per batch
     * @return the decoded answers (special tokens skipped)
     */
    public static List<String> generateFromIds(
            CausalLm lm, TextTokenizer tokenizer, List<int[]> prompts, GenerationConfig decoding, int batchSize) {
        Generator g = new Generator(lm, tokenizer.padId(), tokenizer.eosIds());
        List<String> out = new ArrayList<>(prompts.size());
        for (int from = 0; from < prompts.size(); from += batchSize) {
            for (int[] answer :
                    g.generate(prompts.subList(from, Math.min(prompts.size(), from + batchSize)), decoding)) {
                out.add(tokenizer.decode(answer, true));
            }
        }
        return out;
    }
}
