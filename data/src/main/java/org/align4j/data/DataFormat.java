package org.align4j.data;

/** The shape of preference records; detected per record from its fields unless forced. */
public enum DataFormat {
    /** Detect from the fields (the default). */
    AUTO,
    /** {@code prompt}, {@code chosen}, {@code rejected} strings (TRL's standard format). */
    STANDARD,
    /**
     * {@code prompt} a list of {@code {role, content}} messages, {@code chosen}/{@code rejected} lists
     * of assistant messages (TRL's conversational format).
     */
    CONVERSATIONAL,
    /**
     * No separate prompt: {@code chosen}/{@code rejected} are whole dialogues with a shared beginning,
     * as text (HH-RLHF's {@code \n\nHuman: … \n\nAssistant: …}) or as message lists.
     */
    IMPLICIT_PROMPT
}
