package org.align4j.evaluation.rewards;

import ai.djl.ndarray.NDManager;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.align4j.data.EncodedPair;
import org.align4j.data.PreferenceBatch;
import org.align4j.data.TokenBudget;
import org.align4j.evaluation.BudgetedScoring;
import org.align4j.evaluation.RewardScorer;
import org.align4j.model.CausalLm;
import org.align4j.model.tokenizer.TextTokenizer;

/**
 * A reward model (a sequence classifier from {@code align4j reward train} or transformers) as a reward
 * function: each sample's prompt text plus completion text, re-tokenized by the reward model's own
 * tokenizer, scored at its last non-pad token, in batches without gradients bounded by rows and by padded
 * positions ({@link BudgetedScoring}, longest first).
 *
 * <p>Two readings of a sample: with {@code appendEos} (the default) as {@code reward train} and TRL's
 * {@code RewardTrainer} read their pairs: {@code tokenizer(prompt + completion + eos)} with the
 * tokenizer's special tokens; without it as TRL 1.13's {@code GRPOTrainer} and {@code RLOOTrainer} score:
 * {@code tokenizer(prompt + completion, add_special_tokens=False)}, no eos. A model trained on the first
 * reading and scored on the second reads its reward one token early.
 */
public final class RewardModelFunction implements RewardFunction, AutoCloseable {
    private final CausalLm model;
    private final TextTokenizer tokenizer;
    private final boolean appendEos;
    private final int batchSize;
    private final int padId;
    private final String name;

    /**
     * @param model a reward model ({@link CausalLm#isRewardModel()}), owned by this object from here
     * @param tokenizer its tokenizer, owned by this object from here
     * @param appendEos read samples as reward training did (eos, special tokens) or as TRL's GRPO does
     * @param batchSize samples per forward pass
     * @throws IllegalArgumentException when the model is not a reward model
     */
    public RewardModelFunction(CausalLm model, TextTokenizer tokenizer, boolean appendEos, int batchSize) {
        if (!model.isRewardModel()) {
            throw new IllegalArgumentException(model.source() + ": not a reward model (config.json's architectures "
                    + "names no *ForSequenceClassification); train one with align4j reward train");
        }
        if (model.config().numLabels() != 1) {
            throw new IllegalArgumentException(model.source() + "/config.json: key 'num_labels': a reward model has "
                    + "one label, got " + model.config().numLabels());
        }
        this.model = model;
        this.tokenizer = tokenizer;
        this.appendEos = appendEos;
        this.batchSize = batchSize;
        this.padId = RewardScorer.padId(model, tokenizer.padId());
        this.name = nameOf(model.source());
    }

    /**
     * The name metrics carry: the folder's name, as TRL names a reward model by the last part of its path;
     * a run's {@code final} or {@code checkpoint-N} folder is named with its run ({@code reward_final}).
     */
    static String nameOf(Path source) {
        if (source == null) {
            return "reward_model";
        }
        Path p = source.toAbsolutePath().normalize();
        String name = p.getFileName().toString();
        if ((name.equals("final") || name.matches("checkpoint-\\d+"))
                && p.getParent() != null
                && p.getParent().getFileName() != null) {
            return p.getParent().getFileName() + "_" + name;
        }
        return name;
    }

    @Override
    public String name() {
        return name;
    }

    /** @return the reward model */
    public CausalLm model() {
        return model;
    }

    @Override
    public List<Double> score(List<Sample> samples) {
        List<int[]> rows = new ArrayList<>(samples.size());
        String eos = appendEos ? tokenizer.decode(new int[] {tokenizer.eosId()}, false) : "";
        for (Sample s : samples) {
            String text = s.prompt() + s.completion() + eos;
            rows.add(appendEos ? tokenizer.encodeWithSpecialTokens(text) : tokenizer.encode(text));
        }
        List<EncodedPair> singles = new ArrayList<>(rows.size());
        for (int[] r : rows) {
            singles.add(new EncodedPair(new int[0], r, new int[0], null));
        }
        // longest first, at most batchSize rows and TokenBudget's positions a pass (a pair's budget counts two
        // rows, hence twice it for single rows), each row right-padded: a row's reward does not depend on its batch
        return BudgetedScoring.score(
                singles,
                new Double[singles.size()],
                batchSize,
                2L * TokenBudget.DEFAULT_MAX_TOKENS,
                chunk -> {
                    try (NDManager scope = model.manager().newSubManager()) {
                        PreferenceBatch b = PreferenceBatch.completions(scope, chunk, padId);
                        float[] r = model.rewards(b.ids(), b.attentionMask(), false, true)
                                .toFloatArray();
                        Double[] values = new Double[r.length];
                        for (int i = 0; i < r.length; i++) {
                            values[i] = (double) r[i];
                        }
                        return values;
                    }
                },
                (indices, values) -> {});
    }

    @Override
    public void close() {
        model.close();
        tokenizer.close();
    }
}
