package org.align4j.data;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One chat message: a role, its text, and any further fields the record gives ({@code tool_calls},
 * {@code reasoning_content}, {@code tool_call_id}, {@code name}, ...), which reach the chat template
 * as they are, as transformers passes each message dict whole.
 *
 * @param role system, user, assistant, tool, ...
 * @param content its text, or null (an assistant turn that only calls tools)
 * @param fields the other fields, in record order, as JSON-like Java values (String, Long, Double,
 *     Boolean, null, List, Map); never null
 */
public record Message(String role, String content, Map<String, Object> fields) {
    /** Keeps the fields read-only. */
    public Message {
        fields = fields == null || fields.isEmpty()
                ? Map.of()
                : Collections.unmodifiableMap(new LinkedHashMap<>(fields));
    }

    /**
     * A message with only a role and text.
     *
     * @param role the role
     * @param content the text
     */
    public Message(String role, String content) {
        this(role, content, Map.of());
    }

    /** @return the message as a chat template sees it: role, content, then the other fields */
    public Map<String, Object> toTemplate() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("role", role);
        m.put("content", content);
        m.putAll(fields);
        return m;
    }
}
