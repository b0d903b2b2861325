package org.align4j.model.kernels;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.lang.reflect.Field;
import java.util.Map;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;

class TorchScriptKernelTest {
    @Test
    void aKernelWrittenAtRunTimeComputesAndDifferentiates() {
        String src = """
                def forward(self: __torch__.SELF,
                    x: Tensor,
                    y: Tensor) -> Tensor:
                  return torch.mul(torch.sin(x), y)
                """;
        try (TorchScriptKernel k = TorchScriptKernel.load("SinMul", src, Device.cpu());
                NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray x = m.create(new float[] {0.1f, 0.5f, 1.0f, 2.0f});
            NDArray y = m.create(new float[] {1f, 2f, 3f, 4f});
            x.setRequiresGradient(true);
            NDArray out;
            try (GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
                out = k.forward(true, x, y).singletonOrThrow();
                gc.backward(out.sum());
            }
            float[] xs = {0.1f, 0.5f, 1.0f, 2.0f};
            float[] v = out.toFloatArray();
            float[] g = x.getGradient().toFloatArray();
            for (int i = 0; i < 4; i++) {
                assertThat(v[i]).isCloseTo((float) Math.sin(xs[i]) * (i + 1), Offset.offset(1e-6f));
                assertThat(g[i]).as("d/dx sin(x)·y").isCloseTo((float) Math.cos(xs[i]) * (i + 1), Offset.offset(1e-6f));
            }
            assertThat(out.getManager()).isSameAs(x.getManager());
        }
    }

    @Test
    void bf16InsideAKernelKeepsGradientsFlowingToFp32Inputs() {
        String src = """
                def forward(self: __torch__.SELF,
                    a: Tensor,
                    b: Tensor) -> Tensor:
                  return torch.to(torch.matmul(torch.to(a, 15), torch.to(b, 15)), 6)
                """;
        try (TorchScriptKernel k = TorchScriptKernel.load("Bf16MatMul", src, Device.cpu());
                NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray a = m.randomNormal(new Shape(8, 16));
            NDArray b = m.randomNormal(new Shape(16, 4));
            a.setRequiresGradient(true);
            NDArray out;
            try (GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
                out = k.forward(true, a, b).singletonOrThrow();
                gc.backward(out.sum());
            }
            assertThat(out.getDataType()).isEqualTo(DataType.FLOAT32);
            float[] exact = a.matMul(b).toFloatArray();
            float[] got = out.toFloatArray();
            for (int i = 0; i < exact.length; i++) {
                assertThat(got[i]).isCloseTo(exact[i], Offset.offset(0.05f + 0.02f * Math.abs(exact[i])));
            }
            // d/da Σ(ab) = 1·bᵀ: every row of the gradient is the row sums of b
            float[] grad = a.getGradient().toFloatArray();
            float[] rowSums = b.sum(new int[] {1}).toFloatArray();
            for (int i = 0; i < 8; i++) {
                for (int j = 0; j < 16; j++) {
                    assertThat(grad[i * 16 + j])
                            .isCloseTo(rowSums[j], Offset.offset(0.05f + 0.02f * Math.abs(rowSums[j])));
                }
            }
        }
    }

    /**
     * A parameter (a named array) goes to a kernel as an unnamed view; the view must not stay behind
     * in the parameter's manager, which lives as long as the model (it did: 0.7 MB per step).
     */
    @Test
    void parameterViewsDoNotAccumulateInTheModelsManager() throws Exception {
        String src =
                "def forward(self: __torch__.SELF,\n    x: Tensor,\n    w: Tensor) -> Tensor:\n  return torch.mul(x, w)\n";
        try (TorchScriptKernel k = TorchScriptKernel.load("MulParam", src, Device.cpu());
                NDManager model = NDManager.newBaseManager(Device.cpu());
                NDManager steps = NDManager.newBaseManager(Device.cpu())) {
            NDArray w = model.ones(new Shape(4));
            w.setName("layers.0.weight");
            int before = resources(model);
            for (int i = 0; i < 50; i++) {
                try (NDManager step = steps.newSubManager()) {
                    NDArray x = step.arange(4f);
                    assertThat(k.forward(false, x, w).singletonOrThrow().toFloatArray())
                            .containsExactly(0f, 1f, 2f, 3f);
                }
            }
            assertThat(resources(model)).isEqualTo(before);
        }
    }

    private static int resources(NDManager m) throws ReflectiveOperationException {
        for (Class<?> c = m.getClass(); c != null; c = c.getSuperclass()) {
            try {
                Field f = c.getDeclaredField("resources");
                f.setAccessible(true);
                return ((Map<?, ?>) f.get(m)).size();
            } catch (NoSuchFieldException e) {
                // look in the superclass
            }
        }
        throw new IllegalStateException("no resources field in " + m.getClass());
    }

    @Test
    void badSourceIsReportedWithTheSource() {
        assertThatThrownBy(() -> TorchScriptKernel.load(
                        "Broken",
                        "def forward(self: __torch__.SELF, x: Tensor) -> Tensor:\n  return torch.no_such_op(x)\n",
                        Device.cpu()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("Broken")
                .hasMessageContaining("no_such_op");
        assertThatThrownBy(() -> TorchScriptKernel.archive("lower", "")).isInstanceOf(IllegalArgumentException.class);
    }
}
