package org.align4j.trainer;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.training.GradientCollector;
import java.util.LinkedHashMap;
import java.util.Map;
import org.assertj.core.data.Offset;
import org.assertj.core.data.Percentage;
import org.junit.jupiter.api.Test;

/** The fused kernels (clip, AdamW) against the same update written with DJL ops. */
class AdamWTest {
    static Map<String, Parameter> params(NDManager m) {
        Map<String, Parameter> ps = new LinkedHashMap<>();
        m.getEngine().setRandomSeed(3);
        for (String name : new String[] {"w", "b", "emb"}) {
            Parameter p = Parameter.builder()
                    .setName(name)
                    .setType(Parameter.Type.WEIGHT)
                    .build();
            Shape shape = "b".equals(name) ? new Shape(7) : "w".equals(name) ? new Shape(7, 5) : new Shape(11, 7);
            NDArray a = m.randomNormal(shape);
            a.setRequiresGradient(true);
            p.setArray(a);
            ps.put(name, p);
        }
        return ps;
    }

    /** A loss whose gradient differs per step: Σ p·sin(step + index) · scale. */
    static void backward(Map<String, Parameter> ps, int step, double scale) {
        try (GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
            NDArray loss = null;
            for (Parameter p : ps.values()) {
                NDArray a = p.getArray();
                NDArray c = a.getManager()
                        .arange((float) a.size())
                        .add(step)
                        .sin()
                        .mul(scale)
                        .reshape(a.getShape());
                NDArray term = a.mul(c).sum();
                loss = loss == null ? term : loss.add(term);
            }
            gc.backward(loss);
        }
    }

    @Test
    void fusedKernelsMatchTheDjlOpsUpdate() {
        try (NDManager m1 = NDManager.newBaseManager(Device.cpu());
                NDManager m2 = NDManager.newBaseManager(Device.cpu())) {
            Map<String, Parameter> a = params(m1);
            Map<String, Parameter> b = params(m2);
            AdamW fused = new AdamW(a, 0.9, 0.95, 1e-8, 0.1);
            AdamW reference = new AdamW(b, 0.9, 0.95, 1e-8, 0.1);
            for (int step = 0; step < 6; step++) {
                double scale = step == 2 ? 50 : 1; // one step whose norm exceeds the limit
                backward(a, step, scale);
                backward(b, step, scale);
                double na = fused.clipGradients(3.0);
                double nb = reference.clipGradientsWithDjlOps(3.0);
                assertThat(na).isCloseTo(nb, Percentage.withPercentage(1e-4));
                fused.step(1e-2);
                reference.stepWithDjlOps(1e-2);
            }
            assertThat(fused.steps()).isEqualTo(6);
            for (String name : a.keySet()) {
                float[] x = a.get(name).getArray().toFloatArray();
                float[] y = b.get(name).getArray().toFloatArray();
                for (int i = 0; i < x.length; i++) {
                    assertThat(x[i]).as("%s[%d]", name, i).isCloseTo(y[i], Offset.offset(2e-6f));
                }
                // the kernel zeroed the gradients, as the DJL-ops update does
                assertThat(a.get(name).getArray().getGradient().abs().sum().getFloat())
                        .isZero();
                float[] mx = fused.state().get("exp_avg." + name).toFloatArray();
                float[] my = reference.state().get("exp_avg." + name).toFloatArray();
                for (int i = 0; i < mx.length; i++) {
                    assertThat(mx[i]).isCloseTo(my[i], Offset.offset(1e-6f));
                }
            }
        }
    }
}
