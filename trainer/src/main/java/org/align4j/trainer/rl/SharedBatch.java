package org.align4j.trainer.rl;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.align4j.model.CausalLm;
import org.align4j.model.TokenLogProbs;

/**
 * A micro-batch of sampled completions laid out for {@link CausalLm#sharedPromptTokenLogProbs}: each
 * distinct prompt once (left-padded), each completion once (right-padded), and which prompt each
 * completion continues. GRPO and RLOO draw G completions of every prompt, so a micro-batch of B rows
 * holds about B/G prompts: their layers then run B/G times instead of B (with HH-RLHF's prompts of about a
 * hundred tokens and 32-token completions, most of a row's tokens are its prompt's).
 *
 * <p>Every micro-batch of a rollout is padded to the rollout's longest prompt and completion: a row's
 * values then do not depend on which rows share its micro-batch (the masked attention's sums run over the
 * same lengths), so the old policy's log-probs, scored in one grouping, equal the training pass's, made in
 * another, exactly as the padded rows' causal attention gives (RLOO's and GRPO's ratio is then exactly 1 on
 * the first iteration, as TRL's).
 *
 * @param promptIds [P, Lp] int64
 * @param promptMask [P, Lp] int64
 * @param promptOfRow [B] int64
 * @param completionIds [B, Lc] int64
 * @param completionAttention [B, Lc] int64
 * @param completionMask [B, Lc] int64: the completion tokens of rows in the loss
 * @param tokens the rows' real tokens, prompt and completion each (as a padded batch of the rows counts them)
 */
record SharedBatch(
        NDArray promptIds,
        NDArray promptMask,
        NDArray promptOfRow,
        NDArray completionIds,
        NDArray completionAttention,
        NDArray completionMask,
        long tokens) {

    /**
     * The shared layout of some rows of a rollout, or null when sharing does not apply: no prompt occurs
     * twice among the rows, or the model's pass would draw dropout ({@link CausalLm#canSharePrompts}).
     *
     * @param model the model that will score the batch
     * @param training whether the pass trains (dropout)
     * @param scope owner of the arrays
     * @param rows the rollout's rows in this micro-batch
     * @param promptIndex per rollout row, its prompt's index in the data set (equal index, equal prompt)
     * @param prompts per rollout row, the prompt's ids
     * @param completions per rollout row, the completion's ids
     * @param scored per rollout row, whether it is in the loss
     * @param padId the id written at padded positions (masked)
     * @param promptWidth at least this many prompt positions (the longest prompt of the rollout)
     * @param completionWidth at least this many completion positions (the longest completion of the rollout)
     * @return the batch, or null
     */
    static SharedBatch of(
            CausalLm model,
            boolean training,
            NDManager scope,
            int[] rows,
            int[] promptIndex,
            List<int[]> prompts,
            List<int[]> completions,
            boolean[] scored,
            int padId,
            int promptWidth,
            int completionWidth) {
        Map<Integer, Integer> slot = new LinkedHashMap<>();
        for (int i : rows) {
            slot.putIfAbsent(promptIndex[i], slot.size());
        }
        if (slot.size() == rows.length || !model.canSharePrompts(training)) {
            return null;
        }
        int p = slot.size();
        int b = rows.length;
        int[] firstRow = new int[p];
        int lp = promptWidth;
        int lc = Math.max(1, completionWidth);
        long[] of = new long[b];
        for (int j = b - 1; j >= 0; j--) {
            int i = rows[j];
            int s = slot.get(promptIndex[i]);
            of[j] = s;
            firstRow[s] = i;
            lp = Math.max(lp, prompts.get(i).length);
            lc = Math.max(lc, completions.get(i).length);
        }
        long[] pIds = new long[p * lp];
        long[] pMask = new long[p * lp];
        for (int s = 0; s < p; s++) {
            int[] prompt = prompts.get(firstRow[s]);
            int offset = lp - prompt.length;
            for (int t = 0; t < lp; t++) {
                pIds[s * lp + t] = t < offset ? padId : prompt[t - offset];
                pMask[s * lp + t] = t < offset ? 0 : 1;
            }
        }
        long tokens = 0;
        for (int i : rows) {
            tokens += prompts.get(i).length + completions.get(i).length;
        }
        long[] cIds = new long[b * lc];
        long[] cAttention = new long[b * lc];
        long[] cMask = new long[b * lc];
        for (int j = 0; j < b; j++) {
            int[] c = completions.get(rows[j]);
            boolean inLoss = scored[rows[j]];
            for (int t = 0; t < lc; t++) {
                boolean real = t < c.length;
                cIds[j * lc + t] = real ? c[t] : padId;
                cAttention[j * lc + t] = real ? 1 : 0;
                cMask[j * lc + t] = real && inLoss ? 1 : 0;
            }
        }
        return new SharedBatch(
                scope.create(pIds, new Shape(p, lp)),
                scope.create(pMask, new Shape(p, lp)),
                scope.create(of),
                scope.create(cIds, new Shape(b, lc)),
                scope.create(cAttention, new Shape(b, lc)),
                scope.create(cMask, new Shape(b, lc)),
                tokens);
    }

    /**
     * The per-token log-probs of the batch's completions ({@link CausalLm#sharedPromptTokenLogProbs}).
     *
     * @param model the model
     * @param temperature τ &gt; 0
     * @param withEntropy also each position's entropy
     * @param training training mode
     * @return the flat per-token values, in the rows' order
     */
    TokenLogProbs tokenLogProbs(CausalLm model, double temperature, boolean withEntropy, boolean training) {
        return model.sharedPromptTokenLogProbs(
                promptIds,
                promptMask,
                promptOfRow,
                completionIds,
                completionAttention,
                completionMask,
                temperature,
                withEntropy,
                training);
    }
}
