package org.align4j.data;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import org.align4j.model.tokenizer.TextTokenizer;

/**
 * Pairs as token ids the way TRL 1.13's experimental {@code ORPOTrainer} and {@code CPOTrainer} make them
 * ({@code tokenize_row} and {@code build_tokenized_answer}), which is not how its {@code DPOTrainer} or
 * {@link PreferenceEncoder} do:
 *
 * <ol>
 *   <li>a conversation is first rendered to text ({@link PreferenceEncoder#pairTexts});
 *   <li>each response is tokenized together with the prompt, {@code full = tok(prompt + response)}, without
 *       special tokens, and split where {@code tok(prompt)} ends, one token earlier when the tokenizer
 *       merged the prompt's last token into the response;
 *   <li>the tokenizer's bos id is put before the prompt unless it starts with it (when the tokenizer names
 *       a bos token), and the eos id after each response unless it ends with it;
 *   <li>with {@code max_length}, when the prompt and the longer response exceed it, each response is cut
 *       to {@code max_length} minus the longer response's length, TRL's rule (the prompt is never cut, and
 *       a response that this leaves with no token drops the pair).
 * </ol>
 *
 * A pair whose two responses split the prompt at different places (the tokenizer merges the prompt's last
 * token into one response only), which TRL trains with two different prompt lengths, is refused with the
 * record named.
 */
public final class ExperimentalPairEncoder {
    private final TextTokenizer tokenizer;
    private final PreferenceEncoder texts;
    private final int maxLength;

    /**
     * @param tokenizer the model's tokenizer
     * @param options the run's encoding options: its chat template variables and {@code max_length} (0: none)
     */
    public ExperimentalPairEncoder(TextTokenizer tokenizer, EncodingOptions options) {
        this.tokenizer = tokenizer;
        this.texts = new PreferenceEncoder(tokenizer, options);
        this.maxLength = options.maxLength();
    }

    /**
     * @param e a pair
     * @return its ids (the prompt with its bos, each response with its eos), or empty when {@code max_length}
     *     leaves a response no token
     * @throws DataException when the chat template refuses the record, its prompt encodes to nothing, or its
     *     responses split the prompt at different places
     */
    public Optional<EncodedPair> encode(PreferenceExample e) {
        PreferenceEncoder.Texts t = texts.pairTexts(e);
        int[] promptIds = tokenizer.encode(t.prompt());
        if (promptIds.length == 0 && bos() < 0) {
            throw new DataException(e.file(), e.line(), "prompt", "encodes to no tokens");
        }
        int[][] chosen = split(t.prompt(), t.chosen(), promptIds);
        int[][] rejected = split(t.prompt(), t.rejected(), promptIds);
        if (!Arrays.equals(chosen[0], rejected[0])) {
            throw new DataException(
                    e.file(),
                    e.line(),
                    "prompt",
                    "the tokenizer merges the prompt's last token into one response only ("
                            + (chosen[0].length < rejected[0].length ? "chosen" : "rejected")
                            + "), so the two responses would start at different places; end the prompt with a space"
                            + " or a newline");
        }
        int[] prompt = withBos(chosen[0]);
        int[] c = withEos(chosen[1]);
        int[] r = withEos(rejected[1]);
        if (maxLength > 0) {
            int longer = Math.max(c.length, r.length);
            if (prompt.length + longer > maxLength) {
                c = cut(c, maxLength - longer);
                r = cut(r, maxLength - longer);
            }
            if (c.length == 0 || r.length == 0) {
                return Optional.empty();
            }
        }
        return Optional.of(new EncodedPair(prompt, c, r, e.preference(), e.margin()));
    }

    /**
     * Encodes every pair.
     *
     * @param examples the pairs
     * @param skipInvalid skip and collect a refused record instead of stopping at it
     * @return the pairs, the examples kept, how many {@code max_length} dropped, and the skipped records
     */
    public PreferenceEncoder.Encoded encodeAll(List<PreferenceExample> examples, boolean skipInvalid) {
        List<EncodedPair> pairs = new ArrayList<>();
        List<PreferenceExample> kept = new ArrayList<>();
        List<DataException> invalid = new ArrayList<>();
        int dropped = 0;
        for (PreferenceExample e : examples) {
            Optional<EncodedPair> p;
            try {
                p = encode(e);
            } catch (DataException ex) {
                if (!skipInvalid) {
                    throw ex;
                }
                invalid.add(ex);
                continue;
            }
            if (p.isPresent()) {
                pairs.add(p.get());
                kept.add(e);
            } else {
                dropped++;
            }
        }
        return new PreferenceEncoder.Encoded(pairs, kept, dropped, invalid);
    }

    /** TRL's build_tokenized_answer: {prompt ids, response ids} of tok(prompt + response). */
    private int[][] split(String prompt, String response, int[] promptIds) {
        int[] full = tokenizer.encode(prompt + response);
        int start = promptIds.length;
        if (full.length < start || !Arrays.equals(full, 0, start, promptIds, 0, start)) {
            start--; // the last prompt token was merged into the response
        }
        start = Math.max(0, Math.min(start, full.length));
        return new int[][] {Arrays.copyOfRange(full, 0, start), Arrays.copyOfRange(full, start, full.length)};
    }

    /** The tokenizer's bos id, or -1 when its config names no bos token (TRL reads the tokenizer's {@code bos_token_id}). */
    private int bos() {
        return tokenizer.bosToken() == null ? -1 : tokenizer.bosId();
    }

    private int[] withBos(int[] prompt) {
        int bos = bos();
        if (bos < 0 || (prompt.length > 0 && prompt[0] == bos)) {
            return prompt;
        }
        int[] out = new int[prompt.length + 1];
        out[0] = bos;
        System.arraycopy(prompt, 0, out, 1, prompt.length);
        return out;
    }

    private int[] withEos(int[] response) {
        int eos = tokenizer.eosId();
        if (response.length > 0 && response[response.length - 1] == eos) {
            return response;
        }
        int[] out = Arrays.copyOf(response, response.length + 1);
        out[response.length] = eos;
        return out;
    }

    /** Python's {@code ids[:limit]}: a negative limit drops that many tokens from the end. */
    private static int[] cut(int[] ids, int limit) {
        int keep = limit >= 0 ? Math.min(limit, ids.length) : Math.max(0, ids.length + limit);
        return Arrays.copyOf(ids, keep);
    }
}
