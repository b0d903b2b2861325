package org.align4j.model.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Parameter;
import ai.djl.nn.norm.Dropout;
import org.align4j.model.ScalarOps;

/**
 * A LoRA adapter on one {@link Projection} (Hu et al., 2021, "LoRA: Low-Rank Adaptation of Large
 * Language Models", arXiv:2106.09685), computed as PEFT's {@code lora.Linear} does:
 *
 * <pre>
 *   y = base(x) + s · B · A · dropout(x)      A [r, in], B [out, r], s = α/r (α/√r with rsLoRA)
 * </pre>
 *
 * <p>A and B are stored as torch {@code Linear} weights for both weight layouts, so GPT-2's Conv1D
 * projections (base weight [in, out]) carry the same A and B shapes as a Linear; only the merged
 * delta is transposed for them (PEFT's {@code fan_in_fan_out}). Dropout acts on the adapter's input
 * only, in training passes; the base path never sees it.
 */
public final class LoraAdapter {
    /**
     * The name of the adapter set a model's own adapters belong to (PEFT's {@code "default"}): the
     * policy's in a LoRA run. Other sets (PPO's value model) are added beside it by name.
     */
    public static final String DEFAULT = "default";

    private final Parameter a;
    private final Parameter b;
    private final double scale;
    private float dropout;

    /**
     * @param a A, [r, in], already holding its array
     * @param b B, [out, r], already holding its array
     * @param scale s, multiplies B·A·x
     * @param dropout probability of zeroing an input element of the adapter path in training, in [0, 1)
     */
    LoraAdapter(Parameter a, Parameter b, double scale, double dropout) {
        this.a = a;
        this.b = b;
        this.scale = scale;
        this.dropout = (float) dropout;
    }

    /** @return A, [r, in] */
    public Parameter a() {
        return a;
    }

    /** @return B, [out, r] */
    public Parameter b() {
        return b;
    }

    /** @return r, the rank */
    public long rank() {
        return a.getArray().getShape().get(0);
    }

    /** @return s, the scale of the adapter's output */
    public double scale() {
        return scale;
    }

    /** @return the dropout probability on the adapter's input */
    public double dropout() {
        return dropout;
    }

    void setDropout(double p) {
        this.dropout = (float) p;
    }

    /**
     * s · B · A · dropout(x): the adapter's addition to the projection's output, [..., out]. The
     * intermediate arrays are closed at once: autograd keeps its own references to what the backward
     * pass needs (and frees them as it goes), so a step does not hold [tokens × out] arrays per
     * adapter until it ends. The scale's scalar stays in x's manager (see {@link ScalarOps}).
     */
    NDArray apply(Forward f, NDArray x) {
        NDArray in =
                dropout > 0 && f.training() ? Dropout.dropout(x, dropout, true).singletonOrThrow() : x;
        NDArray down = f.compute().linear(in, f.value(a, x), null);
        if (in != x) {
            in.close();
        }
        NDArray up = f.compute().linear(down, f.value(b, x), null);
        down.close();
        NDArray scaled = ScalarOps.times(up, scale);
        up.close();
        return scaled;
    }

    /**
     * The adapter as a weight update in the torch Linear layout: s · B·A, [out, in], computed in the
     * order PEFT's {@code get_delta_weight} uses (B·A first, then the scale).
     *
     * @param scope owner of the result and its temporaries
     * @return s·B·A
     */
    NDArray delta(NDManager scope) {
        NDArray product = b.getArray().matMul(a.getArray());
        product.attach(scope);
        return ScalarOps.times(product, scale);
    }
}
