package org.align4j.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;
import org.align4j.data.template.ChatTemplate;
import org.align4j.model.tokenizer.TextTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Inputs the reference refuses are refused, and inputs it renders are rendered the same: Qwen3's template
 * with bad tool calls, a string for enable_thinking, typed content parts; tools and documents that are not
 * lists of objects; {@code 'text' + list} and {@code 'text' + None} in the templates that concatenate. The
 * expected outcomes are transformers 5.17's ({@code src/test/python/make_hostile_template_fixtures.py},
 * output in {@code chat/hostile/templates_hostile.json}).
 */
class HostileTemplateTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * Where transformers raises on a malformed structure, align4j refuses it before the template runs, by
     * field; the other refusals come from the template itself (Python's TypeError of {@code +}, a method a
     * list lacks).
     */
    private static final Map<String, String> FIELD = Map.of(
            "qwen3/tool_calls_a_string", "messages[1].tool_calls: expected a list of tool calls, got str 'oops'",
            "qwen3/tool_call_empty", "messages[1].tool_calls[0]: a tool call needs 'function'",
            "qwen3/tool_call_function_a_string", "messages[1].tool_calls[0].function: expected a {name, arguments}",
            "qwen3/tool_call_function_without_arguments", "messages[1].tool_calls[0].function.arguments: missing",
            "qwen3/tools_a_string", "tools: expected a list",
            "qwen3/tools_with_a_string", "tools[1]: expected a tool's JSON schema",
            "qwen3/documents_with_a_string", "documents[0]: expected a {title, text} object",
            "smollm2/typed_parts", "TypeError: can only concatenate str (not \"list\") to str",
            "mistral_v0_1/typed_parts", "TypeError: can only concatenate str (not \"list\") to str",
            "smollm2/tool_calls_content_none", "TypeError: can only concatenate str (not \"NoneType\") to str");

    private static final Map<String, ChatTemplate> TEMPLATES = new ConcurrentHashMap<>();

    static Stream<String> cases() throws IOException {
        List<String> names = new ArrayList<>();
        fixture().fieldNames().forEachRemaining(names::add);
        return names.stream();
    }

    private static JsonNode fixture() throws IOException {
        try (InputStream in = HostileTemplateTest.class.getResourceAsStream("/chat/hostile/templates_hostile.json")) {
            return JSON.readTree(in);
        }
    }

    @ParameterizedTest
    @MethodSource("cases")
    @SuppressWarnings("unchecked")
    void rendersOrRefusesAsTransformers(String name) throws Exception {
        JsonNode c = fixture().get(name);
        ChatTemplate template = ChatTemplate.of(
                TextTokenizer.load(ChatModels.model(c.get("model").asText())));
        List<Map<String, Object>> messages = JSON.convertValue(c.get("messages"), List.class);
        Map<String, Object> kwargs = JSON.convertValue(c.get("kwargs"), Map.class);
        boolean generation = c.get("add_generation_prompt").asBoolean();
        if (c.has("raises")) {
            var refused = assertThatThrownBy(() -> template.render(messages, generation, kwargs))
                    .as(
                            "transformers raises %s: %s",
                            c.get("raises").asText(), c.get("message").asText())
                    .isInstanceOf(ChatTemplate.TemplateException.class);
            if (FIELD.containsKey(name)) {
                refused.hasMessageContaining(FIELD.get(name));
            }
        } else {
            assertThat(template.render(messages, generation, kwargs))
                    .isEqualTo(c.get("text").asText());
        }
    }

    @Test
    void everyNamedRefusalIsACaseOfTheFixture() throws IOException {
        JsonNode f = fixture();
        for (String name : FIELD.keySet()) {
            assertThat(f.has(name) && f.get(name).has("raises"))
                    .as("%s raises in transformers", name)
                    .isTrue();
        }
    }
}
