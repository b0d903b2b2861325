package org.align4j.model.reward;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.align4j.model.CausalLm;
import org.align4j.model.Fixtures;
import org.align4j.model.config.ConfigException;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A reward model transformers 5.17 saved ({@code AutoModelForSequenceClassification}, written by
 * {@code reward_fixtures.py}) loads in align4j and gives transformers' rewards within 1e-5 relative:
 * unpadded, right-padded, left-padded, and with eos as the pad token (the reward then read before the
 * final eos, as transformers locates it).
 */
class TransformersRewardModelTest {
    /** Relative tolerance of the acceptance, with an absolute floor for rewards near zero. */
    static final double RELATIVE = 1e-5;

    static final double ABSOLUTE = 1e-6;

    @TempDir
    Path tmp;

    static void assertClose(String what, double[] got, double[] want) {
        assertThat(got).as(what).hasSameSizeAs(want);
        for (int i = 0; i < want.length; i++) {
            assertThat(Math.abs(got[i] - want[i]))
                    .as("%s row %d: align4j %.9g, transformers %.9g", what, i, got[i], want[i])
                    .isLessThanOrEqualTo(Math.max(ABSOLUTE, RELATIVE * Math.abs(want[i])));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny", "llama-tiny"})
    void rewardsEqualTransformersWithEitherPadding(String name) {
        Path dir = Fixtures.reward("transformers-written/" + name);
        JsonNode fx = RewardModels.json(dir.resolve("rewards.json"));
        int[][] rows = RewardModels.rows(fx.get("sequence_ids"));
        try (CausalLm rm = CausalLm.load(dir, Device.cpu())) {
            assertThat(rm.isRewardModel()).isTrue();
            assertThat(rm.parameters()).containsKey("score.weight").doesNotContainKey("lm_head.weight");
            int pad = fx.get("pad_token_id").asInt();
            assertClose(
                    name + " unpadded", RewardModels.scoreOneByOne(rm, rows), RewardModels.doubles(fx.get("unpadded")));
            assertClose(
                    name + " right-padded",
                    RewardModels.score(rm, rows, pad, false),
                    RewardModels.doubles(fx.get("right_padded")));
            assertClose(
                    name + " left-padded",
                    RewardModels.score(rm, rows, pad, true),
                    RewardModels.doubles(fx.get("left_padded")));
            // transformers without position_ids shifts left-padded rows' positions; align4j takes them from the mask.
            // Rotary attention depends only on relative positions, so the shift changes Llama's rewards by rounding
            // alone; GPT-2's learned absolute positions change its rewards
            double[] shifted = RewardModels.doubles(fx.get("left_padded_arange_positions"));
            double[] left = RewardModels.doubles(fx.get("left_padded"));
            int differ = 0;
            for (int i = 0; i < left.length; i++) {
                differ += Math.abs(shifted[i] - left[i]) > 1e-3 ? 1 : 0;
            }
            assertThat(differ)
                    .as("rows whose transformers reward moves when left padding shifts positions")
                    .isEqualTo(name.startsWith("gpt2") ? left.length - countUnpadded(rows) : 0);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny", "llama-tiny"})
    void withEosAsThePadTokenTheRewardIsReadBeforeTheFinalEos(String name) throws IOException {
        Path src = Fixtures.reward("transformers-written/" + name);
        JsonNode fx = RewardModels.json(src.resolve("rewards.json"));
        Path dir = copyWithConfig(src, "pad_token_id", 2);
        try (CausalLm rm = CausalLm.load(dir, Device.cpu())) {
            assertClose(
                    name + " pad = eos",
                    RewardModels.score(rm, RewardModels.rows(fx.get("sequence_ids")), 2, false),
                    RewardModels.doubles(fx.get("right_padded_pad_is_eos")));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny", "llama-tiny"})
    void aClassifierWithMoreThanOneLabelIsRefusedByKey(String name) throws IOException {
        Path dir = copyWithConfig(Fixtures.reward("transformers-written/" + name), "id2label", null);
        ObjectNode cfg = (ObjectNode) RewardModels.json(dir.resolve("config.json"));
        cfg.putObject("id2label").put("0", "NEG").put("1", "POS");
        Files.writeString(dir.resolve("config.json"), cfg.toString());
        assertThatThrownBy(() -> CausalLm.load(dir, Device.cpu()))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("config.json")
                .hasMessageContaining("id2label")
                .hasMessageContaining("2 labels");
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny", "llama-tiny"})
    void aRewardModelHasNoLmHead(String name) {
        try (CausalLm rm = CausalLm.load(Fixtures.reward("transformers-written/" + name), Device.cpu());
                NDManager m = rm.manager().newSubManager()) {
            NDArray ids = m.create(new long[] {5, 6, 7}, new Shape(1, 3));
            assertThatThrownBy(() -> rm.logits(ids, ids.onesLike(), false))
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("no LM head");
        }
        try (CausalLm lm = CausalLm.load(Fixtures.model(name), Device.cpu());
                NDManager m = lm.manager().newSubManager()) {
            NDArray ids = m.create(new long[] {5, 6, 7}, new Shape(1, 3));
            assertThat(lm.isRewardModel()).isFalse();
            assertThatThrownBy(() -> lm.rewards(ids, ids.onesLike(), false))
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("not a reward model");
        }
    }

    /** Rows as long as the longest, which left padding does not shift. */
    private static int countUnpadded(int[][] rows) {
        int t = 0;
        for (int[] r : rows) {
            t = Math.max(t, r.length);
        }
        int n = 0;
        for (int[] r : rows) {
            n += r.length == t ? 1 : 0;
        }
        return n;
    }

    /** A copy of a model folder with one config key set (or removed, for null). */
    private Path copyWithConfig(Path src, String key, Object value) throws IOException {
        Path dir = Files.createTempDirectory(tmp, "rm");
        try (var files = Files.list(src)) {
            for (Path f : files.toList()) {
                Files.copy(f, dir.resolve(f.getFileName()));
            }
        }
        ObjectNode cfg = (ObjectNode) RewardModels.json(dir.resolve("config.json"));
        if (value == null) {
            cfg.remove(key);
        } else {
            cfg.set(key, RewardModels.JSON.valueToTree(value));
        }
        Files.writeString(dir.resolve("config.json"), cfg.toString());
        return dir;
    }
}
