package org.align4j.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.align4j.data.io.RawRecord;
import org.align4j.model.Fixtures;
import org.align4j.model.tokenizer.TextTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A reward model's sequences are TRL 1.13 RewardTrainer's: the expected ids come from TRL's own
 * {@code _prepare_dataset} ({@code trainer/src/test/python/reward_fixtures.py}).
 */
class RewardSequencesTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void theFixturePairsAreTokenizedAsTrlTokenizesThem() throws IOException {
        JsonNode fx = JSON.readTree(Fixtures.reward("transformers-written/gpt2-tiny")
                .resolve("rewards.json")
                .toFile());
        try (TextTokenizer tk = TextTokenizer.load(Fixtures.model("gpt2-tiny"))) {
            List<PreferenceExample> examples = PreferenceData.load(
                            Fixtures.root().resolve("prefs.jsonl"), DataFormat.AUTO, false)
                    .examples();
            PreferenceEncoder.Encoded enc = new PreferenceEncoder(tk, EncodingOptions.unlimited())
                    .encodeAll(examples, false, PreferenceEncoder.Target.REWARD_MODEL);
            int n = examples.size();
            assertThat(enc.pairs()).hasSize(n);
            for (int i = 0; i < n; i++) {
                EncodedPair p = enc.pairs().get(i);
                assertThat(p.prompt()).isEmpty();
                assertThat(p.chosen())
                        .as("pair %d chosen", i)
                        .containsExactly(ChatModels.ids(fx.get("sequence_ids").get(i)));
                assertThat(p.rejected())
                        .as("pair %d rejected", i)
                        .containsExactly(ChatModels.ids(fx.get("sequence_ids").get(n + i)));
            }
        }
    }

    @Test
    void llamaTokenizersGetTheirBosAndConversationsTheirTemplateAsInTrl() {
        JsonNode fx = fixture();
        try (TextTokenizer tk = TextTokenizer.load(ChatModels.model("llama3_1"))) {
            PreferenceEncoder encoder = new PreferenceEncoder(tk, EncodingOptions.unlimited());
            PreferenceParser parser = new PreferenceParser(DataFormat.AUTO);
            fx.get("pairs").fields().forEachRemaining(e -> {
                PreferenceExample ex = parser.parse(new RawRecord(e.getValue().get("record"), Path.of("mem.jsonl"), 1));
                EncodedPair p = encoder.encodeSequences(ex).orElseThrow();
                assertThat(p.chosen())
                        .as(e.getKey() + " chosen")
                        .containsExactly(ChatModels.ids(e.getValue().get("chosen_ids")));
                assertThat(p.rejected())
                        .as(e.getKey() + " rejected")
                        .containsExactly(ChatModels.ids(e.getValue().get("rejected_ids")));
            });
        }
    }

    private static JsonNode fixture() {
        try {
            return JSON.readTree(RewardSequencesTest.class.getResource("/chat/fixtures/reward_sequences.json"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Test
    void aPairLongerThanMaxLengthIsDroppedNotCut() {
        try (TextTokenizer tk = TextTokenizer.load(Fixtures.model("gpt2-tiny"))) {
            PreferenceExample e = PreferenceExample.text(
                    "What is the capital of France?",
                    " Paris.",
                    " It is Lyon, I am quite sure.",
                    null,
                    Path.of("mem"),
                    1);
            int chosen = new PreferenceEncoder(tk, EncodingOptions.unlimited())
                    .encodeSequences(e)
                    .orElseThrow()
                    .chosen()
                    .length;
            int rejected = new PreferenceEncoder(tk, EncodingOptions.unlimited())
                    .encodeSequences(e)
                    .orElseThrow()
                    .rejected()
                    .length;
            assertThat(rejected).isGreaterThan(chosen);
            EncodingOptions fitsChosenOnly = new EncodingOptions(chosen, 0, EncodingOptions.Truncation.KEEP_END, false);
            assertThat(new PreferenceEncoder(tk, fitsChosenOnly).encodeSequences(e))
                    .isEmpty();
            EncodingOptions fitsBoth = new EncodingOptions(rejected, 0, EncodingOptions.Truncation.KEEP_END, false);
            assertThat(new PreferenceEncoder(tk, fitsBoth).encodeSequences(e)).isPresent();
        }
    }

    @Test
    void marginsAreReadAndBadOnesNamed(@TempDir Path tmp) throws IOException {
        Path f = tmp.resolve("m.jsonl");
        Files.writeString(
                f,
                "{\"prompt\": \"a\", \"chosen\": \" b\", \"rejected\": \" c\", \"margin\": 1.5}\n"
                        + "{\"prompt\": \"a\", \"chosen\": \" b\", \"rejected\": \" c\"}\n");
        List<PreferenceExample> ex =
                PreferenceData.load(f, DataFormat.AUTO, false).examples();
        assertThat(ex.get(0).margin()).isEqualTo(1.5);
        assertThat(ex.get(1).margin()).isNull();
        try (TextTokenizer tk = TextTokenizer.load(Fixtures.model("gpt2-tiny"))) {
            PreferenceEncoder enc = new PreferenceEncoder(tk, EncodingOptions.unlimited());
            assertThat(enc.encodeSequences(ex.get(0)).orElseThrow().margin()).isEqualTo(1.5);
            assertThat(enc.encode(ex.get(0)).orElseThrow().margin()).isEqualTo(1.5);
        }
        for (String margin : new String[] {"\"big\"", "[1]"}) {
            Files.writeString(
                    f, "{\"prompt\": \"a\", \"chosen\": \" b\", \"rejected\": \" c\", \"margin\": " + margin + "}\n");
            assertThatThrownBy(() -> PreferenceData.load(f, DataFormat.AUTO, false))
                    .as(margin)
                    .isInstanceOf(DataException.class)
                    .hasMessageContaining("m.jsonl:1")
                    .hasMessageContaining("'margin'");
        }
    }
}
