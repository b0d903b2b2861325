package org.align4j.model;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.nn.Parameter;
import java.util.Map;
import org.align4j.model.nn.Compute;
import org.assertj.core.data.Offset;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A model loaded with float16 weights (the frozen reference's {@code reference_dtype: fp16}) computes
 * in float32 on those weights: its log-probs equal those of the float32 model whose every weight was
 * rounded to float16, and stay near transformers' float32 log-probs.
 */
class Float16WeightsTest {
    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny:eager", "gpt2-tiny:sdpa", "llama-tiny:sdpa", "qwen2-tiny:eager"})
    void float16WeightsComputeInFloat32(String spec) {
        String kind = spec.split(":")[0];
        Compute.Attention attention = spec.endsWith("eager") ? Compute.Attention.EAGER : Compute.Attention.SDPA;
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                CausalLm half = CausalLm.load(Fixtures.model(kind), Device.cpu(), DataType.FLOAT16);
                CausalLm rounded = CausalLm.load(Fixtures.model(kind), Device.cpu())) {
            half.setCompute(Compute.of(attention, Compute.Precision.FP32, Device.cpu()));
            rounded.setCompute(Compute.of(attention, Compute.Precision.FP32, Device.cpu()));
            for (Parameter p : rounded.trainableParameters().values()) {
                NDArray w = p.getArray();
                NDArray r = w.toType(DataType.FLOAT16, false).toType(DataType.FLOAT32, false);
                w.set(r.toFloatArray());
                r.close();
            }
            Map<String, NDArray> ref = Fixtures.reference(kind, m);
            LogProbs a = half.completionLogProbs(
                    ref.get("pref_input_ids"), ref.get("pref_attention_mask"), ref.get("pref_completion_mask"), false);
            LogProbs b = rounded.completionLogProbs(
                    ref.get("pref_input_ids"), ref.get("pref_attention_mask"), ref.get("pref_completion_mask"), false);
            float[] got = a.sum().toFloatArray();
            float[] want = b.sum().toFloatArray();
            float[] transformers = ref.get("policy_logps").toFloatArray();
            for (int i = 0; i < got.length; i++) {
                assertThat((double) got[i])
                        .as("row %d against the fp16-rounded fp32 model", i)
                        .isCloseTo(want[i], Offset.offset(1e-5 * Math.abs(want[i])));
                assertThat((double) got[i])
                        .as("row %d against transformers' fp32", i)
                        .isCloseTo(transformers[i], Offset.offset(1e-2 * Math.abs(transformers[i])));
            }
        }
    }
}
