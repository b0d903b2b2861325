package org.align4j.losses.rl;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.util.Arrays;
import java.util.List;
import java.util.function.BiFunction;
import org.junit.jupiter.api.Test;

/**
 * A garbage collection between the forward and the backward pass must not change the RL losses' gradients:
 * DJL 0.36's {@code mul/div(Number)} frees the scalar tensor autograd keeps for the backward pass, so each
 * constant on a gradient path goes through {@code PreferenceLoss.times} (the README's "DJL pitfalls").
 */
class RlLossGcTest {
    private static final int N = 64;

    /** The gradient of the loss w.r.t. the log-probs, with or without a collection before backward. */
    static float[] gradient(BiFunction<NDManager, NDArray, NDArray> loss, boolean collect) {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray lp = m.arange(0f, N, 1f).div(N).sub(1f);
            lp.setRequiresGradient(true);
            try (GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
                NDArray value = loss.apply(m, lp);
                if (collect) {
                    for (int j = 0; j < 20; j++) {
                        m.zeros(new Shape(8)).close();
                    }
                    System.gc();
                }
                gc.backward(value);
            }
            return lp.getGradient().toFloatArray();
        }
    }

    static NDArray advantages(NDManager m) {
        return m.arange(0f, N, 1f).div(N).sub(0.5f);
    }

    @Test
    void ppoAndGrpoGradientsSurviveGarbageCollection() {
        BiFunction<NDManager, NDArray, NDArray> ppo = (m, lp) -> {
            NDArray old = lp.stopGradient().add(0.05f);
            NDArray v = lp.add(lp); // a value estimate that depends on the parameters too
            return new PpoLoss(0.2, 0.2, 0.1)
                    .forward(lp, old, advantages(m), v, v.stopGradient(), m.ones(new Shape(N)))
                    .loss();
        };
        BiFunction<NDManager, NDArray, NDArray> grpo = (m, lp) -> new GrpoLoss(GrpoLoss.Aggregation.DAPO, 0.2, 0.2, 0.1)
                .forward(
                        lp,
                        lp.stopGradient().add(0.05f),
                        lp.stopGradient().sub(0.1f),
                        advantages(m),
                        m.ones(new Shape(1, N)),
                        m.create(new float[] {N}),
                        N * 3)
                .loss();
        for (BiFunction<NDManager, NDArray, NDArray> loss : List.of(ppo, grpo)) {
            float[] want = gradient(loss, false);
            int wrong = 0;
            for (int i = 0; i < 100; i++) {
                wrong += Arrays.equals(gradient(loss, true), want) ? 0 : 1;
            }
            assertThat(wrong).isZero();
        }
    }
}
