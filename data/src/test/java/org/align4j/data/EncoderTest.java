package org.align4j.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.training.dataset.Batch;
import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.IntStream;
import org.align4j.data.template.ChatTemplate;
import org.align4j.model.Fixtures;
import org.align4j.model.tokenizer.TextTokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class EncoderTest {
    static TextTokenizer tk;

    @BeforeAll
    static void load() {
        tk = TextTokenizer.load(Fixtures.model("gpt2-tiny"));
    }

    @AfterAll
    static void close() {
        tk.close();
    }

    static PreferenceExample text(String prompt, String chosen, String rejected) {
        return PreferenceExample.text(prompt, chosen, rejected, null, Path.of("mem"), 1);
    }

    static EncodedPair encode(EncodingOptions o, PreferenceExample e) {
        return new PreferenceEncoder(tk, o).encode(e).orElseThrow();
    }

    @Test
    void oneEosAfterEachCompletion() {
        EncodedPair p =
                encode(EncodingOptions.unlimited(), text("What is the capital of France?", " Paris.", " Lyon."));
        assertThat(p.prompt()).containsExactly(tk.encode("What is the capital of France?"));
        assertThat(p.chosen()[p.chosen().length - 1]).isEqualTo(tk.eosId());
        assertThat(Arrays.copyOf(p.chosen(), p.chosen().length - 1)).containsExactly(tk.encode(" Paris."));
        assertThat(Arrays.stream(p.rejected()).filter(i -> i == tk.eosId()).count())
                .isEqualTo(1);
    }

    @Test
    void promptTruncationKeepsTheChosenEnd() {
        PreferenceExample e = text("What is the capital of France? Please answer briefly.", " Paris.", " Lyon.");
        int[] full = tk.encode(e.prompt());
        EncodedPair end = encode(new EncodingOptions(0, 4, EncodingOptions.Truncation.KEEP_END, false), e);
        EncodedPair start = encode(new EncodingOptions(0, 4, EncodingOptions.Truncation.KEEP_START, false), e);
        assertThat(end.prompt()).containsExactly(Arrays.copyOfRange(full, full.length - 4, full.length));
        assertThat(start.prompt()).containsExactly(Arrays.copyOf(full, 4));
    }

    @Test
    void completionsAreCutToTheRoomLeftAndPairsThatCannotFitAreDropped() {
        PreferenceExample e =
                text("What is the capital of France?", " Open Settings, choose Account, then select Reset.", " No.");
        int promptLen = tk.encode(e.prompt()).length;
        EncodedPair cut = encode(new EncodingOptions(promptLen + 3, 0, EncodingOptions.Truncation.KEEP_END, false), e);
        assertThat(cut.chosen()).hasSize(3);
        assertThat(cut.rejected().length).isLessThanOrEqualTo(3).isPositive();
        assertThat(cut.maxLength()).isEqualTo(promptLen + 3);
        Optional<EncodedPair> dropped = new PreferenceEncoder(
                        tk, new EncodingOptions(promptLen, 0, EncodingOptions.Truncation.KEEP_END, false))
                .encode(e);
        assertThat(dropped).isEmpty();
        // with a prompt limit the same pair fits again: the completion is never cut to zero
        EncodedPair fits =
                encode(new EncodingOptions(promptLen, promptLen - 2, EncodingOptions.Truncation.KEEP_END, false), e);
        assertThat(fits.chosen()).hasSize(2);
    }

    @Test
    void conversationalPairsTakeWhatTheFullConversationAddsAfterThePromptAsTrlDoes() {
        PreferenceExample e = PreferenceExample.conversation(
                List.of(new Message("user", "What is the capital of France?")),
                List.of(new Message("assistant", "Paris.")),
                List.of(new Message("assistant", "Lyon.")),
                null,
                Path.of("mem"),
                1);
        EncodedPair p = encode(EncodingOptions.unlimited(), e);
        String promptText = ChatTemplate.of(tk)
                .render(List.of(new ChatTemplate.Message("user", "What is the capital of France?")), true);
        assertThat(p.prompt()).containsExactly(tk.encode(promptText));
        // ChatML closes the turn with "<|im_end|>\n": the completion is exactly that, nothing appended or stripped
        assertThat(tk.decode(p.chosen(), false)).isEqualTo("Paris.<|im_end|>\n");
        assertThat(Arrays.stream(p.chosen()).filter(i -> i == tk.eosId()).count())
                .isEqualTo(1);
        // plain prompts go through the template only when asked
        EncodedPair templated = encode(
                new EncodingOptions(0, 0, EncodingOptions.Truncation.KEEP_END, true),
                text("What is the capital of France?", " Paris.", " Lyon."));
        assertThat(templated.prompt()).containsExactly(tk.encode(promptText));
    }

    @Test
    void runWideChatTemplateKwargsApplyAndARecordsOwnWin() {
        JsonNode fx = ChatModels.fixture("qwen3");
        String thinkingOff = null;
        String thinkingOn = null;
        for (JsonNode c : fx.get("cases")) {
            if (c.get("add_generation_prompt").asBoolean()
                    && c.get("name").asText().equals("enable_thinking_false")) {
                thinkingOff = c.get("text").asText(); // transformers' text with enable_thinking=False
            }
            if (c.get("add_generation_prompt").asBoolean()
                    && c.get("name").asText().equals("one_user_turn")) {
                thinkingOn = c.get("text").asText(); // the same question without it
            }
        }
        try (TextTokenizer qwen = TextTokenizer.load(ChatModels.model("qwen3"))) {
            PreferenceExample e = PreferenceExample.conversation(
                    List.of(new Message("user", "What is 2+2?")),
                    List.of(new Message("assistant", "4")),
                    List.of(new Message("assistant", "5")),
                    null,
                    Path.of("mem"),
                    1);
            PreferenceEncoder run = new PreferenceEncoder(
                    qwen, EncodingOptions.unlimited().withChatTemplateKwargs(Map.of("enable_thinking", false)));
            assertThat(run.texts(e).prompt()).isEqualTo(thinkingOff);
            PreferenceExample own = e.withTemplateArgs(Map.of("enable_thinking", true));
            assertThat(run.texts(own).prompt()).isEqualTo(thinkingOn);
            assertThat(run.encode(e).orElseThrow().prompt()).containsExactly(qwen.encode(thinkingOff));
        }
    }

    @Test
    void badOptionsAreNamed() {
        assertThatThrownBy(() -> new EncodingOptions(10, 10, EncodingOptions.Truncation.KEEP_END, false))
                .hasMessageStartingWith("maxPromptLength");
        assertThatThrownBy(() -> new EncodingOptions(-1, 0, EncodingOptions.Truncation.KEEP_END, false))
                .hasMessageStartingWith("maxLength");
    }

    @Test
    void splitAndOrderAreDeterministicBySeed() {
        List<PreferenceExample> all = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            all.add(text("p" + i, "c", "r"));
        }
        PreferenceData.Split a = PreferenceData.split(all, 0.2, 7);
        PreferenceData.Split b = PreferenceData.split(all, 0.2, 7);
        assertThat(a.eval()).hasSize(4).isEqualTo(b.eval());
        assertThat(a.train()).hasSize(16).doesNotContainAnyElementsOf(a.eval());
        assertThat(PreferenceData.split(all, 0.2, 8).eval()).isNotEqualTo(a.eval());

        int[] lengths = new int[20];
        for (int i = 0; i < 20; i++) {
            lengths[i] = (i * 7) % 13 + 1;
        }
        List<int[]> e0 = PairOrder.epoch(lengths, 4, 1, 0, true, false, false);
        assertThat(PairOrder.epoch(lengths, 4, 1, 0, true, false, false))
                .usingRecursiveComparison()
                .isEqualTo(e0);
        assertThat(PairOrder.epoch(lengths, 4, 1, 1, true, false, false))
                .usingRecursiveComparison()
                .isNotEqualTo(e0);
        assertThat(e0.stream().flatMapToInt(Arrays::stream).sorted().toArray())
                .containsExactly(IntStream.range(0, 20).toArray());
        // grouped batches hold similar lengths: each batch spans less than the whole range
        for (int[] batch : PairOrder.epoch(lengths, 4, 1, 0, true, true, false)) {
            int[] l = Arrays.stream(batch).map(i -> lengths[i]).toArray();
            assertThat(Arrays.stream(l).max().getAsInt()
                            - Arrays.stream(l).min().getAsInt())
                    .isLessThan(6);
        }
    }

    @Test
    void djlDatasetYieldsPaddedBatches() throws Exception {
        List<EncodedPair> pairs = new ArrayList<>();
        PreferenceEncoder enc = new PreferenceEncoder(tk, EncodingOptions.unlimited());
        for (PreferenceExample e : PreferenceData.load(Fixtures.root().resolve("prefs.jsonl"), DataFormat.AUTO, false)
                .examples()) {
            pairs.add(enc.encode(e).orElseThrow());
        }
        PreferenceDataset ds = PreferenceDataset.builder(pairs, tk.padId())
                .setSeededSampling(3, 5, true)
                .build();
        int seen = 0;
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            for (Batch b : ds.getData(m)) {
                long rows = b.getData().get(0).getShape().get(0);
                assertThat(rows % 2).isZero();
                assertThat(b.getData().get(3).getShape().get(0)).isEqualTo(rows / 2);
                assertThat(b.getData().get(2).sum().getLong()).isPositive();
                seen += rows / 2;
                b.close();
            }
        }
        assertThat(seen).isEqualTo(pairs.size());
    }
}
