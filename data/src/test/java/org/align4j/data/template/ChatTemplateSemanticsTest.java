package org.align4j.data.template;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.align4j.data.ChatModels;
import org.junit.jupiter.api.Test;

/**
 * Single jinja2 constructs beyond the corpus (Python string methods, slicing, namespace, loop filters
 * and controls, whitespace control, tojson, tests, filters), against what transformers' own jinja2
 * environment renders ({@code chat/fixtures/jinja2_probes.json}).
 */
class ChatTemplateSemanticsTest {
    static final ObjectMapper JSON = new ObjectMapper();

    /**
     * Constructs no chat template of the corpus uses, where align4j still departs from jinja2: string
     * {@code *} and {@code %}, printing None and concatenating booleans with {@code ~} (Jinjava cannot
     * tell None from undefined), {@code loop.previtem}/{@code nextitem}, and {@code truncate}'s leeway.
     */
    static final List<String> KNOWN_GAPS = List.of(
            "{{ 'Hello' | trim | upper }} {{ 'hello world' | title }} {{ 'ab' * 3 }} {{ 7 // 2 }} {{ 7 % 3 }} {{ 2 ** 3 }}",
            "{{ 'a' ~ 1 ~ true }} {{ true }} {{ none }} {{ 1.0 }} {{ [1, 'a'] }} {{ {'a': 1} }}",
            "{{ '%s and %d' % ('a', 3) }} {{ 'a b'.title() }} {{ 'abc'.find('c') }} {{ ' x '|length }}",
            "{{ messages[0]['content'] | string }} {{ 3 | string }} {{ none | string }} {{ true|tojson }} {{ 'a\"b'|tojson }}",
            "{%- for m in messages %}{{- loop.index }}{{ loop.length }}{{ loop.revindex0 }}{% if not loop.first %}{{ loop.previtem.role }}{% endif %}"
                    + "{% if not loop.last %}{{ loop.nextitem.role }}{% endif %};{% endfor %}",
            "{{ messages[0].content|capitalize }} {{ 'a'|center(5) }}|{{ 'abcdef'|truncate(3) }}");

    @Test
    @SuppressWarnings("unchecked")
    void everyProbeRendersAsJinja2ExceptTheKnownGaps() throws IOException {
        JsonNode fx = JSON.readTree(ChatTemplateSemanticsTest.class.getResource("/chat/fixtures/jinja2_probes.json"));
        List<Map<String, Object>> messages = JSON.convertValue(fx.get("messages"), List.class);
        Map<String, String> tokens = JSON.convertValue(fx.get("special_tokens"), Map.class);
        Map<String, Object> kwargs = Map.of("tools", JSON.convertValue(fx.get("tools"), List.class));
        List<String> differing = new ArrayList<>();
        int same = 0;
        for (JsonNode p : fx.get("probes")) {
            String src = p.get("template").asText();
            ChatTemplate t = new ChatTemplate(src, tokens, ChatModels.frozenClock(fx));
            if (p.has("error")) {
                assertThatThrownBy(() -> t.render(messages, true, kwargs))
                        .as(src)
                        .hasMessageContaining(p.get("error").asText());
                same++;
                continue;
            }
            String got;
            try {
                got = t.render(messages, true, kwargs);
            } catch (ChatTemplate.TemplateException e) {
                got = "raised " + e.getMessage();
            }
            if (got.equals(p.get("text").asText())) {
                same++;
            } else {
                differing.add(src);
            }
        }
        assertThat(differing).as("probes that differ from jinja2").containsExactlyInAnyOrderElementsOf(KNOWN_GAPS);
        assertThat(same).isEqualTo(fx.get("probes").size() - KNOWN_GAPS.size());
    }

    @Test
    void messageContentIsNeverTemplateCode() {
        ChatTemplate t = new ChatTemplate(
                "{% for m in messages %}[{{ m.content }}]{% endfor %}{{ eos_token }}", Map.of("eos_token", "</s>"));
        List<Map<String, Object>> messages = List.of(
                Map.of("role", "user", "content", "{{ 7*7 }}"),
                Map.of("role", "user", "content", "{{ eos_token }}"),
                Map.of("role", "user", "content", "an unbalanced {{ brace and {% tag"),
                Map.of("role", "user", "content", "{% raw %}{# #}"));
        assertThat(t.render(messages, false, Map.of()))
                .isEqualTo("[{{ 7*7 }}][{{ eos_token }}][an unbalanced {{ brace and {% tag][{% raw %}{# #}]</s>");
    }

    @Test
    void aTemplateErrorNamesTheTemplateLine() {
        ChatTemplate t = new ChatTemplate(
                "line one\n{% if messages|length > 1 %}\n{{ raise_exception('one message only') }}\n{% endif %}",
                Map.of());
        List<Map<String, Object>> two =
                List.of(Map.of("role", "user", "content", "a"), Map.of("role", "user", "content", "b"));
        assertThatThrownBy(() -> t.render(two, false, Map.of()))
                .isInstanceOf(ChatTemplate.TemplateException.class)
                .hasMessageContaining("one message only")
                .hasMessageContaining("template line 3")
                .satisfies(e -> assertThat(((ChatTemplate.TemplateException) e).templateLine())
                        .isEqualTo(3));
    }
}
