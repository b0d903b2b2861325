package org.align4j.model.generate;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.nio.IntBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.align4j.model.CausalLm;
import org.align4j.model.nn.KvCache;

/**
 * Autoregressive generation for a batch of prompts of different lengths. Prompts are left-padded
 * (positions come from the attention mask, so padding does not shift them); each step reads the
 * last position's logits and picks every row's token on the device ({@link Sampling}): only the B
 * chosen ids come back to the host. With the KV cache (allocated once for prompt plus new tokens) only
 * the new token is fed after the first step; without it the whole sequence is fed again, which gives
 * the same tokens. Rows that hold the same prompt (an RL trainer's G samples of one prompt) share its
 * prefill: the distinct prompts run once and each row starts from a copy of its prompt's cache rows and last
 * logits.
 *
 * <p>Each row draws from its own {@link RowStream}: by default the stream of (seed, row index); an RL
 * trainer passes keys made of (seed, step, prompt, sample), so that a row's completion depends neither
 * on its batch nor on when it is generated. A row stops at any of the eos ids (each id of {@code
 * generation_config.json}'s {@code eos_token_id}); a row that reaches {@code maxNewTokens} without one
 * is flagged truncated.
 */
public final class Generator {
    private final CausalLm lm;
    private final int padId;
    private final Set<Integer> eosIds;

    /**
     * The new tokens of each row.
     *
     * @param tokens per row, the new tokens (ending with the eos id when the row stopped at one)
     * @param truncated per row, whether it reached {@code maxNewTokens} without an eos id
     */
    public record Completions(List<int[]> tokens, boolean[] truncated) {}

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
     * Generates continuations, row i drawing from the stream of (seed, i).
     *
     * @param prompts token ids per row (each non-empty)
     * @param cfg decoding settings
     * @return the new tokens per row (ending with the eos token if one was emitted and stopping is on)
     */
    public List<int[]> generate(List<int[]> prompts, GenerationConfig cfg) {
        long[] keys = new long[prompts.size()];
        for (int i = 0; i < keys.length; i++) {
            keys[i] = RowStream.key(cfg.seed(), i);
        }
        return generate(prompts, keys, cfg).tokens();
    }

    /**
     * Generates continuations, each row drawing from its own stream.
     *
     * @param prompts token ids per row (each non-empty)
     * @param rowKeys one {@link RowStream} key per row
     * @param cfg decoding settings ({@code cfg.seed()} is not used: the keys carry it)
     * @return the new tokens per row and which rows were cut at {@code maxNewTokens}
     * @throws IllegalArgumentException for an empty prompt, or keys that do not match the prompts
     */
    public Completions generate(List<int[]> prompts, long[] rowKeys, GenerationConfig cfg) {
        int b = prompts.size();
        if (rowKeys.length != b) {
            throw new IllegalArgumentException("rowKeys: " + rowKeys.length + " keys for " + b + " prompts");
        }
        int promptLen = 0;
        for (int i = 0; i < b; i++) {
            if (prompts.get(i).length == 0) {
                throw new IllegalArgumentException("prompts[" + i + "]: empty prompt");
            }
            promptLen = Math.max(promptLen, prompts.get(i).length);
        }
        RowStream[] streams = new RowStream[b];
        for (int i = 0; i < b; i++) {
            streams[i] = new RowStream(rowKeys[i]);
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
        double[] uniforms = new double[b];
        // rows that hold the same prompt (an RL trainer's samples of one prompt) share one prefill
        long[] promptOf = cached ? distinctPrompts(prompts) : null;
        int distinct =
                promptOf == null ? b : (int) Arrays.stream(promptOf).max().orElse(0) + 1;
        try (NDManager scope = lm.manager().newSubManager()) {
            KvCache cache = cached ? lm.newCache(total) : null;
            int len = promptLen;
            for (int step = 0; step < cfg.maxNewTokens(); step++) {
                long[] picked;
                try (NDManager stepScope = scope.newSubManager()) {
                    int from = cached && step > 0 ? len - 1 : 0;
                    NDArray logits;
                    if (step == 0 && distinct < b) {
                        // the distinct prompts run once; each row gets its prompt's cache rows and last logits
                        int[] first = firstRows(promptOf, distinct);
                        NDArray idArr = stepScope.create(
                                slice(rows(ids, total, first), distinct, total, 0, len), new Shape(distinct, len));
                        NDArray maskArr = stepScope.create(
                                slice(rows(mask, total, first), distinct, total, 0, len), new Shape(distinct, len));
                        NDArray rowOf = stepScope.create(promptOf);
                        logits = lm.lastLogits(idArr, maskArr, cache).get(rowOf);
                        cache = cache.rows(rowOf);
                    } else {
                        NDArray idArr = stepScope.create(slice(ids, b, total, from, len), new Shape(b, len - from));
                        NDArray maskArr = stepScope.create(slice(mask, b, total, 0, len), new Shape(b, len));
                        // the head runs on each row's last position only
                        logits = lm.lastLogits(idArr, maskArr, cached ? cache : null);
                    }
                    for (int i = 0; i < b; i++) {
                        uniforms[i] = streams[i].uniform(step);
                    }
                    picked = Sampling.next(logits, cfg, uniforms);
                    if (cache != null) {
                        cache.attach(scope);
                    }
                }
                for (int i = 0; i < b; i++) {
                    int token = padId;
                    if (!done[i]) {
                        token = (int) picked[i];
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
        boolean[] truncated = new boolean[b];
        for (int i = 0; i < b; i++) {
            int[] row = out.get(i).stream().mapToInt(Integer::intValue).toArray();
            result.add(row);
            truncated[i] = row.length == 0 || !eosIds.contains(row[row.length - 1]);
        }
        return new Completions(result, truncated);
    }

    /** Each row's index among the distinct prompts, numbered in order of first appearance. */
    private static long[] distinctPrompts(List<int[]> prompts) {
        Map<IntBuffer, Integer> seen = new HashMap<>();
        long[] of = new long[prompts.size()];
        for (int i = 0; i < of.length; i++) {
            of[i] = seen.computeIfAbsent(IntBuffer.wrap(prompts.get(i)), k -> seen.size());
        }
        return of;
    }

    /** The first row of each distinct prompt. */
    private static int[] firstRows(long[] promptOf, int distinct) {
        int[] first = new int[distinct];
        Arrays.fill(first, -1);
        for (int i = 0; i < promptOf.length; i++) {
            if (first[(int) promptOf[i]] < 0) {
                first[(int) promptOf[i]] = i;
            }
        }
        return first;
    }

    /** The given rows of a row-major [rows, stride] array. */
    private static long[] rows(long[] data, int stride, int[] rows) {
        long[] out = new long[rows.length * stride];
        for (int i = 0; i < rows.length; i++) {
            System.arraycopy(data, rows[i] * stride, out, i * stride, stride);
        }
        return out;
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
}
