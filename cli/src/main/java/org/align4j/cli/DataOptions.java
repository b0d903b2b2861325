package org.align4j.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.align4j.data.DataFormat;
import org.align4j.data.EncodingOptions;
import org.align4j.data.PreferenceData;
import org.align4j.data.PreferenceEncoder;
import org.align4j.data.PreferenceExample;
import org.align4j.model.tokenizer.TextTokenizer;
import picocli.CommandLine.Option;

/** Options shared by commands that read a preference dataset. */
final class DataOptions {
    @Option(
            names = "--format",
            defaultValue = "auto",
            paramLabel = "auto|standard|conversational|implicit_prompt",
            description = "Record format (default: detected per record)")
    String format;

    @Option(names = "--skip-invalid", description = "Skip and count bad records instead of stopping at the first")
    boolean skipInvalid;

    @Option(
            names = "--max-length",
            defaultValue = "0",
            description = "Longest prompt + completion in tokens (0 = no limit)")
    int maxLength;

    @Option(names = "--max-prompt-length", defaultValue = "0", description = "Longest prompt in tokens (0 = no limit)")
    int maxPromptLength;

    @Option(
            names = "--truncation",
            defaultValue = "keep_end",
            paramLabel = "keep_end|keep_start",
            description = "Which end of an over-long prompt to keep (default: ${DEFAULT-VALUE})")
    String truncation;

    @Option(names = "--chat-template", description = "Render plain-text prompts through the model's chat template")
    boolean chatTemplate;

    @Option(
            names = "--chat-template-kwargs",
            paramLabel = "JSON",
            description =
                    "Chat-template variables for every pair, e.g. '{\"enable_thinking\": false}' (a record's own tools and chat_template_kwargs win)")
    String chatTemplateKwargs;

    DataFormat dataFormat() {
        try {
            return DataFormat.valueOf(format.toUpperCase(Locale.ROOT).replace('-', '_'));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(
                    "--format: expected auto, standard, conversational or implicit_prompt, got '" + format + "'");
        }
    }

    EncodingOptions encodingOptions() {
        EncodingOptions.Truncation t;
        switch (truncation.toLowerCase(Locale.ROOT)) {
            case "keep_end":
                t = EncodingOptions.Truncation.KEEP_END;
                break;
            case "keep_start":
                t = EncodingOptions.Truncation.KEEP_START;
                break;
            default:
                throw new IllegalArgumentException(
                        "--truncation: expected keep_end or keep_start, got '" + truncation + "'");
        }
        try {
            return new EncodingOptions(maxLength, maxPromptLength, t, chatTemplate, chatTemplateKwargs());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--"
                    + e.getMessage()
                            .replace("maxPromptLength", "max-prompt-length")
                            .replace("maxLength", "max-length"));
        }
    }

    @SuppressWarnings("unchecked")
    Map<String, Object> chatTemplateKwargs() {
        if (chatTemplateKwargs == null || chatTemplateKwargs.isBlank()) {
            return Map.of();
        }
        try {
            Object v = new ObjectMapper().readValue(chatTemplateKwargs, Object.class);
            if (!(v instanceof Map)) {
                throw new IllegalArgumentException(
                        "--chat-template-kwargs: expected a JSON object, got " + chatTemplateKwargs);
            }
            return (Map<String, Object>) v;
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("--chat-template-kwargs: not JSON: " + e.getOriginalMessage());
        }
    }

    PreferenceData.Loaded load(Path data) {
        return PreferenceData.load(data, dataFormat(), skipInvalid);
    }

    /**
     * @param tokenizer the model's tokenizer
     * @param examples the parsed examples
     * @return their ids, the count dropped by truncation, and the records skipped with --skip-invalid
     */
    PreferenceEncoder.Encoded encode(TextTokenizer tokenizer, List<PreferenceExample> examples) {
        return new PreferenceEncoder(tokenizer, encodingOptions()).encodeAll(examples, skipInvalid);
    }
}
