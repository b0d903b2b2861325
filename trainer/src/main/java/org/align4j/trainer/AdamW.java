package org.align4j.trainer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Parameter;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * AdamW (Loshchilov and Hutter, 2019, "Decoupled Weight Decay Regularization"), as PyTorch's {@code
 * torch.optim.AdamW} computes it: θ ← θ·(1 − lr·λ) − lr·m̂/(√v̂ + ε) with bias-corrected moments m̂ = m/(1 −
 * β₁ᵗ), v̂ = v/(1 − β₂ᵗ). Weight decay is not applied to one-dimensional parameters (biases, norm
 * weights), as HF's Trainer does. Its state (t, m, v) is saved with every checkpoint.
 *
 * <p>Updates run outside a {@code GradientCollector}, where DJL's PyTorch engine has autograd off,
 * so parameters are updated in place.
 */
public final class AdamW {
    private final Map<String, Parameter> parameters;
    private final double beta1;
    private final double beta2;
    private final double epsilon;
    private final double weightDecay;
    private final Map<String, NDArray> expAvg = new LinkedHashMap<>();
    private final Map<String, NDArray> expAvgSq = new LinkedHashMap<>();
    private long step;

    /**
     * @param parameters trainable parameters by name
     * @param beta1 β₁
     * @param beta2 β₂
     * @param epsilon ε
     * @param weightDecay λ
     */
    public AdamW(Map<String, Parameter> parameters, double beta1, double beta2, double epsilon, double weightDecay) {
        this.parameters = parameters;
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.epsilon = epsilon;
        this.weightDecay = weightDecay;
        for (Map.Entry<String, Parameter> e : parameters.entrySet()) {
            NDArray p = e.getValue().getArray();
            NDManager m = p.getManager();
            expAvg.put(e.getKey(), m.zeros(p.getShape(), p.getDataType(), p.getDevice()));
            expAvgSq.put(e.getKey(), m.zeros(p.getShape(), p.getDataType(), p.getDevice()));
        }
    }

    /** @return optimizer steps taken */
    public long steps() {
        return step;
    }

    /**
     * One update from the accumulated gradients; then the gradients are zeroed.
     *
     * @param lr the learning rate of this step
     */
    public void step(double lr) {
        step++;
        double bc1 = 1 - Math.pow(beta1, step);
        double bc2 = 1 - Math.pow(beta2, step);
        for (Map.Entry<String, Parameter> e : parameters.entrySet()) {
            NDArray p = e.getValue().getArray();
            if (!p.hasGradient()) {
                continue;
            }
            NDArray m = expAvg.get(e.getKey());
            NDArray v = expAvgSq.get(e.getKey());
            try (NDArray g = p.getGradient();
                    NDArray gPart = g.mul(1 - beta1);
                    NDArray gSq = g.square();
                    NDArray gSqPart = gSq.mul(1 - beta2)) {
                m.muli(beta1).addi(gPart);
                v.muli(beta2).addi(gSqPart);
            }
            if (weightDecay > 0 && p.getShape().dimension() > 1) {
                p.muli(1 - lr * weightDecay);
            }
            try (NDArray vHat = v.div(bc2);
                    NDArray denom = vHat.sqrt();
                    NDArray denomEps = denom.add(epsilon);
                    NDArray update = m.div(denomEps);
                    NDArray scaled = update.mul(lr / bc1)) {
                p.subi(scaled);
            }
        }
        zeroGradients();
    }

    /** Zeroes every parameter's gradient (DJL accumulates gradients across backward passes). */
    public void zeroGradients() {
        for (Parameter param : parameters.values()) {
            NDArray p = param.getArray();
            if (p.hasGradient()) {
                try (NDArray g = p.getGradient()) {
                    g.muli(0);
                }
            }
        }
    }

    /**
     * The global L2 norm of all gradients, and clipping to {@code maxNorm} (as {@code
     * torch.nn.utils.clip_grad_norm_}: scale by maxNorm/(norm + 1e-6) when the norm exceeds it).
     *
     * @param maxNorm the limit, 0 for no clipping
     * @return the norm before clipping
     */
    public double clipGradients(double maxNorm) {
        // Σ g² summed on the device, read once: one host-device synchronisation per step, not one per parameter
        NDArray total = null;
        for (Parameter param : parameters.values()) {
            NDArray p = param.getArray();
            if (p.hasGradient()) {
                try (NDArray g = p.getGradient(); NDArray sq = g.toType(ai.djl.ndarray.types.DataType.FLOAT64, false).square()) {
                    NDArray s = sq.sum();
                    if (total == null) {
                        total = s;
                    } else {
                        NDArray next = total.add(s);
                        total.close();
                        s.close();
                        total = next;
                    }
                }
            }
        }
        double sumSq = 0;
        if (total != null) {
            sumSq = total.getDouble();
            total.close();
        }
        double norm = Math.sqrt(sumSq);
        if (maxNorm > 0 && norm > maxNorm) {
            double scale = maxNorm / (norm + 1e-6);
            for (Parameter param : parameters.values()) {
                NDArray p = param.getArray();
                if (p.hasGradient()) {
                    try (NDArray g = p.getGradient()) {
                        g.muli(scale);
                    }
                }
            }
        }
        return norm;
    }

    /** @return the moment tensors, named {@code exp_avg.NAME} and {@code exp_avg_sq.NAME} (PyTorch's state names) */
    public Map<String, NDArray> state() {
        Map<String, NDArray> s = new LinkedHashMap<>();
        expAvg.forEach((k, v) -> s.put("exp_avg." + k, v));
        expAvgSq.forEach((k, v) -> s.put("exp_avg_sq." + k, v));
        return s;
    }

    /**
     * Restores the state saved by {@link #state()}.
     *
     * @param tensors name → array, as saved
     * @param steps optimizer steps taken
     */
    public void load(Map<String, NDArray> tensors, long steps) {
        for (String name : parameters.keySet()) {
            copyInto(expAvg.get(name), tensors.get("exp_avg." + name), "exp_avg." + name);
            copyInto(expAvgSq.get(name), tensors.get("exp_avg_sq." + name), "exp_avg_sq." + name);
        }
        this.step = steps;
    }

    private static void copyInto(NDArray target, NDArray source, String name) {
        if (source == null) {
            throw new IllegalArgumentException("optimizer state: missing tensor '" + name + "'");
        }
        if (!source.getShape().equals(target.getShape())) {
            throw new IllegalArgumentException("optimizer state: tensor '" + name + "' has shape " + source.getShape() + ", expected " + target.getShape());
        }
        target.muli(0).addi(source.toDevice(target.getDevice(), false));
    }
}
