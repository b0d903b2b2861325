package org.align4j.data.template;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.align4j.model.tokenizer.TextTokenizer;

/**
 * A model's Jinja chat template, rendered as transformers' {@code apply_chat_template} renders it:
 * {@code trim_blocks} and {@code lstrip_blocks} on, {@code messages}, {@code add_generation_prompt},
 * {@code bos_token} and {@code eos_token} in scope, and {@code raise_exception(msg)} available.
 */
public final class ChatTemplate {
    private final String source;
    private final String bosToken;
    private final String eosToken;
    private final Jinjava jinjava;

    /**
     * One chat message.
     *
     * @param role system, user, assistant, ...
     * @param content the text
     */
    public record Message(String role, String content) {}

    /**
     * @param source the Jinja template text
     * @param bosToken bos token text (may be null)
     * @param eosToken eos token text (may be null)
     */
    public ChatTemplate(String source, String bosToken, String eosToken) {
        this.source = source;
        this.bosToken = bosToken == null ? "" : bosToken;
        this.eosToken = eosToken == null ? "" : eosToken;
        JinjavaConfig config = JinjavaConfig.newBuilder().withTrimBlocks(true).withLstripBlocks(true).build();
        this.jinjava = new Jinjava(config);
        jinjava.getGlobalContext().registerFunction(
                new ELFunctionDefinition("", "raise_exception", ChatTemplate.class, "raiseException", String.class));
    }

    /**
     * The template of a tokenizer.
     *
     * @param tokenizer a loaded tokenizer
     * @return its template
     * @throws IllegalArgumentException if the tokenizer has no chat template
     */
    public static ChatTemplate of(TextTokenizer tokenizer) {
        String t = tokenizer.chatTemplate().orElseThrow(() -> new IllegalArgumentException(
                tokenizer.dir().resolve("tokenizer_config.json") + ": key 'chat_template': the model has no chat template"));
        return new ChatTemplate(t, tokenizer.bosToken(), tokenizer.eosToken());
    }

    /**
     * Called from templates as {@code raise_exception('...')}.
     *
     * @param message the template's message
     * @return never
     */
    public static String raiseException(String message) {
        throw new IllegalArgumentException("chat template: " + message);
    }

    /**
     * Renders messages.
     *
     * @param messages the conversation
     * @param addGenerationPrompt append the assistant turn's opening
     * @return the text
     */
    public String render(List<Message> messages, boolean addGenerationPrompt) {
        List<Map<String, Object>> msgs = new ArrayList<>();
        for (Message m : messages) {
            Map<String, Object> map = new LinkedHashMap<>();
            map.put("role", m.role());
            map.put("content", m.content());
            msgs.add(map);
        }
        Map<String, Object> ctx = new HashMap<>();
        ctx.put("messages", msgs);
        ctx.put("add_generation_prompt", addGenerationPrompt);
        ctx.put("bos_token", bosToken);
        ctx.put("eos_token", eosToken);
        var result = jinjava.renderForResult(source, ctx);
        for (TemplateError e : result.getErrors()) {
            if (e.getSeverity() == TemplateError.ErrorType.FATAL) {
                for (Throwable c = e.getException(); c != null; c = c.getCause()) {
                    if (c instanceof IllegalArgumentException iae && String.valueOf(iae.getMessage()).startsWith("chat template: ")) {
                        throw iae;
                    }
                }
                throw new IllegalArgumentException("chat template: " + e.getMessage() + " (line " + e.getLineno() + ")");
            }
        }
        return result.getOutput();
    }

    /** @return the template text */
    public String source() {
        return source;
    }
}
