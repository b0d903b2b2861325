package org.align4j.model;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import java.util.Map;
import org.align4j.model.nn.Compute;
import org.assertj.core.data.Offset;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@link CausalLm#paddedTokenLogProbs}, the pass TRL's experimental ORPO and CPO trainers read: every
 * position's mean logit, padding positions included, equals the mean over the vocabulary of transformers'
 * own logits for the fixture batch (right-padded, no {@code position_ids}: padding at its index, padding
 * keys masked), and the token log-probs equal the completion log-probs of the usual pass.
 */
class PaddedScoresTest {
    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny", "llama-tiny", "qwen2-tiny"})
    void everyPositionsMeanLogitIsTransformersPaddingIncluded(String name) {
        for (Compute.Attention attention : Compute.Attention.values()) {
            try (NDManager m = NDManager.newBaseManager(Device.cpu());
                    CausalLm lm = CausalLm.load(Fixtures.model(name), Device.cpu())) {
                lm.setCompute(Compute.of(attention, Compute.Precision.FP32, Device.cpu()));
                Map<String, NDArray> ref = Fixtures.reference(name, m);
                NDArray ids = ref.get("input_ids");
                NDArray mask = ref.get("attention_mask");
                assertThat(mask.sum().getLong())
                        .as("the fixture batch has padding")
                        .isLessThan(ids.getShape().size());
                CausalLm.PaddedScores s = lm.paddedTokenLogProbs(ids, mask, mask, false);
                float[] want = ref.get("logits").mean(new int[] {2}).toFloatArray();
                float[] got = s.meanLogits().toFloatArray();
                assertThat(got).hasSameSizeAs(want);
                for (int i = 0; i < want.length; i++) {
                    assertThat((double) got[i])
                            .as("%s %s position %d", name, attention, i)
                            .isCloseTo(want[i], Offset.offset(1e-5));
                }
                LogProbs usual = lm.completionLogProbs(ids, mask, mask, false);
                float[] sums = s.tokens().sumPerRow(s.tokens().logProbs()).toFloatArray();
                float[] usualSums = usual.sum().toType(DataType.FLOAT32, false).toFloatArray();
                for (int r = 0; r < sums.length; r++) {
                    assertThat((double) sums[r]).isCloseTo(usualSums[r], Offset.offset(1e-4 * Math.abs(usualSums[r])));
                }
            }
        }
    }
}
