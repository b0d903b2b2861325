package org.align4j.model.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.Parameter;
import ai.djl.nn.core.Embedding;
import ai.djl.training.ParameterStore;
import java.util.ArrayList;
import java.util.List;
import org.align4j.model.config.ModelConfig;

/**
 * The GPT-2 family (HF {@code GPT2LMHeadModel}): learned positions, pre-LayerNorm blocks, Conv1D
 * projections stored [in, out], a GELU MLP, the LM head tied to {@code transformer.wte}.
 */
public final class Gpt2Block extends CausalLmBlock {
    private final Parameter wte;
    private final Parameter wpe;
    private final Parameter lnFw;
    private final Parameter lnFb;
    private final Parameter lmHead;
    private final Layer[] layers;

    private record Layer(
            Parameter ln1w,
            Parameter ln1b,
            Projection attn,
            Projection proj,
            Parameter ln2w,
            Parameter ln2b,
            Projection fc,
            Projection mlpProj) {}

    /** @param config a gpt2 config */
    public Gpt2Block(ModelConfig config) {
        super(config);
        long h = config.hiddenSize();
        long inner = config.intermediateSize();
        wte = declare("transformer.wte.weight", new Shape(config.vocabSize(), h), Parameter.Type.WEIGHT);
        wpe = declare("transformer.wpe.weight", new Shape(config.maxPositions(), h), Parameter.Type.WEIGHT);
        layers = new Layer[config.numLayers()];
        for (int i = 0; i < layers.length; i++) {
            String p = "transformer.h." + i + ".";
            Projection.Layout conv1d = Projection.Layout.CONV1D;
            layers[i] = new Layer(
                    declare(p + "ln_1.weight", new Shape(h), Parameter.Type.GAMMA),
                    declare(p + "ln_1.bias", new Shape(h), Parameter.Type.BETA),
                    projection(p + "attn.c_attn", conv1d, h, 3 * h, true),
                    projection(p + "attn.c_proj", conv1d, h, h, true),
                    declare(p + "ln_2.weight", new Shape(h), Parameter.Type.GAMMA),
                    declare(p + "ln_2.bias", new Shape(h), Parameter.Type.BETA),
                    projection(p + "mlp.c_fc", conv1d, h, inner, true),
                    projection(p + "mlp.c_proj", conv1d, inner, h, true));
        }
        lnFw = declare("transformer.ln_f.weight", new Shape(h), Parameter.Type.GAMMA);
        lnFb = declare("transformer.ln_f.bias", new Shape(h), Parameter.Type.BETA);
        lmHead = config.tieWordEmbeddings() || config.isSequenceClassifier()
                ? null
                : declare("lm_head.weight", new Shape(config.vocabSize(), h), Parameter.Type.WEIGHT);
        declareScoreHead();
    }

    @Override
    public double initStd(String name) {
        double std = config.raw().path("initializer_range").asDouble(0.02);
        if (name.endsWith("c_proj.weight")) {
            // GPT-2 scales residual projections by 1/√(2·layers) (HF _init_weights)
            return std / Math.sqrt(2.0 * config.numLayers());
        }
        return name.endsWith(".weight") && !name.contains(".ln_") ? std : Double.NaN;
    }

    @Override
    public boolean isIgnoredBuffer(String tensorName) {
        return tensorName.endsWith(".attn.bias") || tensorName.endsWith(".attn.masked_bias");
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
        long headDim = config.headDim();
        long width = config.hiddenSize();
        NDArray mask = causalOnly || packed != null ? null : EagerAttention.mask(attentionMask, t, 0);
        NDArray positions = packed != null
                ? packedPositions(ids.getManager(), packed)
                : rowPositions(pass, ids, attentionMask, cache);
        NDArray x = Embedding.embedding(ids, f.value(wte, ids), SparseFormat.DENSE)
                .singletonOrThrow()
                .add(Embedding.embedding(positions, f.value(wpe, ids), SparseFormat.DENSE)
                        .singletonOrThrow());
        ModelConfig.Dropout dropout = f.dropout();
        x = f.drop(x, dropout.embedding());
        List<NDArray> hidden = new ArrayList<>();
        // a layer's arrays are freed when it ends, except where they must outlive it (hidden states, a cache)
        boolean layerScopes = cache == null && !withHiddenStates;
        double eps = config.normEps();
        for (int i = 0; i < layers.length; i++) {
            if (withHiddenStates) {
                hidden.add(x);
            }
            Layer l = layers[i];
            NDManager layer = layerScopes ? openLayer(x) : null;
            NDArray a = Ops.layerNorm(x, f.value(l.ln1w, x), f.value(l.ln1b, x), eps);
            NDArray qkv = l.attn.apply(f, a);
            NDArray q = EagerAttention.splitHeads(qkv.get(":, :, 0:" + width), heads, headDim);
            NDArray k = EagerAttention.splitHeads(qkv.get(":, :, " + width + ":" + 2 * width), heads, headDim);
            NDArray v = EagerAttention.splitHeads(qkv.get(":, :, " + 2 * width + ":"), heads, headDim);
            if (cache != null) {
                NDArray[] kv = cache.append(i, k, v);
                k = kv[0];
                v = kv[1];
            }
            double scale = config.gpt2ScaleAttnWeights() ? 1.0 / Math.sqrt(headDim) : 1.0;
            if (config.gpt2ScaleByInverseLayerIdx()) {
                scale /= i + 1;
            }
            // HF's GPT-2 in training mode: attn_dropout on the probabilities, resid_dropout on c_proj's
            // output, the MLP's dropout on its output, in that order (the order the masks are drawn)
            NDArray attn = packed != null
                    ? attendPacked(c, q, k, v, packed, scale, 0, dropout.attention())
                    : c.attend(q, k, v, mask, scale, causalOnly, dropout.attention());
            x = residual(x, f.drop(l.proj.apply(f, attn), dropout.residual()));
            NDArray m = Ops.layerNorm(x, f.value(l.ln2w, x), f.value(l.ln2b, x), eps);
            x = residual(x, f.drop(c.conv1dMlp(f, config.activation(), m, l.fc, l.mlpProj), dropout.residual()));
            if (layer != null) {
                x = closeLayer(layer, x);
            }
        }
        x = Ops.layerNorm(x, f.value(lnFw, x), f.value(lnFb, x), eps);
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
        return lmHead == null ? wte : lmHead;
    }
}
