package org.align4j.model.reward;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.SplittableRandom;
import org.align4j.model.CausalLm;
import org.align4j.model.Fixtures;
import org.align4j.model.io.CheckpointException;
import org.align4j.model.lora.LoraConfig;
import org.align4j.model.lora.PeftAdapter;
import org.align4j.model.nn.CausalLmBlock;
import org.align4j.model.nn.LoraAdapter;
import org.align4j.model.nn.Projection;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A reward model with LoRA, as TRL's RewardTrainer trains one with a PEFT config of task_type SEQ_CLS:
 * adapters on the decoder and the score head trained in full beside them, saved as PEFT saves its
 * {@code modules_to_save}. The oracle is PEFT 0.21 ({@code model/src/test/python/reward_lora_fixtures.py},
 * resources {@code reward/lora}): an adapter PEFT wrote gives PEFT's rewards in align4j, and the adapter
 * align4j writes is the one PEFT loaded and gave these rewards for, within 1e-5 relative.
 */
class RewardLoraTest {
    @TempDir
    Path tmp;

    private static void assertRewards(String what, CausalLm rm, JsonNode fx) {
        int[][] rows = RewardModels.rows(fx.get("sequence_ids"));
        int pad = fx.get("pad_token_id").asInt();
        TransformersRewardModelTest.assertClose(
                what + " unpadded", RewardModels.scoreOneByOne(rm, rows), RewardModels.doubles(fx.get("unpadded")));
        TransformersRewardModelTest.assertClose(
                what + " right-padded",
                RewardModels.score(rm, rows, pad, false),
                RewardModels.doubles(fx.get("right_padded")));
        TransformersRewardModelTest.assertClose(
                what + " left-padded",
                RewardModels.score(rm, rows, pad, true),
                RewardModels.doubles(fx.get("left_padded")));
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny", "llama-tiny"})
    void anAdapterPeftWroteForASequenceClassifierGivesPeftsRewards(String kind) {
        Path dir = Fixtures.reward("lora/peft-written/" + kind);
        JsonNode fx = RewardModels.json(dir.resolve("peft_rewards.json"));
        // what PEFT trains and saves for SEQ_CLS: the adapters and the score head (modules_to_save)
        assertThat(fx.get("trainable_parameters").toString())
                .contains("base_model.model.score.modules_to_save.default.weight");
        assertThat(fx.get("saved_tensors").toString()).contains("\"base_model.model.score.weight\"");
        try (CausalLm rm = CausalLm.load(dir, Device.cpu())) {
            assertThat(rm.isRewardModel()).isTrue();
            assertThat(rm.hasAdapters()).isTrue();
            assertRewards(kind + " PEFT-written", rm, fx);
        }
    }

    /** The adapter align4j writes for each fixture: a reward model from the causal LM, LoRA with non-zero B and a drawn score head. */
    static CausalLm align4jRewardModel(String kind) {
        LoraConfig config = "gpt2-tiny".equals(kind)
                ? new LoraConfig(2, 4, 0, LoraConfig.parseTargets("c_attn,mlp.c_fc"), false)
                : new LoraConfig(4, 8, 0, new LoraConfig.AllLinear(), false);
        CausalLm rm = CausalLm.loadRewardModel(
                Fixtures.model(kind), Device.cpu(), RewardModelFixtureWriter.PAD, RewardModelFixtureWriter.SEED);
        rm.addLora(config, 17);
        SplittableRandom random = new SplittableRandom(5);
        CausalLmBlock block = (CausalLmBlock) rm.block();
        for (Projection p : block.projections().values()) {
            LoraAdapter a = p.adapter();
            if (a != null) {
                fill(a.b().getArray(), random, 0.2);
            }
        }
        fill(block.scoreWeight().getArray(), random, 0.3);
        return rm;
    }

    private static void fill(NDArray a, SplittableRandom random, double scale) {
        float[] v = new float[(int) a.size()];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (scale * (2 * random.nextDouble() - 1));
        }
        a.set(v);
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny", "llama-tiny"})
    void theAdapterAlign4jWritesLoadsInPeftWithTheSameRewards(String kind) throws IOException {
        // written under target/, where reward_lora_fixtures.py picks it up to load it in PEFT
        Path written = Path.of("target", "reward-lora-align4j-written", kind);
        try (CausalLm rm = align4jRewardModel(kind)) {
            rm.save(written, null);
        }
        Path peftLoaded = Fixtures.reward("lora/align4j-written/" + kind);
        assertThat(peftLoaded.resolve("peft_rewards.json"))
                .as("run model/src/test/python/reward_lora_fixtures.py after this test once")
                .exists();
        ObjectNode now = (ObjectNode) RewardModels.json(written.resolve(PeftAdapter.CONFIG_FILE));
        ObjectNode then = (ObjectNode) RewardModels.json(peftLoaded.resolve(PeftAdapter.CONFIG_FILE));
        assertThat(now.get("task_type").asText()).isEqualTo("SEQ_CLS");
        assertThat(now.get("modules_to_save").toString()).isEqualTo("[\"classifier\",\"score\"]");
        now.remove("base_model_name_or_path");
        then.remove("base_model_name_or_path");
        assertThat(now).isEqualTo(then);
        JsonNode fx = RewardModels.json(peftLoaded.resolve("peft_rewards.json"));
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                CausalLm rm = CausalLm.load(written, Device.cpu())) {
            Map<String, NDArray> a = Fixtures.tensors(written.resolve(PeftAdapter.WEIGHTS_FILE), m);
            Map<String, NDArray> b = Fixtures.tensors(peftLoaded.resolve(PeftAdapter.WEIGHTS_FILE), m);
            assertThat(a.keySet()).isEqualTo(b.keySet()).contains(PeftAdapter.SCORE_TENSOR);
            a.forEach((name, arr) ->
                    assertThat(arr.contentEquals(b.get(name))).as(name).isTrue());
            assertThat(rm.isRewardModel()).isTrue();
            assertRewards(kind + " align4j-written, as PEFT scored it", rm, fx);
            // and the adapters and head moved them: these are not the new reward model's
            try (CausalLm plain = CausalLm.loadRewardModel(
                    Fixtures.model(kind), Device.cpu(), RewardModelFixtureWriter.PAD, RewardModelFixtureWriter.SEED)) {
                int[][] rows = RewardModels.rows(fx.get("sequence_ids"));
                double[] base = RewardModels.score(plain, rows, RewardModelFixtureWriter.PAD, false);
                double[] got = RewardModels.doubles(fx.get("right_padded"));
                for (int i = 0; i < base.length; i++) {
                    assertThat(Math.abs(got[i] - base[i])).as("row %d moved", i).isGreaterThan(1e-2);
                }
            }
        }
    }

    @Test
    void onlyTheAdaptersAndTheScoreHeadGetGradients() {
        try (CausalLm rm = CausalLm.load(Fixtures.reward("lora/peft-written/gpt2-tiny"), Device.cpu())) {
            Map<String, Parameter> trainable = rm.trainableParameters();
            assertThat(trainable).containsKey("score.weight");
            assertThat(trainable.keySet().stream().filter(n -> !n.equals("score.weight")))
                    .allMatch(n -> n.contains(".lora_"));
            int[][] rows = RewardModels.rows(RewardModels.json(
                            Fixtures.reward("lora/peft-written/gpt2-tiny").resolve("peft_rewards.json"))
                    .get("sequence_ids"));
            try (NDManager m = rm.manager().newSubManager()) {
                int t = 0;
                for (int[] r : rows) {
                    t = Math.max(t, r.length);
                }
                long[] ids = new long[rows.length * t];
                long[] mask = new long[rows.length * t];
                Arrays.fill(ids, RewardModelFixtureWriter.PAD);
                for (int i = 0; i < rows.length; i++) {
                    for (int j = 0; j < rows[i].length; j++) {
                        ids[i * t + j] = rows[i][j];
                        mask[i * t + j] = 1;
                    }
                }
                Shape shape = new Shape(rows.length, t);
                try (GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
                    NDArray r = rm.rewards(m.create(ids, shape), m.create(mask, shape), true);
                    // the Bradley-Terry loss log(1 + exp(-(r_c - r_r))), the first half against the second
                    gc.backward(r.get("0:8")
                            .sub(r.get("8:"))
                            .neg()
                            .exp()
                            .add(1f)
                            .log()
                            .sum());
                }
            }
            for (Map.Entry<String, Parameter> e : rm.parameters().entrySet()) {
                assertThat(e.getValue().requiresGradient())
                        .as(e.getKey() + (e.getKey().equals("score.weight") ? " trains" : " frozen"))
                        .isEqualTo(e.getKey().equals("score.weight"));
            }
            trainable.forEach((name, p) -> {
                assertThat(p.requiresGradient()).as(name).isTrue();
                NDArray g = p.getArray().getGradient();
                assertThat(g.abs().sum().getFloat()).as(name + " gradient").isGreaterThan(0f);
                g.close();
            });
        }
    }

    @Test
    void adaptersOfTheOtherKindAreRefusedByName() throws IOException {
        // a reward model's adapter on a causal LM, and a causal LM's adapter on a reward model
        try (CausalLm lm = CausalLm.load(Fixtures.model("gpt2-tiny"), Device.cpu())) {
            assertThatThrownBy(() -> lm.loadAdapter(Fixtures.reward("lora/peft-written/gpt2-tiny")))
                    .isInstanceOf(CheckpointException.class)
                    .hasMessageContaining("adapter_config.json")
                    .hasMessageContaining("task_type")
                    .hasMessageContaining("SEQ_CLS");
        }
        try (CausalLm rm =
                CausalLm.loadRewardModel(Fixtures.model("gpt2-tiny"), Device.cpu(), RewardModelFixtureWriter.PAD, 1)) {
            assertThatThrownBy(() -> rm.loadAdapter(Fixtures.lora("peft-written/gpt2-tiny")))
                    .isInstanceOf(CheckpointException.class)
                    .hasMessageContaining("task_type")
                    .hasMessageContaining("SEQ_CLS");
        }
        // modules_to_save beyond the score head
        Path dir = tmp.resolve("other-modules");
        Files.createDirectories(dir);
        Path src = Fixtures.reward("lora/peft-written/gpt2-tiny");
        Files.copy(src.resolve(PeftAdapter.WEIGHTS_FILE), dir.resolve(PeftAdapter.WEIGHTS_FILE));
        Files.writeString(
                dir.resolve(PeftAdapter.CONFIG_FILE),
                Files.readString(src.resolve(PeftAdapter.CONFIG_FILE)).replace("\"score\"", "\"score\", \"wte\""));
        assertThatThrownBy(() -> PeftAdapter.readConfig(dir))
                .isInstanceOf(CheckpointException.class)
                .hasMessageContaining("modules_to_save")
                .hasMessageContaining("wte");
    }
}
