package org.align4j.data;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;
import org.align4j.data.template.ChatTemplate;
import org.align4j.model.tokenizer.TextTokenizer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one place that turns a {@link PreferenceExample} into token ids: chat template, tokenization,
 * truncation.
 *
 * <p>Conversational pairs follow TRL 1.13's {@code DPOTrainer._prepare_dataset} exactly: with {@code
 * kwargs = {tools: record.tools, **record.chat_template_kwargs}} (over the run's {@link
 * EncodingOptions#chatTemplateKwargs}), {@code prompt_ids = tok(template(prompt,
 * add_generation_prompt=True, **kwargs))}, {@code full = tok(template(prompt + chosen, **kwargs))} and
 * {@code chosen_ids = full[len(prompt_ids):]}; nothing is appended or stripped (the template ends the
 * turn as the model was trained to see it, {@code <|im_end|>\n} or {@code <end_of_turn>\n}). Like TRL,
 * a full conversation whose ids do not start with the prompt's ids is split at the prompt's length all
 * the same, with a warning naming the record; where that leaves a completion with no ids (TRL then
 * trains on an empty completion) the record is refused with a {@link DataException} instead.
 * Tokenization adds no special tokens (the template places them), as {@code
 * apply_chat_template(tokenize=True)}.
 *
 * <p>Plain pairs: the prompt as TRL 1.13's {@code DPOTrainer} tokenizes it, {@code tok(prompt)} with the
 * special tokens the tokenizer adds (a bos for Llama-family tokenizers); each completion tokenized apart,
 * without special tokens, and eos appended when it does not already end with it (as TRL appends it only
 * when missing; an empty completion is its eos alone). TRL tokenizes prompt + completion together and
 * splits at the prompt's length: the same ids unless a token straddles the boundary, where TRL warns and
 * its first completion token carries prompt text; align4j keeps the completion's own tokens there. Truncation: the prompt is cut to {@code
 * maxPromptLength} (keeping its end or its start), then completions to what {@code maxLength} leaves;
 * a pair whose completion would lose every token is dropped, never trained on.
 *
 * <p>For a reward model ({@link #encodeSequences}) each side of a pair is one whole sequence, as TRL
 * 1.13's {@code RewardTrainer} tokenizes it: a conversation is {@code tok(template(prompt + response,
 * **kwargs))}; plain text is {@code tokenizer(prompt + response + eos)} as one string, with the special
 * tokens the tokenizer adds (a bos for Llama-family tokenizers) and the eos token's text appended only
 * when the response does not already end with it. A pair with a sequence longer than {@code maxLength}
 * is dropped, not cut (TRL filters it), so a reward is never read from a truncated answer.
 *
 * <p>An example without a rejected response (an SFT prompt/completion example) encodes with an empty
 * rejected completion; a language-modeling example (TRL's {@code text} and {@code messages} records) encodes as
 * one whole sequence after an empty prompt ({@link #encode}). A template that raises or fails for a record is reported as a {@link
 * DataException} naming the record's file, line and field and the template's file and line.
 */
public final class PreferenceEncoder {
    private static final Logger LOG = LoggerFactory.getLogger(PreferenceEncoder.class);

    private final TextTokenizer tokenizer;
    private final ChatTemplate template;
    private final EncodingOptions options;
    private final int eos;

    /**
     * The texts of a pair after templating, as training sees them.
     *
     * @param prompt the prompt text (rendered with the generation prompt for conversations)
     * @param chosen the chosen completion: for a conversation, what the full rendered conversation adds
     *     after the rendered prompt; for a plain pair, the text and the eos token
     * @param rejected the rejected completion, likewise (empty when there is none)
     */
    public record Texts(String prompt, String chosen, String rejected) {}

    /**
     * @param tokenizer the model's tokenizer
     * @param options limits and templating
     */
    public PreferenceEncoder(TextTokenizer tokenizer, EncodingOptions options) {
        this(tokenizer, options, tokenizer.chatTemplate().isPresent() ? ChatTemplate.of(tokenizer) : null);
    }

    /**
     * @param tokenizer the model's tokenizer
     * @param options limits and templating
     * @param template the chat template to render conversations with (e.g. {@code
     *     ChatTemplate.of(tokenizer).withClock(clock)}), or null when the model has none
     */
    public PreferenceEncoder(TextTokenizer tokenizer, EncodingOptions options, ChatTemplate template) {
        this.tokenizer = tokenizer;
        this.options = options;
        this.template = template;
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
     * @throws DataException when the chat template refuses the record, or a part encodes to no tokens
     */
    public Optional<EncodedPair> encode(PreferenceExample e) {
        if (e.wholeSequence()) {
            return encodeWhole(e);
        }
        int[] prompt;
        int[] chosen;
        int[] rejected;
        if (e.conversational()) {
            Map<String, Object> kwargs = kwargs(e);
            String promptText = render(e, "prompt", e.promptMessages(), true, kwargs);
            Head head = head(promptText);
            prompt = head.encode(promptText);
            chosen = completion(e, "chosen", prompt, head, e.chosenMessages(), kwargs);
            rejected = e.rejectedMessages() == null
                    ? new int[0]
                    : completion(e, "rejected", prompt, head, e.rejectedMessages(), kwargs);
        } else {
            // the prompt as TRL 1.13's DPOTrainer tokenizes it, tok(prompt) with the tokenizer's special tokens
            // (a bos for Llama-family tokenizers); each completion apart, without special tokens, then eos
            // when missing: TRL tokenizes prompt + completion together, which equals this unless a token
            // straddles the boundary (then TRL warns and its first completion token holds prompt text)
            prompt = tokenizer.encodeWithSpecialTokens(plainPrompt(e));
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
        return Optional.of(new EncodedPair(prompt, chosen, rejected, e.preference(), e.margin()));
    }

    /**
     * A language-modeling example ({@link PreferenceExample#languageModeling}) as TRL 1.13's SFTTrainer
     * tokenizes it ({@code trl.data_utils._tokenize}): a conversation is {@code apply_chat_template(messages,
     * tokenize=True)} (no special tokens added, the template places them, nothing appended); text is {@code
     * tokenizer(text + eos)} with the tokenizer's special tokens, eos's text appended only when missing. The ids
     * are the pair's chosen completion after an empty prompt, so the loss covers every token but the first
     * (which nothing precedes); {@code maxLength} keeps the first tokens, as TRL truncates.
     */
    private Optional<EncodedPair> encodeWhole(PreferenceExample e) {
        if (e.rejected() != null || e.rejectedMessages() != null) {
            throw new IllegalStateException("a language-modeling example has no rejected response");
        }
        String field = e.conversational() ? "messages" : "text";
        int[] ids = e.conversational()
                ? tokenizer.encode(render(e, field, e.chosenMessages(), false, kwargs(e)))
                : tokenizer.encodeWithSpecialTokens(withEosText(e.chosen(), tokenizer.decode(new int[] {eos}, false)));
        if (ids.length < 2) {
            throw new DataException(
                    e.file(),
                    e.line(),
                    field,
                    "encodes to " + ids.length + " token(s): nothing to learn (the first token is never predicted)");
        }
        if (options.maxLength() > 0 && ids.length > options.maxLength()) {
            if (options.maxLength() < 2) {
                return Optional.empty();
            }
            ids = Arrays.copyOf(ids, options.maxLength());
        }
        return Optional.of(new EncodedPair(new int[0], ids, new int[0], null, null));
    }

    /**
     * The ids of a prompt alone, as {@link #encode} makes them for a pair (a conversation rendered with
     * the generation prompt; plain text as it is, with the tokenizer's special tokens as TRL's GRPO and RLOO
     * tokenize it, or through the template with {@code chat_template}),
     * truncated to {@code max_prompt_length}: what an RL trainer samples completions after.
     *
     * @param e an example whose prompt is set (responses are not read)
     * @return the prompt's ids
     * @throws DataException when the chat template refuses the record or the prompt encodes to no tokens
     */
    public int[] encodePrompt(PreferenceExample e) {
        int[] prompt;
        if (e.conversational()) {
            String text = render(e, "prompt", e.promptMessages(), true, kwargs(e));
            prompt = head(text).encode(text);
        } else {
            // TRL 1.13's GRPO/RLOO: processing_class(text=prompts), with the tokenizer's special tokens
            prompt = tokenizer.encodeWithSpecialTokens(plainPrompt(e));
        }
        if (prompt.length == 0) {
            throw new DataException(e.file(), e.line(), "prompt", "encodes to no tokens");
        }
        return truncatePrompt(prompt);
    }

    /**
     * @param e an example whose prompt is set
     * @return the prompt's text as {@link #encodePrompt} tokenizes it
     */
    public String promptText(PreferenceExample e) {
        return e.conversational() ? render(e, "prompt", e.promptMessages(), true, kwargs(e)) : plainPrompt(e);
    }

    /** What a pair's ids are for. */
    public enum Target {
        /** A policy's log-probs: the prompt once, each completion apart ({@link #encode}). */
        POLICY,
        /** A reward model's scores: each side one whole sequence ({@link #encodeSequences}). */
        REWARD_MODEL
    }

    /**
     * A pair as a reward model reads it: each side one whole sequence (prompt and response), in an
     * {@link EncodedPair} whose prompt is empty, so that {@link PreferenceBatch#of} lays out the 2B rows
     * (chosen, then rejected) and pads them.
     *
     * @param e a pair
     * @return its sequences, or empty when one is longer than {@code maxLength} (dropped, as TRL filters it)
     * @throws DataException when the chat template refuses the record, or a sequence encodes to no tokens
     */
    public Optional<EncodedPair> encodeSequences(PreferenceExample e) {
        int[] chosen;
        int[] rejected;
        if (e.conversational()) {
            Map<String, Object> kwargs = kwargs(e);
            chosen = tokenizer.encode(fullText(e, "chosen", e.chosenMessages(), kwargs));
            rejected = e.rejectedMessages() == null
                    ? new int[0]
                    : tokenizer.encode(fullText(e, "rejected", e.rejectedMessages(), kwargs));
        } else {
            String eosText = tokenizer.decode(new int[] {eos}, false);
            String prompt = plainPrompt(e);
            chosen = tokenizer.encodeWithSpecialTokens(prompt + withEosText(e.chosen(), eosText));
            rejected = e.rejected() == null
                    ? new int[0]
                    : tokenizer.encodeWithSpecialTokens(prompt + withEosText(e.rejected(), eosText));
        }
        if (chosen.length == 0) {
            throw new DataException(e.file(), e.line(), "chosen", "encodes to no tokens");
        }
        if (options.maxLength() > 0 && Math.max(chosen.length, rejected.length) > options.maxLength()) {
            return Optional.empty();
        }
        return Optional.of(new EncodedPair(new int[0], chosen, rejected, e.preference(), e.margin()));
    }

    /**
     * One prompt and response as a reward model reads it (a judge scoring a generated answer): the
     * plain-text rule of {@link #encodeSequences}, eos appended when missing, never truncated.
     *
     * @param prompt the prompt text (already templated, if the model expects a template)
     * @param response the response text
     * @return the sequence's ids
     */
    public int[] encodeSequence(String prompt, String response) {
        return tokenizer.encodeWithSpecialTokens(
                prompt + withEosText(response, tokenizer.decode(new int[] {eos}, false)));
    }

    /**
     * The pairs of a dataset as ids, and what became of the others.
     *
     * @param pairs the encoded pairs, in order
     * @param kept the examples they came from, one per pair
     * @param dropped how many could not fit {@code maxLength}
     * @param invalid the records the chat template or tokenizer refused (empty unless skipping)
     */
    public record Encoded(
            List<EncodedPair> pairs, List<PreferenceExample> kept, int dropped, List<DataException> invalid) {}

    /**
     * Encodes every example: the one loop behind training, evaluation and {@code data inspect}.
     *
     * @param examples the examples
     * @param skipInvalid skip and collect a record the template refuses (e.g. two user turns in a row
     *     where the template raises) instead of stopping at it
     * @return the pairs, the examples kept, the count dropped by truncation, and the skipped records
     * @throws DataException at the first refused record unless skipping
     */
    public Encoded encodeAll(List<PreferenceExample> examples, boolean skipInvalid) {
        return encodeAll(examples, skipInvalid, Target.POLICY);
    }

    /**
     * Encodes every example for a policy or for a reward model.
     *
     * @param examples the examples
     * @param skipInvalid skip and collect a refused record instead of stopping at it
     * @param target what the ids are for
     * @return the pairs, the examples kept, the count dropped by {@code maxLength}, and the skipped records
     * @throws DataException at the first refused record unless skipping
     */
    public Encoded encodeAll(List<PreferenceExample> examples, boolean skipInvalid, Target target) {
        List<EncodedPair> pairs = new ArrayList<>();
        List<PreferenceExample> kept = new ArrayList<>();
        List<DataException> invalid = new ArrayList<>();
        int dropped = 0;
        for (PreferenceExample e : examples) {
            Optional<EncodedPair> p;
            try {
                p = target == Target.REWARD_MODEL ? encodeSequences(e) : encode(e);
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
        if (!invalid.isEmpty()) {
            LOG.warn(
                    "Skipped {} record(s) the chat template or tokenizer refused; first: {}",
                    invalid.size(),
                    invalid.get(0).getMessage());
        }
        return new Encoded(pairs, kept, dropped, invalid);
    }

    /**
     * The texts {@link #encode} tokenizes, for showing a pair as training sees it ({@code data inspect}).
     *
     * @param e a pair
     * @return the prompt and completion texts (before truncation)
     * @throws DataException when the chat template refuses the record
     */
    public Texts texts(PreferenceExample e) {
        if (e.wholeSequence()) {
            return new Texts(
                    "",
                    e.conversational()
                            ? render(e, "messages", e.chosenMessages(), false, kwargs(e))
                            : withEosText(e.chosen(), tokenizer.decode(new int[] {eos}, false)),
                    "");
        }
        if (!e.conversational()) {
            String eosText = tokenizer.decode(new int[] {eos}, false);
            return new Texts(
                    plainPrompt(e),
                    withEosText(e.chosen(), eosText),
                    e.rejected() == null ? "" : withEosText(e.rejected(), eosText));
        }
        Map<String, Object> kwargs = kwargs(e);
        String prompt = render(e, "prompt", e.promptMessages(), true, kwargs);
        return new Texts(
                prompt,
                completionText(e, "chosen", prompt, e.chosenMessages(), kwargs),
                e.rejectedMessages() == null
                        ? ""
                        : completionText(e, "rejected", prompt, e.rejectedMessages(), kwargs));
    }

    /**
     * A pair's texts as TRL 1.13's {@code maybe_apply_chat_template} makes them before its experimental
     * ORPO and CPO trainers tokenize them: for a conversation, the prompt rendered with the generation
     * prompt and cut to what it shares with both whole conversations (a no-op except for templates such as
     * DeepSeek-R1's), and each response what its whole conversation adds after that; a plain pair's texts
     * as they are, with no eos (those trainers append the eos id after tokenizing).
     *
     * @param e a pair
     * @return its prompt, chosen and rejected texts
     * @throws DataException when the chat template refuses the record
     */
    public Texts pairTexts(PreferenceExample e) {
        if (!e.conversational()) {
            return new Texts(plainPrompt(e), e.chosen(), e.rejected() == null ? "" : e.rejected());
        }
        Map<String, Object> kwargs = kwargs(e);
        String prompt = render(e, "prompt", e.promptMessages(), true, kwargs);
        String chosen = fullText(e, "chosen", e.chosenMessages(), kwargs);
        String rejected = e.rejectedMessages() == null ? null : fullText(e, "rejected", e.rejectedMessages(), kwargs);
        int common = commonPrefix(prompt, chosen);
        if (rejected != null) {
            common = Math.min(common, commonPrefix(prompt, rejected));
        }
        return new Texts(
                prompt.substring(0, common),
                chosen.substring(common),
                rejected == null ? "" : rejected.substring(common));
    }

    private static int commonPrefix(String a, String b) {
        int n = Math.min(a.length(), b.length());
        int i = 0;
        while (i < n && a.charAt(i) == b.charAt(i)) {
            i++;
        }
        return i;
    }

    private String plainPrompt(PreferenceExample e) {
        if (!options.chatTemplateForText()) {
            return e.prompt();
        }
        return render(e, "prompt", List.of(new Message("user", e.prompt())), true, options.chatTemplateKwargs());
    }

    /** The run's variables, then the record's tools and chat_template_kwargs over them (TRL's order). */
    private Map<String, Object> kwargs(PreferenceExample e) {
        if (e.templateArgs() == null) {
            return options.chatTemplateKwargs();
        }
        Map<String, Object> k = new LinkedHashMap<>(options.chatTemplateKwargs());
        k.putAll(e.templateArgs());
        return k;
    }

    private String render(
            PreferenceExample e,
            String field,
            List<Message> messages,
            boolean addGenerationPrompt,
            Map<String, Object> kwargs) {
        if (template == null) {
            throw new DataException(
                    e.file(),
                    e.line(),
                    field,
                    "conversational pair, but the model has no chat_template in "
                            + tokenizer.dir().resolve("tokenizer_config.json"));
        }
        List<Map<String, Object>> maps = new ArrayList<>(messages.size());
        for (Message m : messages) {
            maps.add(m.toTemplate());
        }
        try {
            return template.render(maps, addGenerationPrompt, kwargs);
        } catch (ChatTemplate.TemplateException ex) {
            throw new DataException(
                    e.file(), e.line(), field, ex.getMessage() + " in the chat template of " + templateFile());
        }
    }

    /** Where the template came from, for errors: chat_template.jinja when the model has one. */
    private Path templateFile() {
        Path jinja = tokenizer.dir().resolve("chat_template.jinja");
        return Files.isRegularFile(jinja) ? jinja : tokenizer.dir().resolve("tokenizer_config.json");
    }

    private String fullText(PreferenceExample e, String field, List<Message> response, Map<String, Object> kwargs) {
        List<Message> all = new ArrayList<>(e.promptMessages());
        all.addAll(response);
        return render(e, field, all, false, kwargs);
    }

    /**
     * The ids of a prompt's text up to its last added token, shared by the prompt and both full
     * conversations: they start with the same text, and HF tokenizers tokenize the text after an added
     * token apart from what precedes it ({@link TextTokenizer#cutAfterLastAddedToken}), so each full
     * conversation is tokenized only from there, as fast as the completions alone. The first {@value
     * #VERIFIED_PAIRS} pairs are also tokenized whole and compared; any difference turns the shortcut off.
     */
    private final class Head {
        private final String text;
        private final int[] ids;

        Head(String text, int[] ids) {
            this.text = text;
            this.ids = ids;
        }

        int[] encode(String whole) {
            if (ids == null || !whole.startsWith(text)) {
                return tokenizer.encode(whole);
            }
            int[] tail = tokenizer.encode(whole.substring(text.length()));
            int[] out = Arrays.copyOf(ids, ids.length + tail.length);
            System.arraycopy(tail, 0, out, ids.length, tail.length);
            if (verified.get() < VERIFIED_PAIRS) {
                int[] direct = tokenizer.encode(whole);
                verified.incrementAndGet();
                if (!Arrays.equals(direct, out)) {
                    cutAtAddedTokens = false;
                    LOG.warn(
                            "{}: tokenizing after the last added token differs from tokenizing the whole text; tokenizing whole texts from now on",
                            tokenizer.dir().resolve("tokenizer.json"));
                    return direct;
                }
            }
            return out;
        }
    }

    private static final int VERIFIED_PAIRS = 16;
    private final AtomicInteger verified = new AtomicInteger();
    private volatile boolean cutAtAddedTokens = true;

    private Head head(String promptText) {
        int cut = cutAtAddedTokens ? tokenizer.cutAfterLastAddedToken(promptText) : -1;
        if (cut <= 0) {
            return new Head("", null);
        }
        String text = promptText.substring(0, cut);
        return new Head(text, tokenizer.encode(text));
    }

    private int[] completion(
            PreferenceExample e,
            String field,
            int[] prompt,
            Head head,
            List<Message> response,
            Map<String, Object> kwargs) {
        int[] full = head.encode(fullText(e, field, response, kwargs));
        if (full.length < prompt.length || !Arrays.equals(full, 0, prompt.length, prompt, 0, prompt.length)) {
            LOG.warn(
                    "{}:{}: field '{}': the ids of prompt + {} do not start with the prompt's ids; split at the prompt's length as TRL does",
                    e.file(),
                    e.line(),
                    field,
                    field);
        }
        int[] ids = Arrays.copyOfRange(full, Math.min(prompt.length, full.length), full.length);
        if (ids.length == 0) {
            // TRL keeps such a pair with an empty completion, which trains nothing; it is refused here instead
            throw new DataException(
                    e.file(),
                    e.line(),
                    field,
                    "no " + field + " tokens: the chat template renders prompt + " + field
                            + " to " + full.length + " ids, no more than the prompt's " + prompt.length
                            + " (it renders the prompt differently inside the whole conversation)");
        }
        return ids;
    }

    private String completionText(
            PreferenceExample e, String field, String prompt, List<Message> response, Map<String, Object> kwargs) {
        String full = fullText(e, field, response, kwargs);
        return full.startsWith(prompt) ? full.substring(prompt.length()) : full;
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

    private static String withEosText(String text, String eosText) {
        return text.endsWith(eosText) ? text : text + eosText;
    }

    /** One eos after a completion: appended only when the completion does not already end with it, as TRL adds it. */
    private int[] withEos(int[] ids) {
        if (ids.length > 0 && ids[ids.length - 1] == eos) {
            return ids;
        }
        int[] out = Arrays.copyOf(ids, ids.length + 1);
        out[ids.length] = eos;
        return out;
    }
}
