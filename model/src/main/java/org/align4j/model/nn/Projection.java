package org.align4j.model.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Parameter;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One linear map of a decoder layer (q/k/v/o, gate/up/down; GPT-2's c_attn, c_proj and c_fc): it owns
 * its weight and bias under their HF names ({@code MODULE.weight}, {@code MODULE.bias}), applies
 * itself with the model's {@link Compute}, and may carry LoRA adapters, at most one per named adapter
 * set (PEFT's {@code lora_A[adapter_name]}): {@link LoraAdapter#DEFAULT} for the policy, others beside
 * it on the same base weights (PPO's value model). A pass applies the adapter of its active set only
 * ({@link Forward#adapter}). Kernels that fuse several projections (an MLP, a self-attention) read the
 * weights from here and fall back to calling each projection when one of them carries an adapter.
 */
public final class Projection {
    /** How the weight is stored. */
    public enum Layout {
        /** torch {@code Linear}: weight [out, in], y = x·Wᵀ + b */
        LINEAR,
        /** GPT-2's {@code Conv1D}: weight [in, out], y = x·W + b (PEFT's {@code fan_in_fan_out}) */
        CONV1D
    }

    private final String module;
    private final Layout layout;
    private final long inFeatures;
    private final long outFeatures;
    private final Parameter weight;
    private final Parameter bias;
    /** Adapter set name → this projection's adapter in it, in the order the sets were added. */
    private final Map<String, LoraAdapter> adapters = new LinkedHashMap<>();

    Projection(String module, Layout layout, long inFeatures, long outFeatures, Parameter weight, Parameter bias) {
        this.module = module;
        this.layout = layout;
        this.inFeatures = inFeatures;
        this.outFeatures = outFeatures;
        this.weight = weight;
        this.bias = bias;
    }

    /** @return the HF module name, e.g. {@code model.layers.0.self_attn.q_proj} (PEFT's key for it) */
    public String module() {
        return module;
    }

    /** @return the module's last name part, e.g. {@code q_proj} */
    public String shortName() {
        return module.substring(module.lastIndexOf('.') + 1);
    }

    /** @return how the weight is stored */
    public Layout layout() {
        return layout;
    }

    /** @return the input width */
    public long inFeatures() {
        return inFeatures;
    }

    /** @return the output width */
    public long outFeatures() {
        return outFeatures;
    }

    /** @return the weight, [out, in] for {@link Layout#LINEAR}, [in, out] for {@link Layout#CONV1D} */
    public Parameter weight() {
        return weight;
    }

    /** @return the bias [out], or null */
    public Parameter bias() {
        return bias;
    }

    /** @return the adapter of the {@link LoraAdapter#DEFAULT} set, or null */
    public LoraAdapter adapter() {
        return adapters.get(LoraAdapter.DEFAULT);
    }

    /**
     * @param name an adapter set's name
     * @return this projection's adapter in that set, or null
     */
    public LoraAdapter adapter(String name) {
        return adapters.get(name);
    }

    /** @return adapter set name → adapter, every set this projection carries one of */
    public Map<String, LoraAdapter> adapters() {
        return Collections.unmodifiableMap(adapters);
    }

    void setAdapter(String name, LoraAdapter adapter) {
        if (adapter == null) {
            adapters.remove(name);
        } else {
            adapters.put(name, adapter);
        }
    }

    /**
     * Whether an adapter of any set is attached. Fused kernels take only projections without one,
     * whether or not the pass applies it: a pass with adapters switched off (or another set active) then
     * runs the very same base operations as a pass with them on, so B = 0 gives identical outputs (the
     * reference policy of a LoRA run at step 0 equals the policy exactly).
     */
    boolean hasAdapter() {
        return !adapters.isEmpty();
    }

    /**
     * The projection of x, plus the term of this projection's adapter in the pass's active set, if any.
     *
     * @param f the pass
     * @param x [..., in]
     * @return [..., out]
     */
    NDArray apply(Forward f, NDArray x) {
        NDArray w = f.value(weight, x);
        NDArray b = f.value(bias, x);
        NDArray y = layout == Layout.LINEAR
                ? f.compute().linear(x, w, b)
                : f.compute().conv1d(x, w, b);
        LoraAdapter adapter = f.adapter() == null ? null : adapters.get(f.adapter());
        if (adapter == null) {
            return y;
        }
        NDArray delta = adapter.apply(f, x);
        NDArray out = y.add(delta);
        // the sum's backward needs neither operand: free both now rather than when the step ends
        y.close();
        delta.close();
        return out;
    }

    /**
     * Adds the {@link LoraAdapter#DEFAULT} adapter's delta to the weight in place (PEFT's {@code merge})
     * and drops that adapter. Run it outside a gradient collector.
     */
    void merge() {
        LoraAdapter adapter = adapter();
        if (adapter == null) {
            return;
        }
        NDArray w = weight.getArray();
        try (NDManager scope = w.getManager().newSubManager()) {
            NDArray delta = adapter.delta(scope);
            w.addi(layout == Layout.LINEAR ? delta : delta.transpose());
        }
        adapters.remove(LoraAdapter.DEFAULT);
    }
}
