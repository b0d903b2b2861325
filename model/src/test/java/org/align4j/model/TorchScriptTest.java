package org.align4j.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Parameter;
import ai.djl.training.GradientCollector;
import java.nio.file.Path;
import java.util.Map;
import org.align4j.model.io.CheckpointException;
import org.junit.jupiter.api.Test;

class TorchScriptTest {
    static final Path PT = Fixtures.root().resolve("torchscript/gpt2-tiny.pt");

    @Test
    void tracedGpt2LogitsMatchTransformers() {
        try (CausalLm lm = CausalLm.loadTorchScript(PT, Device.cpu(), false);
                NDManager m = NDManager.newBaseManager(Device.cpu())) {
            Map<String, NDArray> ref = Fixtures.reference("gpt2-tiny", m);
            NDArray logits = lm.logits(ref.get("input_ids"), ref.get("attention_mask"), false);
            assertThat(HfParityTest.maxAbsOnValid(logits, ref.get("logits"), ref.get("attention_mask")))
                    .isLessThan(1e-4);
        }
    }

    @Test
    void everyParameterGetsAGradientWhenTrainable() {
        try (CausalLm lm = CausalLm.loadTorchScript(PT, Device.cpu(), true);
                NDManager m = NDManager.newBaseManager(Device.cpu())) {
            Map<String, NDArray> ref = Fixtures.reference("gpt2-tiny", m);
            NDArray ids = ref.get("pref_input_ids");
            try (GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
                NDArray logits = lm.logits(ids, ref.get("pref_attention_mask"), true);
                LogProbs lp = LogProbs.of(logits, ids, ref.get("pref_completion_mask"));
                gc.backward(lp.sum().sum());
            }
            assertThat(lm.parameters()).isNotEmpty();
            for (Map.Entry<String, Parameter> e : lm.parameters().entrySet()) {
                NDArray grad = e.getValue().getArray().getGradient();
                assertThat(grad.abs().sum().getFloat()).as(e.getKey()).isGreaterThan(0f);
            }
        }
    }

    @Test
    void frozenModelHasNoTrainableParameters() {
        try (CausalLm lm = CausalLm.loadTorchScript(PT, Device.cpu(), false)) {
            assertThat(lm.parameters().values()).noneMatch(Parameter::requiresGradient);
        }
    }

    @Test
    void missingFileIsNamed() {
        assertThatThrownBy(() -> CausalLm.loadTorchScript(Path.of("target/none.pt"), Device.cpu(), false))
                .isInstanceOf(CheckpointException.class)
                .hasMessageContaining("none.pt");
    }
}
