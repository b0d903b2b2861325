package org.align4j.model.nn;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.align4j.model.CausalLm;
import org.align4j.model.Fixtures;
import org.align4j.model.LogProbs;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Each layer's arrays are closed when the layer ends, before the backward pass: the gradients must not
 * change however much the JVM collects garbage in between (a closed Java handle whose memory autograd
 * still read would show as wrong or NaN gradients after a collection, see ScalarOps).
 */
class LayerScopeTest {
    static Map<String, float[]> gradients(CausalLm lm, Map<String, NDArray> ref, boolean collectGarbage)
            throws InterruptedException {
        Map<String, float[]> out = new LinkedHashMap<>();
        try (NDManager step = ref.get("pref_input_ids").getManager().newSubManager();
                GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
            NDArray ids = ref.get("pref_input_ids").duplicate();
            NDArray mask = ref.get("pref_attention_mask").duplicate();
            NDArray completion = ref.get("pref_completion_mask").duplicate();
            ids.attach(step);
            mask.attach(step);
            completion.attach(step);
            LogProbs lp = lm.completionLogProbs(ids, mask, completion, true);
            if (collectGarbage) {
                for (int i = 0; i < 3; i++) {
                    List<byte[]> junk = new ArrayList<>();
                    for (int j = 0; j < 64; j++) {
                        junk.add(new byte[1 << 20]);
                    }
                    junk.clear();
                    System.gc();
                    Thread.sleep(20);
                }
            }
            gc.backward(lp.sum().sum());
        }
        lm.trainableParameters().forEach((name, p) -> {
            NDArray g = p.getArray().getGradient();
            out.put(name, g.toFloatArray());
            g.subi(g); // gradients accumulate across passes: start the next one from zero
            g.close();
        });
        return out;
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny:eager:full", "llama-tiny:sdpa:lora", "gpt2-tiny:eager:lora"})
    void gradientsSurviveGarbageCollectionBetweenForwardAndBackward(String spec) throws InterruptedException {
        String[] s = spec.split(":");
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                CausalLm lm = CausalLm.load(Fixtures.model(s[0]), Device.cpu())) {
            lm.setCompute(Compute.parse(s[1], "fp32", Device.cpu()));
            if ("lora".equals(s[2])) {
                lm.loadAdapter(Fixtures.lora("peft-written/" + s[0]));
            }
            Map<String, NDArray> ref = Fixtures.reference(s[0], m);
            Map<String, float[]> quiet = gradients(lm, ref, false);
            for (int run = 0; run < 3; run++) {
                Map<String, float[]> collected = gradients(lm, ref, true);
                quiet.forEach(
                        (name, g) -> assertThat(collected.get(name)).as(name).containsExactly(g));
            }
            assertThat(quiet).isNotEmpty();
        }
    }
}
