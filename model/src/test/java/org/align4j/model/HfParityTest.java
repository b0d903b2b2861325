package org.align4j.model;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import java.util.List;
import java.util.Map;
import org.align4j.model.nn.CausalLmBlock;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The native models reproduce HF transformers' logits, hidden states and log-probs (REFERENCE.md tolerances). */
class HfParityTest {
    static final double ABS = 1e-4;
    static final double REL = 1e-4;

    /** Max |a−b| over positions whose attention mask is 1. */
    static double maxAbsOnValid(NDArray a, NDArray b, NDArray attentionMask) {
        NDArray valid = attentionMask.eq(1).expandDims(2);
        return a.sub(b).abs().mul(valid.toType(DataType.FLOAT32, false)).max().getFloat();
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny", "llama-tiny", "qwen2-tiny"})
    void logitsAndEveryHiddenStateMatchTransformers(String name) {
        try (CausalLm lm = CausalLm.load(Fixtures.model(name), Device.cpu());
                NDManager m = NDManager.newBaseManager(Device.cpu())) {
            Map<String, NDArray> ref = Fixtures.reference(name, m);
            NDArray ids = ref.get("input_ids");
            NDArray mask = ref.get("attention_mask");
            CausalLmBlock.Output out = lm.forward(ids, mask, null, true);
            assertThat(maxAbsOnValid(out.logits(), ref.get("logits"), mask)).isLessThan(ABS);
            List<NDArray> hidden = out.hiddenStates();
            assertThat(hidden).hasSize(lm.config().numLayers() + 1);
            for (int i = 0; i < hidden.size(); i++) {
                assertThat(maxAbsOnValid(hidden.get(i), ref.get("hidden_states." + i), mask))
                        .as("hidden_states.%d", i)
                        .isLessThan(ABS);
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny", "llama-tiny", "qwen2-tiny"})
    void policyAndReferenceLogProbsMatchTransformers(String name) {
        try (CausalLm policy = CausalLm.load(Fixtures.model(name), Device.cpu());
                CausalLm reference = CausalLm.load(Fixtures.model(name + "-ref"), Device.cpu());
                NDManager m = NDManager.newBaseManager(Device.cpu())) {
            Map<String, NDArray> ref = Fixtures.reference(name, m);
            NDArray ids = ref.get("pref_input_ids");
            NDArray mask = ref.get("pref_attention_mask");
            NDArray completion = ref.get("pref_completion_mask");
            LogProbs p = LogProbs.of(policy.logits(ids, mask, false), ids, completion);
            LogProbs r = LogProbs.of(reference.logits(ids, mask, false), ids, completion);
            assertRelClose(p.sum(), ref.get("policy_logps"), "policy_logps");
            assertRelClose(p.mean(), ref.get("policy_logps_mean"), "policy_logps_mean");
            assertRelClose(r.sum(), ref.get("reference_logps"), "reference_logps");
            assertRelClose(r.mean(), ref.get("reference_logps_mean"), "reference_logps_mean");
            assertThat(p.tokens().toFloatArray())
                    .containsExactly(ref.get("completion_tokens").toFloatArray());
        }
    }

    static void assertRelClose(NDArray actual, NDArray expected, String what) {
        float[] a = actual.toFloatArray();
        float[] e = expected.toFloatArray();
        assertThat(a).as(what).hasSameSizeAs(e);
        for (int i = 0; i < a.length; i++) {
            double rel = Math.abs(a[i] - e[i]) / Math.max(Math.abs(e[i]), 1e-12);
            assertThat(rel).as("%s[%d]: %s vs %s", what, i, a[i], e[i]).isLessThan(REL);
        }
    }
}
