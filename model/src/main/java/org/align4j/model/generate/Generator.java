package org.align4j.model.generate;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.align4j.model.CausalLm;
import org.align4j.model.nn.KvCache;

/**
 * Autoregressive generation for a batch of prompts of different lengths. Prompts are left-padded
 * (positions come from the attention mask, so padding does not shift them); each step reads the
 * last position's logits, picks a token per row on the host, and appends it. With the KV cache only
 * the new token is fed after the first step; without it the whole sequence is fed again, which gives
 * the same tokens.
 */
public final class Generator {
    private final CausalLm lm;
    private final int padId;
    private final Set<Integer> eosIds;

    /**
     * @param lm the model
     * @param padId the id used for padding (any id works: padded positions are masked)
     * @param eosIds ids that end a row
     */
    public Generator(CausalLm lm, int padId, Collection<Integer> eosIds) {
        this.lm = lm;
        this.padId = padId;
        this.eosIds = Set.copyOf(eosIds);
    }

    /**
     * Generates continuations.
     *
     * @param prompts token ids per row (each non-empty)
     * @param cfg decoding settings
     * @return the new tokens per row (ending with the eos token if one was emitted and stopping is on)
     */
    public List<int[]> generate(List<int[]> prompts, GenerationConfig cfg) {
        int b = prompts.size();
        int promptLen = 0;
        for (int i = 0; i < b; i++) {
            if (prompts.get(i).length == 0) {
                throw new IllegalArgumentException("prompts[" + i + "]: empty prompt");
            }
            promptLen = Math.max(promptLen, prompts.get(i).length);
        }
        boolean cached = cfg.useCache() && lm.isNative();
        int total = promptLen + cfg.maxNewTokens();
        long[] ids = new long[b * total];
        long[] mask = new long[b * total];
        for (int i = 0; i < b; i++) {
            int[] p = prompts.get(i);
            int offset = promptLen - p.length;
            for (int t = 0; t < promptLen; t++) {
                ids[i * total + t] = t < offset ? padId : p[t - offset];
                mask[i * total + t] = t < offset ? 0 : 1;
            }
        }
        List<List<Integer>> out = new ArrayList<>();
        for (int i = 0; i < b; i++) {
            out.add(new ArrayList<>());
        }
        boolean[] done = new boolean[b];
        Random random = new Random(cfg.seed());
        try (NDManager scope = lm.manager().newSubManager()) {
            KvCache cache = cached ? lm.newCache() : null;
            int len = promptLen;
            for (int step = 0; step < cfg.maxNewTokens(); step++) {
                float[] last;
                try (NDManager stepScope = scope.newSubManager()) {
                    int from = cached && step > 0 ? len - 1 : 0;
                    NDArray idArr = stepScope.create(slice(ids, b, total, from, len), new Shape(b, len - from));
                    NDArray maskArr = stepScope.create(slice(mask, b, total, 0, len), new Shape(b, len));
                    NDArray logits = cached
                            ? lm.forward(idArr, maskArr, cache, false).logits()
                            : lm.logits(idArr, maskArr, false);
                    last = logits.get(":, -1, :").toFloatArray();
                    if (cache != null) {
                        cache.attach(scope);
                    }
                }
                int vocab = last.length / b;
                for (int i = 0; i < b; i++) {
                    int token = padId;
                    if (!done[i]) {
                        float[] row = Arrays.copyOfRange(last, i * vocab, (i + 1) * vocab);
                        token = cfg.greedy() ? argmax(row) : Sampling.sample(row, cfg, random);
                        out.get(i).add(token);
                        done[i] = cfg.stopAtEos() && eosIds.contains(token);
                    }
                    ids[i * total + len] = token;
                    mask[i * total + len] = 1;
                }
                len++;
                if (allDone(done)) {
                    break;
                }
            }
        }
        List<int[]> result = new ArrayList<>();
        for (List<Integer> row : out) {
            result.add(row.stream().mapToInt(Integer::intValue).toArray());
        }
        return result;
    }

    private static long[] slice(long[] data, int rows, int stride, int from, int to) {
        long[] s = new long[rows * (to - from)];
        for (int i = 0; i < rows; i++) {
            System.arraycopy(data, i * stride + from, s, i * (to - from), to - from);
        }
        return s;
    }

    private static boolean allDone(boolean[] done) {
        for (boolean d : done) {
            if (!d) {
                return false;
            }
        }
        return true;
    }

    static int argmax(float[] row) {
        int best = 0;
        for (int i = 1; i < row.length; i++) {
            if (row[i] > row[best]) {
                best = i;
            }
        }
        return best;
    }
}
