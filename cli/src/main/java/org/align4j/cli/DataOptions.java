package org.align4j.cli;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.align4j.data.DataFormat;
import org.align4j.data.EncodedPair;
import org.align4j.data.EncodingOptions;
import org.align4j.data.PreferenceData;
import org.align4j.data.PreferenceEncoder;
import org.align4j.data.PreferenceExample;
import org.align4j.model.tokenizer.TextTokenizer;
import picocli.CommandLine.Option;

/** Options shared by commands that read a preference dataset. */
final class DataOptions {
    @Option(names = "--format", defaultValue = "auto", paramLabel = "auto|standard|conversational|implicit_prompt",
            description = "Record format (default: detected per record)")
    String format;

    @Option(names = "--skip-invalid", description = "Skip and count bad records instead of stopping at the first")
    boolean skipInvalid;

    @Option(names = "--max-length", defaultValue = "0", description = "Longest prompt + completion in tokens (0 = no limit)")
    int maxLength;

    @Option(names = "--max-prompt-length", defaultValue = "0", description = "Longest prompt in tokens (0 = no limit)")
    int maxPromptLength;

    @Option(names = "--truncation", defaultValue = "keep_end", paramLabel = "keep_end|keep_start",
            description = "Which end of an over-long prompt to keep (default: ${DEFAULT-VALUE})")
    String truncation;

    @Option(names = "--chat-template", description = "Render plain-text prompts through the model's chat template")
    boolean chatTemplate;

    DataFormat dataFormat() {
        try {
            return DataFormat.valueOf(format.toUpperCase(java.util.Locale.ROOT).replace('-', '_'));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--format: expected auto, standard, conversational or implicit_prompt, got '" + format + "'");
        }
    }

    EncodingOptions encodingOptions() {
        EncodingOptions.Truncation t;
        switch (truncation.toLowerCase(java.util.Locale.ROOT)) {
            case "keep_end":
                t = EncodingOptions.Truncation.KEEP_END;
                break;
            case "keep_start":
                t = EncodingOptions.Truncation.KEEP_START;
                break;
            default:
                throw new IllegalArgumentException("--truncation: expected keep_end or keep_start, got '" + truncation + "'");
        }
        try {
            return new EncodingOptions(maxLength, maxPromptLength, t, chatTemplate);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--" + e.getMessage().replace("maxPromptLength", "max-prompt-length").replace("maxLength", "max-length"));
        }
    }

    PreferenceData.Loaded load(Path data) {
        return PreferenceData.load(data, dataFormat(), skipInvalid);
    }

    /** Encoded pairs and how many were dropped by truncation. */
    record Encoded(List<EncodedPair> pairs, List<PreferenceExample> kept, int dropped) {}

    Encoded encode(TextTokenizer tokenizer, List<PreferenceExample> examples) {
        PreferenceEncoder encoder = new PreferenceEncoder(tokenizer, encodingOptions());
        List<EncodedPair> pairs = new ArrayList<>();
        List<PreferenceExample> kept = new ArrayList<>();
        int dropped = 0;
        for (PreferenceExample e : examples) {
            var p = encoder.encode(e);
            if (p.isPresent()) {
                pairs.add(p.get());
                kept.add(e);
            } else {
                dropped++;
            }
        }
        return new Encoded(pairs, kept, dropped);
    }
}
