package org.align4j.model.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
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
            Parameter inputNorm,
            Projection q,
            Projection k,
            Projection v,
            Projection o,
            Parameter qNorm,
            Parameter kNorm,
            Parameter postNorm,
            Projection gate,
            Projection up,
            Projection down) {}

    /** @param config a Llama-family config */
    public LlamaBlock(ModelConfig config) {
        super(config);
        long h = config.hiddenSize();
        long d = config.headDim();
        long qOut = config.numHeads() * d;
        long kvOut = config.numKvHeads() * d;
        long inner = config.intermediateSize();
        Projection.Layout linear = Projection.Layout.LINEAR;
        embed = declare("model.embed_tokens.weight", new Shape(config.vocabSize(), h), Parameter.Type.WEIGHT);
        layers = new Layer[config.numLayers()];
        for (int i = 0; i < layers.length; i++) {
            String p = "model.layers." + i + ".";
            String a = p + "self_attn.";
            String m = p + "mlp.";
            Parameter inputNorm = declare(p + "input_layernorm.weight", new Shape(h), Parameter.Type.GAMMA);
            Projection q = projection(a + "q_proj", linear, h, qOut, config.qkvBias());
            Projection k = projection(a + "k_proj", linear, h, kvOut, config.qkvBias());
            Projection v = projection(a + "v_proj", linear, h, kvOut, config.qkvBias());
            Projection o = projection(a + "o_proj", linear, qOut, h, config.outputBias());
            Parameter qn = config.qkNorm() ? declare(a + "q_norm.weight", new Shape(d), Parameter.Type.GAMMA) : null;
            Parameter kn = config.qkNorm() ? declare(a + "k_norm.weight", new Shape(d), Parameter.Type.GAMMA) : null;
            Parameter postNorm = declare(p + "post_attention_layernorm.weight", new Shape(h), Parameter.Type.GAMMA);
            Projection gate = projection(m + "gate_proj", linear, h, inner, config.mlpBias());
            Projection up = projection(m + "up_proj", linear, h, inner, config.mlpBias());
            Projection down = projection(m + "down_proj", linear, inner, h, config.mlpBias());
            layers[i] = new Layer(inputNorm, q, k, v, o, qn, kn, postNorm, gate, up, down);
        }
        norm = declare("model.norm.weight", new Shape(h), Parameter.Type.GAMMA);
        lmHead = config.tieWordEmbeddings() || config.isSequenceClassifier()
                ? null
                : declare("lm_head.weight", new Shape(config.vocabSize(), h), Parameter.Type.WEIGHT);
        declareScoreHead();
        inverseFrequencies = config.rope().inverseFrequencies((int) d);
    }

    @Override
    public double initStd(String name) {
        boolean matrix = name.endsWith("_proj.weight")
                || name.endsWith("embed_tokens.weight")
                || name.equals("lm_head.weight")
                || name.equals("score.weight");
        return matrix ? config.raw().path("initializer_range").asDouble(0.02) : Double.NaN;
    }

    @Override
    public boolean isIgnoredBuffer(String tensorName) {
        return tensorName.endsWith("rotary_emb.inv_freq");
    }

    @Override
    public Output forward(ParameterStore ps, NDArray ids, NDArray attentionMask, KvCache cache, Pass pass) {
        Forward f = forwardContext(ps, pass.training());
        boolean withHiddenStates = pass.withHiddenStates();
        Compute c = f.compute();
        long[] packed = pass.sequences();
        if (packed != null) {
            checkPacked(pass, ids, cache);
        }
        boolean causalOnly =
                packed == null && causalOnly(pass, cache, ids.getShape().get(1));
        long t = ids.getShape().get(1);
        long heads = config.numHeads();
        long kvHeads = config.numKvHeads();
        long d = config.headDim();
        double eps = config.normEps();
        NDArray mask =
                causalOnly || packed != null ? null : EagerAttention.mask(attentionMask, t, config.slidingWindow());
        NDArray[] cosSin = rotaryTables(
                packed != null
                        ? packedPositions(ids.getManager(), packed)
                        : rowPositions(pass, ids, attentionMask, cache));
        NDArray x = Embedding.embedding(ids, f.value(embed, ids), SparseFormat.DENSE)
                .singletonOrThrow();
        List<NDArray> hidden = new ArrayList<>();
        // a layer's arrays are freed when it ends, except where they must outlive it (hidden states, a cache)
        boolean layerScopes = cache == null && !withHiddenStates;
        double scale = 1.0 / Math.sqrt(d);
        for (int i = 0; i < layers.length; i++) {
            if (withHiddenStates) {
                hidden.add(x);
            }
            Layer l = layers[i];
            NDManager layer = layerScopes ? openLayer(x) : null;
            NDArray a = c.rmsNorm(x, f.value(l.inputNorm, x), eps);
            NDArray fused = causalOnly && l.qNorm == null
                    ? c.causalSelfAttention(f, a, l.q, l.k, l.v, l.o, cosSin[0], cosSin[1], heads, kvHeads, d, scale)
                    : null;
            if (fused != null) {
                x = residual(x, fused);
            } else {
                x = residual(x, attention(f, l, a, cosSin, mask, cache, i, causalOnly, packed));
            }
            NDArray m = c.rmsNorm(x, f.value(l.postNorm, x), eps);
            x = residual(x, c.gatedMlp(f, config.activation(), m, l.gate, l.up, l.down));
            if (layer != null) {
                x = closeLayer(layer, x);
            }
        }
        x = c.rmsNorm(x, f.value(norm, x), eps);
        if (withHiddenStates) {
            hidden.add(x);
        }
        if (!pass.withLogits()) {
            return new Output(null, hidden, x);
        }
        return new Output(head(ps, x, pass.training()), hidden, x);
    }

    @Override
    public NDArray head(ParameterStore ps, NDArray hidden, boolean training) {
        return compute().linear(hidden, value(ps, headWeight(), hidden, training), null);
    }

    @Override
    public Parameter headWeight() {
        requireLmHead();
        return lmHead == null ? embed : lmHead;
    }

    /** The attention of layer {@code i} op by op (any compute setting, cache, mask, q/k norm, adapters). */
    private NDArray attention(
            Forward f,
            Layer l,
            NDArray a,
            NDArray[] cosSin,
            NDArray mask,
            KvCache cache,
            int i,
            boolean causalOnly,
            long[] packed) {
        Compute c = f.compute();
        long b = a.getShape().get(0);
        long t = a.getShape().get(1);
        long heads = config.numHeads();
        long kvHeads = config.numKvHeads();
        long d = config.headDim();
        double eps = config.normEps();
        double scale = 1.0 / Math.sqrt(d);
        NDArray q = l.q.apply(f, a).reshape(b, t, heads, d);
        NDArray k = l.k.apply(f, a).reshape(b, t, kvHeads, d);
        NDArray v = l.v.apply(f, a).reshape(b, t, kvHeads, d);
        if (l.qNorm != null) {
            q = c.rmsNorm(q, f.value(l.qNorm, a), eps);
            k = c.rmsNorm(k, f.value(l.kNorm, a), eps);
        }
        q = c.rotary(q.transpose(0, 2, 1, 3), cosSin[0], cosSin[1]);
        k = c.rotary(k.transpose(0, 2, 1, 3), cosSin[0], cosSin[1]);
        v = v.transpose(0, 2, 1, 3);
        if (cache != null) {
            NDArray[] kv = cache.append(i, k, v);
            k = kv[0];
            v = kv[1];
        }
        NDArray attn = packed != null
                ? attendPacked(
                        c,
                        q,
                        k,
                        v,
                        packed,
                        scale,
                        config.slidingWindow(),
                        f.dropout().attention())
                : c.attend(q, k, v, mask, scale, causalOnly, f.dropout().attention());
        return l.o.apply(f, attn);
    }

    /** cos and sin of position × inverse frequency, [B, 1, T, D], as HF's rotary embedding. */
    private NDArray[] rotaryTables(NDArray positions) {
        NDArray inv = positions.getManager().create(inverseFrequencies);
        NDArray freqs = positions.toType(DataType.FLOAT32, false).expandDims(2).mul(inv);
        NDArray emb = NDArrays.concat(new NDList(freqs, freqs), 2).expandDims(1);
        return new NDArray[] {emb.cos(), emb.sin()};
    }
}
