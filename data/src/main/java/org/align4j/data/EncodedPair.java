package org.align4j.data;

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
}
