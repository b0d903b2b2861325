package org.align4j.model.reward;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.nn.Parameter;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.align4j.model.CausalLm;
import org.align4j.model.Fixtures;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A reward model align4j writes loads in transformers 5.17's {@code AutoModelForSequenceClassification}
 * (no missing or unexpected keys) and gives align4j's rewards within 1e-5 relative, left- and
 * right-padded. The oracle ran on the folders of {@code reward/align4j-written} ({@code
 * reward_fixtures.py}); this test holds align4j to them: what it writes today is byte for byte what
 * transformers checked, and what it computes on them is what transformers computed.
 */
class Align4jRewardModelTest {
    @TempDir
    Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny", "llama-tiny"})
    void whatAlign4jWritesIsTheFolderTransformersChecked(String name) throws IOException {
        Path committed = Fixtures.reward("align4j-written/" + name);
        Path written = tmp.resolve(name);
        try (CausalLm rm = RewardModelFixtureWriter.fromCausalLm(name)) {
            rm.save(written, Fixtures.model(name));
        }
        assertThat(Files.readString(written.resolve("config.json")))
                .isEqualTo(Files.readString(committed.resolve("config.json")));
        assertThat(Files.mismatch(written.resolve("model.safetensors"), committed.resolve("model.safetensors")))
                .as("model.safetensors")
                .isEqualTo(-1L);
        JsonNode oracle = RewardModels.json(committed.resolve("transformers_rewards.json"));
        assertThat(oracle.get("class").asText())
                .isEqualTo(
                        name.startsWith("gpt2") ? "GPT2ForSequenceClassification" : "LlamaForSequenceClassification");
        oracle.get("loading_info")
                .fields()
                .forEachRemaining(e -> assertThat(e.getValue())
                        .as("transformers' " + e.getKey())
                        .isEmpty());
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny", "llama-tiny"})
    void transformersGivesAlign4jsRewards(String name) {
        Path dir = Fixtures.reward("align4j-written/" + name);
        JsonNode fx = RewardModels.json(dir.resolve("transformers_rewards.json"));
        int[][] rows = RewardModels.rows(fx.get("sequence_ids"));
        int pad = fx.get("pad_token_id").asInt();
        try (CausalLm rm = CausalLm.load(dir, Device.cpu())) {
            TransformersRewardModelTest.assertClose(
                    name + " unpadded", RewardModels.scoreOneByOne(rm, rows), RewardModels.doubles(fx.get("unpadded")));
            TransformersRewardModelTest.assertClose(
                    name + " right-padded",
                    RewardModels.score(rm, rows, pad, false),
                    RewardModels.doubles(fx.get("right_padded")));
            TransformersRewardModelTest.assertClose(
                    name + " left-padded",
                    RewardModels.score(rm, rows, pad, true),
                    RewardModels.doubles(fx.get("left_padded")));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny", "llama-tiny"})
    void aNewHeadSitsOnTheCausalLmsDecoderAndIsDrawnAsTransformersDraws(String name) throws IOException {
        try (CausalLm lm = CausalLm.load(Fixtures.model(name), Device.cpu());
                CausalLm rm = RewardModelFixtureWriter.fromCausalLm(name)) {
            Map<String, Parameter> decoder = lm.parameters();
            for (Map.Entry<String, Parameter> e : rm.parameters().entrySet()) {
                if (e.getKey().equals("score.weight")) {
                    continue;
                }
                assertThat(decoder).containsKey(e.getKey());
                assertThat(e.getValue()
                                .getArray()
                                .contentEquals(decoder.get(e.getKey()).getArray()))
                        .as(e.getKey())
                        .isTrue();
            }
            assertThat(rm.parameters()).doesNotContainKey("lm_head.weight");
            NDArray score = rm.parameters().get("score.weight").getArray();
            assertThat(score.getShape().getShape()).containsExactly(1, 64);
            // N(0, initializer_range = 0.02): 64 draws put the sample deviation within 25% of it (5 standard errors)
            double std = Math.sqrt(score.square().mean().getFloat());
            assertThat(std).isBetween(0.015, 0.025);
            assertThat(rm.config().isSequenceClassifier()).isTrue();
            assertThat(rm.config().padTokenId()).isEqualTo(RewardModelFixtureWriter.PAD);
        }
        JsonNode cfg =
                RewardModels.json(Fixtures.reward("align4j-written/" + name).resolve("config.json"));
        assertThat(cfg.get("architectures").get(0).asText()).endsWith("ForSequenceClassification");
        assertThat(cfg.get("id2label").size()).isEqualTo(1);
        assertThat(cfg.get("label2id").get("LABEL_0").asInt()).isZero();
        assertThat(cfg.get("pad_token_id").asInt()).isEqualTo(RewardModelFixtureWriter.PAD);
    }
}
