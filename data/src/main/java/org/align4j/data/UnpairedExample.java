package org.align4j.data;

/**
 * One example of unpaired feedback (TRL's unpaired preference format): a completion of a prompt and
 * whether it is desirable, as KTO trains on it.
 *
 * @param example the prompt and the completion, as a {@link PreferenceExample} whose chosen side is the
 *     completion and whose rejected side is empty (plain text or messages), so that {@link
 *     PreferenceEncoder} encodes it as it encodes a pair's chosen side
 * @param desirable the label: true for a desirable completion (a thumbs up), false for an undesirable one
 */
public record UnpairedExample(PreferenceExample example, boolean desirable) {
    /** @return where it came from, as {@code file:line} */
    public String source() {
        return example.file().getFileName() + ":" + example.line();
    }
}
