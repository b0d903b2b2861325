package org.align4j.data;

import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One preference pair as parsed, before templating: either plain text (prompt, chosen, rejected
 * strings) or a conversation (prompt messages, and the chosen and rejected assistant turns).
 *
 * @param prompt the prompt text (plain pairs), or null
 * @param chosen the preferred response text (plain pairs), or null
 * @param rejected the other response text (plain pairs), or null
 * @param promptMessages the conversation so far (conversational pairs), or null
 * @param chosenMessages the preferred assistant turn(s) (conversational pairs), or null
 * @param rejectedMessages the other assistant turn(s) (conversational pairs), or null
 * @param preference P(chosen ≻ rejected) in [0, 1] when the data gives one, else null
 * @param file where it came from
 * @param line its line, element or row (1-based)
 * @param templateArgs the record's own chat-template variables, or null: TRL's {@code tools} (a list of
 *     JSON schemas) and the entries of {@code chat_template_kwargs} (e.g. {@code enable_thinking})
 * @param margin how much better the chosen response is, for a reward model's loss −log σ(r_c − r_r −
 *     margin) (TRL RewardTrainer's {@code margin} column), or null
 */
public record PreferenceExample(
        String prompt,
        String chosen,
        String rejected,
        List<Message> promptMessages,
        List<Message> chosenMessages,
        List<Message> rejectedMessages,
        Double preference,
        Path file,
        long line,
        Map<String, Object> templateArgs,
        Double margin) {

    /** Keeps the template variables read-only. */
    public PreferenceExample {
        templateArgs = templateArgs == null ? null : Collections.unmodifiableMap(new LinkedHashMap<>(templateArgs));
    }

    /**
     * A pair without a margin.
     *
     * @param prompt prompt text or null
     * @param chosen chosen text or null
     * @param rejected rejected text or null
     * @param promptMessages prompt messages or null
     * @param chosenMessages chosen messages or null
     * @param rejectedMessages rejected messages or null
     * @param preference p or null
     * @param file source file
     * @param line source line
     * @param templateArgs chat-template variables or null
     */
    public PreferenceExample(
            String prompt,
            String chosen,
            String rejected,
            List<Message> promptMessages,
            List<Message> chosenMessages,
            List<Message> rejectedMessages,
            Double preference,
            Path file,
            long line,
            Map<String, Object> templateArgs) {
        this(
                prompt,
                chosen,
                rejected,
                promptMessages,
                chosenMessages,
                rejectedMessages,
                preference,
                file,
                line,
                templateArgs,
                null);
    }

    /**
     * A pair without chat-template variables of its own.
     *
     * @param prompt prompt text or null
     * @param chosen chosen text or null
     * @param rejected rejected text or null
     * @param promptMessages prompt messages or null
     * @param chosenMessages chosen messages or null
     * @param rejectedMessages rejected messages or null
     * @param preference p or null
     * @param file source file
     * @param line source line
     */
    public PreferenceExample(
            String prompt,
            String chosen,
            String rejected,
            List<Message> promptMessages,
            List<Message> chosenMessages,
            List<Message> rejectedMessages,
            Double preference,
            Path file,
            long line) {
        this(prompt, chosen, rejected, promptMessages, chosenMessages, rejectedMessages, preference, file, line, null);
    }

    /**
     * @param args chat-template variables for this pair (null for none)
     * @return this pair with them
     */
    public PreferenceExample withTemplateArgs(Map<String, Object> args) {
        return new PreferenceExample(
                prompt,
                chosen,
                rejected,
                promptMessages,
                chosenMessages,
                rejectedMessages,
                preference,
                file,
                line,
                args,
                margin);
    }

    /**
     * @param m the pair's reward margin (null for none)
     * @return this pair with it
     */
    public PreferenceExample withMargin(Double m) {
        return new PreferenceExample(
                prompt,
                chosen,
                rejected,
                promptMessages,
                chosenMessages,
                rejectedMessages,
                preference,
                file,
                line,
                templateArgs,
                m);
    }

    /** @return whether this pair is a conversation (rendered through the chat template) */
    public boolean conversational() {
        return promptMessages != null;
    }

    /**
     * @return whether this is a language-modeling example ({@link #languageModeling}): one whole sequence,
     *     trained on every token, with no prompt
     */
    public boolean wholeSequence() {
        return promptMessages != null ? promptMessages.isEmpty() : prompt == null && chosen != null;
    }

    /**
     * A language-modeling example of plain text, as TRL 1.13's SFTTrainer reads a {@code {"text": ...}} record:
     * the text and the eos token (appended when missing), tokenized with the tokenizer's special tokens, a loss
     * on every token. It has no prompt (null) and the text as its chosen response.
     *
     * @param text the text
     * @param file source file
     * @param line source line
     * @return the example
     */
    public static PreferenceExample languageModeling(String text, Path file, long line) {
        return new PreferenceExample(null, text, null, null, null, null, null, file, line);
    }

    /**
     * A language-modeling conversation, as TRL 1.13's SFTTrainer reads a {@code {"messages": [...]}} record: the
     * whole conversation through the chat template ({@code apply_chat_template(messages, tokenize=True)}), a loss
     * on every token. Its prompt is the empty conversation and its chosen response every message.
     *
     * @param messages the conversation
     * @param file source file
     * @param line source line
     * @param templateArgs the record's {@code tools} and {@code chat_template_kwargs}, or null
     * @return the example
     */
    public static PreferenceExample languageModeling(
            List<Message> messages, Path file, long line, Map<String, Object> templateArgs) {
        return new PreferenceExample(
                null, null, null, List.of(), List.copyOf(messages), null, null, file, line, templateArgs);
    }

    /**
     * A plain-text pair.
     *
     * @param prompt prompt
     * @param chosen preferred response
     * @param rejected other response
     * @param preference p or null
     * @param file source file
     * @param line source line
     * @return the pair
     */
    public static PreferenceExample text(
            String prompt, String chosen, String rejected, Double preference, Path file, long line) {
        return new PreferenceExample(prompt, chosen, rejected, null, null, null, preference, file, line);
    }

    /**
     * A conversational pair.
     *
     * @param prompt the conversation so far
     * @param chosen preferred assistant turn(s)
     * @param rejected other assistant turn(s)
     * @param preference p or null
     * @param file source file
     * @param line source line
     * @return the pair
     */
    public static PreferenceExample conversation(
            List<Message> prompt,
            List<Message> chosen,
            List<Message> rejected,
            Double preference,
            Path file,
            long line) {
        return new PreferenceExample(
                null,
                null,
                null,
                List.copyOf(prompt),
                List.copyOf(chosen),
                List.copyOf(rejected),
                preference,
                file,
                line);
    }

    /** @return the prompt as displayed (text, or the messages' contents joined) */
    public String promptText() {
        return prompt != null ? prompt : promptMessages == null ? "" : join(promptMessages);
    }

    /** @return the chosen response as displayed */
    public String chosenText() {
        return chosen != null ? chosen : join(chosenMessages);
    }

    /** @return the rejected response as displayed */
    public String rejectedText() {
        return rejected != null ? rejected : join(rejectedMessages);
    }

    private static String join(List<Message> messages) {
        StringBuilder sb = new StringBuilder();
        for (Message m : messages) {
            if (sb.length() > 0) {
                sb.append('\n');
            }
            sb.append(m.role()).append(": ").append(m.content());
        }
        return sb.toString();
    }
}
