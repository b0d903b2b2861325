package org.align4j.model;

import ai.djl.Device;
import ai.djl.MalformedModelException;
import ai.djl.Model;
import ai.djl.engine.Engine;
import ai.djl.engine.EngineException;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.ParameterStore;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.function.Supplier;
import java.util.function.UnaryOperator;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.align4j.model.config.ConfigException;
import org.align4j.model.config.ModelConfig;
import org.align4j.model.hub.HubId;
import org.align4j.model.io.AtomicDirectory;
import org.align4j.model.io.CheckpointException;
import org.align4j.model.io.ModelFolder;
import org.align4j.model.io.SafetensorsFile;
import org.align4j.model.io.SafetensorsWriter;
import org.align4j.model.io.TensorSource;
import org.align4j.model.lora.LoraConfig;
import org.align4j.model.lora.PeftAdapter;
import org.align4j.model.nn.CausalLmBlock;
import org.align4j.model.nn.Compute;
import org.align4j.model.nn.Gpt2Block;
import org.align4j.model.nn.KvCache;
import org.align4j.model.nn.LlamaBlock;
import org.align4j.model.nn.LoraAdapter;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A causal language model on one device: a DJL {@link Block} with the contract {@code forward(ids,
 * attentionMask) → logits}, either native (GPT-2 or Llama family, loaded from an HF folder or built
 * from a config) or a TorchScript file.
 *
 * <pre>{@code
 * try (CausalLm lm = CausalLm.load(Path.of("models/qwen2"), Device.cpu())) {
 *     NDArray logits = lm.logits(ids, attentionMask);
 * }
 * }</pre>
 *
 * <p>The same decoder with a one-label score head instead of the LM head is a reward model, as
 * transformers' {@code XForSequenceClassification} lays it out ({@link #isRewardModel()}, {@link
 * #rewards}, {@link #loadRewardModel}); it has no logits or log-probs.
 */
public final class CausalLm implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(CausalLm.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Files that travel with the weights so the saved folder is a complete HF model folder. */
    public static final List<String> TOKENIZER_FILES = List.of(
            "tokenizer.json",
            "tokenizer_config.json",
            "special_tokens_map.json",
            "generation_config.json",
            "vocab.json",
            "merges.txt",
            "tokenizer.model",
            "added_tokens.json",
            "chat_template.jinja");

    /** Default shard limit when saving: 2 GiB per file, below the limits of common readers. */
    public static final long DEFAULT_SHARD_BYTES = 2L << 30;

    private final NDManager manager;
    private final Block block;
    private final ModelConfig config;
    private final Model torchScript;
    private final ParameterStore store;
    private final Path source;
    /** The model this one is a view of ({@link #withoutAdapters}), or null. */
    private final CausalLm viewOf;

    private LoraConfig lora;
    private boolean trainable = true;
    /** The adapter set this instance's passes apply (PEFT's active adapter), or null for none. */
    private String activeAdapter = LoraAdapter.DEFAULT;
    /**
     * The score head of an adapter set's view ({@link #addSequenceClassifierAdapter}), kept beside the
     * shared block as PEFT keeps a per-adapter copy of a {@code modules_to_save} module; null otherwise.
     */
    private Parameter setScore;

    private long logitsChunkElements = LogProbs.DEFAULT_CHUNK_ELEMENTS;
    private boolean paddingFree;

    private CausalLm(NDManager manager, Block block, ModelConfig config, Model torchScript, Path source) {
        this(manager, block, config, torchScript, source, null);
    }

    private CausalLm(
            NDManager manager, Block block, ModelConfig config, Model torchScript, Path source, CausalLm viewOf) {
        this.manager = manager;
        this.block = block;
        this.config = config;
        this.torchScript = torchScript;
        this.source = source;
        this.viewOf = viewOf;
        this.store = new ParameterStore(manager, false);
    }

    /**
     * This model with its adapters off, sharing its weights: the base model of a LoRA run, which is the
     * run's reference policy without a copy. Its passes run the same base operations as this model's,
     * so with B = 0 both give identical outputs. The view owns nothing: closing it, or setting what
     * trains through it, changes nothing; adding, loading or merging adapters through it is refused.
     *
     * @return the view
     */
    public CausalLm withoutAdapters() {
        CausalLm view = new CausalLm(manager, block, config, null, source, viewOf != null ? viewOf : this);
        view.activeAdapter = null;
        view.logitsChunkElements = logitsChunkElements;
        view.paddingFree = paddingFree;
        return view;
    }

    /** @return whether this is a view of another model ({@link #withoutAdapters}) */
    public boolean isView() {
        return viewOf != null;
    }

    private void requireOwner(String what) {
        if (viewOf != null) {
            throw new IllegalStateException(
                    what + ": this is a view of another model (withoutAdapters()); do it on that model");
        }
    }

    /** Points the shared block at this instance's adapter set before a pass. */
    private CausalLmBlock ready(CausalLmBlock native_) {
        native_.setActiveAdapter(activeAdapter);
        return native_;
    }

    /** @return whether this is a view of a named adapter set with its own score head */
    private boolean isSetView() {
        return setScore != null;
    }

    /**
     * A new named adapter set with its own one-label score head on this model's base weights, as a view
     * that is a sequence classifier (PPO's value model on the policy's frozen base): PEFT's {@code
     * add_adapter(adapter_name, config)} on a model whose {@code score} module is in {@code
     * modules_to_save}. The set's adapters are initialised as PEFT does (seeded by {@code seed}), the
     * head as {@link #loadRewardModel} draws a new one (N(0, {@code initializer_range}), seeded by {@code
     * headSeed}), so with B = 0 the view's {@link #values} are those of {@code loadRewardModel(thisFolder,
     * device, padId, headSeed)} up to the order of floating-point sums. The view's passes apply its set
     * only; this model's passes never see it. The view trains its set and its head ({@link
     * #trainableParameters()}, by the names its adapter folder gives them), saves them as a sequence
     * classifier's adapter folder ({@link #writeTo}), and owns nothing: this model frees them.
     *
     * @param adapterName the set's name, not {@link LoraAdapter#DEFAULT}
     * @param config rank, α, targets and dropout of the set
     * @param seed seeds A
     * @param headSeed seeds the score head
     * @return the view
     * @throws IllegalArgumentException when a target matches nothing or the set exists
     * @throws IllegalStateException on a view, a reward model, or a TorchScript model
     */
    public CausalLm addSequenceClassifierAdapter(String adapterName, LoraConfig config, long seed, long headSeed) {
        CausalLmBlock native_ = requireSetOwner("addSequenceClassifierAdapter", adapterName);
        Parameter head = newSetScore(adapterName);
        Engine.getEngine("PyTorch").setRandomSeed((int) headSeed);
        head.setArray(manager.randomNormal(
                0f, (float) native_.initStd("score.weight"), new Shape(1, config().hiddenSize()), DataType.FLOAT32));
        try {
            PeftAdapter.attach(native_, adapterName, config, seed, manager);
        } catch (RuntimeException e) {
            head.close();
            throw e;
        }
        return setView(adapterName, config, head);
    }

    /**
     * A sequence classifier's adapter folder (PEFT's task_type SEQ_CLS: adapters and {@code score.weight})
     * loaded as a named adapter set with its own score head on this model's base weights, as a view
     * (PEFT's {@code load_adapter(dir, adapter_name)}): see {@link #addSequenceClassifierAdapter}. A value
     * model saved by {@link #writeTo} from such a view loads back exactly.
     *
     * @param adapterName the set's name, not {@link LoraAdapter#DEFAULT}
     * @param dir the adapter folder
     * @return the view
     * @throws CheckpointException naming the file and key or tensor when the folder is broken, not a
     *     sequence classifier's, or made for another base
     * @throws IllegalStateException on a view, a reward model, or a TorchScript model
     */
    public CausalLm loadSequenceClassifierAdapter(String adapterName, Path dir) {
        CausalLmBlock native_ = requireSetOwner("loadSequenceClassifierAdapter", adapterName);
        dir = ModelFolder.resolve(dir);
        Parameter head = newSetScore(adapterName);
        head.setArray(manager.zeros(new Shape(1, config().hiddenSize()), DataType.FLOAT32));
        LoraConfig loaded;
        try {
            if (!PeftAdapter.isSequenceClassifier(dir)) {
                throw new CheckpointException(
                        dir.resolve(PeftAdapter.CONFIG_FILE),
                        "key 'task_type': a value model's adapter is a sequence classifier's (SEQ_CLS), with its score"
                                + " head");
            }
            loaded = PeftAdapter.load(native_, dir, manager, adapterName, head);
        } catch (RuntimeException e) {
            head.close();
            throw e;
        }
        warnIfMadeForAnotherBase(dir);
        return setView(adapterName, loaded, head);
    }

    private CausalLmBlock requireSetOwner(String what, String adapterName) {
        requireOwner(what);
        CausalLmBlock native_ = nativeBlock();
        if (LoraAdapter.DEFAULT.equals(adapterName)) {
            throw new IllegalArgumentException(
                    what + ": '" + LoraAdapter.DEFAULT + "' is the model's own adapter set; name another");
        }
        if (native_.scoreWeight() != null) {
            throw new IllegalStateException(
                    what + ": " + source + " is a reward model; a set's score head goes on a causal LM");
        }
        return native_;
    }

    private static Parameter newSetScore(String adapterName) {
        return Parameter.builder()
                .setName("score." + adapterName + ".weight")
                .setType(Parameter.Type.WEIGHT)
                .build();
    }

    private CausalLm setView(String adapterName, LoraConfig config, Parameter head) {
        CausalLm view = new CausalLm(manager, block, this.config, null, source, this);
        view.activeAdapter = adapterName;
        view.setScore = head;
        view.lora = config;
        view.logitsChunkElements = logitsChunkElements;
        view.paddingFree = paddingFree;
        view.setTrainable(true);
        LOG.info(
                "Adapter set '{}' (r={}, alpha={}) with its own score head on the base of {}: {} trainable parameters",
                adapterName,
                config.r(),
                config.alpha(),
                source,
                count(view.trainableParameters()));
        return view;
    }

    /** @return the adapter set this instance's passes apply ({@link LoraAdapter#DEFAULT} for a model's own), or null */
    public String activeAdapter() {
        return activeAdapter;
    }

    /**
     * Loads an HF model folder ({@code config.json} + safetensors weights) as a native model whose
     * parameters train; or a PEFT adapter folder ({@code adapter_config.json}, no {@code config.json}):
     * its base model ({@code base_model_name_or_path}, a local folder or a Hub id) with the adapter on. A
     * Hub id ({@code owner/name[@revision]}) where no such local path exists loads from the Hub's cache.
     *
     * @param dir the folder
     * @param device where the weights live
     * @return the model
     * @throws ConfigException if the config is missing, broken or unsupported
     * @throws CheckpointException if the weights are missing, broken or do not fit the config
     */
    public static CausalLm load(Path dir, Device device) {
        return load(dir, device, DataType.FLOAT32);
    }

    /**
     * Loads an HF model folder with its weights in a chosen floating-point type: FLOAT16 halves the
     * memory of a frozen reference model (meant for GPUs; logits are returned as float32 either way).
     *
     * @param dir the folder
     * @param device where the weights live
     * @param dtype FLOAT32 or FLOAT16
     * @return the model
     */
    public static CausalLm load(Path dir, Device device, DataType dtype) {
        if (dtype != DataType.FLOAT32 && dtype != DataType.FLOAT16) {
            throw new IllegalArgumentException("dtype: FLOAT32 or FLOAT16 (DJL 0.36 cannot hold bf16), got " + dtype);
        }
        dir = ModelFolder.resolve(dir);
        if (PeftAdapter.isAdapterFolder(dir) && !Files.isRegularFile(dir.resolve("config.json"))) {
            // a reward model's adapter (SEQ_CLS) goes on its base read as a reward model; its score head replaces the
            // new one
            CausalLm base = PeftAdapter.isSequenceClassifier(dir)
                    ? loadRewardModel(adapterBase(dir), device, -1, 0)
                    : load(adapterBase(dir), device, dtype);
            try {
                base.loadAdapter(dir);
            } catch (RuntimeException e) {
                base.close();
                throw e;
            }
            return base;
        }
        ModelFolder.check(dir, "config.json");
        ModelConfig config = ModelConfig.read(dir.resolve("config.json"));
        return fromFolder(dir, config, device, dtype, null);
    }

    /**
     * Loads a reward model: a sequence classifier's HF folder ({@code GPT2ForSequenceClassification},
     * {@code LlamaForSequenceClassification}, ... with {@code score.weight [1, hidden]}) as it is, or a
     * causal LM's folder with a new score head in place of its LM head, as {@code
     * AutoModelForSequenceClassification.from_pretrained(dir, num_labels=1)} makes it: the decoder's
     * weights, {@code lm_head.weight} left out, {@code score.weight} drawn from N(0, {@code
     * initializer_range}) (transformers' {@code _init_weights} of a Linear; the draws themselves differ,
     * the seed fixes align4j's), and {@code pad_token_id} set (TRL sets the tokenizer's pad id, or eos).
     *
     * @param dir an HF folder: a sequence classifier with one label, or a causal LM
     * @param device where the weights live
     * @param padId the pad id written to a new head's config (-1: keep the config's); ignored for a
     *     folder that is already a sequence classifier
     * @param seed seeds a new head
     * @return the reward model ({@link #isRewardModel()}), whose parameters train
     * @throws ConfigException if the config is missing, broken, unsupported, or a classifier with more than one label
     * @throws CheckpointException if the weights are missing, broken or do not fit the config
     */
    public static CausalLm loadRewardModel(Path dir, Device device, int padId, long seed) {
        dir = ModelFolder.resolve(dir);
        ModelFolder.check(dir, "config.json");
        ModelConfig config = ModelConfig.read(dir.resolve("config.json"));
        if (config.isSequenceClassifier()) {
            return fromFolder(dir, config, device, DataType.FLOAT32, null);
        }
        return fromFolder(dir, config.asRewardModel(padId), device, DataType.FLOAT32, seed);
    }

    /**
     * The weights of a folder into the block of {@code config}; with {@code newHeadSeed} the score head
     * is new (drawn from the seed) and the folder's LM head is left out.
     */
    private static CausalLm fromFolder(Path dir, ModelConfig config, Device device, DataType dtype, Long newHeadSeed) {
        NDManager manager = NDManager.newBaseManager(device, "PyTorch");
        CausalLmBlock block;
        try (TensorSource weights = TensorSource.open(dir)) {
            // cheap first: the layer count against the checkpoint's names, before any layer is built
            checkLayerCount(dir, config, weights);
            block = newBlock(config);
            Map<String, Shape> expected = block.expectedShapes();
            for (Map.Entry<String, Parameter> e : block.parametersByName().entrySet()) {
                if (newHeadSeed != null && e.getKey().equals("score.weight")) {
                    Engine.getEngine("PyTorch").setRandomSeed((int) (long) newHeadSeed);
                    e.getValue()
                            .setArray(manager.randomNormal(
                                            0f,
                                            (float) block.initStd(e.getKey()),
                                            expected.get(e.getKey()),
                                            DataType.FLOAT32)
                                    .toType(dtype, false));
                    continue;
                }
                String tensor = findTensor(weights, e.getKey());
                if (tensor == null) {
                    throw new CheckpointException(
                            dir, "missing tensor '" + e.getKey() + "' required by model_type " + config.modelType());
                }
                SafetensorsFile.TensorInfo info = weights.info(tensor);
                Shape want = expected.get(e.getKey());
                if (!Arrays.equals(info.shape(), want.getShape())) {
                    throw new CheckpointException(
                            dir,
                            "tensor '" + tensor + "' has shape " + Arrays.toString(info.shape())
                                    + " but config.json implies " + want);
                }
                if (!List.of("F32", "F16", "BF16", "F64").contains(info.dtype())) {
                    throw new CheckpointException(
                            dir,
                            "tensor '" + tensor + "' has dtype " + info.dtype() + "; a weight must be floating point"
                                    + " (F32, F16, BF16 or F64)");
                }
                NDArray w = weights.read(tensor, manager);
                if (w.getDataType() != dtype) { // F64 weights are cast to the model's dtype, as transformers casts them
                    NDArray cast = w.toType(dtype, false);
                    w.close();
                    w = cast;
                }
                e.getValue().setArray(w);
            }
            checkUnexpected(dir, weights, block, newHeadSeed != null);
        } catch (RuntimeException ex) {
            manager.close();
            throw ex;
        }
        prepareParameters(block, manager, true);
        LOG.info(
                "Loaded {} ({} layers, {} parameters) from {} on {}",
                config.modelType(),
                config.numLayers(),
                countParameters(block),
                dir,
                device);
        return new CausalLm(manager, block, config, null, dir);
    }

    private static final Pattern LAYER_INDEX = Pattern.compile("(?:^|\\.)(?:h|layers)\\.(\\d{1,9})\\.");

    /**
     * A config that claims more layers than the checkpoint holds is refused by its key before the
     * layers are built (10 million claimed layers would take minutes and gigabytes to build only to fail
     * on the first missing tensor).
     */
    private static void checkLayerCount(Path dir, ModelConfig config, TensorSource weights) {
        int held = 0;
        for (String name : weights.names()) {
            Matcher m = LAYER_INDEX.matcher(name);
            if (m.find()) {
                held = Math.max(held, Integer.parseInt(m.group(1)) + 1);
            }
        }
        if (config.numLayers() > held) {
            throw new ConfigException(
                    dir.resolve("config.json"),
                    config.family() == ModelConfig.Family.GPT2 ? "n_layer" : "num_hidden_layers",
                    config.numLayers() + " layers, but the checkpoint's tensors hold " + held
                            + (held == 0 ? "" : " (layers 0 to " + (held - 1) + ")"));
        }
    }

    /**
     * The base model folder an adapter folder names in {@code base_model_name_or_path}: a path as
     * given, else relative to the adapter folder, else a Hub id's cached folder.
     *
     * @param adapterDir an adapter folder
     * @return the base model's folder
     * @throws CheckpointException naming the key when it is missing or names nothing loadable
     */
    public static Path adapterBase(Path adapterDir) {
        Path file = adapterDir.resolve(PeftAdapter.CONFIG_FILE);
        String base = PeftAdapter.baseModel(adapterDir);
        if (base == null || base.isBlank()) {
            throw new CheckpointException(
                    file,
                    "key 'base_model_name_or_path': missing, so the base model is unknown; load the base model "
                            + "and add the adapter to it (--model BASE --adapter DIR)");
        }
        for (Path candidate : new Path[] {Path.of(base), adapterDir.resolve(base)}) {
            if (Files.isRegularFile(candidate.resolve("config.json"))) {
                return candidate;
            }
        }
        if (HubId.looksLikeId(base)) {
            return ModelFolder.resolve(Path.of(base)); // an adapter made on a Hub model names it by id, as PEFT does
        }
        throw new CheckpointException(
                file,
                "key 'base_model_name_or_path': '" + base
                        + "' is neither a local model folder nor a Hub id; load the base model "
                        + "and add the adapter to it (--model BASE --adapter DIR)");
    }

    /** HF names, or the old GPT-2 names without the {@code transformer.} prefix. */
    private static String findTensor(TensorSource weights, String name) {
        if (weights.has(name)) {
            return name;
        }
        if (name.startsWith("transformer.") && weights.has(name.substring("transformer.".length()))) {
            return name.substring("transformer.".length());
        }
        return null;
    }

    private static void checkUnexpected(Path dir, TensorSource weights, CausalLmBlock block, boolean headReplaced) {
        Map<String, Parameter> params = block.parametersByName();
        for (String name : weights.names()) {
            boolean known = params.containsKey(name) || params.containsKey("transformer." + name);
            // a causal LM's head where a new score head replaces it (TRL ignores it as unexpected too)
            boolean tiedHead = "lm_head.weight".equals(name) && (block.config().tieWordEmbeddings() || headReplaced);
            if (!known && !tiedHead && !block.isIgnoredBuffer(name)) {
                throw new CheckpointException(
                        dir,
                        "unexpected tensor '" + name + "': model_type "
                                + block.config().modelType() + " with this config.json has no such parameter");
            }
        }
    }

    /**
     * Seeds libtorch's global generators (the CPU's and every CUDA device's), as {@code
     * torch.manual_seed(seed)} does: the dropout masks of the following passes are then a function of
     * the seed alone. The trainers seed {@code seed + 1000003 · step + micro-batch} before each training
     * pass, so a resumed run draws the same masks as an uninterrupted one.
     *
     * @param seed any 64-bit value
     */
    public static void seedGenerators(long seed) {
        JniUtils.setSeed(seed);
    }

    /**
     * Runs passes that record no autograd graph even inside a {@code GradientCollector} and with parameters
     * that require gradients (PyTorch's {@code torch.no_grad()}): for values a training step reads but never
     * differentiates, such as KTO's policy log-probs of its mismatched pairs.
     *
     * @param passes what to compute
     * @param <T> its result
     * @return the result, whose arrays carry no graph
     */
    public static <T> T withoutGradients(Supplier<T> passes) {
        boolean before = JniUtils.isGradMode();
        JniUtils.setGradMode(false);
        try {
            return passes.get();
        } finally {
            JniUtils.setGradMode(before);
        }
    }

    /**
     * Builds a native model from a config with random weights, initialised as HF initialises the
     * architecture, for training from scratch.
     *
     * @param config the architecture
     * @param device where the weights live
     * @param seed the random seed
     * @return the model
     */
    public static CausalLm create(ModelConfig config, Device device, long seed) {
        CausalLmBlock block = newBlock(config);
        Engine.getEngine("PyTorch").setRandomSeed((int) seed);
        NDManager manager = NDManager.newBaseManager(device, "PyTorch");
        block.initializeRandom(manager);
        prepareParameters(block, manager, true);
        return new CausalLm(manager, block, config, null, null);
    }

    /**
     * Loads a TorchScript file whose {@code forward(input_ids int64[B,T], attention_mask int64[B,T])}
     * returns logits [B,T,V].
     *
     * @param file the {@code .pt} file
     * @param device where it runs; it must have been traced on this kind of device
     * @param trainable whether its parameters receive gradients (a reference model wants false)
     * @return the model
     */
    public static CausalLm loadTorchScript(Path file, Device device, boolean trainable) {
        if (!Files.isRegularFile(file)) {
            throw new CheckpointException(file, "TorchScript file not found");
        }
        Model model = Model.newInstance("torchscript", device, "PyTorch");
        try {
            String name = file.getFileName().toString();
            String prefix = name.endsWith(".pt") ? name.substring(0, name.length() - 3) : name;
            model.load(
                    file.toAbsolutePath().getParent(),
                    prefix,
                    Map.of("trainParam", Boolean.toString(trainable), "mapLocation", "true"));
        } catch (IOException | MalformedModelException | EngineException e) {
            model.close();
            throw new CheckpointException(file, "not a loadable TorchScript file: " + e.getMessage(), e);
        }
        Block block = model.getBlock();
        block.freezeParameters(!trainable);
        return new CausalLm(model.getNDManager(), block, null, model, file);
    }

    private static CausalLmBlock newBlock(ModelConfig config) {
        return config.family() == ModelConfig.Family.GPT2 ? new Gpt2Block(config) : new LlamaBlock(config);
    }

    private static void prepareParameters(CausalLmBlock block, NDManager manager, boolean trainable) {
        for (Parameter p : block.parametersByName().values()) {
            p.freeze(!trainable);
        }
    }

    private static long countParameters(Block block) {
        long n = 0;
        for (var p : block.getParameters()) {
            NDArray a = p.getValue().getArray();
            n += a == null ? 0 : a.size();
        }
        return n;
    }

    /** @return the DJL block ({@link CausalLmBlock} for native models, a PtSymbolBlock otherwise) */
    public Block block() {
        return block;
    }

    /** @return the architecture, or null for a TorchScript model */
    public ModelConfig config() {
        return config;
    }

    /** @return whether this is a native model (KV cache, hidden states, saving) */
    public boolean isNative() {
        return block instanceof CausalLmBlock;
    }

    /** @return the manager that owns the weights */
    public NDManager manager() {
        return manager;
    }

    /** @return the device of the weights */
    public Device device() {
        return manager.getDevice();
    }

    /** @return the folder or file this model was loaded from, or null */
    public Path source() {
        return source;
    }

    /** @return the number of scalar parameters */
    public long parameterCount() {
        return countParameters(block);
    }

    /**
     * @return the model's own parameters by name (HF names for native models; adapters not included)
     */
    public Map<String, Parameter> parameters() {
        if (block instanceof CausalLmBlock native_) {
            return native_.parametersByName();
        }
        Map<String, Parameter> out = new LinkedHashMap<>();
        for (var p : block.getParameters()) {
            out.put(p.getKey(), p.getValue());
        }
        return out;
    }

    /**
     * The parameters an optimizer updates: the adapters' A and B when the model carries adapters (the
     * base weights are then frozen), and a reward model's score head beside them ({@code score.weight},
     * trained in full as PEFT's task_type SEQ_CLS trains it); otherwise every parameter.
     *
     * @return parameters by name ({@code MODULE.lora_A.weight}, ... or HF names)
     */
    public Map<String, Parameter> trainableParameters() {
        if (isSetView()) {
            // the names its adapter folder gives them (PEFT drops the set's name when it saves)
            Map<String, Parameter> out = new LinkedHashMap<>();
            String infix = "." + activeAdapter + ".weight";
            nativeBlock()
                    .adapterParameters(activeAdapter)
                    .forEach((k, p) -> out.put(k.substring(0, k.length() - infix.length()) + ".weight", p));
            out.put("score.weight", setScore);
            return Collections.unmodifiableMap(out);
        }
        if (block instanceof CausalLmBlock native_ && native_.hasAdapters()) {
            if (native_.scoreWeight() == null) {
                return native_.adapterParameters();
            }
            // a reward model's score head trains in full beside its adapters (PEFT's SEQ_CLS modules_to_save)
            Map<String, Parameter> out = new LinkedHashMap<>(native_.adapterParameters());
            out.put("score.weight", native_.scoreWeight());
            return Collections.unmodifiableMap(out);
        }
        return parameters();
    }

    /**
     * Freezes or unfreezes what trains: the adapters when there are adapters (the base weights stay
     * frozen), otherwise every parameter.
     *
     * @param trainable whether those parameters should receive gradients
     */
    public void setTrainable(boolean trainable) {
        if (isSetView()) {
            this.trainable = trainable;
            nativeBlock().adapterParameters(activeAdapter).values().forEach(p -> p.freeze(!trainable));
            setScore.freeze(!trainable);
            return;
        }
        if (viewOf != null) {
            return;
        }
        this.trainable = trainable;
        if (block instanceof CausalLmBlock native_ && native_.hasAdapters()) {
            native_.parametersByName().values().forEach(p -> p.freeze(true));
            native_.adapterParameters().values().forEach(p -> p.freeze(!trainable));
            if (native_.scoreWeight() != null) {
                native_.scoreWeight().freeze(!trainable);
            }
        } else {
            block.freezeParameters(!trainable);
        }
    }

    /**
     * Adds new LoRA adapters (Hu et al., 2021) to the projections the configuration selects,
     * initialised as PEFT does (A Kaiming-uniform, B zero: the model's outputs do not change). From
     * now on only the adapters train; {@link #trainableParameters()} returns them.
     *
     * @param config the LoRA configuration
     * @param seed seeds A
     * @throws IllegalArgumentException when a target module matches nothing (the message lists the
     *     model's modules)
     * @throws IllegalStateException when the model already carries adapters
     */
    public void addLora(LoraConfig config, long seed) {
        requireOwner("addLora");
        CausalLmBlock native_ = nativeBlock();
        PeftAdapter.attach(native_, config, seed, manager);
        this.lora = config;
        setTrainable(trainable);
        LOG.info(
                "LoRA r={} alpha={} on {} projections: {} trainable parameters of {}",
                config.r(),
                config.alpha(),
                native_.adapterParameters().size() / 2,
                count(native_.adapterParameters()),
                count(native_.parametersByName()));
    }

    /**
     * Loads a PEFT adapter folder ({@code adapter_config.json} + {@code adapter_model.safetensors})
     * onto this model; only the adapters train from now on.
     *
     * @param dir the adapter folder
     * @return its configuration
     * @throws CheckpointException naming the file and key or tensor when the folder is broken, asks for
     *     an option align4j lacks, or was made for another base model
     */
    public LoraConfig loadAdapter(Path dir) {
        requireOwner("loadAdapter");
        dir = ModelFolder.resolve(dir);
        CausalLmBlock native_ = nativeBlock();
        this.lora = PeftAdapter.load(native_, dir, manager);
        warnIfMadeForAnotherBase(dir);
        setTrainable(trainable);
        LOG.info(
                "Loaded LoRA adapter {} (r={}, alpha={}, {} projections)",
                dir,
                lora.r(),
                lora.alpha(),
                native_.adapterParameters().size() / 2);
        return lora;
    }

    /**
     * An adapter whose {@code base_model_name_or_path} names an existing model folder other than the one
     * it is loaded on fits it by shape only: said by name, as PEFT warns, and loaded (a copy of the base
     * elsewhere is the same model).
     */
    private void warnIfMadeForAnotherBase(Path dir) {
        String base = PeftAdapter.baseModel(dir);
        if (base == null || base.isBlank() || source == null) {
            return;
        }
        for (Path candidate : new Path[] {Path.of(base), dir.resolve(base)}) {
            if (Files.isRegularFile(candidate.resolve("config.json"))) {
                try {
                    if (!Files.isSameFile(candidate, source)) {
                        LOG.warn(
                                "{}: the adapter was made for {} (base_model_name_or_path) but is loaded on {}; they"
                                        + " match in shape only",
                                dir.resolve(PeftAdapter.CONFIG_FILE),
                                candidate,
                                source);
                    }
                } catch (IOException e) {
                    LOG.debug("Cannot compare {} with {}", candidate, source, e);
                }
                return;
            }
        }
    }

    /**
     * Sets the dropout on the adapters' input for training passes, without changing their recorded
     * configuration ({@code lora_dropout} in a saved adapter_config.json).
     *
     * @param p the probability, in [0, 1); 0 turns it off
     */
    public void setAdapterDropout(double p) {
        if (isSetView()) {
            nativeBlock().setAdapterDropout(activeAdapter, p);
        } else {
            nativeBlock().setAdapterDropout(p);
        }
    }

    /**
     * Turns the config's dropout ({@link org.align4j.model.config.ModelConfig#dropout()}: GPT-2's
     * embd/attn/resid_pdrop, the Llama family's attention_dropout) on or off for training passes. Off
     * when loaded, as a transformers model is in eval mode until a trainer calls {@code train()}; the
     * trainers turn it on unless {@code disable_dropout}. Passes without training mode never drop. A
     * TorchScript model keeps the dropout its trace was recorded with.
     *
     * @param enabled whether training passes apply the config's dropout
     */
    public void setDropout(boolean enabled) {
        if (block instanceof CausalLmBlock native_) {
            native_.setModelDropout(enabled);
        }
    }

    /** @return the configuration of the adapters this model carries, or null */
    public LoraConfig lora() {
        return lora;
    }

    /** @return whether the model carries adapters (a set's view: its set's) */
    public boolean hasAdapters() {
        return block instanceof CausalLmBlock native_
                && (isSetView() ? native_.hasAdapters(activeAdapter) : native_.hasAdapters());
    }

    /**
     * Switches the adapters on or off for the following passes. Off, the model is its base model: the
     * reference policy of a LoRA run, with no copy of the weights. Passes run the same base operations
     * either way, so with B = 0 (new adapters) both give identical outputs.
     *
     * @param enabled whether passes apply the adapters
     */
    public void setAdaptersEnabled(boolean enabled) {
        if (isSetView()) {
            throw new IllegalStateException("a set's view applies its set: use the model it is a view of");
        }
        this.activeAdapter = enabled ? LoraAdapter.DEFAULT : null;
    }

    /** @return whether this model's passes apply its adapters (true for a model without adapters) */
    public boolean adaptersEnabled() {
        return activeAdapter != null;
    }

    /**
     * Merges the adapters into the weights, W ← W + (α/r)·B·A (transposed for GPT-2's Conv1D), as PEFT's
     * {@code merge_and_unload()}, and removes them: the model is then a plain model again and {@link
     * #save} writes a full HF folder. Every parameter is trainable afterwards.
     */
    public void mergeAdapters() {
        requireOwner("mergeAdapters");
        CausalLmBlock native_ = nativeBlock();
        native_.mergeAdapters();
        lora = null;
        setTrainable(trainable);
    }

    private static long count(Map<String, Parameter> params) {
        long n = 0;
        for (Parameter p : params.values()) {
            n += p.getArray().size();
        }
        return n;
    }

    /**
     * The logits of a batch.
     *
     * @param ids [B, T] int64
     * @param attentionMask [B, T] int64
     * @param training training mode (dropout in TorchScript models; gradients are recorded by a
     *     {@code GradientCollector} either way)
     * @return [B, T, V] float32, attached to the manager of {@code ids}
     */
    public NDArray logits(NDArray ids, NDArray attentionMask, boolean training) {
        if (block instanceof CausalLmBlock native_) {
            NDArray logits = ready(native_)
                    .forward(store, ids, attentionMask, null, false, training)
                    .logits();
            return logits.getDataType() == DataType.FLOAT32 ? logits : logits.toType(DataType.FLOAT32, false);
        }
        try {
            return block.forward(store, new NDList(ids, attentionMask), training)
                    .singletonOrThrow();
        } catch (EngineException e) {
            String msg = String.valueOf(e.getMessage());
            if (msg.contains("same device") || msg.contains("Expected all tensors")) {
                throw new IllegalStateException(
                        source + ": the TorchScript model failed on " + device()
                                + ". A model traced on one device bakes that device's constants into the trace: "
                                + "trace it on the device you run it on. ("
                                + msg.lines().findFirst().orElse("") + ")",
                        e);
            }
            throw e;
        }
    }

    /** @return whether this is a reward model: a sequence classifier with a one-label score head instead of the LM head */
    public boolean isRewardModel() {
        return block instanceof CausalLmBlock native_ && (native_.scoreWeight() != null || isSetView());
    }

    /** The score head of this instance: a set view's own, else the block's (null for a causal LM). */
    private Parameter scoreHead(CausalLmBlock native_) {
        return isSetView() ? setScore : native_.scoreWeight();
    }

    /**
     * The rewards of a batch of sequences, as transformers' {@code XForSequenceClassification} reads
     * them: the score head at each row's last token that is not {@code pad_token_id} (the rightmost
     * such token, so left and right padding both work; with eos as the pad token, as for a GPT-2
     * without one, that is the token before a final eos). Without a {@code pad_token_id} in the config,
     * at the row's last attended position (transformers then takes the last position, and refuses
     * batches of more than one row). Positions come from the attention mask, so a row's reward does not
     * depend on its padding (transformers without {@code position_ids} shifts left-padded rows).
     *
     * @param ids [B, T] int64
     * @param attentionMask [B, T] int64, 1 on tokens
     * @param training training mode
     * @return [B] rewards (logits of the one label), with gradients when recorded
     * @throws IllegalStateException when this is not a reward model
     */
    public NDArray rewards(NDArray ids, NDArray attentionMask, boolean training) {
        return rewards(ids, attentionMask, training, false);
    }

    /**
     * As {@link #rewards(NDArray, NDArray, boolean)}, for a batch whose every row's padding follows its
     * tokens ({@code PreferenceBatch}'s layout) when {@code rightPadded}: SDPA attention may then use
     * its causal kernels.
     *
     * @param ids [B, T] int64
     * @param attentionMask [B, T] int64
     * @param training training mode
     * @param rightPadded every row is tokens then padding
     * @return [B] rewards
     */
    public NDArray rewards(NDArray ids, NDArray attentionMask, boolean training, boolean rightPadded) {
        CausalLmBlock native_ = nativeBlock();
        Parameter head = scoreHead(native_);
        if (head == null) {
            throw new IllegalStateException(source + ": a causal LM, not a reward model (no score head)");
        }
        long b = ids.getShape().get(0);
        long t = ids.getShape().get(1);
        CausalLmBlock.Output out = ready(native_)
                .forward(store, ids, attentionMask, null, new CausalLmBlock.Pass(false, training, rightPadded, false));
        NDManager m = ids.getManager();
        NDArray counted = config.padTokenId() >= 0 ? ids.neq(config.padTokenId()) : attentionMask.eq(1);
        NDArray last = m.arange(0, t, 1, DataType.INT64)
                .reshape(1, t)
                .mul(counted.toType(DataType.INT64, false))
                .argMax(1);
        NDArray rows = m.arange(0, b, 1, DataType.INT64).mul(t).add(last.toType(DataType.INT64, false));
        NDArray hidden = out.last().reshape(b * t, out.last().getShape().get(2)).get(rows);
        return native_.score(store, hidden, training, head).reshape(b);
    }

    /**
     * A value model's estimates at every position (PPO's critic): the one-label score head of a sequence
     * classifier applied to each position's final hidden state, as TRL's {@code PolicyAndValueWrapper}
     * reads {@code value_model.score(backbone(...).last_hidden_state)}.
     *
     * @param ids [B, T] int64
     * @param attentionMask [B, T] int64, 1 on tokens
     * @param training training mode (dropout, gradients when recorded)
     * @param rightPadded every row is tokens then padding (SDPA may use its causal kernels)
     * @return [B, T] values (padded positions hold values nothing should read)
     * @throws IllegalStateException when this is not a sequence classifier
     */
    public NDArray values(NDArray ids, NDArray attentionMask, boolean training, boolean rightPadded) {
        CausalLmBlock native_ = nativeBlock();
        Parameter head = scoreHead(native_);
        if (head == null) {
            throw new IllegalStateException(source + ": a causal LM, not a value model (no score head)");
        }
        long b = ids.getShape().get(0);
        long t = ids.getShape().get(1);
        NDArray last = ready(native_)
                .forward(store, ids, attentionMask, null, new CausalLmBlock.Pass(false, training, rightPadded, false))
                .last();
        return native_.score(store, last.reshape(b * t, last.getShape().get(2)), training, head)
                .reshape(b, t);
    }

    /**
     * Sequence log-probs of the completion tokens of a right-padded batch (prompt, completion, then
     * padding in every row), as {@link LogProbs#of} on the logits, but the LM head runs only where a
     * completion token is predicted, in chunks of positions ({@link #setLogitsChunkElements}), and SDPA
     * attention may use its causal kernels. For TorchScript models this is {@code
     * LogProbs.of(logits(...))}.
     *
     * @param ids [B, T] int64
     * @param attentionMask [B, T] int64, ones then zeros in every row
     * @param completionMask [B, T], 1 on completion tokens (a floating-point mask weighs each token, see {@link LogProbs})
     * @param training training mode
     * @return sum, mean and count per row
     */
    public LogProbs completionLogProbs(NDArray ids, NDArray attentionMask, NDArray completionMask, boolean training) {
        return completionLogProbs(ids, attentionMask, completionMask, training, false);
    }

    /**
     * As {@link #completionLogProbs(NDArray, NDArray, NDArray, boolean)}, with the token statistics
     * ({@link LogProbs#STATISTICS}: entropy, mean logit, argmax hits, ...) summed per row from the same
     * chunks of logits when asked for: TRL's DPO metrics without a [B, T, V] array kept.
     *
     * @param ids [B, T] int64
     * @param attentionMask [B, T] int64, ones then zeros in every row
     * @param completionMask [B, T], 1 on completion tokens (floating point: weights)
     * @param training training mode
     * @param statistics also sum the token statistics per row
     * @return sum, mean, count (and statistics) per row
     */
    public LogProbs completionLogProbs(
            NDArray ids, NDArray attentionMask, NDArray completionMask, boolean training, boolean statistics) {
        if (!(block instanceof CausalLmBlock native_)) {
            return LogProbs.of(logits(ids, attentionMask, training), ids, completionMask, statistics);
        }
        if (training || !graphFree(native_)) {
            return nativeLogProbs(native_, ids, attentionMask, completionMask, training, statistics);
        }
        return inOwnScope(
                ids,
                attentionMask,
                completionMask,
                (i, a, c) -> nativeLogProbs(native_, i, a, c, false, statistics),
                lp -> new NDArray[] {lp.sum(), lp.mean(), lp.tokens(), lp.statistics()});
    }

    /**
     * A padded batch scored the way HF's model scores it when given only {@code input_ids} and {@code
     * attention_mask}: TRL 1.13's experimental ORPO and CPO trainers read the log-probs of the tokens and
     * the logits of every position, padding included.
     *
     * @param tokens the log-probs of the tokens of {@code scoreMask}, flat in row-major order
     * @param meanLogits [B, T] float32, without gradient: the mean over the vocabulary of the logits at every
     *     position of the batch (padding positions too)
     */
    public record PaddedScores(TokenLogProbs tokens, NDArray meanLogits) {}

    /**
     * Scores a right-padded batch as HF's forward does without {@code position_ids}: one padded pass (never
     * packed) in which padding keys are masked and every position, padding included, is at its index, so
     * that the logits of padding positions are HF's too. The log-probs of the tokens {@code scoreMask}
     * marks are made as in {@link #completionTokenLogProbs} (the LM head only where they are predicted, in
     * chunks); the mean logit of every position is made from the same final hidden states, in chunks,
     * without gradient.
     *
     * @param ids [B, T] int64
     * @param attentionMask [B, T] int64, ones then zeros in every row
     * @param scoreMask [B, T], 1 on the tokens whose log-probs to return (position 0 is never scored)
     * @param training training mode
     * @return the tokens' log-probs and every position's mean logit
     * @throws UnsupportedOperationException for a TorchScript model
     */
    public PaddedScores paddedTokenLogProbs(NDArray ids, NDArray attentionMask, NDArray scoreMask, boolean training) {
        CausalLmBlock native_ = nativeBlock();
        NDArray last = ready(native_)
                .forward(
                        store,
                        ids,
                        attentionMask,
                        null,
                        new CausalLmBlock.Pass(false, training, false, false, null, true))
                .last();
        long chunk = LogProbs.chunkPositions(logitsChunkElements, config.vocabSize());
        Parameter head = native_.headWeight();
        TokenLogProbs tokens = LogProbs.scoreTokens(
                last,
                x -> native_.head(store, x, training),
                native_.compute()::tokenLogProbs,
                training && !head.requiresGradient() ? head.getArray() : null,
                1.0,
                false,
                ids,
                scoreMask,
                chunk);
        long b = ids.getShape().get(0);
        long t = ids.getShape().get(1);
        long h = last.getShape().get(2);
        NDArray meanLogits = withoutGradients(() -> {
            NDArray rows = last.stopGradient().reshape(b * t, h);
            NDManager owner = ids.getManager();
            NDList parts = new NDList();
            long step = chunk == Long.MAX_VALUE ? b * t : Math.max(1, chunk);
            for (long from = 0; from < b * t; from += step) {
                try (NDManager scope = owner.newSubManager()) {
                    NDArray part = rows.get(from + ":" + Math.min(b * t, from + step));
                    part.attach(scope);
                    NDArray mean = native_.head(store, part, training)
                            .toType(DataType.FLOAT32, false)
                            .mean(new int[] {1});
                    mean.attach(owner);
                    parts.add(mean);
                }
            }
            return (parts.size() == 1 ? parts.head() : NDArrays.concat(parts)).reshape(b, t);
        });
        return new PaddedScores(tokens, meanLogits);
    }

    /** A pass over a batch's ids, attention mask and completion mask. */
    @FunctionalInterface
    private interface BatchPass<R> {
        R run(NDArray ids, NDArray attentionMask, NDArray completionMask);
    }

    /**
     * Runs a pass that records no graph (a frozen reference, the base of a LoRA model, evaluation) in its own
     * scope and keeps only its results, so its activations do not live until the caller's step ends.
     */
    private static <R> R inOwnScope(
            NDArray ids,
            NDArray attentionMask,
            NDArray completionMask,
            BatchPass<R> pass,
            Function<R, NDArray[]> results) {
        NDManager owner = ids.getManager();
        try (NDManager scope = owner.newSubManager()) {
            NDArray i = ids.duplicate();
            NDArray a = attentionMask.duplicate();
            NDArray c = completionMask.duplicate();
            i.attach(scope);
            a.attach(scope);
            c.attach(scope);
            R r = pass.run(i, a, c);
            for (NDArray x : results.apply(r)) {
                if (x != null) {
                    x.attach(owner);
                }
            }
            return r;
        }
    }

    /** The final hidden states [B, T, H] of a right-padded batch: packed without padding when padding-free is on. */
    private NDArray finalHidden(CausalLmBlock native_, NDArray ids, NDArray attentionMask, boolean training) {
        NDArray last = paddingFree ? packedHidden(native_, ids, attentionMask, training) : null;
        if (last == null) {
            last = ready(native_)
                    .forward(store, ids, attentionMask, null, new CausalLmBlock.Pass(false, training, true, false))
                    .last();
        }
        return last;
    }

    private LogProbs nativeLogProbs(
            CausalLmBlock native_,
            NDArray ids,
            NDArray attentionMask,
            NDArray completionMask,
            boolean training,
            boolean statistics) {
        NDArray last = finalHidden(native_, ids, attentionMask, training);
        long chunk = LogProbs.chunkPositions(logitsChunkElements, config.vocabSize());
        Parameter head = native_.headWeight();
        if (training && !head.requiresGradient()) {
            // a frozen head (LoRA): autograd keeps each position's [H] gradient direction, not its [V] log-softmax
            return LogProbs.fromHiddenFrozenHead(
                    last,
                    x -> native_.head(store, x, training),
                    head.getArray(),
                    native_.compute()::tokenLogProbs,
                    ids,
                    completionMask,
                    chunk,
                    statistics);
        }
        return LogProbs.fromHidden(
                last,
                x -> native_.head(store, x, training),
                native_.compute()::tokenLogProbs,
                ids,
                completionMask,
                chunk,
                statistics);
    }

    /**
     * Per-token log-probs (and entropies) of the completion tokens of a right-padded batch at a sampling
     * temperature: logits ÷ τ before the log-softmax, as TRL's GRPO and RLOO trainers score their samples.
     * The same head path as {@link #completionLogProbs} (only positions that predict a completion token
     * reach the head, in chunks; padding-free when on; LoRA's frozen head keeps [H] per position).
     * Evaluation passes (not training, nothing recording a graph) run in their own scope.
     *
     * @param ids [B, T] int64: prompt, completion, then padding in every row
     * @param attentionMask [B, T] int64, ones then zeros in every row
     * @param completionMask [B, T], 1 on the completion tokens to score
     * @param temperature τ &gt; 0
     * @param withEntropy also compute each position's entropy (an extra softmax per chunk, no gradient)
     * @param training training mode
     * @return the flat per-token values ({@link TokenLogProbs})
     * @throws UnsupportedOperationException for a TorchScript model
     */
    public TokenLogProbs completionTokenLogProbs(
            NDArray ids,
            NDArray attentionMask,
            NDArray completionMask,
            double temperature,
            boolean withEntropy,
            boolean training) {
        CausalLmBlock native_ = nativeBlock();
        if (!(temperature > 0)) {
            throw new IllegalArgumentException("temperature: must be > 0, got " + temperature);
        }
        if (training || !graphFree(native_)) {
            return nativeTokenLogProbs(native_, ids, attentionMask, completionMask, temperature, withEntropy, training);
        }
        return inOwnScope(
                ids,
                attentionMask,
                completionMask,
                (i, a, c) -> nativeTokenLogProbs(native_, i, a, c, temperature, withEntropy, false),
                lp -> new NDArray[] {lp.logProbs(), lp.entropy(), lp.row(), lp.owner(), lp.tokens()});
    }

    /**
     * Whether {@link #sharedPromptTokenLogProbs} may serve a pass of this mode: a native model whose pass
     * draws no dropout (rows that share a prompt would otherwise share its dropout masks, where separate rows
     * draw their own).
     *
     * @param training training mode
     * @return whether prompts can be computed once for all their completions
     */
    public boolean canSharePrompts(boolean training) {
        return block instanceof CausalLmBlock native_ && !ready(native_).dropsOut(training);
    }

    /**
     * {@link #completionTokenLogProbs} for completions that share prompts (GRPO's and RLOO's G samples of
     * each prompt), with each distinct prompt run through the model once: one pass over the P prompts
     * keeps every layer's keys and values, which are gathered for each of the B completions (an autograd
     * gather, so the completions' gradients add up in their prompt's pass), and the completions then run
     * with those as their cache. The values equal {@code completionTokenLogProbs} on the rows [prompt,
     * completion] up to the order of floating-point sums, in the same flat order (row by row, the scored
     * tokens in order); the prompt's layers run P times instead of B. This is prefix sharing as in vLLM's
     * prefix cache, here for the scoring and training passes too.
     *
     * @param promptIds [P, Lp] int64, the distinct prompts, left-padded (or right-padded, for a model without a
     *     sliding window: a window counts positions by index, and padding between prompt and completion
     *     would widen it)
     * @param promptMask [P, Lp] int64: 1 on each prompt's tokens, 0 on its padding
     * @param promptOfRow [B] int64, the prompt (row of {@code promptIds}) each completion continues
     * @param completionIds [B, Lc] int64, each completion right-padded
     * @param completionAttention [B, Lc] int64: 1 on a completion's tokens, then 0
     * @param completionMask [B, Lc]: 1 on the completion tokens to score (within {@code completionAttention})
     * @param temperature τ &gt; 0
     * @param withEntropy also compute each position's entropy (no gradient)
     * @param training training mode
     * @return the flat per-token values ({@link TokenLogProbs}), per completion row
     * @throws UnsupportedOperationException for a TorchScript model
     * @throws IllegalStateException when the pass would draw dropout ({@link #canSharePrompts})
     */
    public TokenLogProbs sharedPromptTokenLogProbs(
            NDArray promptIds,
            NDArray promptMask,
            NDArray promptOfRow,
            NDArray completionIds,
            NDArray completionAttention,
            NDArray completionMask,
            double temperature,
            boolean withEntropy,
            boolean training) {
        CausalLmBlock native_ = ready(nativeBlock());
        if (!(temperature > 0)) {
            throw new IllegalArgumentException("temperature: must be > 0, got " + temperature);
        }
        if (native_.dropsOut(training)) {
            throw new IllegalStateException("a pass with dropout cannot share one prompt pass between rows");
        }
        NDManager m = completionIds.getManager();
        KvCache cache = newCache();
        NDArray promptLast = native_.forward(
                        store, promptIds, promptMask, cache, new CausalLmBlock.Pass(false, training, false, false))
                .last();
        long b = completionIds.getShape().get(0);
        long h = promptLast.getShape().get(2);
        NDArray rows = promptOfRow.toType(DataType.INT64, false);
        NDArray attention = NDArrays.concat(
                new NDList(
                        promptMask.toType(DataType.INT64, false).get(rows),
                        completionAttention.toType(DataType.INT64, false)),
                1);
        NDArray completionLast = native_.forward(
                        store,
                        completionIds,
                        attention,
                        cache.rows(rows),
                        new CausalLmBlock.Pass(false, training, false, false))
                .last();
        // the prompt's last real position predicts the first completion token: rows [prompt's last, completion]
        long lp = promptIds.getShape().get(1);
        long[] real = promptMask.toType(DataType.INT64, false).toLongArray();
        long[] lastReal = new long[Math.toIntExact(promptIds.getShape().get(0))];
        for (int p = 0; p < lastReal.length; p++) {
            lastReal[p] = p * lp;
            for (int t = 0; t < lp; t++) {
                if (real[(int) (p * lp + t)] != 0) {
                    lastReal[p] = p * lp + t;
                }
            }
        }
        NDArray first = promptLast
                .reshape(lastReal.length * lp, h)
                .get(m.create(lastReal))
                .get(rows)
                .reshape(b, 1, h);
        NDArray last = NDArrays.concat(new NDList(first, completionLast), 1);
        NDArray ids = NDArrays.concat(
                new NDList(m.zeros(new Shape(b, 1), DataType.INT64), completionIds.toType(DataType.INT64, false)), 1);
        NDArray mask =
                NDArrays.concat(new NDList(m.zeros(new Shape(b, 1), completionMask.getDataType()), completionMask), 1);
        return scoreHidden(native_, last, ids, mask, temperature, withEntropy, training);
    }

    private TokenLogProbs nativeTokenLogProbs(
            CausalLmBlock native_,
            NDArray ids,
            NDArray attentionMask,
            NDArray completionMask,
            double temperature,
            boolean withEntropy,
            boolean training) {
        return scoreHidden(
                native_,
                finalHidden(native_, ids, attentionMask, training),
                ids,
                completionMask,
                temperature,
                withEntropy,
                training);
    }

    /** Per-token log-probs from final hidden states [B, T, H]: position t − 1 predicts {@code ids[t]}. */
    private TokenLogProbs scoreHidden(
            CausalLmBlock native_,
            NDArray last,
            NDArray ids,
            NDArray completionMask,
            double temperature,
            boolean withEntropy,
            boolean training) {
        long chunk = LogProbs.chunkPositions(logitsChunkElements, config.vocabSize());
        Parameter head = native_.headWeight();
        UnaryOperator<NDArray> toLogits = temperature == 1.0
                ? x -> native_.head(store, x, training)
                : x -> ScalarOps.dividedBy(native_.head(store, x, training), temperature);
        return LogProbs.scoreTokens(
                last,
                toLogits,
                native_.compute()::tokenLogProbs,
                training && !head.requiresGradient() ? head.getArray() : null,
                temperature,
                withEntropy,
                ids,
                completionMask,
                chunk);
    }

    /**
     * The padding-free pass (TRL's {@code padding_free}): the real tokens of every row are laid end
     * to end in one row of N tokens, without padding, and the model runs on that row with each
     * sequence's own positions and attention confined to the sequence ({@link CausalLmBlock.Pass#sequences}).
     * The final hidden states are then gathered back into the padded [B, T, H] layout (padding
     * positions get a copy of some real position's, which nothing scores), so the log-probs are made
     * exactly as for the padded pass.
     *
     * @return [B, T, H] final hidden states, or null when the batch has no padding to remove or is not
     *     right-padded (the padded pass is then used)
     */
    private NDArray packedHidden(CausalLmBlock native_, NDArray ids, NDArray attentionMask, boolean training) {
        long b = ids.getShape().get(0);
        long t = ids.getShape().get(1);
        long[] mask = attentionMask.toType(DataType.INT64, false).toLongArray();
        long[] lengths = new long[Math.toIntExact(b)];
        long total = 0;
        for (int r = 0; r < b; r++) {
            int len = 0;
            while (len < t && mask[(int) (r * t + len)] != 0) {
                len++;
            }
            for (int j = len; j < t; j++) {
                if (mask[(int) (r * t + j)] != 0) {
                    return null; // not right-padded
                }
            }
            if (len == 0) {
                return null; // an empty row: nothing to pack it as
            }
            lengths[r] = len;
            total += len;
        }
        if (total == b * t) {
            return null; // no padding: the batch of rows is the same work
        }
        long[] realPositions = new long[Math.toIntExact(total)];
        long[] padded = new long[Math.toIntExact(b * t)];
        int k = 0;
        for (int r = 0; r < b; r++) {
            int start = k;
            for (int j = 0; j < t; j++) {
                int at = (int) (r * t + j);
                if (j < lengths[r]) {
                    realPositions[k] = at;
                    padded[at] = k++;
                } else {
                    padded[at] = start; // never scored
                }
            }
        }
        NDManager m = ids.getManager();
        NDArray packedIds = ids.reshape(b * t).get(m.create(realPositions)).reshape(1, total);
        NDArray packedMask = m.ones(new Shape(1, total), DataType.INT64);
        NDArray last = ready(native_)
                .forward(
                        store,
                        packedIds,
                        packedMask,
                        null,
                        new CausalLmBlock.Pass(false, training, true, false, lengths))
                .last();
        long h = last.getShape().get(2);
        return last.reshape(total, h).get(m.create(padded)).reshape(b, t, h);
    }

    /**
     * Padding-free passes (TRL's {@code padding_free}) for {@link #completionLogProbs}: the real tokens
     * of a right-padded batch run as one row without padding, each sequence with its own positions and
     * attention confined to itself; values and gradients are those of the padded pass (up to the order of
     * floating-point sums). TorchScript models always run padded.
     *
     * @param paddingFree on or off (off by default)
     */
    public void setPaddingFree(boolean paddingFree) {
        this.paddingFree = paddingFree;
    }

    /** @return whether {@link #completionLogProbs} packs the batch without padding */
    public boolean paddingFree() {
        return paddingFree;
    }

    /** Whether a pass of this instance records no graph: no parameter it uses requires a gradient. */
    private boolean graphFree(CausalLmBlock native_) {
        for (Parameter p : native_.parametersByName().values()) {
            if (p.requiresGradient()) {
                return false;
            }
        }
        if (activeAdapter != null) {
            for (Parameter p : native_.adapterParameters(activeAdapter).values()) {
                if (p.requiresGradient()) {
                    return false;
                }
            }
        }
        return !isSetView() || !setScore.requiresGradient();
    }

    /**
     * Sets how many logits {@link #completionLogProbs} makes at once: the LM head and log-softmax run
     * over chunks of positions with at most this many [position × vocab] elements each, so the
     * [tokens × vocab] logits of a batch never exist at once. Same values and gradients either way.
     *
     * @param elements elements per chunk ({@link LogProbs#DEFAULT_CHUNK_ELEMENTS} by default, 64 MiB);
     *     0 for one piece
     */
    public void setLogitsChunkElements(long elements) {
        if (elements < 0) {
            throw new IllegalArgumentException(
                    "logits chunk: 0 (one piece) or a positive number of elements, got " + elements);
        }
        this.logitsChunkElements = elements;
    }

    /** @return elements per chunk of logits in {@link #completionLogProbs} (0: one piece) */
    public long logitsChunkElements() {
        return logitsChunkElements;
    }

    /** @return how attention and projections are computed (eager fp32 for TorchScript models) */
    public Compute compute() {
        return block instanceof CausalLmBlock native_ ? native_.compute() : Compute.EAGER;
    }

    /**
     * Chooses how a native model computes attention and projections; the model closes it.
     *
     * @param compute the setting, e.g. {@code Compute.parse("sdpa", "bf16", lm.device())}
     */
    public void setCompute(Compute compute) {
        CausalLmBlock native_ = nativeBlock();
        Compute old = native_.compute();
        native_.setCompute(compute);
        if (old != compute && old != Compute.EAGER) {
            old.close();
        }
    }

    /**
     * A native forward pass with a KV cache and/or hidden states.
     *
     * @param ids [B, T] the new tokens
     * @param attentionMask [B, cached + T]
     * @param cache the cache to read and append to, or null
     * @param withHiddenStates also return the hidden states
     * @return logits and hidden states
     */
    public CausalLmBlock.Output forward(NDArray ids, NDArray attentionMask, KvCache cache, boolean withHiddenStates) {
        return ready(nativeBlock()).forward(store, ids, attentionMask, cache, withHiddenStates, false);
    }

    /**
     * The logits of the last position of each row only, for generation: the LM head runs on [B, H], not
     * on every position of a prompt ([B, T, V] logits of a 64-token prompt over Llama-3's vocabulary are
     * half a gigabyte for 16 rows, and the prefill's head matmul its largest cost).
     *
     * @param ids [B, T] the new tokens
     * @param attentionMask [B, cached + T]
     * @param cache the cache to read and append to, or null
     * @return [B, V] float32 logits of each row's last position
     */
    public NDArray lastLogits(NDArray ids, NDArray attentionMask, KvCache cache) {
        if (!(block instanceof CausalLmBlock native_)) {
            return logits(ids, attentionMask, false).get(":, -1, :");
        }
        NDArray last = ready(native_)
                .forward(store, ids, attentionMask, cache, new CausalLmBlock.Pass(false, false, false, false))
                .last();
        NDArray logits = native_.head(store, last.get(":, -1, :"), false);
        return logits.getDataType() == DataType.FLOAT32 ? logits : logits.toType(DataType.FLOAT32, false);
    }

    /** @return a new empty KV cache for this model */
    public KvCache newCache() {
        return new KvCache(nativeBlock().config().numLayers());
    }

    /**
     * @param capacity the most tokens it will hold (prompt and new tokens)
     * @return a new empty KV cache allocated once at that length ({@link KvCache#KvCache(int, long)})
     */
    public KvCache newCache(long capacity) {
        return new KvCache(nativeBlock().config().numLayers(), capacity);
    }

    private CausalLmBlock nativeBlock() {
        if (block instanceof CausalLmBlock native_) {
            return native_;
        }
        throw new UnsupportedOperationException(
                source + ": TorchScript models have no KV cache, hidden states or HF saving");
    }

    /**
     * Saves an HF model folder: {@code config.json}, the weights as float32 safetensors (sharded
     * above {@code maxShardBytes}), and the tokenizer files of {@code tokenizerFrom}. A model with
     * adapters saves them instead, as a PEFT adapter folder ({@code adapter_config.json} naming this
     * model's base folder, {@code adapter_model.safetensors}) plus the tokenizer files: {@link #load}
     * and PEFT's {@code PeftModel.from_pretrained} read it; {@link #mergeAdapters} first gives a full
     * model instead. The folder is written to a temp folder and renamed, so a crash never leaves half
     * a checkpoint.
     *
     * @param dir the target folder (replaced if it exists)
     * @param tokenizerFrom a folder whose tokenizer files are copied along, or null
     * @param maxShardBytes shard size limit
     * @throws IOException on write failure
     */
    public void save(Path dir, Path tokenizerFrom, long maxShardBytes) throws IOException {
        AtomicDirectory.write(dir, tmp -> writeTo(tmp, tokenizerFrom, maxShardBytes));
        LOG.info("Saved {} to {}", config.modelType(), dir);
    }

    /**
     * Writes the HF files (or, with adapters, the PEFT adapter files) into an existing folder, without
     * the temp-and-rename step (for callers that write a larger folder atomically, such as a training
     * checkpoint). A named set's view ({@link #addSequenceClassifierAdapter}) writes its set and score head
     * as a sequence classifier's adapter folder (task_type SEQ_CLS, the tensors under PEFT's saved names,
     * {@code base_model_name_or_path} this model's folder), not merged: merged, it would be a full copy of
     * the base it shares.
     *
     * @param dir the folder
     * @param tokenizerFrom a folder whose tokenizer files are copied along, or null
     * @param maxShardBytes shard size limit
     * @throws IOException on write failure
     */
    public void writeTo(Path dir, Path tokenizerFrom, long maxShardBytes) throws IOException {
        CausalLmBlock native_ = nativeBlock();
        if (isSetView()) {
            // a sequence classifier's adapter folder on this model's base (PEFT's SEQ_CLS): adapters + score head
            PeftAdapter.write(
                    native_,
                    activeAdapter,
                    lora,
                    dir,
                    source == null ? null : source.toAbsolutePath().normalize().toString(),
                    setScore);
            copyTokenizerFiles(tokenizerFrom, dir);
            return;
        }
        if (native_.hasAdapters() && viewOf == null) {
            PeftAdapter.write(
                    native_,
                    lora,
                    dir,
                    source == null ? null : source.toAbsolutePath().normalize().toString());
            copyTokenizerFiles(tokenizerFrom, dir);
            return;
        }
        Map<String, NDArray> tensors = new LinkedHashMap<>();
        List<NDArray> converted = new ArrayList<>();
        for (Map.Entry<String, Parameter> e : native_.parametersByName().entrySet()) {
            NDArray a = e.getValue().getArray();
            if (!a.getDevice().equals(Device.cpu()) || a.getDataType() != DataType.FLOAT32) {
                a = a.toDevice(Device.cpu(), true).toType(DataType.FLOAT32, true);
                converted.add(a);
            }
            tensors.put(e.getKey(), a);
        }
        try {
            Files.writeString(
                    dir.resolve("config.json"),
                    JSON.writerWithDefaultPrettyPrinter().writeValueAsString(config.toJsonForFloat32()) + "\n");
            SafetensorsWriter.writeCheckpoint(dir, tensors, maxShardBytes);
            copyTokenizerFiles(tokenizerFrom, dir);
        } finally {
            converted.forEach(NDArray::close);
        }
    }

    private static void copyTokenizerFiles(Path from, Path to) throws IOException {
        if (from == null) {
            return;
        }
        for (String f : TOKENIZER_FILES) {
            Path src = from.resolve(f);
            if (Files.isRegularFile(src)) {
                Files.copy(src, to.resolve(f));
            }
        }
    }

    /**
     * Saves with the default shard size.
     *
     * @param dir the target folder
     * @param tokenizerFrom a folder whose tokenizer files are copied along, or null
     * @throws IOException on write failure
     */
    public void save(Path dir, Path tokenizerFrom) throws IOException {
        save(dir, tokenizerFrom, DEFAULT_SHARD_BYTES);
    }

    @Override
    public void close() {
        if (viewOf != null) {
            return;
        }
        if (block instanceof CausalLmBlock native_ && native_.compute() != Compute.EAGER) {
            native_.compute().close();
        }
        if (torchScript != null) {
            torchScript.close();
        } else {
            manager.close();
        }
    }
}
