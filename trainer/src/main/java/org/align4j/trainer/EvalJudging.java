package org.align4j.trainer;

import ai.djl.ndarray.types.DataType;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.align4j.data.EncodedPair;
import org.align4j.evaluation.WinRate;
import org.align4j.evaluation.report.RunReport;
import org.align4j.losses.LossType;
import org.align4j.model.CausalLm;
import org.align4j.model.generate.GenerationConfig;
import org.align4j.model.tokenizer.TextTokenizer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code eval_samples}: at each evaluation, greedy answers of the policy to the first N held-out prompts,
 * judged against the reference's answers (made once, at the start) by {@code eval_judge}, logged as
 * {@code eval_win_rate} with its 95% Wilson interval ({@code eval_win_rate_low}, {@code
 * eval_win_rate_high}); the judged answers of the latest evaluation are {@code OUTPUT/samples.jsonl},
 * which the report shows next to the loss curves.
 */
final class EvalJudging implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(EvalJudging.class);
    private static final String REWARD_MODEL = "reward-model:";

    private final TextTokenizer tokenizer;
    private final List<int[]> prompts = new ArrayList<>();
    private final List<String> promptTexts = new ArrayList<>();
    private final List<String> chosen = new ArrayList<>();
    private final List<String> referenceAnswers;
    private final GenerationConfig decoding;
    private final int batchSize;
    private final WinRate.Judge judge;
    private final boolean byChosenAnswer;
    private final CausalLm rewardModel;
    private final TextTokenizer rewardTokenizer;

    private EvalJudging(
            TextTokenizer tokenizer,
            List<EncodedPair> pairs,
            List<String> referenceAnswers,
            GenerationConfig decoding,
            int batchSize,
            CausalLm rewardModel,
            TextTokenizer rewardTokenizer) {
        this.tokenizer = tokenizer;
        for (EncodedPair p : pairs) {
            prompts.add(p.prompt());
            promptTexts.add(tokenizer.decode(p.prompt(), false));
            chosen.add(tokenizer.decode(p.chosen(), true).trim());
        }
        this.referenceAnswers = referenceAnswers;
        this.decoding = decoding;
        this.batchSize = batchSize;
        this.rewardModel = rewardModel;
        this.rewardTokenizer = rewardTokenizer;
        this.byChosenAnswer = rewardModel == null;
        this.judge = rewardModel != null ? WinRate.Judge.byRewardModel(rewardModel, rewardTokenizer) : null;
    }

    /**
     * Prepares the judging of a run: the prompts, the reference's answers, the judge.
     *
     * @param config the run's config ({@code eval_samples} &gt; 0)
     * @param tokenizer the policy's tokenizer
     * @param heldOut the run's held-out pairs
     * @param policy the policy, whose device the models share
     * @return the judging; close it to free the reward model
     * @throws IllegalArgumentException naming {@code eval_judge} when the reward model cannot be used
     */
    static EvalJudging create(TrainConfig config, TextTokenizer tokenizer, List<EncodedPair> heldOut, CausalLm policy) {
        List<EncodedPair> pairs = heldOut.subList(0, Math.min(config.evalSamples(), heldOut.size()));
        GenerationConfig decoding = GenerationConfig.greedy(config.evalMaxNewTokens());
        CausalLm rm = null;
        TextTokenizer rmTokenizer = null;
        try {
            String judge = config.evalJudge();
            if (judge.startsWith(REWARD_MODEL)) {
                Path dir = Path.of(judge.substring(REWARD_MODEL.length()));
                try {
                    rmTokenizer = TextTokenizer.load(dir);
                    rm = CausalLm.load(dir, policy.device());
                } catch (RuntimeException e) {
                    throw new IllegalArgumentException("key 'eval_judge': " + e.getMessage(), e);
                }
                if (!rm.isRewardModel()) {
                    throw new IllegalArgumentException(
                            "key 'eval_judge': " + dir + " is a causal LM, not a reward model (its config.json names no"
                                    + " *ForSequenceClassification); train one with align4j reward train");
                }
                rm.setTrainable(false);
            }
            Path referenceDir =
                    Path.of(config.loss() == LossType.SFT ? config.model() : config.referenceModelOrModel());
            List<int[]> prompts = new ArrayList<>();
            pairs.forEach(p -> prompts.add(p.prompt()));
            List<String> theirs;
            try (CausalLm reference = config.loadModel(referenceDir, policy.device(), DataType.FLOAT32)) {
                reference.setTrainable(false);
                theirs = WinRate.generateFromIds(reference, tokenizer, prompts, decoding, config.evalBatchSize());
            }
            LOG.info(
                    "eval_samples: {} held-out prompts, judged by {} against the answers of {}",
                    pairs.size(),
                    judge,
                    referenceDir);
            return new EvalJudging(tokenizer, pairs, theirs, decoding, config.evalBatchSize(), rm, rmTokenizer);
        } catch (RuntimeException e) {
            if (rm != null) {
                rm.close();
            }
            if (rmTokenizer != null) {
                rmTokenizer.close();
            }
            throw e;
        }
    }

    /**
     * Generates the policy's answers, judges them, and writes the samples.
     *
     * @param policy the policy now
     * @param judgeName the config's {@code eval_judge}
     * @param samplesFile where the judged answers go ({@code OUTPUT/samples.jsonl})
     * @return {@code win_rate}, {@code win_rate_low} and {@code win_rate_high}
     * @throws IOException when the samples cannot be written
     */
    Map<String, Double> judge(CausalLm policy, String judgeName, Path samplesFile) throws IOException {
        List<String> mine = WinRate.generateFromIds(policy, tokenizer, prompts, decoding, batchSize);
        List<WinRate.Judge.Verdict> verdicts = new ArrayList<>(mine.size());
        List<RunReport.Sample> samples = new ArrayList<>(mine.size());
        boolean exact = "exact".equals(judgeName);
        for (int i = 0; i < mine.size(); i++) {
            WinRate.Judge.Verdict v;
            if (byChosenAnswer) {
                String want = chosen.get(i);
                v = WinRate.Judge.byScore((prompt, answer) ->
                                (exact ? answer.trim().equals(want) : answer.contains(want)) ? 1 : 0)
                        .compare(null, mine.get(i), referenceAnswers.get(i));
            } else {
                v = judge.compare(promptTexts.get(i), mine.get(i), referenceAnswers.get(i));
            }
            verdicts.add(v);
            samples.add(new RunReport.Sample(
                    promptTexts.get(i), null, chosen.get(i), referenceAnswers.get(i), mine.get(i)));
        }
        RunReport.writeSamples(samplesFile, samples);
        WinRate w = WinRate.of(verdicts);
        Map<String, Double> m = new LinkedHashMap<>();
        m.put("win_rate", w.rate());
        m.put("win_rate_low", w.lower());
        m.put("win_rate_high", w.upper());
        return m;
    }

    @Override
    public void close() {
        if (rewardModel != null) {
            rewardModel.close();
            rewardTokenizer.close();
        }
    }
}
