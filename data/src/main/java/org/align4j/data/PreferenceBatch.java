package org.align4j.data;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.Arrays;
import java.util.List;

/**
 * A padded batch of B pairs as 2B rows: rows 0..B−1 are prompt + chosen, rows B..2B−1 prompt +
 * rejected, right-padded to the longest row. The completion mask is 1 on completion tokens only.
 *
 * @param ids [2B, T] int64
 * @param attentionMask [2B, T] int64, 1 on real tokens
 * @param completionMask [2B, T] int64, 1 on completion tokens
 * @param preference [B] float32 P(chosen ≻ rejected) (1 where a pair has none), or null when no pair
 *     in the batch has one
 * @param pairs B
 * @param tokens real tokens in the batch
 */
public record PreferenceBatch(
        NDArray ids, NDArray attentionMask, NDArray completionMask, NDArray preference, int pairs, long tokens) {

    /**
     * The one place that pads.
     *
     * @param manager owner of the arrays
     * @param pairs the pairs (at least one)
     * @param padId the padding id
     * @return the batch
     */
    public static PreferenceBatch of(NDManager manager, List<EncodedPair> pairs, int padId) {
        int b = pairs.size();
        if (b == 0) {
            throw new IllegalArgumentException("pairs: empty batch");
        }
        int t = 0;
        for (EncodedPair p : pairs) {
            t = Math.max(t, p.maxLength());
        }
        long[] ids = new long[2 * b * t];
        long[] attention = new long[2 * b * t];
        long[] completion = new long[2 * b * t];
        Arrays.fill(ids, padId);
        float[] pref = new float[b];
        boolean anyPreference = false;
        long tokens = 0;
        for (int i = 0; i < b; i++) {
            EncodedPair p = pairs.get(i);
            fill(ids, attention, completion, i * t, p.prompt(), p.chosen());
            fill(ids, attention, completion, (b + i) * t, p.prompt(), p.rejected());
            tokens += p.tokens();
            pref[i] = p.preference() == null ? 1f : p.preference().floatValue();
            anyPreference |= p.preference() != null;
        }
        Shape shape = new Shape(2L * b, t);
        return new PreferenceBatch(
                manager.create(ids, shape),
                manager.create(attention, shape),
                manager.create(completion, shape),
                anyPreference ? manager.create(pref) : null,
                b,
                tokens);
    }

    /**
     * A batch of B rows of prompt + chosen completion only (SFT: the chosen completion is the target).
     *
     * @param manager owner of the arrays
     * @param examples the examples
     * @param padId the padding id
     * @return the batch, with {@code pairs} = B rows and no preference
     */
    public static PreferenceBatch completions(NDManager manager, List<EncodedPair> examples, int padId) {
        int b = examples.size();
        if (b == 0) {
            throw new IllegalArgumentException("examples: empty batch");
        }
        int t = 0;
        for (EncodedPair p : examples) {
            t = Math.max(t, p.prompt().length + p.chosen().length);
        }
        long[] ids = new long[b * t];
        long[] attention = new long[b * t];
        long[] completion = new long[b * t];
        Arrays.fill(ids, padId);
        long tokens = 0;
        for (int i = 0; i < b; i++) {
            EncodedPair p = examples.get(i);
            fill(ids, attention, completion, i * t, p.prompt(), p.chosen());
            tokens += p.prompt().length + p.chosen().length;
        }
        Shape shape = new Shape(b, t);
        return new PreferenceBatch(
                manager.create(ids, shape),
                manager.create(attention, shape),
                manager.create(completion, shape),
                null,
                b,
                tokens);
    }

    private static void fill(
            long[] ids, long[] attention, long[] completion, int offset, int[] prompt, int[] response) {
        for (int j = 0; j < prompt.length; j++) {
            ids[offset + j] = prompt[j];
            attention[offset + j] = 1;
        }
        for (int j = 0; j < response.length; j++) {
            ids[offset + prompt.length + j] = response[j];
            attention[offset + prompt.length + j] = 1;
            completion[offset + prompt.length + j] = 1;
        }
    }

    /** @return T, the padded length */
    public long length() {
        return ids.getShape().get(1);
    }
}
