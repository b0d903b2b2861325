package org.align4j.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.align4j.data.io.RawRecord;

/**
 * Prompt-only datasets, what online RL samples from (TRL's "prompt-only" type): each record has a
 * {@code prompt}, a string (standard) or a list of {@code {role, content}} messages (conversational);
 * every other field is kept and handed to the reward functions (an {@code answer} an exact-answer
 * reward checks, say), as TRL passes a dataset's extra columns to {@code reward_funcs}.
 *
 * <p>A preference pair (a record with {@code chosen} or {@code rejected}) is refused by name: the RL
 * trainers would silently ignore its responses.
 */
public final class PromptData {
    private static final ObjectMapper JSON = new ObjectMapper();

    private PromptData() {}

    /**
     * A prompt and the record's other fields.
     *
     * @param example the prompt as an example without responses (prompt text or prompt messages)
     * @param fields the record's other fields as plain Java values (strings, numbers, lists, maps)
     */
    public record PromptExample(PreferenceExample example, Map<String, Object> fields) {
        /** @return {@code FILE:LINE} of the record */
        public String source() {
            return example.file() + ":" + example.line();
        }
    }

    /**
     * Reads a prompt-only dataset.
     *
     * @param path a data file or a folder of shards (JSONL, JSON, Parquet)
     * @param skipInvalid skip and count bad records instead of stopping at the first
     * @return the prompts, in file order
     * @throws DataException naming the file, line and field of the first bad record unless skipping, or when
     *     no record is valid
     */
    public static List<PromptExample> load(Path path, boolean skipInvalid) {
        return PreferenceData.read(path, PromptData::parse, skipInvalid, "prompts")
                .items();
    }

    /**
     * @param r one record
     * @return its prompt and other fields
     * @throws DataException naming the field at fault
     */
    public static PromptExample parse(RawRecord r) {
        JsonNode v = r.value();
        if (v == null || !v.isObject()) {
            throw new DataException(r.file(), r.line(), null, "expected a JSON object with a 'prompt'");
        }
        for (String pairField : List.of("chosen", "rejected")) {
            if (v.has(pairField)) {
                throw new DataException(
                        r.file(),
                        r.line(),
                        pairField,
                        "a preference pair; grpo and rloo sample their own completions from prompt-only records "
                                + "({\"prompt\": ...}); train pairs with align4j train");
            }
        }
        JsonNode prompt = v.get("prompt");
        if (prompt == null || prompt.isNull()) {
            throw new DataException(r.file(), r.line(), "prompt", "missing");
        }
        PreferenceExample e;
        if (prompt.isTextual()) {
            if (prompt.asText().isEmpty()) {
                throw new DataException(r.file(), r.line(), "prompt", "empty");
            }
            e = new PreferenceExample(prompt.asText(), null, null, null, null, null, null, r.file(), r.line());
        } else if (prompt.isArray()) {
            e = new PreferenceExample(
                    null, null, null, PreferenceParser.messages(r, "prompt"), null, null, null, r.file(), r.line());
        } else {
            throw new DataException(
                    r.file(), r.line(), "prompt", "expected a string or a list of {role, content} messages");
        }
        Map<String, Object> fields = new LinkedHashMap<>();
        v.fields().forEachRemaining(f -> {
            if (!f.getKey().equals("prompt")) {
                fields.put(f.getKey(), JSON.convertValue(f.getValue(), Object.class));
            }
        });
        return new PromptExample(e, Collections.unmodifiableMap(fields));
    }
}
