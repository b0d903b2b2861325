package org.align4j.model;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.util.function.BiFunction;
import org.junit.jupiter.api.Test;

/** A garbage collection between the forward and backward pass must not change a scaled gradient. */
class ScalarOpsTest {
    /** Counts the iterations in which d(x·3)/dx is not exactly 3 when the GC runs before backward. */
    static int wrongGradients(BiFunction<NDArray, Double, NDArray> scale, int iterations) {
        int wrong = 0;
        try (NDManager base = NDManager.newBaseManager(Device.cpu())) {
            for (int i = 0; i < iterations; i++) {
                try (NDManager step = base.newSubManager()) {
                    NDArray x = step.ones(new Shape(1024));
                    x.setRequiresGradient(true);
                    try (GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
                        NDArray y = scale.apply(x, 3.0).sum();
                        // churn allocations and collect, as a training step does between forward and backward
                        for (int j = 0; j < 20; j++) {
                            step.zeros(new Shape(8)).close();
                        }
                        System.gc();
                        gc.backward(y);
                    }
                    float[] g = x.getGradient().toFloatArray();
                    for (float v : g) {
                        if (v != 3f) {
                            wrong++;
                            break;
                        }
                    }
                }
            }
        }
        return wrong;
    }

    @Test
    void scaledGradientSurvivesGarbageCollection() {
        assertThat(wrongGradients(ScalarOps::times, 300)).isZero();
        // d(x / (1/3))/dx = 3 as well
        assertThat(wrongGradients((x, s) -> ScalarOps.dividedBy(x, 1 / s), 300)).isZero();
    }
}
