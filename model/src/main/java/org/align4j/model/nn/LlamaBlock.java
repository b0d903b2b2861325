package org.align4j.model.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.Parameter;
import ai.djl.nn.core.Embedding;
import ai.djl.training.ParameterStore;
import java.util.ArrayList;
import java.util.List;
import org.align4j.model.config.ModelConfig;

/**
 * The Llama family (HF {@code LlamaForCausalLM} and its relatives Mistral, Qwen2, Qwen3, SmolLM):
 * RMSNorm pre-norm blocks, rotary positions (default, linear or llama3 scaling), grouped-query
 * attention, a SwiGLU MLP. Qwen2 adds q/k/v biases; Qwen3 adds a per-head RMSNorm on queries and
 * keys and sets {@code head_dim} apart from hidden/heads; Mistral may use a sliding window.
 */
public final class LlamaBlock extends CausalLmBlock {
    private final Parameter embed;
    private final Parameter norm;
    private final Parameter lmHead;
    private final Layer[] layers;
    private final float[] inverseFrequencies;

    private record Layer(
            Parameter inputNorm, Parameter q, Parameter qBias, Parameter k, Parameter kBias, Parameter v, Parameter vBias,
            Parameter o, Parameter oBias, Parameter qNorm, Parameter kNorm, Parameter postNorm,
            Parameter gate, Parameter gateBias, Parameter up, Parameter upBias, Parameter down, Parameter downBias) {}

    /** @param config a Llama-family config */
    public LlamaBlock(ModelConfig config) {
        super(config);
        long h = config.hiddenSize();
        long d = config.headDim();
        long qOut = config.numHeads() * d;
        long kvOut = config.numKvHeads() * d;
        long inner = config.intermediateSize();
        embed = declare("model.embed_tokens.weight", new Shape(config.vocabSize(), h), Parameter.Type.WEIGHT);
        layers = new Layer[config.numLayers()];
        for (int i = 0; i < layers.length; i++) {
            String p = "model.layers." + i + ".";
            String a = p + "self_attn.";
            String m = p + "mlp.";
            Parameter inputNorm = declare(p + "input_layernorm.weight", new Shape(h), Parameter.Type.GAMMA);
            Parameter q = declare(a + "q_proj.weight", new Shape(qOut, h), Parameter.Type.WEIGHT);
            Parameter qb = config.qkvBias() ? declare(a + "q_proj.bias", new Shape(qOut), Parameter.Type.BIAS) : null;
            Parameter k = declare(a + "k_proj.weight", new Shape(kvOut, h), Parameter.Type.WEIGHT);
            Parameter kb = config.qkvBias() ? declare(a + "k_proj.bias", new Shape(kvOut), Parameter.Type.BIAS) : null;
            Parameter v = declare(a + "v_proj.weight", new Shape(kvOut, h), Parameter.Type.WEIGHT);
            Parameter vb = config.qkvBias() ? declare(a + "v_proj.bias", new Shape(kvOut), Parameter.Type.BIAS) : null;
            Parameter o = declare(a + "o_proj.weight", new Shape(h, qOut), Parameter.Type.WEIGHT);
            Parameter ob = config.outputBias() ? declare(a + "o_proj.bias", new Shape(h), Parameter.Type.BIAS) : null;
            Parameter qn = config.qkNorm() ? declare(a + "q_norm.weight", new Shape(d), Parameter.Type.GAMMA) : null;
            Parameter kn = config.qkNorm() ? declare(a + "k_norm.weight", new Shape(d), Parameter.Type.GAMMA) : null;
            Parameter postNorm = declare(p + "post_attention_layernorm.weight", new Shape(h), Parameter.Type.GAMMA);
            boolean mb = config.mlpBias();
            Parameter gate = declare(m + "gate_proj.weight", new Shape(inner, h), Parameter.Type.WEIGHT);
            Parameter gateB = mb ? declare(m + "gate_proj.bias", new Shape(inner), Parameter.Type.BIAS) : null;
            Parameter up = declare(m + "up_proj.weight", new Shape(inner, h), Parameter.Type.WEIGHT);
            Parameter upB = mb ? declare(m + "up_proj.bias", new Shape(inner), Parameter.Type.BIAS) : null;
            Parameter down = declare(m + "down_proj.weight", new Shape(h, inner), Parameter.Type.WEIGHT);
            Parameter downB = mb ? declare(m + "down_proj.bias", new Shape(h), Parameter.Type.BIAS) : null;
            layers[i] = new Layer(inputNorm, q, qb, k, kb, v, vb, o, ob, qn, kn, postNorm, gate, gateB, up, upB, down, downB);
        }
        norm = declare("model.norm.weight", new Shape(h), Parameter.Type.GAMMA);
        lmHead = config.tieWordEmbeddings() || config.isSequenceClassifier() ? null
                : declare("lm_head.weight", new Shape(config.vocabSize(), h), Parameter.Type.WEIGHT);
        declareScoreHead();
        inverseFrequencies = config.rope().inverseFrequencies((int) d);
    }

    @Override
    public double initStd(String name) {
        boolean matrix = name.endsWith("_proj.weight") || name.endsWith("embed_tokens.weight") || name.equals("lm_head.weight")
                || name.equals("score.weight");
        return matrix ? config.raw().path("initializer_range").asDouble(0.02) : Double.NaN;
    }

    @Override
    public boolean isIgnoredBuffer(String tensorName) {
        return tensorName.endsWith("rotary_emb.inv_freq");
    }

    @Override
    public Output forward(ParameterStore ps, NDArray ids, NDArray attentionMask, KvCache cache, Pass pass) {
        boolean training = pass.training();
        boolean withHiddenStates = pass.withHiddenStates();
        Compute c = compute();
        boolean causalOnly = causalOnly(pass, cache, ids.getShape().get(1));
        long t = ids.getShape().get(1);
        long heads = config.numHeads();
        long kvHeads = config.numKvHeads();
        long d = config.headDim();
        double eps = config.normEps();
        NDArray mask = causalOnly ? null : Attention.mask(attentionMask, t, config.slidingWindow());
        NDArray[] cosSin = rotaryTables(Attention.positions(attentionMask, t));
        NDArray x = Embedding.embedding(ids, value(ps, embed, ids, training), SparseFormat.DENSE).singletonOrThrow();
        List<NDArray> hidden = new ArrayList<>();
        double scale = 1.0 / Math.sqrt(d);
        for (int i = 0; i < layers.length; i++) {
            if (withHiddenStates) {
                hidden.add(x);
            }
            Layer l = layers[i];
            NDArray a = c.rmsNorm(x, value(ps, l.inputNorm, x, training), eps);
            NDArray fused = causalOnly && l.qNorm == null
                    ? c.causalSelfAttention(a,
                            new NDArray[] {value(ps, l.q, x, training), value(ps, l.k, x, training), value(ps, l.v, x, training), value(ps, l.o, x, training)},
                            new NDArray[] {value(ps, l.qBias, x, training), value(ps, l.kBias, x, training), value(ps, l.vBias, x, training),
                                value(ps, l.oBias, x, training)},
                            cosSin[0], cosSin[1], heads, kvHeads, d, scale)
                    : null;
            if (fused != null) {
                x = x.add(fused);
            } else {
                x = x.add(attention(ps, c, l, a, x, cosSin, mask, cache, i, causalOnly, training));
            }
            NDArray m = c.rmsNorm(x, value(ps, l.postNorm, x, training), eps);
            x = x.add(c.gatedMlp(config.activation(), m, value(ps, l.gate, x, training), value(ps, l.gateBias, x, training),
                    value(ps, l.up, x, training), value(ps, l.upBias, x, training), value(ps, l.down, x, training),
                    value(ps, l.downBias, x, training)));
        }
        x = c.rmsNorm(x, value(ps, norm, x, training), eps);
        if (withHiddenStates) {
            hidden.add(x);
        }
        if (!pass.withLogits()) {
            return new Output(null, hidden, x);
        }
        return new Output(head(ps, x, training), hidden, x);
    }

    @Override
    public NDArray head(ParameterStore ps, NDArray hidden, boolean training) {
        requireLmHead();
        return compute().linear(hidden, value(ps, lmHead == null ? embed : lmHead, hidden, training), null);
    }

    /** The attention of layer {@code i} op by op (any compute setting, cache, mask, q/k norm). */
    private NDArray attention(ParameterStore ps, Compute c, Layer l, NDArray a, NDArray x, NDArray[] cosSin, NDArray mask, KvCache cache, int i,
            boolean causalOnly, boolean training) {
        long b = a.getShape().get(0);
        long t = a.getShape().get(1);
        long heads = config.numHeads();
        long kvHeads = config.numKvHeads();
        long d = config.headDim();
        double eps = config.normEps();
        double scale = 1.0 / Math.sqrt(d);
        NDArray q = c.linear(a, value(ps, l.q, x, training), value(ps, l.qBias, x, training)).reshape(b, t, heads, d);
        NDArray k = c.linear(a, value(ps, l.k, x, training), value(ps, l.kBias, x, training)).reshape(b, t, kvHeads, d);
        NDArray v = c.linear(a, value(ps, l.v, x, training), value(ps, l.vBias, x, training)).reshape(b, t, kvHeads, d);
        if (l.qNorm != null) {
            q = c.rmsNorm(q, value(ps, l.qNorm, x, training), eps);
            k = c.rmsNorm(k, value(ps, l.kNorm, x, training), eps);
        }
        q = c.rotary(q.transpose(0, 2, 1, 3), cosSin[0], cosSin[1]);
        k = c.rotary(k.transpose(0, 2, 1, 3), cosSin[0], cosSin[1]);
        v = v.transpose(0, 2, 1, 3);
        if (cache != null) {
            NDArray[] kv = cache.append(i, k, v);
            k = kv[0];
            v = kv[1];
        }
        NDArray attn = c.attend(q, k, v, mask, scale, causalOnly);
        return c.linear(attn, value(ps, l.o, x, training), value(ps, l.oBias, x, training));
    }

    /** cos and sin of position × inverse frequency, [B, 1, T, D], as HF's rotary embedding. */
    private NDArray[] rotaryTables(NDArray positions) {
        NDArray inv = positions.getManager().create(inverseFrequencies);
        NDArray freqs = positions.toType(DataType.FLOAT32, false).expandDims(2).mul(inv);
        NDArray emb = NDArrays.concat(new NDList(freqs, freqs), 2).expandDims(1);
        return new NDArray[] {emb.cos(), emb.sin()};
    }
}
