package org.align4j.model.reward;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
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
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A second, named adapter set with its own score head on a LoRA policy's base weights (PPO's value model
 * sharing the policy's frozen base): the set gives PEFT's numbers for a sequence classifier's adapter, the
 * policy's passes and its reference (adapters off) never see it, and it never sees the policy's adapters.
 * The oracle is PEFT 0.21 through the fixtures of {@link RewardLoraTest} ({@code
 * model/src/test/python/reward_lora_fixtures.py}).
 */
class AdapterSetTest {
    @TempDir
    Path tmp;

    /** The value at each row's last token, each row alone and unpadded: a reward model's reward. */
    static double[] lastValues(CausalLm model, int[][] rows) {
        double[] out = new double[rows.length];
        for (int i = 0; i < rows.length; i++) {
            try (NDManager m = model.manager().newSubManager()) {
                long[] ids = new long[rows[i].length];
                long[] mask = new long[rows[i].length];
                for (int j = 0; j < ids.length; j++) {
                    ids[j] = rows[i][j];
                    mask[j] = 1;
                }
                Shape shape = new Shape(1, ids.length);
                NDArray v = model.values(m.create(ids, shape), m.create(mask, shape), false, true);
                out[i] = v.toFloatArray()[ids.length - 1];
            }
        }
        return out;
    }

    static float[] logits(CausalLm model, int[] row) {
        try (NDManager m = model.manager().newSubManager()) {
            long[] ids = new long[row.length];
            for (int j = 0; j < ids.length; j++) {
                ids[j] = row[j];
            }
            Shape shape = new Shape(1, ids.length);
            return model.logits(m.create(ids, shape), m.ones(shape, DataType.INT64), false)
                    .toFloatArray();
        }
    }

    /** A LoRA policy whose adapters are not zero, so that applying them or not shows. */
    static CausalLm policy(String kind) {
        CausalLm policy = CausalLm.load(Fixtures.model(kind), Device.cpu());
        policy.addLora(new LoraConfig(4, 8, 0, new LoraConfig.AllLinear(), false), 3);
        SplittableRandom random = new SplittableRandom(11);
        for (Projection p : ((CausalLmBlock) policy.block()).projections().values()) {
            LoraAdapter a = p.adapter();
            if (a != null) {
                float[] v = new float[(int) a.b().getArray().size()];
                for (int i = 0; i < v.length; i++) {
                    v[i] = (float) (0.3 * (2 * random.nextDouble() - 1));
                }
                a.b().getArray().set(v);
            }
        }
        return policy;
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny", "llama-tiny"})
    void aPeftRewardAdapterLoadedAsASetOnTheLoraPolicyGivesPeftsRewardsAndLeavesThePolicyAlone(String kind) {
        Path dir = Fixtures.reward("lora/peft-written/" + kind);
        JsonNode fx = RewardModels.json(dir.resolve("peft_rewards.json"));
        int[][] rows = RewardModels.rows(fx.get("sequence_ids"));
        try (CausalLm policy = policy(kind)) {
            CausalLm reference = policy.withoutAdapters();
            float[] policyBefore = logits(policy, rows[0]);
            float[] referenceBefore = logits(reference, rows[0]);
            assertThat(policyBefore).isNotEqualTo(referenceBefore);

            CausalLm value = policy.loadSequenceClassifierAdapter("value", dir);
            assertThat(value.isView()).isTrue();
            assertThat(value.isRewardModel()).isTrue();
            // PEFT's rewards: the set sees the base and its own adapters, not the policy's
            TransformersRewardModelTest.assertClose(
                    kind + " value set", lastValues(value, rows), RewardModels.doubles(fx.get("unpadded")));
            // and the policy and its reference are bit for bit what they were
            assertThat(logits(policy, rows[0])).isEqualTo(policyBefore);
            assertThat(logits(reference, rows[0])).isEqualTo(referenceBefore);
            // only the policy's own set is the policy's: what it trains and saves
            assertThat(policy.trainableParameters().keySet()).noneMatch(n -> n.contains("value"));
            assertThat(value.trainableParameters().keySet())
                    .contains("score.weight")
                    .allMatch(n -> n.equals("score.weight") || n.matches(".*\\.lora_[AB]\\.weight"));
            assertThatThrownBy(policy::mergeAdapters)
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("'value'");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny", "llama-tiny"})
    void aNewSetStartsAsTheValueModelMadeFromThePolicysFolder(String kind) {
        int[][] rows = {{5, 9, 2, 7, 1}, {4, 4, 8}};
        try (CausalLm policy = policy(kind);
                CausalLm full = CausalLm.loadRewardModel(Fixtures.model(kind), Device.cpu(), -1, 42)) {
            CausalLm value = policy.addSequenceClassifierAdapter("value", policy.lora(), 7, 42);
            // the same head drawn from the same seed; B = 0, so the base's outputs (unfused path: 1e-5)
            try (NDArray a = value.trainableParameters()
                            .get("score.weight")
                            .getArray()
                            .duplicate();
                    NDArray b = full.parameters().get("score.weight").getArray().duplicate()) {
                assertThat(a.contentEquals(b)).isTrue();
            }
            double[] got = lastValues(value, rows);
            double[] want = lastValues(full, rows);
            for (int i = 0; i < rows.length; i++) {
                assertThat(got[i]).as("row %d", i).isCloseTo(want[i], Offset.offset(1e-5));
            }
        }
    }

    @Test
    void theSetTrainsAloneSavesAsASequenceClassifiersAdapterAndLoadsBackExactly() throws IOException {
        int[][] rows = {{5, 9, 2, 7, 1}, {4, 4, 8, 3}};
        Path saved = tmp.resolve("value_model");
        double[] trained;
        try (CausalLm policy = policy("llama-tiny")) {
            CausalLm value = policy.addSequenceClassifierAdapter("value", policy.lora(), 7, 42);
            try (NDManager m = policy.manager().newSubManager()) {
                Shape shape = new Shape(1, 5);
                try (GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
                    NDArray v = value.values(
                            m.create(new long[] {5, 9, 2, 7, 1}, shape),
                            m.ones(shape).toType(DataType.INT64, false),
                            true,
                            true);
                    gc.backward(v.square().sum());
                }
            }
            // the base gets no gradient; the policy's set gets none either (zero or never made)
            for (Parameter p : policy.parameters().values()) {
                assertThat(p.requiresGradient()).as(p.getName()).isFalse();
            }
            for (Map.Entry<String, Parameter> e : policy.trainableParameters().entrySet()) {
                if (e.getValue().getArray().hasGradient()) {
                    try (NDArray g = e.getValue().getArray().getGradient()) {
                        assertThat(g.abs().sum().getFloat()).as(e.getKey()).isZero();
                    }
                }
            }
            // the value set's B (still zero) and head get gradients; move them so the save is not trivial
            SplittableRandom random = new SplittableRandom(1);
            for (Map.Entry<String, Parameter> e : value.trainableParameters().entrySet()) {
                NDArray a = e.getValue().getArray();
                if (e.getKey().contains("lora_B") || e.getKey().equals("score.weight")) {
                    try (NDArray g = a.getGradient()) {
                        assertThat(g.abs().sum().getFloat()).as(e.getKey()).isGreaterThan(0f);
                    }
                }
                float[] f = a.toFloatArray();
                for (int i = 0; i < f.length; i++) {
                    f[i] += (float) (0.1 * (2 * random.nextDouble() - 1));
                }
                a.set(f);
            }
            trained = lastValues(value, rows);
            value.writeTo(Files.createDirectories(saved), null, CausalLm.DEFAULT_SHARD_BYTES);
        }
        JsonNode config = RewardModels.json(saved.resolve(PeftAdapter.CONFIG_FILE));
        assertThat(config.get("task_type").asText()).isEqualTo("SEQ_CLS");
        assertThat(config.get("r").asInt()).isEqualTo(4);
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            assertThat(Fixtures.tensors(saved.resolve(PeftAdapter.WEIGHTS_FILE), m)
                            .keySet())
                    .contains(PeftAdapter.SCORE_TENSOR)
                    .noneMatch(n -> n.contains("value"));
        }
        // back on a new policy's base, exactly; and as a reward model of its own (what PEFT would load)
        try (CausalLm policy = policy("llama-tiny")) {
            CausalLm value = policy.loadSequenceClassifierAdapter("value", saved);
            assertThat(lastValues(value, rows)).isEqualTo(trained);
        }
        try (CausalLm alone = CausalLm.load(saved, Device.cpu())) {
            double[] got = lastValues(alone, rows);
            for (int i = 0; i < rows.length; i++) {
                assertThat(got[i]).as("row %d", i).isCloseTo(trained[i], Offset.offset(1e-5));
            }
        }
    }

    @Test
    void aCausalLmsAdapterIsRefusedAsAValueModelsSetByItsKey() {
        try (CausalLm policy = policy("llama-tiny")) {
            assertThatThrownBy(() ->
                            policy.loadSequenceClassifierAdapter("value", Fixtures.lora("peft-written/llama-tiny")))
                    .isInstanceOf(CheckpointException.class)
                    .hasMessageContaining("task_type");
            assertThatThrownBy(() -> policy.addSequenceClassifierAdapter(LoraAdapter.DEFAULT, policy.lora(), 1, 1))
                    .isInstanceOf(IllegalArgumentException.class);
        }
    }
}
