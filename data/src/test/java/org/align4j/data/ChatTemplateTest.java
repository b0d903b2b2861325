package org.align4j.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;
import java.util.Map;
import org.align4j.data.template.ChatTemplate;
import org.align4j.model.Fixtures;
import org.align4j.model.tokenizer.TextTokenizer;
import org.junit.jupiter.api.Test;

class ChatTemplateTest {
    @Test
    void rendersExactlyWhatTransformersRendersAndTokenizesToTheSameIds() {
        JsonNode ref = Fixtures.referenceJson("gpt2-tiny");
        String prompt = Fixtures.prefs().get(0).get("prompt").asText();
        try (TextTokenizer tk = TextTokenizer.load(Fixtures.model("gpt2-tiny"))) {
            String text = ChatTemplate.of(tk).render(List.of(new ChatTemplate.Message("user", prompt)), true);
            assertThat(text).isEqualTo(ref.get("chat_template_text").asText());
            int[] ids = tk.encode(text);
            int[] expected = new int[ref.get("chat_template_ids").size()];
            for (int i = 0; i < expected.length; i++) {
                expected[i] = ref.get("chat_template_ids").get(i).asInt();
            }
            assertThat(ids).containsExactly(expected);
        }
    }

    @Test
    void raiseExceptionInATemplateBecomesAClearError() {
        ChatTemplate t = new ChatTemplate(
                "{% if messages[0]['role'] != 'user' %}{{ raise_exception('first message must be from the user') }}{% endif %}ok",
                Map.of());
        assertThat(t.render(List.of(new ChatTemplate.Message("user", "hi")), false))
                .isEqualTo("ok");
        assertThatThrownBy(() -> t.render(List.of(new ChatTemplate.Message("system", "hi")), false))
                .hasMessageContaining("first message must be from the user");
    }

    @Test
    void tokenizerReadsSpecialTokensFromItsConfig() {
        try (TextTokenizer tk = TextTokenizer.load(Fixtures.model("llama-tiny"))) {
            assertThat(tk.eosId()).isEqualTo(2);
            assertThat(tk.padId()).isEqualTo(3);
            assertThat(tk.bosId()).isEqualTo(0);
            JsonNode ref = Fixtures.referenceJson("llama-tiny");
            int[] ids = tk.encode(ref.get("texts").get(0).asText());
            assertThat(ids).hasSize(ref.get("text_ids").get(0).size());
            for (int i = 0; i < ids.length; i++) {
                assertThat(ids[i]).isEqualTo(ref.get("text_ids").get(0).get(i).asInt());
            }
            assertThat(tk.decode(ids, false)).isEqualTo(ref.get("texts").get(0).asText());
        }
    }
}
