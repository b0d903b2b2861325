package org.align4j.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.InputStream;
import java.util.List;
import java.util.Map;
import org.align4j.data.template.ChatTemplate;
import org.align4j.model.tokenizer.TextTokenizer;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Inputs the reference refuses are refused, and inputs it renders are rendered the same: Qwen3's template
 * with bad tool calls, a string for enable_thinking, typed content parts. The expected outcomes are
 * transformers 5.17's ({@code src/test/python/make_hostile_template_fixtures.py}, output in {@code
 * chat/hostile/qwen3_hostile.json}).
 */
class HostileTemplateTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @ParameterizedTest
    @ValueSource(
            strings = {
                // not yet: tool_calls_a_string, tool_call_empty and tool_call_function_a_string, where transformers
                // raises on tojson of an undefined value; Jinjava cannot tell undefined from None (ChatTemplate)
                "tool_call_without_function",
                "enable_thinking_the_string_no",
                "enable_thinking_false",
                "typed_parts"
            })
    void qwen3RendersOrRefusesAsTransformers(String name) throws Exception {
        JsonNode c;
        try (InputStream in = getClass().getResourceAsStream("/chat/hostile/qwen3_hostile.json")) {
            c = JSON.readTree(in).get(name);
        }
        ChatTemplate template = ChatTemplate.of(TextTokenizer.load(ChatModels.model("qwen3")));
        List<Map<String, Object>> messages = JSON.convertValue(c.get("messages"), List.class);
        Map<String, Object> kwargs = JSON.convertValue(c.get("kwargs"), Map.class);
        boolean generation = c.get("add_generation_prompt").asBoolean();
        if (c.has("raises")) {
            assertThatThrownBy(() -> template.render(messages, generation, kwargs))
                    .as("transformers raises %s", c.get("raises").asText())
                    .isInstanceOf(ChatTemplate.TemplateException.class);
        } else {
            assertThat(template.render(messages, generation, kwargs))
                    .isEqualTo(c.get("text").asText());
        }
    }
}
