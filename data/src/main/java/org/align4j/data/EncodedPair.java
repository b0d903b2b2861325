package org.align4j.data;

/**
 * One pair as token ids: the prompt once, each completion with its eos.
 *
 * @param prompt prompt ids
 * @param chosen chosen completion ids (ending in eos unless truncated)
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
