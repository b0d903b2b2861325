package org.align4j.trainer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.nn.Parameter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.align4j.model.kernels.TorchScriptKernel;

/**
 * AdamW (Loshchilov and Hutter, 2019, "Decoupled Weight Decay Regularization"), as PyTorch's {@code
 * torch.optim.AdamW} computes it: θ ← θ·(1 − lr·λ) − lr·m̂/(√v̂ + ε) with bias-corrected moments m̂ = m/(1 −
 * β₁ᵗ), v̂ = v/(1 − β₂ᵗ). Weight decay is not applied to one-dimensional parameters (biases, norm
 * weights), as HF's Trainer does. Its state (t, m, v) is saved with every checkpoint.
 *
 * <p>Updates run outside a {@code GradientCollector}, where DJL's PyTorch engine has autograd off,
 * so parameters are updated in place. Clipping and the update are two TorchScript kernels over lists
 * of all parameters ({@code torch._foreach_norm}, {@code torch._fused_adamw_}): a few native calls
 * per step instead of a dozen per parameter, which is what a GPU step of a 124M model otherwise spends
 * most of its time on. {@link #stepWithDjlOps} is the same update written with DJL ops, kept as the
 * reference the kernels are tested against.
 */
public final class AdamW implements AutoCloseable {
    private final Map<String, Parameter> parameters;
    /** The parameters this optimizer updates and keeps moments of: all, or a process's share (ZeRO stage 1). */
    private final Set<String> owned;

    private final double beta1;
    private final double beta2;
    private final double epsilon;
    private final double weightDecay;
    private final Map<String, NDArray> expAvg = new LinkedHashMap<>();
    private final Map<String, NDArray> expAvgSq = new LinkedHashMap<>();
    /** Per-parameter step counts as the fused kernel wants them (float scalars on the device). */
    private final Map<String, NDArray> stepTensors = new LinkedHashMap<>();

    private TorchScriptKernel update;
    private TorchScriptKernel clip;
    private long step;

    /**
     * @param parameters trainable parameters by name
     * @param beta1 β₁
     * @param beta2 β₂
     * @param epsilon ε
     * @param weightDecay λ
     */
    public AdamW(Map<String, Parameter> parameters, double beta1, double beta2, double epsilon, double weightDecay) {
        this(parameters, parameters.keySet(), beta1, beta2, epsilon, weightDecay);
    }

    /**
     * An optimizer that updates, and keeps moments of, only some of the parameters (ZeRO stage 1: a data-parallel
     * process's share; the others' owners update them and broadcast the result). Clipping and zeroing still
     * cover every parameter, and {@link #step} zeroes every gradient.
     *
     * @param parameters every trained parameter by name (clipped together)
     * @param owned the names of those this optimizer updates
     * @param beta1 β₁
     * @param beta2 β₂
     * @param epsilon ε
     * @param weightDecay λ
     */
    public AdamW(
            Map<String, Parameter> parameters,
            Set<String> owned,
            double beta1,
            double beta2,
            double epsilon,
            double weightDecay) {
        this.parameters = parameters;
        this.owned = Set.copyOf(owned);
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.epsilon = epsilon;
        this.weightDecay = weightDecay;
        for (Map.Entry<String, Parameter> e : parameters.entrySet()) {
            if (!this.owned.contains(e.getKey())) {
                continue;
            }
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
        List<NDArray> ps = new ArrayList<>();
        List<NDArray> gs = new ArrayList<>();
        List<NDArray> ms = new ArrayList<>();
        List<NDArray> vs = new ArrayList<>();
        List<NDArray> ts = new ArrayList<>();
        List<NDArray> psNoDecay = new ArrayList<>();
        List<NDArray> gsNoDecay = new ArrayList<>();
        List<NDArray> msNoDecay = new ArrayList<>();
        List<NDArray> vsNoDecay = new ArrayList<>();
        List<NDArray> tsNoDecay = new ArrayList<>();
        try {
            for (Map.Entry<String, Parameter> e : parameters.entrySet()) {
                NDArray p = e.getValue().getArray();
                if (!p.hasGradient()) {
                    continue;
                }
                if (!owned.contains(e.getKey())) {
                    try (NDArray g = p.getGradient()) {
                        g.muli(0); // another process updates it
                    }
                    continue;
                }
                boolean decay = weightDecay > 0 && p.getShape().dimension() > 1;
                (decay ? ps : psNoDecay).add(p);
                (decay ? gs : gsNoDecay).add(p.getGradient());
                (decay ? ms : msNoDecay).add(expAvg.get(e.getKey()));
                (decay ? vs : vsNoDecay).add(expAvgSq.get(e.getKey()));
                (decay ? ts : tsNoDecay).add(stepTensor(e.getKey(), p));
            }
            NDManager manager = parameters.values().iterator().next().getArray().getManager();
            if (!ps.isEmpty()) {
                updateKernel(manager).call(manager, ps, gs, ms, vs, ts, lr, weightDecay);
            }
            if (!psNoDecay.isEmpty()) {
                updateKernel(manager).call(manager, psNoDecay, gsNoDecay, msNoDecay, vsNoDecay, tsNoDecay, lr, 0.0);
            }
        } finally {
            gs.forEach(NDArray::close);
            gsNoDecay.forEach(NDArray::close);
        }
    }

    /** This parameter's step count tensor, kept equal to {@link #steps()} − 1 before the kernel adds one. */
    private NDArray stepTensor(String name, NDArray p) {
        NDArray t = stepTensors.get(name);
        if (t == null) {
            t = p.getManager().create((float) (step - 1)).toDevice(p.getDevice(), false);
            t.attach(p.getManager());
            stepTensors.put(name, t);
        }
        return t;
    }

    private TorchScriptKernel updateKernel(NDManager manager) {
        if (update == null) {
            String src = String.format(Locale.ROOT, """
                    def forward(self: __torch__.SELF,
                        params: List[Tensor],
                        grads: List[Tensor],
                        exp_avgs: List[Tensor],
                        exp_avg_sqs: List[Tensor],
                        steps: List[Tensor],
                        lr: float,
                        weight_decay: float) -> Tensor:
                      torch._foreach_add_(steps, 1.)
                      torch._fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, [], steps, lr=lr, beta1=%.17g, beta2=%.17g,                     weight_decay=weight_decay, eps=%.17g, amsgrad=False, maximize=False)
                      torch._foreach_zero_(grads)
                      return steps[0]
                    """, beta1, beta2, epsilon);
            update = TorchScriptKernel.load("FusedAdamW", src, manager.getDevice());
        }
        return update;
    }

    /**
     * The same update with DJL ops, one parameter at a time: the reference the fused kernel is tested
     * against.
     *
     * @param lr the learning rate of this step
     */
    void stepWithDjlOps(double lr) {
        step++;
        double bc1 = 1 - Math.pow(beta1, step);
        double bc2 = 1 - Math.pow(beta2, step);
        for (Map.Entry<String, Parameter> e : parameters.entrySet()) {
            NDArray p = e.getValue().getArray();
            if (!p.hasGradient() || !owned.contains(e.getKey())) {
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
        List<NDArray> gs = new ArrayList<>();
        try {
            for (Parameter param : parameters.values()) {
                NDArray p = param.getArray();
                if (p.hasGradient()) {
                    gs.add(p.getGradient());
                }
            }
            if (gs.isEmpty()) {
                return 0;
            }
            NDManager manager = parameters.values().iterator().next().getArray().getManager();
            if (clip == null) {
                clip = TorchScriptKernel.load("ClipGradNorm", """
                        def forward(self: __torch__.SELF,
                            grads: List[Tensor],
                            max_norm: float) -> Tensor:
                          norms = torch._foreach_norm(grads, 2.)
                          total = torch.linalg_vector_norm(torch.stack(norms), 2.)
                          if max_norm > 0.:
                            scale = torch.clamp(torch.mul(torch.reciprocal(torch.add(total, 1.0e-6)), max_norm), None, 1.)
                            torch._foreach_mul_(grads, scale)
                          return total
                        """, manager.getDevice());
            }
            try (NDArray total = clip.call(manager, gs, maxNorm)[0]) {
                // the one read of the step: the norm is logged, and a NaN norm stops training
                return total.toType(DataType.FLOAT64, false).getDouble();
            }
        } finally {
            gs.forEach(NDArray::close);
        }
    }

    /**
     * The same clipping with DJL ops: the reference the kernel is tested against.
     *
     * @param maxNorm the limit, 0 for no clipping
     * @return the norm before clipping
     */
    double clipGradientsWithDjlOps(double maxNorm) {
        double sumSq = 0;
        for (Parameter param : parameters.values()) {
            NDArray p = param.getArray();
            if (p.hasGradient()) {
                try (NDArray g = p.getGradient();
                        NDArray sq = g.square();
                        NDArray s = sq.sum()) {
                    sumSq += s.toType(DataType.FLOAT64, false).getDouble();
                }
            }
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

    /**
     * @return the moment tensors of the parameters this optimizer updates, named {@code exp_avg.NAME} and {@code
     *     exp_avg_sq.NAME} (PyTorch's state names)
     */
    public Map<String, NDArray> state() {
        Map<String, NDArray> s = new LinkedHashMap<>();
        expAvg.forEach((k, v) -> s.put("exp_avg." + k, v));
        expAvgSq.forEach((k, v) -> s.put("exp_avg_sq." + k, v));
        return s;
    }

    /**
     * Restores the state saved by {@link #state()} (of this optimizer's parameters; a checkpoint's others are
     * left alone).
     *
     * @param tensors name → array, as saved
     * @param steps optimizer steps taken
     */
    public void load(Map<String, NDArray> tensors, long steps) {
        for (String name : expAvg.keySet()) {
            copyInto(expAvg.get(name), tensors.get("exp_avg." + name), "exp_avg." + name);
            copyInto(expAvgSq.get(name), tensors.get("exp_avg_sq." + name), "exp_avg_sq." + name);
        }
        this.step = steps;
        stepTensors.values().forEach(NDArray::close);
        stepTensors.clear();
    }

    /** Frees the kernels and the step counters (the moments belong to the model's manager). */
    @Override
    public void close() {
        if (update != null) {
            update.close();
            update = null;
        }
        if (clip != null) {
            clip.close();
            clip = null;
        }
        stepTensors.values().forEach(NDArray::close);
        stepTensors.clear();
    }

    private static void copyInto(NDArray target, NDArray source, String name) {
        if (source == null) {
            throw new IllegalArgumentException("optimizer state: missing tensor '" + name + "'");
        }
        if (!source.getShape().equals(target.getShape())) {
            throw new IllegalArgumentException("optimizer state: tensor '" + name + "' has shape " + source.getShape()
                    + ", expected " + target.getShape());
        }
        target.muli(0).addi(source.toDevice(target.getDevice(), false));
    }
}
