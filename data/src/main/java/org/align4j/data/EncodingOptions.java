package org.align4j.data;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * How pairs become token ids.
 *
 * @param maxLength longest prompt + completion, in tokens (0 = no limit)
 * @param maxPromptLength longest prompt, in tokens (0 = no limit)
 * @param truncation which end of an over-long prompt to keep
 * @param chatTemplateForText render plain-text prompts as one user message through the chat
 *     template (conversational pairs always use it)
 * @param chatTemplateKwargs chat-template variables for every pair of the run ({@code
 *     enable_thinking}, {@code tools}, ...); a record's own {@code tools} and {@code
 *     chat_template_kwargs} win over them; never null
 */
public record EncodingOptions(
        int maxLength,
        int maxPromptLength,
        Truncation truncation,
        boolean chatTemplateForText,
        Map<String, Object> chatTemplateKwargs) {

    /**
     * Options without run-wide chat-template variables.
     *
     * @param maxLength longest prompt + completion (0 = no limit)
     * @param maxPromptLength longest prompt (0 = no limit)
     * @param truncation which end of a long prompt to keep
     * @param chatTemplateForText template plain prompts
     */
    public EncodingOptions(int maxLength, int maxPromptLength, Truncation truncation, boolean chatTemplateForText) {
        this(maxLength, maxPromptLength, truncation, chatTemplateForText, Map.of());
    }

    /**
     * @param kwargs chat-template variables for every pair
     * @return these options with them
     */
    public EncodingOptions withChatTemplateKwargs(Map<String, Object> kwargs) {
        return new EncodingOptions(maxLength, maxPromptLength, truncation, chatTemplateForText, kwargs);
    }

    /** Which end of an over-long prompt survives. */
    public enum Truncation {
        /** Keep the last tokens (the end of the prompt sits next to the response; TRL's default). */
        KEEP_END,
        /** Keep the first tokens. */
        KEEP_START
    }

    /** Checks the values. */
    public EncodingOptions {
        chatTemplateKwargs = chatTemplateKwargs == null
                ? Map.of()
                : Collections.unmodifiableMap(new LinkedHashMap<>(chatTemplateKwargs));
        if (maxLength < 0) {
            throw new IllegalArgumentException("maxLength: must be >= 0, got " + maxLength);
        }
        if (maxPromptLength < 0) {
            throw new IllegalArgumentException("maxPromptLength: must be >= 0, got " + maxPromptLength);
        }
        if (maxLength > 0 && maxPromptLength >= maxLength) {
            throw new IllegalArgumentException("maxPromptLength: must be below maxLength (" + maxLength
                    + ") to leave room for a response, got " + maxPromptLength);
        }
    }

    /** @return no limits, keep_end, no template for plain text */
    public static EncodingOptions unlimited() {
        return new EncodingOptions(0, 0, Truncation.KEEP_END, false);
    }
}
