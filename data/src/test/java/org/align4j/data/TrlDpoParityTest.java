package org.align4j.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.align4j.data.template.ChatTemplate;
import org.align4j.model.tokenizer.TextTokenizer;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;

/**
 * Conversational preference records, written as a user writes them in a .jsonl file, read and encoded
 * by align4j, against the {@code prompt_ids}, {@code chosen_ids} and {@code rejected_ids} that TRL
 * 1.13's own {@code DPOTrainer._prepare_dataset} gives (one test per template). Where TRL's split
 * leaves a completion empty (Mistral NeMo moves the system prompt into the last user turn, so the prompt
 * renders differently alone), align4j refuses the record by name instead of training on nothing.
 */
class TrlDpoParityTest {
    static final List<String> NAMES = ChatModels.NAMES;
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    @ParameterizedTest(name = "{0}")
    @FieldSource("NAMES")
    void conversationalPairsEncodeAsTrlDpoTrainerTokenizesThem(String name) throws IOException {
        JsonNode fx = ChatModels.fixture(name);
        try (TextTokenizer tk = TextTokenizer.load(ChatModels.model(name))) {
            PreferenceEncoder encoder = new PreferenceEncoder(
                    tk, EncodingOptions.unlimited(), ChatTemplate.of(tk).withClock(ChatModels.frozenClock(fx)));
            for (JsonNode d : fx.get("dpo")) {
                String what = name + "/" + d.get("name").asText();
                Path file = tmp.resolve(name + "-" + d.get("name").asText() + ".jsonl");
                Files.writeString(
                        file,
                        "{\"prompt\": \"ok\", \"chosen\": \"a\", \"rejected\": \"b\"}\n"
                                + JSON.writeValueAsString(d.get("record")) + "\n");
                PreferenceExample e = PreferenceData.load(file, DataFormat.AUTO, false)
                        .examples()
                        .get(1);
                if (d.has("error")) {
                    assertThatThrownBy(() -> encoder.encode(e))
                            .as(what)
                            .isInstanceOf(DataException.class)
                            .hasMessageContaining(file + ":2")
                            .hasMessageContaining(d.get("error").asText())
                            .hasMessageContaining("tokenizer_config.json");
                    continue;
                }
                if (d.get("chosen_ids").isEmpty() || d.get("rejected_ids").isEmpty()) {
                    // TRL keeps a pair with an empty completion (it trains nothing); align4j names and refuses it
                    assertThatThrownBy(() -> encoder.encode(e))
                            .as(what)
                            .isInstanceOf(DataException.class)
                            .hasMessageContaining(file + ":2")
                            .hasMessageContaining("no more than the prompt's "
                                    + d.get("prompt_ids").size());
                    continue;
                }
                EncodedPair p = encoder.encode(e).orElseThrow();
                assertThat(p.prompt()).as(what + " prompt_ids").containsExactly(ChatModels.ids(d.get("prompt_ids")));
                assertThat(p.chosen()).as(what + " chosen_ids").containsExactly(ChatModels.ids(d.get("chosen_ids")));
                assertThat(p.rejected())
                        .as(what + " rejected_ids")
                        .containsExactly(ChatModels.ids(d.get("rejected_ids")));
                PreferenceEncoder.Texts t = encoder.texts(e);
                assertThat(t.prompt())
                        .as(what + " prompt_text")
                        .isEqualTo(d.get("prompt_text").asText());
                assertThat(t.chosen())
                        .as(what + " chosen_text")
                        .isEqualTo(d.get("chosen_text").asText());
                assertThat(t.rejected())
                        .as(what + " rejected_text")
                        .isEqualTo(d.get("rejected_text").asText());
            }
        }
    }
}
