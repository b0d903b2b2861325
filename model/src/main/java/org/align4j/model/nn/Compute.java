package org.align4j.model.nn;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;
import org.align4j.model.LogProbs;
import org.align4j.model.kernels.TorchScriptKernel;

/**
 * How a native model computes its heavy pieces: attention and the projections.
 *
 * <p>{@link Attention#EAGER} is attention written with DJL ops (HF's "eager"). {@link Attention#SDPA}
 * calls libtorch's {@code scaled_dot_product_attention} through a {@link TorchScriptKernel} (HF's
 * "sdpa"): fused kernels on a GPU, and no [B, H, T, T] score array kept for the backward pass.
 * {@link Precision#BF16} runs every projection and the attention in bfloat16 inside kernels, with the
 * weights and everything between kernels in fp32: mixed precision with fp32 master weights, as
 * PyTorch's autocast does. Kernels are compiled once per variant and shared by all layers.
 */
public final class Compute implements AutoCloseable {
    /** The attention implementation. */
    public enum Attention {
        EAGER,
        SDPA
    }

    /** The precision of matrix products. */
    public enum Precision {
        FP32,
        BF16
    }

    /** The fixed kernels by class name (attention kernels depend on their scale: {@link #sdpaSource}). */
    private static final Map<String, String> SOURCES = Map.ofEntries(
            Map.entry(
                    "LinearBf16",
                    "def forward(self: __torch__.SELF,\n    x: Tensor,\n    w: Tensor) -> Tensor:\n"
                            + "  return torch.to(torch.linear(torch.to(x, 15), torch.to(w, 15)), 6)\n"),
            Map.entry(
                    "LinearBiasBf16",
                    "def forward(self: __torch__.SELF,\n    x: Tensor,\n    w: Tensor,\n    b: Tensor) -> Tensor:\n"
                            + "  return torch.to(torch.linear(torch.to(x, 15), torch.to(w, 15), torch.to(b, 15)), 6)\n"),
            Map.entry(
                    "Conv1dBf16",
                    "def forward(self: __torch__.SELF,\n    x: Tensor,\n    w: Tensor,\n    b: Tensor) -> Tensor:\n"
                            + "  return torch.to(torch.add(torch.matmul(torch.to(x, 15), torch.to(w, 15)), torch.to(b, 15)), 6)\n"),
            Map.entry(
                    "GeluTanh",
                    "def forward(self: __torch__.SELF,\n    x: Tensor) -> Tensor:\n  return torch.gelu(x, approximate=\"tanh\")\n"),
            Map.entry("Silu", "def forward(self: __torch__.SELF,\n    x: Tensor) -> Tensor:\n  return torch.silu(x)\n"),
            Map.entry(
                    "TokenLogProbs",
                    "def forward(self: __torch__.SELF,\n    rows: Tensor,\n    targets: Tensor) -> Tensor:\n"
                            + "  logp = torch.log_softmax(rows, 1)\n"
                            + "  return torch.squeeze(torch.gather(logp, 1, torch.unsqueeze(targets, 1)), 1)\n"),
            Map.entry(
                    "Rotary",
                    "def forward(self: __torch__.SELF,\n    x: Tensor,\n    cos: Tensor,\n    sin: Tensor) -> Tensor:\n"
                            + "  half = torch.floordiv(torch.size(x, -1), 2)\n"
                            + "  rotated = torch.cat([torch.neg(torch.narrow(x, -1, half, half)), torch.narrow(x, -1, 0, half)], -1)\n"
                            + "  return torch.add(torch.mul(x, cos), torch.mul(rotated, sin))\n"),
            Map.entry(
                    "GatedMlp",
                    "def forward(self: __torch__.SELF,\n    x: Tensor,\n    wg: Tensor,\n    wu: Tensor,\n    wd: Tensor) -> Tensor:\n"
                            + "  return torch.linear(torch.mul(torch.silu(torch.linear(x, wg)), torch.linear(x, wu)), wd)\n"),
            Map.entry(
                    "GatedMlpBf16",
                    "def forward(self: __torch__.SELF,\n    x: Tensor,\n    wg: Tensor,\n    wu: Tensor,\n    wd: Tensor) -> Tensor:\n"
                            + "  xb = torch.to(x, 15)\n"
                            + "  h = torch.mul(torch.silu(torch.linear(xb, torch.to(wg, 15))), torch.linear(xb, torch.to(wu, 15)))\n"
                            + "  return torch.to(torch.linear(h, torch.to(wd, 15)), 6)\n"),
            Map.entry(
                    "Conv1dMlp",
                    "def forward(self: __torch__.SELF,\n    x: Tensor,\n    w1: Tensor,\n    b1: Tensor,\n    w2: Tensor,\n    b2: Tensor) -> Tensor:\n"
                            + "  h = torch.gelu(torch.add(torch.matmul(x, w1), b1), approximate=\"tanh\")\n"
                            + "  return torch.add(torch.matmul(h, w2), b2)\n"),
            Map.entry(
                    "Conv1dMlpBf16",
                    "def forward(self: __torch__.SELF,\n    x: Tensor,\n    w1: Tensor,\n    b1: Tensor,\n    w2: Tensor,\n    b2: Tensor) -> Tensor:\n"
                            + "  h = torch.gelu(torch.add(torch.matmul(torch.to(x, 15), torch.to(w1, 15)), torch.to(b1, 15)), approximate=\"tanh\")\n"
                            + "  return torch.to(torch.add(torch.matmul(h, torch.to(w2, 15)), torch.to(b2, 15)), 6)\n"));

    /** DJL ops in fp32: the reference every other setting is tested against. */
    public static final Compute EAGER = new Compute(Attention.EAGER, Precision.FP32, null);

    private final Attention attention;
    private final Precision precision;
    private final Device device;
    private final Map<String, TorchScriptKernel> kernels = new ConcurrentHashMap<>();

    private Compute(Attention attention, Precision precision, Device device) {
        this.attention = attention;
        this.precision = precision;
        this.device = device;
    }

    /**
     * @param attention the attention implementation
     * @param precision the precision of matrix products
     * @param device where the kernels run (the model's device)
     * @return the setting ({@link #EAGER} for eager fp32)
     */
    public static Compute of(Attention attention, Precision precision, Device device) {
        return attention == Attention.EAGER && precision == Precision.FP32
                ? EAGER
                : new Compute(attention, precision, device);
    }

    /**
     * @param attention "eager" or "sdpa" (HF's attn_implementation names)
     * @param precision "fp32", "tf32" (fp32 here; TF32 is a libtorch switch on GPUs) or "bf16"
     * @param device the model's device
     * @return the setting
     */
    public static Compute parse(String attention, String precision, Device device) {
        Attention a = switch (attention.toLowerCase(Locale.ROOT)) {
            case "eager" -> Attention.EAGER;
            case "sdpa" -> Attention.SDPA;
            default -> throw new IllegalArgumentException("attention: eager or sdpa, got '" + attention + "'");
        };
        Precision p = switch (precision.toLowerCase(Locale.ROOT)) {
            case "fp32", "tf32" -> Precision.FP32;
            case "bf16" -> Precision.BF16;
            default -> throw new IllegalArgumentException("precision: fp32, tf32 or bf16, got '" + precision + "'");
        };
        return of(a, p, device);
    }

    /**
     * The additive attention mask [B, 1, T, Tk] the eager path and the masked kernel use: 0 where a
     * query may attend to a key, −max-float elsewhere (padding, the future, outside a sliding window).
     *
     * @param attentionMask [B, Tk] 1 for tokens, 0 for padding
     * @param queryLength T, the last positions
     * @param window sliding window in tokens, 0 for none
     * @return the mask
     */
    public static NDArray mask(NDArray attentionMask, long queryLength, int window) {
        return EagerAttention.mask(attentionMask, queryLength, window);
    }

    /** @return the attention implementation */
    public Attention attention() {
        return attention;
    }

    /** @return the precision of matrix products */
    public Precision precision() {
        return precision;
    }

    /** x·Wᵀ + b with W stored [out, in] (torch Linear); b may be null. */
    public NDArray linear(NDArray x, NDArray weight, NDArray bias) {
        if (precision == Precision.FP32) {
            return Ops.linear(x, weight, bias);
        }
        return bias == null
                ? fixed("LinearBf16").forward(true, x, weight).head()
                : fixed("LinearBiasBf16").forward(true, x, weight, bias).head();
    }

    /** x·W + b with W stored [in, out] (GPT-2's Conv1D). */
    public NDArray conv1d(NDArray x, NDArray weight, NDArray bias) {
        if (precision == Precision.FP32) {
            return Ops.conv1d(x, weight, bias);
        }
        return fixed("Conv1dBf16").forward(true, x, weight, bias).head();
    }

    /**
     * An activation; with kernels on, the fused libtorch op (one call and one saved tensor instead of
     * the several DJL ops of its formula).
     *
     * @param name the HF activation name
     * @param x the input
     * @return the activation of x
     */
    public NDArray activation(String name, NDArray x) {
        if (this == EAGER) {
            return Ops.activation(name, x);
        }
        return switch (name) {
            case "gelu_new", "gelu_pytorch_tanh" ->
                fixed("GeluTanh").forward(true, x).head();
            case "silu", "swish" -> fixed("Silu").forward(true, x).head();
            default -> Ops.activation(name, x);
        };
    }

    /**
     * HF's RMSNorm: x / √(mean(x²) + ε) · w over the last axis; with kernels on, libtorch's fused
     * {@code torch.rms_norm}.
     *
     * @param x the input
     * @param weight the scale, [last axis]
     * @param eps ε
     * @return the normalised input
     */
    public NDArray rmsNorm(NDArray x, NDArray weight, double eps) {
        if (this == EAGER) {
            return Ops.rmsNorm(x, weight, eps);
        }
        return kernel("RmsNorm:" + eps, () -> rmsNormSource(eps))
                .forward(true, x, weight)
                .head();
    }

    private static String rmsNormSource(double eps) {
        return String.format(
                Locale.ROOT,
                "def forward(self: __torch__.SELF,\n    x: Tensor,\n    w: Tensor) -> Tensor:\n"
                        + "  return torch.rms_norm(x, [torch.size(x, -1)], w, %.17g)\n",
                eps);
    }

    /**
     * Rotary position embedding: x·cos + rotate_half(x)·sin with rotate_half(x) = [−x₂, x₁].
     *
     * @param x [B, H, T, D]
     * @param cos [B, 1, T, D]
     * @param sin [B, 1, T, D]
     * @return the rotated x
     */
    public NDArray rotary(NDArray x, NDArray cos, NDArray sin) {
        if (this == EAGER) {
            return Ops.rotary(x, cos, sin);
        }
        return fixed("Rotary").forward(true, x, cos, sin).head();
    }

    /**
     * The gated MLP of the Llama family, down(act(gate(x)) · up(x)), as one kernel when it can be
     * (SiLU, no biases, no adapter attached): in bf16 the [tokens, intermediate] activations then
     * stay bf16 and x is cast once. Otherwise each projection applies itself, adapters included.
     *
     * @param f the pass
     * @param activation the HF activation name
     * @param x the input
     * @param gate gate_proj, weight [I, H]
     * @param up up_proj, weight [I, H]
     * @param down down_proj, weight [H, I]
     * @return the MLP's output
     */
    NDArray gatedMlp(Forward f, String activation, NDArray x, Projection gate, Projection up, Projection down) {
        boolean fusable =
                this != EAGER && ("silu".equals(activation) || "swish".equals(activation)) && plain(f, gate, up, down);
        if (!fusable) {
            NDArray g = activation(activation, gate.apply(f, x));
            return down.apply(f, g.mul(up.apply(f, x)));
        }
        String name = precision == Precision.BF16 ? "GatedMlpBf16" : "GatedMlp";
        return fixed(name)
                .forward(true, x, f.value(gate.weight(), x), f.value(up.weight(), x), f.value(down.weight(), x))
                .head();
    }

    /** No bias and no adapter on any of them. */
    private static boolean plain(Forward f, Projection... ps) {
        for (Projection p : ps) {
            if (p.bias() != null || p.hasAdapter()) {
                return false;
            }
        }
        return true;
    }

    /**
     * GPT-2's MLP, proj(act(fc(x))) with Conv1D weights stored [in, out], as one kernel when it can be
     * (tanh GELU, no adapter attached).
     *
     * @param f the pass
     * @param activation the HF activation name
     * @param x the input
     * @param fc c_fc, weight [H, I]
     * @param proj c_proj, weight [I, H]
     * @return the MLP's output
     */
    NDArray conv1dMlp(Forward f, String activation, NDArray x, Projection fc, Projection proj) {
        boolean fusable = this != EAGER
                && ("gelu_new".equals(activation) || "gelu_pytorch_tanh".equals(activation))
                && !fc.hasAdapter()
                && !proj.hasAdapter();
        if (!fusable) {
            return proj.apply(f, activation(activation, fc.apply(f, x)));
        }
        String name = precision == Precision.BF16 ? "Conv1dMlpBf16" : "Conv1dMlp";
        return fixed(name)
                .forward(
                        true,
                        x,
                        f.value(fc.weight(), x),
                        f.value(fc.bias(), x),
                        f.value(proj.weight(), x),
                        f.value(proj.bias(), x))
                .head();
    }

    /**
     * The whole self-attention of a Llama-family layer for a causal-only pass, as one kernel:
     * q/k/v projections, rotary embedding, SDPA (grouped-query where KV < H) and the output
     * projection. In bf16 everything between the cast of x and the output stays bf16, as under
     * autocast. Biases are all present or all null on q/k/v; the output bias may be null.
     *
     * @param f the pass
     * @param x [B, T, width] the normed input
     * @param q q_proj
     * @param k k_proj
     * @param v v_proj
     * @param o o_proj
     * @param cos rotary cos [B, 1, T, D]
     * @param sin rotary sin [B, 1, T, D]
     * @param heads H
     * @param kvHeads KV
     * @param headDim D
     * @param scale the score scale
     * @return [B, T, width] the attention output after o_proj, or null when this setting cannot fuse it
     *     (eager attention, mixed q/k/v biases, an adapter attached, attention dropout in training)
     */
    NDArray causalSelfAttention(
            Forward f,
            NDArray x,
            Projection q,
            Projection k,
            Projection v,
            Projection o,
            NDArray cos,
            NDArray sin,
            long heads,
            long kvHeads,
            long headDim,
            double scale) {
        boolean qkvBias = q.bias() != null;
        if (this == EAGER
                || attention != Attention.SDPA
                || qkvBias != (k.bias() != null)
                || qkvBias != (v.bias() != null)
                || q.hasAdapter()
                || k.hasAdapter()
                || v.hasAdapter()
                || o.hasAdapter()
                || f.dropout().attention() > 0) {
            return null;
        }
        boolean oBias = o.bias() != null;
        boolean bf16 = precision == Precision.BF16;
        String key =
                "CausalSelfAttention:" + qkvBias + oBias + bf16 + heads + "," + kvHeads + "," + headDim + "," + scale;
        TorchScriptKernel kernel = kernel(
                key,
                () -> attentionSource(qkvBias, oBias, bf16, heads, kvHeads, headDim, scale, expandsKeyValueHeads()));
        List<NDArray> in = new ArrayList<>(List.of(
                x,
                f.value(q.weight(), x),
                f.value(k.weight(), x),
                f.value(v.weight(), x),
                f.value(o.weight(), x),
                cos,
                sin));
        if (qkvBias) {
            in.addAll(List.of(f.value(q.bias(), x), f.value(k.bias(), x), f.value(v.bias(), x)));
        }
        if (oBias) {
            in.add(f.value(o.bias(), x));
        }
        return kernel.forward(true, in.toArray(new NDArray[0])).head();
    }

    static String attentionSource(
            boolean qkvBias,
            boolean oBias,
            boolean bf16,
            long heads,
            long kvHeads,
            long headDim,
            double scale,
            boolean expandKv) {
        StringBuilder sb = new StringBuilder(
                "def forward(self: __torch__.SELF,\n    x: Tensor,\n    wq: Tensor,\n    wk: Tensor,\n    wv: Tensor,\n"
                        + "    wo: Tensor,\n    cos: Tensor,\n    sin: Tensor");
        if (qkvBias) {
            sb.append(",\n    bq: Tensor,\n    bk: Tensor,\n    bv: Tensor");
        }
        if (oBias) {
            sb.append(",\n    bo: Tensor");
        }
        sb.append(") -> Tensor:\n");
        String c = bf16 ? "torch.to(%s, 15)" : "%s";
        sb.append("  xb = ").append(String.format(c, "x")).append("\n");
        sb.append("  b = torch.size(x, 0)\n  t = torch.size(x, 1)\n");
        sb.append("  cs = ").append(String.format(c, "cos")).append("\n");
        sb.append("  sn = ").append(String.format(c, "sin")).append("\n");
        String[][] proj = {
            {"q", "wq", "bq", Long.toString(heads)},
            {"k", "wk", "bk", Long.toString(kvHeads)},
            {"v", "wv", "bv", Long.toString(kvHeads)}
        };
        for (String[] p : proj) {
            String lin = qkvBias
                    ? "torch.linear(xb, " + String.format(c, p[1]) + ", " + String.format(c, p[2]) + ")"
                    : "torch.linear(xb, " + String.format(c, p[1]) + ")";
            sb.append("  ")
                    .append(p[0])
                    .append(" = torch.transpose(torch.reshape(")
                    .append(lin)
                    .append(", [b, t, ")
                    .append(p[3])
                    .append(", ")
                    .append(headDim)
                    .append("]), 1, 2)\n");
        }
        long half = headDim / 2;
        for (String r : new String[] {"q", "k"}) {
            sb.append("  ")
                    .append(r)
                    .append(" = torch.add(torch.mul(")
                    .append(r)
                    .append(", cs), torch.mul(torch.cat([torch.neg(torch.narrow(")
                    .append(r)
                    .append(", -1, ")
                    .append(half)
                    .append(", ")
                    .append(half)
                    .append(")), torch.narrow(")
                    .append(r)
                    .append(", -1, 0, ")
                    .append(half)
                    .append(")], -1), sn))\n");
        }
        boolean gqa = kvHeads != heads;
        if (gqa && expandKv) {
            for (String r : new String[] {"k", "v"}) {
                sb.append("  ")
                        .append(r)
                        .append(" = torch.repeat_interleave(")
                        .append(r)
                        .append(", ")
                        .append(heads / kvHeads)
                        .append(", 1)\n");
            }
        }
        sb.append(String.format(
                Locale.ROOT,
                "  o = torch.scaled_dot_product_attention(q, k, v, None, 0., True, scale=%.17g%s)\n",
                scale,
                gqa && !expandKv ? ", enable_gqa=True" : ""));
        sb.append("  o = torch.flatten(torch.transpose(o, 1, 2), 2)\n");
        String out = oBias
                ? "torch.linear(o, " + String.format(c, "wo") + ", " + String.format(c, "bo") + ")"
                : "torch.linear(o, " + String.format(c, "wo") + ")";
        sb.append("  return ").append(bf16 ? "torch.to(" + out + ", 6)" : out).append("\n");
        return sb.toString();
    }

    /**
     * log p of each target: the target's logit minus the log-sum-exp of its row.
     *
     * @param rows [N, V] logits
     * @param targets [N] int64
     * @return [N] log-probs
     */
    public NDArray tokenLogProbs(NDArray rows, NDArray targets) {
        if (this == EAGER) {
            return LogProbs.tokenLogProbs(rows, targets);
        }
        return fixed("TokenLogProbs").forward(true, rows, targets).head();
    }

    /**
     * Attention over heads.
     *
     * @param q [B, H, T, D]
     * @param k [B, KV, Tk, D]
     * @param v [B, KV, Tk, D]
     * @param mask [B, 1, T, Tk] additive (see {@link EagerAttention#mask}); ignored when
     *     {@code causalOnly}
     * @param scale multiplies the scores
     * @param causalOnly the mask is exactly causal for every position that matters: no left padding,
     *     no cache, no sliding window in reach (right padding is fine: padded positions come last)
     * @return [B, T, H·D]
     */
    public NDArray attend(NDArray q, NDArray k, NDArray v, NDArray mask, double scale, boolean causalOnly) {
        return attend(q, k, v, mask, scale, causalOnly, 0);
    }

    /**
     * Attention over heads with dropout on the attention probabilities (a training pass of a model
     * whose config has attention dropout): the eager path drops them after the softmax as HF's eager
     * attention; SDPA gets {@code dropout_p} (its kernels draw their own masks).
     *
     * @param q [B, H, T, D]
     * @param k [B, KV, Tk, D]
     * @param v [B, KV, Tk, D]
     * @param mask [B, 1, T, Tk] additive; ignored when {@code causalOnly}
     * @param scale multiplies the scores
     * @param causalOnly see {@link #attend(NDArray, NDArray, NDArray, NDArray, double, boolean)}
     * @param dropout probability in [0, 1); 0 for none
     * @return [B, T, H·D]
     */
    public NDArray attend(
            NDArray q, NDArray k, NDArray v, NDArray mask, double scale, boolean causalOnly, double dropout) {
        if (attention == Attention.EAGER) {
            return EagerAttention.attend(q, k, v, mask, scale, dropout);
        }
        boolean gqa = k.getShape().get(1) != q.getShape().get(1);
        // masked attention (left padding, a cache, a sliding window: inference, mostly) stays fp32:
        // in bf16, rows with every key masked gave NaN gradients on an H200
        boolean bf16 = precision == Precision.BF16 && causalOnly;
        String key = "Sdpa" + (causalOnly ? "Causal" : "Masked") + (bf16 ? "Bf16" : "") + (gqa ? "Gqa" : "") + ":"
                + scale + (dropout > 0 ? ":" + dropout : "");
        TorchScriptKernel kernel =
                kernel(key, () -> sdpaSource(causalOnly, bf16, gqa, scale, expandsKeyValueHeads(), dropout));
        return causalOnly
                ? kernel.forward(true, q, k, v).head()
                : kernel.forward(true, q, k, v, mask).head();
    }

    /**
     * The TorchScript source of the attention kernel.
     *
     * @param causalOnly no mask input, SDPA's causal flag
     * @param bf16 compute in bfloat16
     * @param gqa fewer key/value heads than query heads
     * @param scale the score scale
     * @param expandKv with GQA in the causal kernel, repeat the key/value heads first instead of
     *     passing {@code enable_gqa} (see {@link #expandsKeyValueHeads})
     * @return the methods (see {@link TorchScriptKernel#archive})
     */
    static String sdpaSource(boolean causalOnly, boolean bf16, boolean gqa, double scale, boolean expandKv) {
        return sdpaSource(causalOnly, bf16, gqa, scale, expandKv, 0);
    }

    /**
     * The TorchScript source of the attention kernel with SDPA's {@code dropout_p}.
     *
     * @param dropout SDPA's dropout_p, in [0, 1)
     * @return the methods
     * @see #sdpaSource(boolean, boolean, boolean, double, boolean)
     */
    static String sdpaSource(
            boolean causalOnly, boolean bf16, boolean gqa, double scale, boolean expandKv, double dropout) {
        String s = String.format(Locale.ROOT, "%.17g", scale);
        String p = dropout > 0 ? String.format(Locale.ROOT, "%.17g", dropout) : "0.";
        String in = bf16 ? "torch.to(q, 15), torch.to(k, 15), torch.to(v, 15)" : "q, k, v";
        boolean expand = gqa && expandKv && causalOnly;
        String tail = ", scale=" + s + (gqa && !expand ? ", enable_gqa=True" : "") + ")";
        String body;
        if (causalOnly) {
            body = "def forward(self: __torch__.SELF,\n    q: Tensor,\n    k: Tensor,\n    v: Tensor) -> Tensor:\n"
                    + (expand
                            ? "  g = torch.floordiv(torch.size(q, 1), torch.size(k, 1))\n  k = torch.repeat_interleave(k, g, 1)\n"
                                    + "  v = torch.repeat_interleave(v, g, 1)\n"
                            : "")
                    + "  o = torch.scaled_dot_product_attention(" + in + ", None, " + p + ", True" + tail + "\n";
        } else if (gqa && !bf16) {
            // grouped queries without repeating the key/value heads: the G query heads of a key/value head
            // become G·T query rows of it, and the mask is repeated G times along the rows (libtorch 2.7's CPU
            // kernel serves enable_gqa by copying k and v G times, every layer of every decoding step)
            body =
                    "def forward(self: __torch__.SELF,\n    q: Tensor,\n    k: Tensor,\n    v: Tensor,\n    mask: Tensor)"
                            + " -> Tensor:\n"
                            + "  b = torch.size(q, 0)\n  h = torch.size(q, 1)\n  t = torch.size(q, 2)\n  d = torch.size(q, 3)\n"
                            + "  kv = torch.size(k, 1)\n  g = torch.floordiv(h, kv)\n"
                            + "  qg = torch.reshape(q, [b, kv, g * t, d])\n"
                            + "  mb = torch.size(mask, 0)\n  mt = torch.size(mask, 3)\n"
                            + "  mg = torch.reshape(torch.expand(torch.unsqueeze(mask, 2), [mb, 1, g, t, mt]), [mb, 1, g * t, mt])\n"
                            + "  og = torch.scaled_dot_product_attention(qg, k, v, mg, " + p + ", False, scale=" + s
                            + ")\n"
                            + "  o = torch.reshape(og, [b, h, t, d])\n";
        } else {
            // the additive mask uses −max-float; in bf16 that rounds to −inf, so clamp it first
            String m = bf16 ? "torch.to(torch.clamp(mask, -1.0e30), 15)" : "mask";
            body =
                    "def forward(self: __torch__.SELF,\n    q: Tensor,\n    k: Tensor,\n    v: Tensor,\n    mask: Tensor) -> Tensor:\n"
                            + "  o = torch.scaled_dot_product_attention(" + in + ", " + m + ", " + p + ", False" + tail
                            + "\n";
        }
        return body + "  return "
                + (bf16
                        ? "torch.to(torch.flatten(torch.transpose(o, 1, 2), 2), 6)"
                        : "torch.flatten(torch.transpose(o, 1, 2), 2)")
                + "\n";
    }

    /**
     * The source of every kernel the compute settings use (attention at one scale, without GQA), by
     * class name: for tools that check the kernels outside the JVM, e.g. with {@code torch.jit.load}
     * on a GPU machine.
     *
     * @param scale the attention scale
     * @return class name → methods
     */
    public static Map<String, String> kernelSources(double scale) {
        Map<String, String> m = new TreeMap<>(SOURCES);
        for (boolean bf16 : new boolean[] {false, true}) {
            m.put("SdpaCausal" + (bf16 ? "Bf16" : ""), sdpaSource(true, bf16, false, scale, false));
            m.put("SdpaMasked" + (bf16 ? "Bf16" : ""), sdpaSource(false, bf16, false, scale, false));
            // a Qwen2-like layer: q/k/v biases, no output bias, 4 query heads sharing 2 key/value heads of 16
            m.put(
                    "CausalSelfAttention" + (bf16 ? "Bf16" : ""),
                    attentionSource(true, false, bf16, 4, 2, 16, scale, false));
        }
        m.put("RmsNorm", rmsNormSource(1e-6));
        return m;
    }

    /**
     * Whether causal grouped-query attention repeats the key/value heads itself: on the CPU, libtorch
     * 2.7 serves {@code enable_gqa} with its math kernel, which keeps the [B, H, T, T] attention
     * weights for the backward pass (about 1 GiB for a Qwen2-0.5B step of 4 × 256 tokens); with the
     * heads repeated it takes the flash kernel, which keeps [B, H, T, D]. GPUs keep {@code enable_gqa}.
     */
    private boolean expandsKeyValueHeads() {
        return device == null || !device.isGpu();
    }

    /** One of the kernels of {@link #SOURCES}. */
    private TorchScriptKernel fixed(String name) {
        return kernel(name, () -> SOURCES.get(name));
    }

    /**
     * The kernel for a key, compiled on first use. The source text is built only then: a forward
     * pass asks for a kernel once per layer, and a lookup must cost no string formatting.
     */
    private TorchScriptKernel kernel(String key, Supplier<String> source) {
        TorchScriptKernel k = kernels.get(key);
        return k != null
                ? k
                : kernels.computeIfAbsent(key, n -> TorchScriptKernel.load(className(n), source.get(), device));
    }

    /** A key such as {@code RmsNorm:1.0E-6} as a class name: its leading identifier plus a hash of the rest. */
    private static String className(String key) {
        String base = key.split("[^A-Za-z0-9_]", 2)[0];
        return base.equals(key) ? key : base + "_" + Integer.toHexString(key.hashCode());
    }

    @Override
    public void close() {
        kernels.values().forEach(TorchScriptKernel::close);
        kernels.clear();
    }

    @Override
    public String toString() {
        return "attention " + attention.name().toLowerCase(Locale.ROOT) + ", "
                + precision.name().toLowerCase(Locale.ROOT);
    }
}
