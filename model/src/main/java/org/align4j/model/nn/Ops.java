package org.align4j.model.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.core.Linear;
import ai.djl.nn.norm.LayerNorm;
import org.align4j.model.ScalarOps;

/**
 * The functional pieces of the decoders, written with DJL ops so autograd flows through them.
 *
 * <p>Constants enter through {@link ScalarOps#times}, never {@code mul(Number)}, which is unsafe under
 * autograd in DJL 0.36 (see there).
 *
 * <p>Convention: the activation is always the first operand, so every temporary attaches to the
 * manager of the step's inputs and is freed with it, never to the model's manager.
 */
final class Ops {
    private static final double SQRT_2_OVER_PI = Math.sqrt(2.0 / Math.PI);

    private Ops() {}

    /** x·Wᵀ + b with W stored [out, in] (torch Linear). */
    static NDArray linear(NDArray x, NDArray weight, NDArray bias) {
        NDList out = bias == null ? Linear.linear(x, weight) : Linear.linear(x, weight, bias);
        return out.singletonOrThrow();
    }

    /** x·W + b with W stored [in, out] (GPT-2's Conv1D). */
    static NDArray conv1d(NDArray x, NDArray weight, NDArray bias) {
        return x.matMul(weight).add(bias);
    }

    static NDArray layerNorm(NDArray x, NDArray gamma, NDArray beta, double eps) {
        Shape last = new Shape(x.getShape().get(x.getShape().dimension() - 1));
        return LayerNorm.layerNorm(x, last, gamma, beta, (float) eps).singletonOrThrow();
    }

    /** HF's LlamaRMSNorm: x / sqrt(mean(x²) + eps) · w. */
    static NDArray rmsNorm(NDArray x, NDArray weight, double eps) {
        NDArray rms = x.square().mean(new int[] {-1}, true).add(eps).sqrt();
        return x.div(rms).mul(weight);
    }

    /** q·cos + rotate_half(q)·sin with rotate_half(x) = [−x₂, x₁] (HF's apply_rotary_pos_emb). */
    static NDArray rotary(NDArray x, NDArray cos, NDArray sin) {
        long half = x.getShape().get(3) / 2;
        NDList parts = x.split(new long[] {half}, 3);
        NDArray rotated = NDArrays.concat(new NDList(parts.get(1).neg(), parts.get(0)), 3);
        return x.mul(cos).add(rotated.mul(sin));
    }

    static NDArray activation(String name, NDArray x) {
        switch (name) {
            case "gelu_new":
            case "gelu_pytorch_tanh":
                // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
                NDArray cube = x.square().mul(x);
                NDArray inner = ScalarOps.times(ScalarOps.times(cube, 0.044715).add(x), SQRT_2_OVER_PI)
                        .tanh()
                        .add(1);
                return ScalarOps.times(inner.mul(x), 0.5);
            case "gelu":
                return Activation.gelu(x);
            case "relu":
                return Activation.relu(x);
            case "silu":
            case "swish":
                return x.mul(Activation.sigmoid(x));
            default:
                throw new IllegalArgumentException("activation: unsupported '" + name + "'");
        }
    }
}
