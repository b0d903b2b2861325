package org.align4j.model;

import ai.djl.ndarray.NDArray;

/**
 * Scalar arithmetic that is safe under autograd in DJL 0.36's PyTorch engine.
 *
 * <p>Why: {@code NDArray.mul(Number)} (and {@code div}, {@code pow}, {@code maximum} with a Number)
 * wraps the number in a tensor backed by a Java direct buffer, applies the op, and closes that tensor
 * at once, which drops the only reference to the buffer. PyTorch keeps the scalar tensor for the
 * backward pass (d(x·s)/dx = s), so after a garbage collection the backward pass reads freed memory:
 * gradients come out slightly wrong or NaN, at random. Here the scalar is created in the operand's
 * manager and lives until that manager (the step's scope) is closed, after the backward pass; and the
 * tensor the product uses is a native copy (libtorch's memory, not Java's), so autograd's reference
 * keeps it valid even when its Java handle is closed earlier (a layer's scope, see CausalLmBlock).
 */
public final class ScalarOps {
    private ScalarOps() {}

    /**
     * @param x an array (possibly recording gradients)
     * @param s a constant
     * @return x·s, with the constant kept alive for the backward pass
     */
    public static NDArray times(NDArray x, double s) {
        return x.mul(x.getManager().create(s).toType(x.getDataType(), true));
    }

    /**
     * @param x an array (possibly recording gradients)
     * @param s a nonzero constant
     * @return x / s (rounded as a division, not as x·(1/s)), with the constant kept alive for the backward pass
     */
    public static NDArray dividedBy(NDArray x, double s) {
        return x.div(x.getManager().create(s).toType(x.getDataType(), true));
    }
}
