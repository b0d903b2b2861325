package org.align4j.data;

import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import org.align4j.model.config.ModelConfig;

/**
 * One pair as token ids: the prompt once, then each completion as training scores it (see {@link
 * PreferenceEncoder}: a plain completion ends in one eos; a conversational one is what the chat template
 * adds after the prompt, its end-of-turn tokens included).
 *
 * @param prompt prompt ids
 * @param chosen chosen completion ids
 * @param rejected rejected completion ids
 * @param preference P(chosen ≻ rejected), or null
 */
public record EncodedPair(int[] prompt, int[] chosen, int[] rejected, Double preference) {
    /** @return the longer of the two sequences, prompt included */
    public int maxLength() {
        return prompt.length + Math.max(chosen.length, rejected.length);
    }

    /** @return tokens in both rows */
    public int tokens() {
        return 2 * prompt.length + chosen.length + rejected.length;
    }

    /**
     * Checks encoded pairs against the model they will run through, before any forward pass: a row
     * (prompt and one completion) longer than learned position embeddings, or an id outside the
     * vocabulary, is named by its record ({@link ModelConfig#problemWith}).
     *
     * @param model the model's config
     * @param pairs the pairs
     * @param sources where each came from (file:line), in the same order
     * @throws IllegalArgumentException naming the record and the problem
     */
    public static void checkFits(ModelConfig model, List<EncodedPair> pairs, List<String> sources) {
        for (int i = 0; i < pairs.size(); i++) {
            EncodedPair p = pairs.get(i);
            for (int[] completion : new int[][] {p.chosen(), p.rejected()}) {
                if (completion.length == 0) {
                    continue; // SFT examples have no rejected side
                }
                int[] row = Arrays.copyOf(p.prompt(), p.prompt().length + completion.length);
                System.arraycopy(completion, 0, row, p.prompt().length, completion.length);
                Optional<String> problem = model.problemWith(row);
                if (problem.isPresent()) {
                    throw new IllegalArgumentException(sources.get(i) + ": " + problem.get());
                }
            }
        }
    }
}
