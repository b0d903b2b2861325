package org.align4j.model.nn;

import ai.djl.MalformedModelException;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;
import java.io.DataInputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.align4j.model.config.ModelConfig;

/**
 * A native decoder-only causal LM as a DJL {@code Block}: {@code forward([ids, attentionMask]) →
 * [logits]}. Its parameters are direct parameters named exactly as in the HF checkpoint ({@code
 * model.layers.0.self_attn.q_proj.weight}), which makes loading and saving a table lookup.
 */
public abstract class CausalLmBlock extends AbstractBlock {
    private static final byte VERSION = 1;

    /** The architecture. */
    protected final ModelConfig config;

    private final Map<String, Shape> shapes = new LinkedHashMap<>();
    private final Map<String, Parameter> byName = new LinkedHashMap<>();
    private final Map<String, Projection> projections = new LinkedHashMap<>();
    /** Adapter set name → its parameters by name. */
    private final Map<String, Map<String, Parameter>> adapterParameters = new LinkedHashMap<>();

    private String activeAdapter = LoraAdapter.DEFAULT;
    private boolean modelDropout;

    /**
     * The output of one forward pass.
     *
     * @param logits [B, T, V]
     * @param hiddenStates HF's {@code output_hidden_states}: the embedding output, the output of
     *     every block but the last, then the last after the final norm; empty unless asked for
     */
    public record Output(NDArray logits, List<NDArray> hiddenStates, NDArray last) {
        /**
         * @param logits [B, T, V]
         * @param hiddenStates the hidden states, if asked for
         */
        public Output(NDArray logits, List<NDArray> hiddenStates) {
            this(logits, hiddenStates, null);
        }
    }

    /**
     * What a forward pass computes.
     *
     * @param withHiddenStates also return every hidden state
     * @param training training mode
     * @param rightPadded every row's padding (if any) comes after its tokens, so a plain causal mask is
     *     exact for every real token (lets SDPA use its causal kernels)
     * @param withLogits apply the LM head; without it {@link Output#last} holds the final hidden state
     *     and {@link Output#logits} is null
     * @param sequences null for a batch of rows; for a packed batch (TRL's {@code padding_free}) the
     *     lengths of the sequences laid end to end in its single row, which must add up to T: each
     *     sequence gets its own positions (HF's {@code position_ids}, restarting at 0) and attends only
     *     to itself, causally
     * @param indexPositions every position of a row at its index, padding included, as HF's models number
     *     them when given no {@code position_ids}; otherwise (the default) positions count a row's real
     *     tokens, so left- and right-padded rows get an unpadded row's positions. Real tokens of a
     *     right-padded row get the same positions either way; only padding positions differ (TRL's
     *     experimental ORPO and CPO trainers log the mean logit over them)
     */
    public record Pass(
            boolean withHiddenStates,
            boolean training,
            boolean rightPadded,
            boolean withLogits,
            long[] sequences,
            boolean indexPositions) {
        /**
         * A pass over a batch of rows, or a packed one, with positions counting real tokens.
         *
         * @param withHiddenStates also return every hidden state
         * @param training training mode
         * @param rightPadded padding (if any) after every row's tokens
         * @param withLogits apply the LM head
         * @param sequences the lengths of a packed row's sequences, or null
         */
        public Pass(
                boolean withHiddenStates, boolean training, boolean rightPadded, boolean withLogits, long[] sequences) {
            this(withHiddenStates, training, rightPadded, withLogits, sequences, false);
        }

        /**
         * A pass over a batch of rows.
         *
         * @param withHiddenStates also return every hidden state
         * @param training training mode
         * @param rightPadded padding (if any) after every row's tokens
         * @param withLogits apply the LM head
         */
        public Pass(boolean withHiddenStates, boolean training, boolean rightPadded, boolean withLogits) {
            this(withHiddenStates, training, rightPadded, withLogits, null);
        }

        /** @return whether the batch is one row of sequences laid end to end */
        public boolean packed() {
            return sequences != null;
        }
    }

    private Compute compute = Compute.EAGER;

    /** @param config the architecture */
    protected CausalLmBlock(ModelConfig config) {
        super(VERSION);
        this.config = config;
    }

    /**
     * Declares a parameter under its HF name.
     *
     * @param name the HF name
     * @param shape its shape
     * @param kind how it is initialised from scratch
     * @return the parameter
     */
    protected final Parameter declare(String name, Shape shape, Parameter.Type kind) {
        Parameter p = Parameter.builder().setName(name).setType(kind).build();
        shapes.put(name, shape);
        byName.put(name, p);
        return addParameter(p);
    }

    /**
     * Declares a linear map of a layer: its weight {@code MODULE.weight} and, if asked, its bias
     * {@code MODULE.bias}.
     *
     * @param module the HF module name, e.g. {@code model.layers.0.self_attn.q_proj}
     * @param layout how the weight is stored
     * @param in input width
     * @param out output width
     * @param withBias whether it has a bias
     * @return the projection
     */
    protected final Projection projection(
            String module, Projection.Layout layout, long in, long out, boolean withBias) {
        Shape shape = layout == Projection.Layout.LINEAR ? new Shape(out, in) : new Shape(in, out);
        Parameter w = declare(module + ".weight", shape, Parameter.Type.WEIGHT);
        Parameter b = withBias ? declare(module + ".bias", new Shape(out), Parameter.Type.BIAS) : null;
        Projection p = new Projection(module, layout, in, out, w, b);
        projections.put(module, p);
        return p;
    }

    /** @return the linear maps of the layers by HF module name, in declaration order (the LM head is not one) */
    public Map<String, Projection> projections() {
        return Collections.unmodifiableMap(projections);
    }

    /**
     * Puts a LoRA adapter of the {@link LoraAdapter#DEFAULT} set on a projection: its A and B become
     * parameters of this block named {@code MODULE.lora_A.weight} and {@code MODULE.lora_B.weight}
     * (PEFT's names without the {@code base_model.model.} prefix).
     *
     * @param module the projection's HF module name
     * @param a A, [r, in] float32, owned by the model's manager from now on
     * @param b B, [out, r] float32, owned likewise
     * @param scale s = α/r (or α/√r)
     * @param dropout dropout probability on the adapter's input in training passes, in [0, 1)
     * @return the adapter
     * @throws IllegalArgumentException when the module is not a projection, already carries an
     *     adapter, or A and B do not fit it
     */
    public LoraAdapter addAdapter(String module, NDArray a, NDArray b, double scale, double dropout) {
        return addAdapter(LoraAdapter.DEFAULT, module, a, b, scale, dropout);
    }

    /**
     * Puts a LoRA adapter of a named set on a projection (PEFT's {@code add_adapter(adapter_name, ...)}):
     * the {@link LoraAdapter#DEFAULT} set's A and B are named as in {@link #addAdapter(String, NDArray,
     * NDArray, double, double)}, another set's {@code MODULE.lora_A.NAME.weight} and {@code
     * MODULE.lora_B.NAME.weight} (PEFT's in-memory names; its saved files drop the set's name).
     *
     * @param adapterName the set, e.g. {@code "value"}
     * @param module the projection's HF module name
     * @param a A, [r, in] float32, owned by the model's manager from now on
     * @param b B, [out, r] float32, owned likewise
     * @param scale s = α/r (or α/√r)
     * @param dropout dropout probability on the adapter's input in training passes, in [0, 1)
     * @return the adapter
     * @throws IllegalArgumentException when the module is not a projection, already carries an
     *     adapter of this set, or A and B do not fit it
     */
    public LoraAdapter addAdapter(
            String adapterName, String module, NDArray a, NDArray b, double scale, double dropout) {
        Projection p = projections.get(module);
        if (p == null) {
            throw new IllegalArgumentException(
                    "no projection '" + module + "' in this " + config.modelType() + " model");
        }
        if (p.adapter(adapterName) != null) {
            throw new IllegalArgumentException("projection '" + module + "' already carries an adapter"
                    + (LoraAdapter.DEFAULT.equals(adapterName) ? "" : " of set '" + adapterName + "'"));
        }
        Shape as = a.getShape();
        Shape bs = b.getShape();
        if (as.dimension() != 2
                || bs.dimension() != 2
                || as.get(0) < 1
                || as.get(1) != p.inFeatures()
                || bs.get(0) != p.outFeatures()
                || bs.get(1) != as.get(0)) {
            throw new IllegalArgumentException(
                    "adapter of '" + module + "': lora_A " + as + " and lora_B " + bs + " do not fit a projection of "
                            + p.inFeatures() + " inputs and " + p.outFeatures() + " outputs (want [r, " + p.inFeatures()
                            + "] and [" + p.outFeatures()
                            + ", r])");
        }
        if (!(dropout >= 0 && dropout < 1)) {
            throw new IllegalArgumentException(
                    "adapter of '" + module + "': dropout must be in [0, 1), got " + dropout);
        }
        String infix = LoraAdapter.DEFAULT.equals(adapterName) ? "" : "." + adapterName;
        Parameter pa = Parameter.builder()
                .setName(module + ".lora_A" + infix + ".weight")
                .setType(Parameter.Type.WEIGHT)
                .build();
        Parameter pb = Parameter.builder()
                .setName(module + ".lora_B" + infix + ".weight")
                .setType(Parameter.Type.WEIGHT)
                .build();
        pa.setArray(a);
        pb.setArray(b);
        addParameter(pa);
        addParameter(pb);
        Map<String, Parameter> set = adapterParameters.computeIfAbsent(adapterName, k -> new LinkedHashMap<>());
        set.put(pa.getName(), pa);
        set.put(pb.getName(), pb);
        LoraAdapter adapter = new LoraAdapter(pa, pb, scale, dropout);
        p.setAdapter(adapterName, adapter);
        return adapter;
    }

    /**
     * Sets the dropout of every adapter's input, of every set, for the following training passes (TRL's
     * {@code disable_dropout} sets it to 0, as it does every dropout module).
     *
     * @param p the probability, in [0, 1)
     */
    public void setAdapterDropout(double p) {
        for (String name : adapterNames()) {
            setAdapterDropout(name, p);
        }
    }

    /**
     * Sets the dropout of the input of one set's adapters for the following training passes.
     *
     * @param adapterName the set
     * @param p the probability, in [0, 1)
     */
    public void setAdapterDropout(String adapterName, double p) {
        if (!(p >= 0 && p < 1)) {
            throw new IllegalArgumentException("adapter dropout must be in [0, 1), got " + p);
        }
        for (Projection proj : projections.values()) {
            LoraAdapter a = proj.adapter(adapterName);
            if (a != null) {
                a.setDropout(p);
            }
        }
    }

    /**
     * @return the {@link LoraAdapter#DEFAULT} set's parameters by name ({@code MODULE.lora_A.weight}, ...),
     *     empty without adapters
     */
    public Map<String, Parameter> adapterParameters() {
        return adapterParameters(LoraAdapter.DEFAULT);
    }

    /**
     * @param adapterName a set
     * @return its parameters by their names in this block ({@code MODULE.lora_A.NAME.weight}, ...), empty
     *     when there is no such set
     */
    public Map<String, Parameter> adapterParameters(String adapterName) {
        Map<String, Parameter> set = adapterParameters.get(adapterName);
        return set == null ? Map.of() : Collections.unmodifiableMap(set);
    }

    /** @return the names of the adapter sets this block carries, in the order they were added */
    public List<String> adapterNames() {
        return List.copyOf(adapterParameters.keySet());
    }

    /** @return whether any projection carries an adapter of the {@link LoraAdapter#DEFAULT} set */
    public boolean hasAdapters() {
        return adapterParameters.containsKey(LoraAdapter.DEFAULT);
    }

    /**
     * @param adapterName a set
     * @return whether any projection carries an adapter of it
     */
    public boolean hasAdapters(String adapterName) {
        return adapterParameters.containsKey(adapterName);
    }

    /**
     * Switches the {@link LoraAdapter#DEFAULT} set on or off for the following passes (off: the base
     * model, as PEFT's {@code disable_adapter()}); adapters stay attached either way.
     *
     * @param enabled whether passes apply the adapters
     */
    public void setAdaptersEnabled(boolean enabled) {
        setActiveAdapter(enabled ? LoraAdapter.DEFAULT : null);
    }

    /**
     * Chooses the adapter set the following passes apply (PEFT's {@code set_adapter}); null for none.
     * A name no projection carries applies nothing.
     *
     * @param adapterName the set, or null
     */
    public void setActiveAdapter(String adapterName) {
        this.activeAdapter = adapterName;
    }

    /** @return the adapter set passes apply (PEFT's {@code active_adapter}), or null for none */
    public String activeAdapter() {
        return activeAdapter;
    }

    /** @return whether passes apply the {@link LoraAdapter#DEFAULT} set */
    public boolean adaptersEnabled() {
        return LoraAdapter.DEFAULT.equals(activeAdapter);
    }

    /**
     * Adds every {@link LoraAdapter#DEFAULT} adapter's delta into its projection's weight (W += s·B·A,
     * transposed for Conv1D, as PEFT's {@code merge_and_unload}) and removes those adapters. Run it
     * outside a gradient collector.
     *
     * @throws IllegalStateException when other adapter sets share the weights (merging would change
     *     their base)
     */
    public void mergeAdapters() {
        for (String name : adapterNames()) {
            if (!LoraAdapter.DEFAULT.equals(name)) {
                throw new IllegalStateException("cannot merge the adapters: adapter set '" + name
                        + "' shares the base weights, which merging would change; remove it first");
            }
        }
        for (Projection p : projections.values()) {
            p.merge();
        }
        removeAdapters();
    }

    /** Removes every adapter of every set without merging it and frees its arrays. */
    public void removeAdapters() {
        for (String name : adapterNames()) {
            removeAdapters(name);
        }
    }

    /**
     * Removes one set's adapters without merging them and frees their arrays.
     *
     * @param adapterName the set
     */
    public void removeAdapters(String adapterName) {
        for (Projection p : projections.values()) {
            p.setAdapter(adapterName, null);
        }
        Map<String, Parameter> set = adapterParameters.remove(adapterName);
        if (set == null) {
            return;
        }
        for (Parameter p : set.values()) {
            parameters.remove(p.getName());
            p.close();
        }
    }

    /**
     * x + branch, the residual connection: the branch's output is freed at once. The sum's backward
     * needs neither operand, and nothing else refers to the branch, so holding it until the step ends
     * would only keep [tokens × width] per layer alive.
     */
    static NDArray residual(NDArray x, NDArray branch) {
        NDArray out = x.add(branch);
        branch.close();
        return out;
    }

    /**
     * Opens the scope of one layer of a pass: the layer's input and every array the layer makes live
     * in it, so that {@link #closeLayer} frees them all at the end of the layer. Autograd keeps its own
     * references to what the backward pass needs (and frees each as the backward pass passes it), so a
     * training step holds what autograd saved, not every intermediate array of every layer until the
     * step ends. Scalars that autograd saves are native tensors ({@link org.align4j.model.ScalarOps}
     * casts them), never views of Java memory, so closing their Java handles is safe.
     *
     * @param x the layer's input (moved into the scope)
     * @return the scope
     */
    static NDManager openLayer(NDArray x) {
        NDManager scope = x.getManager().newSubManager();
        x.attach(scope);
        return scope;
    }

    /**
     * Closes a layer's scope, keeping only its output.
     *
     * @param scope the layer's scope
     * @param x the layer's output (moved out of the scope)
     * @return x
     */
    static NDArray closeLayer(NDManager scope, NDArray x) {
        x.attach(scope.getParentManager());
        scope.close();
        return x;
    }

    /**
     * Turns the config's dropout ({@link ModelConfig#dropout()}) on or off for the following training
     * passes. Off by default, as a model transformers loads is in eval mode until a trainer calls
     * {@code train()}; the trainers turn it on unless {@code disable_dropout} (TRL's switch). Passes
     * that record no gradient never drop anything. The adapters' own dropout is separate ({@link
     * #setAdapterDropout}).
     *
     * @param enabled whether training passes apply the config's dropout
     */
    public void setModelDropout(boolean enabled) {
        this.modelDropout = enabled;
    }

    /** @return whether training passes apply the config's dropout */
    public boolean modelDropout() {
        return modelDropout;
    }

    /**
     * Whether a pass draws random numbers: a training pass with the model's dropout on (and a probability
     * above 0) or an adapter of the active set with input dropout. Such a pass cannot share one computation
     * between rows that hold the same tokens, since each row must get its own dropout mask.
     *
     * @param training training mode
     * @return whether the pass applies any dropout
     */
    public boolean dropsOut(boolean training) {
        if (!training) {
            return false;
        }
        if (modelDropout && config.dropout().any()) {
            return true;
        }
        if (activeAdapter == null) {
            return false;
        }
        for (Projection p : projections.values()) {
            LoraAdapter a = p.adapter(activeAdapter);
            if (a != null && a.dropout() > 0) {
                return true;
            }
        }
        return false;
    }

    /** The context of one pass. */
    final Forward forwardContext(ParameterStore ps, boolean training) {
        ModelConfig.Dropout dropout = training && modelDropout ? config.dropout() : ModelConfig.Dropout.NONE;
        return new Forward(ps, compute, training, activeAdapter, dropout);
    }

    /** @return the architecture */
    public ModelConfig config() {
        return config;
    }

    /** The score head of a sequence classifier ({@code score.weight}), or null. */
    private Parameter score;

    /**
     * Declares the score head {@code score.weight [num_labels, hidden]} when the config is a sequence
     * classifier (a reward model); subclasses call it last, so it comes after the decoder as in
     * transformers' parameter order.
     */
    protected final void declareScoreHead() {
        if (config.isSequenceClassifier()) {
            score = declare("score.weight", new Shape(config.numLabels(), config.hiddenSize()), Parameter.Type.WEIGHT);
        }
    }

    /** @return the score head's weight [num_labels, H] of a sequence classifier, or null for a causal LM */
    public Parameter scoreWeight() {
        return score;
    }

    /**
     * The score head of a sequence classifier: hidden · scoreᵀ, without bias (transformers' {@code
     * score = nn.Linear(hidden, num_labels, bias=False)}).
     *
     * @param ps where parameter values come from
     * @param hidden [..., H] final hidden states
     * @param training training mode
     * @return [..., num_labels]
     * @throws IllegalStateException for a causal LM, which has no score head
     */
    public NDArray score(ParameterStore ps, NDArray hidden, boolean training) {
        if (score == null) {
            throw new IllegalStateException(
                    config.modelType() + " causal LM: no score head (not a sequence classifier)");
        }
        return compute.linear(hidden, value(ps, score, hidden, training), null);
    }

    /**
     * A score head kept beside this block (an adapter set's own, see {@code
     * CausalLm.addSequenceClassifierAdapter}) applied as {@link #score(ParameterStore, NDArray, boolean)}
     * applies the block's.
     *
     * @param ps where parameter values come from
     * @param hidden [..., H] final hidden states
     * @param training training mode
     * @param head the head's weight [num_labels, H]
     * @return [..., num_labels]
     */
    public NDArray score(ParameterStore ps, NDArray hidden, boolean training, Parameter head) {
        return compute.linear(hidden, value(ps, Objects.requireNonNull(head, "head"), hidden, training), null);
    }

    /** Refuses the LM head of a sequence classifier, which has none. */
    protected final void requireLmHead() {
        if (score != null) {
            throw new IllegalStateException(
                    config.raw().path("architectures").path(0).asText()
                            + ": a sequence classifier (reward model) has no LM head: it scores sequences, it does not predict tokens");
        }
    }

    /** @return parameters by HF name, in declaration order */
    public Map<String, Parameter> parametersByName() {
        return Collections.unmodifiableMap(byName);
    }

    /** @return the shape each parameter must have, by HF name */
    public Map<String, Shape> expectedShapes() {
        return Collections.unmodifiableMap(shapes);
    }

    /**
     * The standard deviation of a parameter's normal initialisation, or NaN for a constant
     * initialisation (norm weights 1, biases 0), following HF's {@code _init_weights}.
     *
     * @param name the HF name
     * @return the std, or NaN
     */
    public abstract double initStd(String name);

    /** @return the names of checkpoint tensors that are buffers, not parameters (skipped on load) */
    public abstract boolean isIgnoredBuffer(String tensorName);

    /**
     * Fills every parameter with random values as HF initialises the architecture.
     *
     * @param manager owner of the new arrays
     */
    public void initializeRandom(NDManager manager) {
        for (Map.Entry<String, Parameter> e : byName.entrySet()) {
            Shape shape = shapes.get(e.getKey());
            double std = initStd(e.getKey());
            NDArray a;
            if (!Double.isNaN(std)) {
                a = manager.randomNormal(0f, (float) std, shape, DataType.FLOAT32);
            } else if (e.getValue().getType() == Parameter.Type.GAMMA) {
                a = manager.ones(shape, DataType.FLOAT32);
            } else {
                a = manager.zeros(shape, DataType.FLOAT32);
            }
            e.getValue().setArray(a);
        }
    }

    /**
     * One forward pass.
     *
     * @param ps where parameter values come from
     * @param ids [B, T] int64 token ids (the new tokens only when a cache is given)
     * @param attentionMask [B, Tc + T] int64, 1 for tokens and 0 for padding, over the cached and new
     *     tokens
     * @param cache keys and values of earlier tokens, appended to; null for a plain pass
     * @param withHiddenStates also return every hidden state
     * @param training training mode
     * @return logits and, if asked, hidden states
     */
    public final Output forward(
            ParameterStore ps,
            NDArray ids,
            NDArray attentionMask,
            KvCache cache,
            boolean withHiddenStates,
            boolean training) {
        return forward(ps, ids, attentionMask, cache, new Pass(withHiddenStates, training, false, true));
    }

    /**
     * One forward pass.
     *
     * @param ps where parameter values come from
     * @param ids [B, T] int64 token ids (the new tokens only when a cache is given)
     * @param attentionMask [B, Tc + T] int64 over the cached and new tokens
     * @param cache keys and values of earlier tokens, appended to; null for a plain pass
     * @param pass what to compute
     * @return logits (or the final hidden state) and, if asked, hidden states
     */
    public abstract Output forward(ParameterStore ps, NDArray ids, NDArray attentionMask, KvCache cache, Pass pass);

    /**
     * The LM head.
     *
     * @param ps where parameter values come from
     * @param hidden [..., H] final hidden states
     * @param training training mode
     * @return [..., V] logits
     */
    public abstract NDArray head(ParameterStore ps, NDArray hidden, boolean training);

    /** @return the LM head's weight [V, H] (the embedding's where they are tied) */
    public abstract Parameter headWeight();

    /** @return how attention and projections are computed */
    public Compute compute() {
        return compute;
    }

    /**
     * @param compute how attention and projections are computed from now on (the caller keeps
     *     ownership: close it after the model)
     */
    public void setCompute(Compute compute) {
        this.compute = Objects.requireNonNull(compute, "compute");
    }

    /**
     * Whether a pass may use a causal-only attention mask.
     *
     * @param pass the pass
     * @param cache the cache (none allowed)
     * @param length T
     * @return true when nothing but causality masks a real token's attention
     */
    protected final boolean causalOnly(Pass pass, KvCache cache, long length) {
        return compute.attention() == Compute.Attention.SDPA
                && pass.rightPadded()
                && cache == null
                && (config.slidingWindow() <= 0 || length <= config.slidingWindow());
    }

    /**
     * Checks a packed pass: one row, no cache, sequence lengths adding up to T.
     *
     * @param pass the pass
     * @param ids [1, T]
     * @param cache must be null
     */
    protected static void checkPacked(Pass pass, NDArray ids, KvCache cache) {
        long total = 0;
        for (long l : pass.sequences()) {
            if (l < 1) {
                throw new IllegalArgumentException("packed pass: every sequence needs a token, got length " + l);
            }
            total += l;
        }
        if (cache != null || ids.getShape().get(0) != 1 || ids.getShape().get(1) != total) {
            throw new IllegalArgumentException("packed pass: one row of " + total + " tokens and no cache, got ids "
                    + ids.getShape() + (cache != null ? " and a cache" : ""));
        }
    }

    /**
     * The position ids of a pass over rows: HF's index positions when the pass asks for them (no cache),
     * else the count of each row's real tokens so far.
     *
     * @param pass the pass
     * @param ids [B, T]
     * @param attentionMask [B, Tc + T]
     * @param cache the cache, or null
     * @return [B, T] or [1, T] int64
     */
    protected static NDArray rowPositions(Pass pass, NDArray ids, NDArray attentionMask, KvCache cache) {
        long t = ids.getShape().get(1);
        if (pass.indexPositions()) {
            if (cache != null) {
                throw new IllegalArgumentException("a pass with index positions takes no cache");
            }
            return ids.getManager().arange(0, t, 1, DataType.INT64).reshape(1, t);
        }
        return EagerAttention.positions(attentionMask, t);
    }

    /**
     * HF's {@code position_ids} of a packed row: 0, 1, ... restarting at every sequence.
     *
     * @param manager owner
     * @param sequences the lengths
     * @return [1, T] int64
     */
    protected static NDArray packedPositions(NDManager manager, long[] sequences) {
        long total = 0;
        for (long l : sequences) {
            total += l;
        }
        long[] pos = new long[Math.toIntExact(total)];
        int k = 0;
        for (long l : sequences) {
            for (int j = 0; j < l; j++) {
                pos[k++] = j;
            }
        }
        return manager.create(pos, new Shape(1, total));
    }

    /**
     * Attention of a packed row, each sequence to itself: q, k and v are split at the sequence
     * boundaries, each piece attends causally (through the compute setting's causal kernel, or a
     * sliding-window mask where a sequence is longer than the window), and the outputs are joined.
     * No [T, T] mask and no score between two sequences is ever made.
     *
     * @param c the compute setting
     * @param q [1, H, T, D]
     * @param k [1, KV, T, D]
     * @param v [1, KV, T, D]
     * @param sequences the lengths
     * @param scale the score scale
     * @param window sliding window in tokens, 0 for none
     * @return [1, T, H·D]
     */
    static NDArray attendPacked(
            Compute c, NDArray q, NDArray k, NDArray v, long[] sequences, double scale, int window, double dropout) {
        if (sequences.length == 1) {
            return attendOne(c, q, k, v, sequences[0], scale, window, dropout);
        }
        long[] cuts = new long[sequences.length - 1];
        long at = 0;
        for (int i = 0; i < cuts.length; i++) {
            at += sequences[i];
            cuts[i] = at;
        }
        NDList qs = q.split(cuts, 2);
        NDList ks = k.split(cuts, 2);
        NDList vs = v.split(cuts, 2);
        NDList outs = new NDList(sequences.length);
        for (int i = 0; i < sequences.length; i++) {
            outs.add(attendOne(c, qs.get(i), ks.get(i), vs.get(i), sequences[i], scale, window, dropout));
        }
        return NDArrays.concat(outs, 1);
    }

    private static NDArray attendOne(
            Compute c, NDArray q, NDArray k, NDArray v, long length, double scale, int window, double dropout) {
        boolean causal = window <= 0 || length <= window;
        if (causal && c.attention() == Compute.Attention.SDPA) {
            return c.attend(q, k, v, null, scale, true, dropout);
        }
        NDArray mask = EagerAttention.mask(
                q.getManager().ones(new Shape(1, length), DataType.INT64), length, causal ? 0 : window);
        return c.attend(q, k, v, mask, scale, false, dropout);
    }

    /** Reads a parameter's value through the store (DJL's contract for blocks). */
    protected final NDArray value(ParameterStore ps, Parameter p, NDArray like, boolean training) {
        return p == null ? null : Forward.float32(ps.getValue(p, like.getDevice(), training), like);
    }

    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        NDArray ids = inputs.get(0);
        NDArray mask = inputs.size() > 1 ? inputs.get(1) : ids.onesLike();
        return new NDList(forward(ps, ids, mask, null, false, training).logits());
    }

    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        Shape ids = inputShapes[0];
        return new Shape[] {new Shape(ids.get(0), ids.get(1), config.vocabSize())};
    }

    @Override
    public void loadMetadata(byte loadVersion, DataInputStream is) throws IOException, MalformedModelException {
        if (loadVersion != VERSION) {
            throw new MalformedModelException("Unsupported encoding version: " + loadVersion);
        }
    }

    /** @return the layer indices, for subclasses' loops */
    protected List<Integer> layers() {
        List<Integer> l = new ArrayList<>();
        for (int i = 0; i < config.numLayers(); i++) {
            l.add(i);
        }
        return l;
    }
}
