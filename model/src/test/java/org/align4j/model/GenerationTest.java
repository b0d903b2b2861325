package org.align4j.model;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.align4j.model.generate.GenerationConfig;
import org.align4j.model.generate.Generator;
import org.align4j.model.tokenizer.TextTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class GenerationTest {
    static int[] ints(JsonNode arr) {
        int[] out = new int[arr.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = arr.get(i).asInt();
        }
        return out;
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny", "llama-tiny", "qwen2-tiny"})
    void greedyMatchesTransformersWithAndWithoutCache(String name) {
        JsonNode ref = Fixtures.referenceJson(name);
        int[] prompt = ints(ref.get("chat_template_ids"));
        int[] expected = ints(ref.get("greedy_new_tokens"));
        try (CausalLm lm = CausalLm.load(Fixtures.model(name), Device.cpu())) {
            Generator g = new Generator(lm, 3, List.of(2));
            GenerationConfig cfg = GenerationConfig.greedy(expected.length).withStopAtEos(false);
            assertThat(g.generate(List.of(prompt), cfg.withCache(false)).get(0)).containsExactly(expected);
            assertThat(g.generate(List.of(prompt), cfg.withCache(true)).get(0)).containsExactly(expected);
        }
    }

    @Test
    void generationConfigStopIdsWinAndAListStopsAtAnyOfThem(@TempDir Path dir) throws Exception {
        JsonNode ref = Fixtures.referenceJson("llama-tiny");
        int[] prompt = ints(ref.get("chat_template_ids"));
        int[] greedy = ints(ref.get("greedy_new_tokens"));
        int stop = greedy[3]; // transformers' 4th greedy token, not seen earlier in the continuation
        assertThat(Arrays.stream(greedy, 0, 3).noneMatch(t -> t == stop)).isTrue();
        try (var files = Files.list(Fixtures.model("llama-tiny"))) {
            for (Path f : files.toList()) {
                Files.copy(f, dir.resolve(f.getFileName()));
            }
        }
        Files.writeString(dir.resolve("generation_config.json"), "{\"eos_token_id\": [2, " + stop + "]}");
        try (TextTokenizer tk = TextTokenizer.load(dir);
                CausalLm lm = CausalLm.load(dir, Device.cpu())) {
            assertThat(tk.eosIds()).containsExactly(2, stop);
            assertThat(tk.eosId()).isEqualTo(2); // what plain completions end with stays the tokenizer's eos
            int[] out = new Generator(lm, tk.padId(), tk.eosIds())
                    .generate(List.of(prompt), GenerationConfig.greedy(greedy.length))
                    .get(0);
            assertThat(out).containsExactly(Arrays.copyOf(greedy, 4));
        }
    }

    @Test
    void leftPaddedBatchGivesEachRowsOwnContinuation() {
        JsonNode ref = Fixtures.referenceJson("llama-tiny");
        int[] longPrompt = ints(ref.get("chat_template_ids"));
        int[] shortPrompt = ints(ref.get("text_ids").get(1));
        try (CausalLm lm = CausalLm.load(Fixtures.model("llama-tiny"), Device.cpu())) {
            Generator g = new Generator(lm, 3, List.of(2));
            GenerationConfig cfg = GenerationConfig.greedy(8).withStopAtEos(false);
            int[] aloneLong = g.generate(List.of(longPrompt), cfg).get(0);
            int[] aloneShort = g.generate(List.of(shortPrompt), cfg).get(0);
            List<int[]> batch = g.generate(List.of(longPrompt, shortPrompt), cfg);
            assertThat(batch.get(0)).containsExactly(aloneLong);
            assertThat(batch.get(1)).containsExactly(aloneShort);
            assertThat(g.generate(List.of(longPrompt, shortPrompt), cfg.withCache(false))
                            .get(1))
                    .containsExactly(aloneShort);
        }
    }

    @Test
    void samplingIsReproducibleBySeedAndTopKOneIsGreedy() {
        int[] prompt = ints(Fixtures.referenceJson("gpt2-tiny").get("chat_template_ids"));
        try (CausalLm lm = CausalLm.load(Fixtures.model("gpt2-tiny"), Device.cpu())) {
            Generator g = new Generator(lm, 3, List.of(2));
            GenerationConfig a = GenerationConfig.sample(16, 1.5, 0, 1.0, 7).withStopAtEos(false);
            int[] first = g.generate(List.of(prompt), a).get(0);
            assertThat(g.generate(List.of(prompt), a).get(0)).containsExactly(first);
            assertThat(g.generate(List.of(prompt), a.withCache(false)).get(0)).containsExactly(first);
            GenerationConfig other = GenerationConfig.sample(16, 1.5, 0, 1.0, 8).withStopAtEos(false);
            assertThat(g.generate(List.of(prompt), other).get(0)).isNotEqualTo(first);
            int[] greedy = g.generate(
                            List.of(prompt), GenerationConfig.greedy(16).withStopAtEos(false))
                    .get(0);
            GenerationConfig topOne =
                    GenerationConfig.sample(16, 1.0, 1, 1.0, 3).withStopAtEos(false);
            assertThat(g.generate(List.of(prompt), topOne).get(0)).containsExactly(greedy);
            GenerationConfig tinyP =
                    GenerationConfig.sample(16, 1.0, 0, 1e-6, 3).withStopAtEos(false);
            assertThat(g.generate(List.of(prompt), tinyP).get(0)).containsExactly(greedy);
        }
    }

    @Test
    void stopsAtEos() {
        int[] prompt = ints(Fixtures.referenceJson("gpt2-tiny").get("chat_template_ids"));
        try (CausalLm lm = CausalLm.load(Fixtures.model("gpt2-tiny"), Device.cpu())) {
            int[] free = new Generator(lm, 3, List.of(2))
                    .generate(List.of(prompt), GenerationConfig.greedy(12).withStopAtEos(false))
                    .get(0);
            // declare the third generated token an eos: generation must end right after it
            int[] stopped = new Generator(lm, 3, List.of(free[2]))
                    .generate(List.of(prompt), GenerationConfig.greedy(12))
                    .get(0);
            int firstHit = 0;
            while (free[firstHit] != free[2]) {
                firstHit++;
            }
            assertThat(stopped).hasSize(firstHit + 1).containsExactly(Arrays.copyOf(free, firstHit + 1));
        }
    }
}
