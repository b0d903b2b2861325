package org.align4j.data;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import org.align4j.data.template.ChatTemplate;
import org.align4j.model.tokenizer.TextTokenizer;

/**
 * The one place that turns a {@link PreferenceExample} into token ids: chat template, tokenization,
 * one eos after each completion, truncation.
 *
 * <p>Plain pairs: prompt and completions are tokenized separately, without special tokens, and eos is
 * appended to each completion (as TRL does and as the fixtures do). Conversational pairs: the prompt
 * messages are rendered with {@code add_generation_prompt}; each completion is the text the full
 * conversation adds after the prompt, stripped of trailing whitespace; eos is appended unless the
 * template already ended the turn with it. Truncation: the prompt is cut to {@code maxPromptLength}
 * (keeping its end or its start), then completions to what {@code maxLength} leaves; a pair whose
 * completion would lose every token is dropped, never trained on.
 *
 * <p>An example without a rejected response (an SFT prompt/completion example) encodes with an empty
 * rejected completion.
 */
public final class PreferenceEncoder {
    private final TextTokenizer tokenizer;
    private final ChatTemplate template;
    private final EncodingOptions options;
    private final int eos;

    /**
     * @param tokenizer the model's tokenizer
     * @param options limits and templating
     */
    public PreferenceEncoder(TextTokenizer tokenizer, EncodingOptions options) {
        this.tokenizer = tokenizer;
        this.options = options;
        this.template = tokenizer.chatTemplate().isPresent() ? ChatTemplate.of(tokenizer) : null;
        this.eos = tokenizer.eosId();
        if (eos < 0) {
            throw new IllegalArgumentException(tokenizer.dir().resolve("tokenizer_config.json")
                    + ": key 'eos_token': the tokenizer names no eos token; completions need one");
        }
        if (options.chatTemplateForText() && template == null) {
            throw new IllegalArgumentException(tokenizer.dir().resolve("tokenizer_config.json")
                    + ": key 'chat_template': asked to template plain prompts, but the model has no chat template");
        }
    }

    /** @return the tokenizer */
    public TextTokenizer tokenizer() {
        return tokenizer;
    }

    /**
     * @param e a pair
     * @return its ids, or empty when it cannot fit {@code maxLength} (dropped)
     */
    public Optional<EncodedPair> encode(PreferenceExample e) {
        int[] prompt;
        int[] chosen;
        int[] rejected;
        if (e.conversational()) {
            if (template == null) {
                throw new DataException(e.file(), e.line(), "prompt",
                        "conversational pair, but the model has no chat_template in tokenizer_config.json");
            }
            String promptText = template.render(toTemplate(e.promptMessages()), true);
            prompt = tokenizer.encode(promptText);
            chosen = completion(e, "chosen", promptText, e.chosenMessages());
            rejected = e.rejectedMessages() == null ? new int[0] : completion(e, "rejected", promptText, e.rejectedMessages());
        } else {
            String promptText = options.chatTemplateForText()
                    ? template.render(List.of(new ChatTemplate.Message("user", e.prompt())), true)
                    : e.prompt();
            prompt = tokenizer.encode(promptText);
            chosen = withEos(tokenizer.encode(e.chosen()));
            rejected = e.rejected() == null ? new int[0] : withEos(tokenizer.encode(e.rejected()));
        }
        if (prompt.length == 0) {
            throw new DataException(e.file(), e.line(), "prompt", "encodes to no tokens");
        }
        prompt = truncatePrompt(prompt);
        if (options.maxLength() > 0) {
            int room = options.maxLength() - prompt.length;
            if (room <= 0) {
                return Optional.empty();
            }
            chosen = Arrays.copyOf(chosen, Math.min(chosen.length, room));
            rejected = Arrays.copyOf(rejected, Math.min(rejected.length, room));
        }
        return Optional.of(new EncodedPair(prompt, chosen, rejected, e.preference()));
    }

    private int[] truncatePrompt(int[] prompt) {
        int max = options.maxPromptLength();
        if (max == 0 || prompt.length <= max) {
            return prompt;
        }
        return options.truncation() == EncodingOptions.Truncation.KEEP_END
                ? Arrays.copyOfRange(prompt, prompt.length - max, prompt.length)
                : Arrays.copyOf(prompt, max);
    }

    private int[] completion(PreferenceExample e, String field, String promptText, List<Message> response) {
        List<Message> all = new ArrayList<>(e.promptMessages());
        all.addAll(response);
        String full = template.render(toTemplate(all), false);
        if (!full.startsWith(promptText)) {
            throw new DataException(e.file(), e.line(), field,
                    "the chat template renders the conversation with a different beginning than the prompt alone; cannot split off the response");
        }
        String text = full.substring(promptText.length()).stripTrailing();
        int[] ids = tokenizer.encode(text);
        if (ids.length == 0) {
            throw new DataException(e.file(), e.line(), field, "the response renders to no tokens");
        }
        return ids[ids.length - 1] == eos ? ids : withEos(ids);
    }

    private static List<ChatTemplate.Message> toTemplate(List<Message> messages) {
        return messages.stream().map(m -> new ChatTemplate.Message(m.role(), m.content())).toList();
    }

    private int[] withEos(int[] ids) {
        int[] out = Arrays.copyOf(ids, ids.length + 1);
        out[ids.length] = eos;
        return out;
    }
}
