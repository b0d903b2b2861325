package org.align4j.data;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.align4j.model.tokenizer.TextTokenizer;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Plain-text preference records (no chat template) against the {@code prompt_ids}, {@code chosen_ids} and
 * {@code rejected_ids} of TRL 1.13's own {@code DPOTrainer._prepare_dataset}
 * ({@code data/src/test/python/make_plain_dpo_fixtures.py}): the prompt with the tokenizer's special
 * tokens (Llama-3's bos), completions split off prompt + completion + eos tokenized together (a token
 * merging across the boundary included), and no second eos after a completion that ends with its text;
 * the online RL trainers' prompt ids ({@link PreferenceEncoder#encodePrompt}) equal the prompt's.
 */
class PlainPairParityTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"llama3_1", "qwen2_5", "gemma3", "deepseek_v3"})
    void plainPairsEncodeAsTrlDpoTrainerTokenizesThem(String name) throws IOException {
        JsonNode fixtures = JSON.readTree(ChatModels.resources()
                .resolve("fixtures")
                .resolve("plain_dpo.json")
                .toFile());
        try (TextTokenizer tk = TextTokenizer.load(ChatModels.model(name))) {
            // plain prompts stay plain: no chat template is applied to them (chat_template unset)
            PreferenceEncoder encoder = new PreferenceEncoder(tk, EncodingOptions.unlimited());
            for (JsonNode c : fixtures.get(name).get("cases")) {
                String what = name + "/" + c.get("name").asText();
                Path file = tmp.resolve(c.get("name").asText() + ".jsonl");
                Files.writeString(file, JSON.writeValueAsString(c.get("record")) + "\n");
                List<PreferenceExample> examples =
                        PreferenceData.load(file, DataFormat.STANDARD, false).examples();
                EncodedPair p = encoder.encode(examples.get(0)).orElseThrow();
                assertThat(p.prompt()).as(what + " prompt_ids").containsExactly(ChatModels.ids(c.get("prompt_ids")));
                for (String side : List.of("chosen", "rejected")) {
                    int[] ids = side.equals("chosen") ? p.chosen() : p.rejected();
                    JsonNode joint = c.get("joint_" + side + "_starts_with_prompt");
                    if (joint.asBoolean()) {
                        assertThat(ids)
                                .as(what + " " + side + "_ids")
                                .containsExactly(ChatModels.ids(c.get(side + "_ids")));
                    } else {
                        // a token straddles the boundary in TRL's joint ids: align4j keeps the completion's own
                        assertThat(ids)
                                .as(what + " " + side + "_ids, tokenized apart")
                                .containsExactly(ChatModels.ids(c.get(side + "_apart_ids")));
                    }
                }
                // TRL's GRPO and RLOO tokenize a plain prompt with the same call as the DPO trainer's prompt
                // (processing_class(text=prompt)): the RL trainers' prompt ids are these
                assertThat(encoder.encodePrompt(examples.get(0)))
                        .as(what + " RL prompt ids")
                        .containsExactly(ChatModels.ids(c.get("prompt_ids")));
            }
        }
    }
}
