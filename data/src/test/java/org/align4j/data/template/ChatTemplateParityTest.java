package org.align4j.data.template;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.align4j.data.ChatModels;
import org.align4j.model.tokenizer.TextTokenizer;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;

/**
 * Every conversation of the corpus, rendered and tokenized, against what transformers 5.17's {@code
 * apply_chat_template} gives for the same template and tokenizer.json (one test per template).
 */
class ChatTemplateParityTest {
    static final List<String> NAMES = ChatModels.NAMES;
    static final ObjectMapper JSON = new ObjectMapper();

    static JsonNode readConfig(String name) {
        try {
            return JSON.readTree(
                    ChatModels.model(name).resolve("tokenizer_config.json").toFile());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @ParameterizedTest(name = "{0}")
    @FieldSource("NAMES")
    @SuppressWarnings("unchecked")
    void everyCaseRendersTheTextAndIdsTransformersGives(String name) {
        JsonNode fx = ChatModels.fixture(name);
        try (TextTokenizer tk = TextTokenizer.load(ChatModels.model(name))) {
            // transformers also names the defaults of a tokenizer class (GemmaTokenizer's mask_token) that
            // tokenizer_config.json does not hold; align4j knows only what the files say
            Map<String, String> expected = JSON.convertValue(fx.get("special_tokens"), Map.class);
            assertThat(expected).containsAllEntriesOf(tk.specialTokens());
            JsonNode config = readConfig(name);
            for (String missing : expected.keySet()) {
                if (!tk.specialTokens().containsKey(missing)) {
                    assertThat(config.has(missing))
                            .as(name + ": " + missing + " is in tokenizer_config.json but not read")
                            .isFalse();
                }
            }
            ChatTemplate template = ChatTemplate.of(tk).withClock(ChatModels.frozenClock(fx));
            int checked = 0;
            int cuts = 0;
            for (JsonNode c : fx.get("cases")) {
                String what = name + "/" + c.get("name").asText() + " add_generation_prompt="
                        + c.get("add_generation_prompt");
                List<Map<String, Object>> messages = JSON.convertValue(c.get("messages"), List.class);
                Map<String, Object> kwargs = JSON.convertValue(c.get("kwargs"), Map.class);
                boolean agp = c.get("add_generation_prompt").asBoolean();
                if (c.has("error")) {
                    assertThatThrownBy(() -> template.render(messages, agp, kwargs))
                            .as(what)
                            .isInstanceOf(ChatTemplate.TemplateException.class)
                            .hasMessageContaining(c.get("error").asText());
                } else {
                    String text = template.render(messages, agp, kwargs);
                    assertThat(text).as(what).isEqualTo(c.get("text").asText());
                    assertThat(tk.encode(text)).as(what).containsExactly(ChatModels.ids(c.get("ids")));
                    int cut = tk.cutAfterLastAddedToken(text);
                    if (cut > 0) { // the encoder's shortcut: the two sides of the cut tokenize apart
                        int[] head = tk.encode(text.substring(0, cut));
                        int[] tail = tk.encode(text.substring(cut));
                        int[] joined = Arrays.copyOf(head, head.length + tail.length);
                        System.arraycopy(tail, 0, joined, head.length, tail.length);
                        assertThat(joined).as(what + " cut at " + cut).containsExactly(ChatModels.ids(c.get("ids")));
                        cuts++;
                    }
                }
                checked++;
            }
            assertThat(checked).isEqualTo(22);
            assertThat(cuts).as("texts cut after an added token").isPositive();
        }
    }
}
