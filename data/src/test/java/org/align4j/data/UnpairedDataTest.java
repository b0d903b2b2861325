package org.align4j.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.align4j.model.Fixtures;
import org.align4j.model.tokenizer.TextTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** KTO's unpaired records and TRL's unpairing, and the experimental trainers' tokenization of pairs. */
class UnpairedDataTest {
    @TempDir
    Path tmp;

    private Path file(String text) throws Exception {
        Path f = tmp.resolve("data.jsonl");
        Files.writeString(f, text);
        return f;
    }

    @Test
    void standardAndConversationalRecordsKeepTheirLabels() throws Exception {
        Path f = file("""
                {"prompt": "2+2=", "completion": " 4", "label": true}
                {"prompt": "2+3=", "completion": " 6", "label": false}
                """);
        List<UnpairedExample> e = UnpairedData.examples(UnpairedData.read(f, DataFormat.AUTO, false, false));
        assertThat(e).extracting(UnpairedExample::desirable).containsExactly(true, false);
        assertThat(e.get(1).example().chosen()).isEqualTo(" 6");
        assertThat(e.get(1).example().rejected()).isNull();
        Path c = file(
                "{\"prompt\": [{\"role\": \"user\", \"content\": \"hi\"}], \"completion\": [{\"role\":"
                        + " \"assistant\", \"content\": \"hello\"}], \"label\": false, \"chat_template_kwargs\": {\"x\": 1}}\n");
        UnpairedExample conv = UnpairedData.examples(UnpairedData.read(c, DataFormat.AUTO, false, false))
                .get(0);
        assertThat(conv.example().conversational()).isTrue();
        assertThat(conv.example().chosenMessages()).hasSize(1);
        assertThat(conv.example().templateArgs()).containsEntry("x", 1L);
        assertThat(conv.desirable()).isFalse();
    }

    @Test
    void pairsAreUnpairedInTrlsOrderByThousands() throws Exception {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < 1001; i++) {
            b.append("{\"prompt\": \"p")
                    .append(i)
                    .append("\", \"chosen\": \" c")
                    .append(i)
                    .append("\", \"rejected\": \" r")
                    .append(i)
                    .append("\"}\n");
        }
        List<UnpairedExample> e =
                UnpairedData.examples(UnpairedData.read(file(b.toString()), DataFormat.AUTO, false, true));
        assertThat(e).hasSize(2002);
        // datasets.map(batched=True) with its 1000-row batches: 1000 chosen, 1000 rejected, then the last pair
        assertThat(e.get(0).example().chosen()).isEqualTo(" c0");
        assertThat(e.get(999).example().chosen()).isEqualTo(" c999");
        assertThat(e.get(1000).example().chosen()).isEqualTo(" r0");
        assertThat(e.get(1000).desirable()).isFalse();
        assertThat(e.get(1999).example().chosen()).isEqualTo(" r999");
        assertThat(e.get(2000).example().chosen()).isEqualTo(" c1000");
        assertThat(e.get(2001).example().chosen()).isEqualTo(" r1000");
        assertThat(e.get(2001).example().prompt()).isEqualTo("p1000");
    }

    @Test
    void badRecordsAreNamedByField() throws Exception {
        assertThatThrownBy(() -> UnpairedData.read(
                        file("{\"prompt\": \"a\", \"completion\": \" b\"}\n"), DataFormat.AUTO, false, false))
                .isInstanceOf(DataException.class)
                .hasMessageContaining(":1: field 'label': missing");
        assertThatThrownBy(() -> UnpairedData.read(
                        file("{\"prompt\": \"a\", \"completion\": \" b\", \"label\": \"true\"}\n"),
                        DataFormat.AUTO,
                        false,
                        false))
                .hasMessageContaining("field 'label': expected true or false");
        assertThatThrownBy(() -> UnpairedData.read(
                        file("{\"prompt\": \"a\", \"chosen\": \" b\", \"rejected\": \" c\"}\n"),
                        DataFormat.AUTO,
                        false,
                        false))
                .hasMessageContaining("field 'chosen': a preference pair")
                .hasMessageContaining("unpair_preference_dataset");
        assertThatThrownBy(() -> UnpairedData.read(
                        file("{\"prompt\": \"a\", \"chosen\": \" b\", \"rejected\": \" c\"}\n"
                                + "{\"prompt\": \"a\", \"completion\": \" b\", \"label\": true}\n"),
                        DataFormat.AUTO,
                        false,
                        true))
                .hasMessageContaining(":2: field 'label': a labelled completion among preference pairs");
        assertThatThrownBy(() -> UnpairedData.read(
                        file("{\"prompt\": [{\"role\": \"user\", \"content\": \"a\"}], \"completion\": [{\"role\":"
                                + " \"user\", \"content\": \"b\"}], \"label\": true}\n"),
                        DataFormat.AUTO,
                        false,
                        false))
                .hasMessageContaining("field 'completion[0].role'");
    }

    @Test
    void aSplitKeepsAPairsTwoExamplesOnOneSide() throws Exception {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < 10; i++) {
            b.append("{\"prompt\": \"p").append(i).append("\", \"chosen\": \" c\", \"rejected\": \" r\"}\n");
        }
        List<UnpairedData.Item> items = UnpairedData.read(file(b.toString()), DataFormat.AUTO, false, true);
        UnpairedData.Split s = UnpairedData.split(items, 0.2, 42);
        assertThat(s.eval()).hasSize(2);
        List<UnpairedExample> eval = UnpairedData.examples(s.eval());
        assertThat(eval).hasSize(4);
        assertThat(eval.get(0).example().prompt())
                .isEqualTo(eval.get(2).example().prompt());
    }

    @Test
    void theExperimentalTrainersTokenizeEachResponseWithThePromptAndAddBosAndEos() {
        try (TextTokenizer tk = TextTokenizer.load(Fixtures.model("gpt2-tiny"))) {
            ExperimentalPairEncoder enc = new ExperimentalPairEncoder(tk, EncodingOptions.unlimited());
            PreferenceExample e =
                    PreferenceExample.text("What is 12 times 12?", " 144.", " 124, I think.", null, tmp, 1);
            EncodedPair p = enc.encode(e).orElseThrow();
            int[] prompt = tk.encode("What is 12 times 12?");
            assertThat(p.prompt()[0]).isEqualTo(tk.bosId());
            assertThat(Arrays.copyOfRange(p.prompt(), 1, p.prompt().length)).containsExactly(prompt);
            int[] full = tk.encode("What is 12 times 12? 144.");
            assertThat(Arrays.copyOf(p.chosen(), p.chosen().length - 1))
                    .containsExactly(Arrays.copyOfRange(full, prompt.length, full.length));
            assertThat(p.chosen()[p.chosen().length - 1]).isEqualTo(tk.eosId());
            // max_length: both responses cut to max_length minus the longer one's length (TRL's rule)
            int longer = Math.max(p.chosen().length, p.rejected().length);
            int max = p.prompt().length + longer - 1;
            EncodedPair cut = new ExperimentalPairEncoder(
                            tk, new EncodingOptions(max, 0, EncodingOptions.Truncation.KEEP_END, false))
                    .encode(e)
                    .orElseThrow();
            assertThat(cut.prompt()).containsExactly(p.prompt());
            assertThat(cut.rejected()).hasSize(Math.min(p.rejected().length, max - longer));
            assertThat(cut.chosen()).hasSize(Math.min(p.chosen().length, max - longer));
        }
    }

    @Test
    void aConversationsPromptIsWhatItSharesWithBothWholeConversations() {
        try (TextTokenizer tk = TextTokenizer.load(Fixtures.model("gpt2-tiny"))) {
            PreferenceEncoder pe = new PreferenceEncoder(tk, EncodingOptions.unlimited());
            PreferenceExample e = PreferenceExample.conversation(
                    List.of(new Message("user", "hi")),
                    List.of(new Message("assistant", "hello")),
                    List.of(new Message("assistant", "go away")),
                    null,
                    tmp,
                    1);
            PreferenceEncoder.Texts t = pe.pairTexts(e);
            assertThat(t.prompt()).isEqualTo("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
            assertThat(t.chosen()).isEqualTo("hello<|im_end|>\n");
            assertThat(t.rejected()).isEqualTo("go away<|im_end|>\n");
        }
    }
}
