package org.align4j.model.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.align4j.model.io.InputFiles;

/**
 * The architecture of a causal LM as read from (and written back to) an HF {@code config.json}.
 *
 * <p>Both the transformers-4 style (top-level {@code rope_theta}, {@code rope_scaling}) and the
 * transformers-5 style ({@code rope_parameters}) are read. Every feature the native models do not
 * implement is refused here, by name, so that a checkpoint is never run with a silently different
 * architecture.
 *
 * @param family which native implementation runs it
 * @param modelType the HF {@code model_type}
 * @param vocabSize rows of the embedding
 * @param hiddenSize model width
 * @param numLayers decoder blocks
 * @param numHeads query heads
 * @param numKvHeads key/value heads (GQA when fewer than {@code numHeads}, MQA when 1)
 * @param headDim width of one head (Qwen3 sets it apart from hidden/heads)
 * @param intermediateSize MLP width
 * @param maxPositions the longest sequence the positional scheme was built for
 * @param normEps epsilon of LayerNorm/RMSNorm
 * @param activation the MLP activation in HF's spelling
 * @param tieWordEmbeddings whether the LM head reuses the token embedding
 * @param qkvBias bias on the q/k/v projections (Qwen2, GPT-2, Llama with attention_bias)
 * @param outputBias bias on the attention output projection
 * @param mlpBias bias on the MLP projections
 * @param qkNorm per-head RMSNorm on queries and keys (Qwen3)
 * @param slidingWindow attention window in tokens, 0 for full attention
 * @param rope rotary settings (Llama family); null for learned positions (GPT-2)
 * @param gpt2ScaleAttnWeights GPT-2: divide scores by sqrt(head_dim)
 * @param gpt2ScaleByInverseLayerIdx GPT-2: also divide by layer index + 1
 * @param bosTokenId beginning-of-sequence id or -1
 * @param eosTokenIds end-of-sequence ids (HF allows several)
 * @param padTokenId padding id or -1
 * @param raw the JSON object as read, written back (with dtype updated) when saving
 */
public record ModelConfig(
        Family family,
        String modelType,
        int vocabSize,
        int hiddenSize,
        int numLayers,
        int numHeads,
        int numKvHeads,
        int headDim,
        int intermediateSize,
        int maxPositions,
        double normEps,
        String activation,
        boolean tieWordEmbeddings,
        boolean qkvBias,
        boolean outputBias,
        boolean mlpBias,
        boolean qkNorm,
        int slidingWindow,
        RopeConfig rope,
        boolean gpt2ScaleAttnWeights,
        boolean gpt2ScaleByInverseLayerIdx,
        int bosTokenId,
        List<Integer> eosTokenIds,
        int padTokenId,
        ObjectNode raw) {

    /** The native implementation families. */
    public enum Family {
        GPT2,
        LLAMA
    }

    private static final ObjectMapper JSON = InputFiles.strictMapper();
    private static final double GPT2_DROPOUT = 0.1;
    private static final Set<String> LLAMA_TYPES = Set.of("llama", "mistral", "qwen2", "qwen3");
    private static final Set<String> ACTIVATIONS =
            Set.of("gelu_new", "gelu_pytorch_tanh", "gelu", "relu", "silu", "swish");

    /**
     * Reads {@code config.json}.
     *
     * @param file the config file
     * @return the config
     * @throws ConfigException if the file is missing, not JSON, or names something unsupported
     */
    public static ModelConfig read(Path file) {
        String problem = InputFiles.problem(file);
        if (problem != null) {
            throw new ConfigException(file, null, problem);
        }
        JsonNode root;
        try {
            root = JSON.readTree(Files.readString(file));
        } catch (NoSuchFileException e) {
            throw new ConfigException(file, null, "file not found");
        } catch (IOException e) {
            throw new ConfigException(file, null, "not valid JSON: " + e.getMessage());
        }
        if (root == null || !root.isObject()) {
            throw new ConfigException(file, null, "expected a JSON object");
        }
        return fromJson((ObjectNode) root, file);
    }

    /**
     * Parses a config object.
     *
     * @param root the JSON object of a config.json
     * @param source where it came from, for error messages (may be null)
     * @return the config
     */
    public static ModelConfig fromJson(ObjectNode root, Path source) {
        Reader r = new Reader(root, source);
        String type = r.requireText("model_type");
        checkLabels(r, root);
        if ("gpt2".equals(type)) {
            return checkTokenIds(r, gpt2(r, root));
        }
        if (LLAMA_TYPES.contains(type)) {
            return checkTokenIds(r, llama(r, root, type));
        }
        throw new ConfigException(
                source,
                "model_type",
                "unsupported model_type '" + type + "'; supported: gpt2, llama, mistral, qwen2, qwen3");
    }

    private static ModelConfig gpt2(Reader r, ObjectNode root) {
        int hidden = r.requireSize("n_embd");
        int heads = r.requireSize("n_head");
        if (hidden % heads != 0) {
            throw r.error("n_head", "n_embd " + hidden + " is not divisible by n_head " + heads);
        }
        String act = r.optText("activation_function", "gelu_new");
        r.checkActivation("activation_function", act);
        int inner = r.node("n_inner") == null || r.node("n_inner").isNull() ? 4 * hidden : r.requireSize("n_inner");
        if (r.optBool("add_cross_attention", false)) {
            throw r.error("add_cross_attention", "cross-attention is not supported");
        }
        for (String key : List.of("embd_pdrop", "attn_pdrop", "resid_pdrop")) {
            r.checkProbability(key, GPT2_DROPOUT);
        }
        return new ModelConfig(
                Family.GPT2,
                "gpt2",
                r.requireSize("vocab_size"),
                hidden,
                r.requireSize("n_layer"),
                heads,
                heads,
                hidden / heads,
                inner,
                r.requireSize("n_positions"),
                r.positive("layer_norm_epsilon", 1e-5),
                act,
                r.optBool("tie_word_embeddings", true),
                true,
                true,
                true,
                false,
                0,
                null,
                r.optBool("scale_attn_weights", true),
                r.optBool("scale_attn_by_inverse_layer_idx", false),
                r.optInt("bos_token_id", -1),
                r.eosIds(),
                r.optInt("pad_token_id", -1),
                root);
    }

    private static ModelConfig llama(Reader r, ObjectNode root, String type) {
        r.checkProbability("attention_dropout", 0.0);
        int hidden = r.requireSize("hidden_size");
        int heads = r.requireSize("num_attention_heads");
        int kvHeads = r.optSize("num_key_value_heads", heads);
        if (kvHeads <= 0 || heads % kvHeads != 0) {
            throw r.error(
                    "num_key_value_heads",
                    "num_attention_heads " + heads + " is not a multiple of num_key_value_heads " + kvHeads);
        }
        int headDim;
        if (r.node("head_dim") != null && !r.node("head_dim").isNull()) {
            headDim = r.requireSize("head_dim");
        } else {
            if (hidden % heads != 0) {
                throw r.error("num_attention_heads", "hidden_size is not divisible by num_attention_heads");
            }
            headDim = hidden / heads;
        }
        String act = r.optText("hidden_act", "silu");
        r.checkActivation("hidden_act", act);
        double partial = r.optDouble("partial_rotary_factor", 1.0);
        if (partial != 1.0) {
            throw r.error("partial_rotary_factor", "partial rotary embeddings are not supported");
        }
        boolean qwen = type.startsWith("qwen");
        boolean attentionBias = r.optBool("attention_bias", false);
        boolean qkvBias = "qwen2".equals(type) || attentionBias;
        int window = 0;
        if (qwen) {
            if (r.optBool("use_sliding_window", false)) {
                throw r.error("use_sliding_window", "sliding-window attention is not supported for " + type);
            }
            JsonNode layerTypes = r.node("layer_types");
            if (layerTypes != null && layerTypes.isArray()) {
                for (JsonNode t : layerTypes) {
                    if (!"full_attention".equals(t.asText())) {
                        throw r.error("layer_types", "layer type '" + t.asText() + "' is not supported");
                    }
                }
            }
        } else if (r.node("sliding_window") != null && !r.node("sliding_window").isNull()) {
            window = r.requireSize("sliding_window");
        }
        int maxPositions = r.optSize("max_position_embeddings", 2048);
        return new ModelConfig(
                Family.LLAMA,
                type,
                r.requireSize("vocab_size"),
                hidden,
                r.requireSize("num_hidden_layers"),
                heads,
                kvHeads,
                headDim,
                r.requireSize("intermediate_size"),
                maxPositions,
                r.positive("rms_norm_eps", 1e-6),
                act,
                r.optBool("tie_word_embeddings", false),
                qkvBias,
                attentionBias,
                r.optBool("mlp_bias", false),
                "qwen3".equals(type),
                window,
                RopeConfig.read(r, maxPositions),
                false,
                false,
                r.optInt("bos_token_id", -1),
                r.eosIds(),
                r.optInt("pad_token_id", -1),
                root);
    }

    /**
     * A config for a GPT-2 shaped model built from scratch (random initialisation).
     *
     * @param vocabSize vocabulary size
     * @param width model width
     * @param layers decoder blocks
     * @param heads attention heads
     * @param maxPositions context length
     * @param bos bos id
     * @param eos eos id
     * @param pad pad id
     * @return the config, with a {@code raw} JSON equal to what transformers writes for it
     */
    public static ModelConfig newGpt2(
            int vocabSize, int width, int layers, int heads, int maxPositions, int bos, int eos, int pad) {
        ObjectNode n = JSON.createObjectNode();
        n.putArray("architectures").add("GPT2LMHeadModel");
        n.put("model_type", "gpt2");
        n.put("activation_function", "gelu_new");
        n.put("vocab_size", vocabSize);
        n.put("n_embd", width);
        n.put("n_layer", layers);
        n.put("n_head", heads);
        n.putNull("n_inner");
        n.put("n_positions", maxPositions);
        n.put("layer_norm_epsilon", 1e-5);
        n.put("attn_pdrop", 0.0);
        n.put("embd_pdrop", 0.0);
        n.put("resid_pdrop", 0.0);
        n.put("initializer_range", 0.02);
        n.put("tie_word_embeddings", true);
        n.put("bos_token_id", bos);
        n.put("eos_token_id", eos);
        n.put("pad_token_id", pad);
        n.put("torch_dtype", "float32");
        return fromJson(n, null);
    }

    /**
     * A config for a Llama-family model built from scratch.
     *
     * @param modelType llama, mistral, qwen2 or qwen3
     * @param vocabSize vocabulary size
     * @param width hidden size
     * @param layers decoder blocks
     * @param heads query heads
     * @param kvHeads key/value heads
     * @param intermediate MLP width
     * @param maxPositions context length
     * @param tied tie the LM head to the embedding
     * @param bos bos id
     * @param eos eos id
     * @param pad pad id
     * @return the config
     */
    public static ModelConfig newLlama(
            String modelType,
            int vocabSize,
            int width,
            int layers,
            int heads,
            int kvHeads,
            int intermediate,
            int maxPositions,
            boolean tied,
            int bos,
            int eos,
            int pad) {
        ObjectNode n = JSON.createObjectNode();
        String arch = switch (modelType) {
            case "llama" -> "LlamaForCausalLM";
            case "mistral" -> "MistralForCausalLM";
            case "qwen2" -> "Qwen2ForCausalLM";
            case "qwen3" -> "Qwen3ForCausalLM";
            default -> throw new IllegalArgumentException("modelType: unsupported '" + modelType + "'");
        };
        n.putArray("architectures").add(arch);
        n.put("model_type", modelType);
        n.put("vocab_size", vocabSize);
        n.put("hidden_size", width);
        n.put("num_hidden_layers", layers);
        n.put("num_attention_heads", heads);
        n.put("num_key_value_heads", kvHeads);
        n.put("head_dim", width / heads);
        n.put("intermediate_size", intermediate);
        n.put("max_position_embeddings", maxPositions);
        n.put("rms_norm_eps", 1e-6);
        n.put("hidden_act", "silu");
        n.put("rope_theta", 10000.0);
        n.put("tie_word_embeddings", tied);
        n.put("initializer_range", 0.02);
        n.put("bos_token_id", bos);
        n.put("eos_token_id", eos);
        n.put("pad_token_id", pad);
        n.put("torch_dtype", "float32");
        return fromJson(n, null);
    }

    /** The {@code architectures} names of the sequence classifiers, by {@code model_type}. */
    private static final Map<String, String> CLASSIFIERS = Map.of(
            "gpt2",
            "GPT2ForSequenceClassification",
            "llama",
            "LlamaForSequenceClassification",
            "mistral",
            "MistralForSequenceClassification",
            "qwen2",
            "Qwen2ForSequenceClassification",
            "qwen3",
            "Qwen3ForSequenceClassification");

    /**
     * A sequence classifier must have exactly one label here: align4j reads them as reward models.
     * transformers 5 writes {@code id2label} (its length is {@code num_labels}); an explicit {@code
     * num_labels} is read too.
     */
    private static void checkLabels(Reader r, ObjectNode root) {
        JsonNode arch = root.path("architectures");
        if (!arch.isArray() || arch.isEmpty() || !arch.get(0).asText().endsWith("ForSequenceClassification")) {
            return;
        }
        String type = root.path("model_type").asText();
        if (!arch.get(0).asText().equals(CLASSIFIERS.get(type))) {
            throw r.error(
                    "architectures",
                    "'" + arch.get(0).asText() + "' with model_type '" + type + "'; the sequence classifier of " + type
                            + " is " + CLASSIFIERS.get(type));
        }
        int labels = numLabels(root);
        if (labels != 1) {
            throw r.error(
                    root.has("num_labels") ? "num_labels" : "id2label",
                    labels + " labels; align4j reads sequence classifiers with one"
                            + " label, as reward models (num_labels: 1)");
        }
    }

    private static int numLabels(ObjectNode root) {
        if (root.hasNonNull("num_labels")) {
            return root.get("num_labels").asInt();
        }
        JsonNode id2label = root.get("id2label");
        return id2label != null && id2label.isObject() ? id2label.size() : 2; // transformers' default is two labels
    }

    /**
     * @return whether {@code config.json} describes a sequence classifier ({@code
     *     LlamaForSequenceClassification}, ...): the decoder plus a score head {@code score.weight
     *     [num_labels, hidden]} instead of the LM head; align4j reads it as a reward model (one label)
     */
    public boolean isSequenceClassifier() {
        JsonNode arch = raw.path("architectures");
        return arch.isArray() && !arch.isEmpty() && arch.get(0).asText().endsWith("ForSequenceClassification");
    }

    /** @return the classifier's labels (1 for a reward model), or 0 for a causal LM */
    public int numLabels() {
        return isSequenceClassifier() ? numLabels(raw) : 0;
    }

    /**
     * The config of a reward model over this decoder, as transformers writes it for {@code
     * AutoModelForSequenceClassification.from_pretrained(dir, num_labels=1)}: {@code architectures}
     * the family's sequence classifier, {@code id2label} and {@code label2id} for one label, and the
     * pad id its reward is located by (TRL sets the tokenizer's, or eos).
     *
     * @param padId the pad token id (config key {@code pad_token_id}), or -1 to keep the config's
     * @return the config
     */
    public ModelConfig asRewardModel(int padId) {
        ObjectNode copy = raw.deepCopy();
        copy.putArray("architectures").add(CLASSIFIERS.get(modelType));
        copy.remove("num_labels");
        copy.putObject("id2label").put("0", "LABEL_0");
        copy.putObject("label2id").put("LABEL_0", 0);
        if (padId >= 0) {
            copy.put("pad_token_id", padId);
        }
        return fromJson(copy, null);
    }

    /**
     * The dropout probabilities transformers applies in training mode, from the config's keys with
     * transformers' defaults: GPT-2's {@code embd_pdrop} (after the embeddings), {@code attn_pdrop} (on
     * the attention probabilities) and {@code resid_pdrop} (on each attention and MLP output before it
     * joins the residual stream), 0.1 each when absent; the Llama family's {@code attention_dropout}
     * (attention probabilities only), 0 when absent.
     *
     * @return the probabilities, each in [0, 1)
     */
    public Dropout dropout() {
        if (family == Family.GPT2) {
            return new Dropout(
                    raw.path("embd_pdrop").asDouble(GPT2_DROPOUT),
                    raw.path("attn_pdrop").asDouble(GPT2_DROPOUT),
                    raw.path("resid_pdrop").asDouble(GPT2_DROPOUT));
        }
        return new Dropout(0, raw.path("attention_dropout").asDouble(0), 0);
    }

    /**
     * Dropout probabilities of a model in training mode.
     *
     * @param embedding on the summed token and position embeddings
     * @param attention on the attention probabilities [B, H, T, Tk]
     * @param residual on each attention and MLP output [B, T, hidden] before the residual addition
     */
    public record Dropout(double embedding, double attention, double residual) {
        /** No dropout anywhere. */
        public static final Dropout NONE = new Dropout(0, 0, 0);

        /** @return whether any probability is above 0 */
        public boolean any() {
            return embedding > 0 || attention > 0 || residual > 0;
        }
    }

    /** @return the number of query heads sharing one key/value head */
    public int groupSize() {
        return numHeads / numKvHeads;
    }

    /** @return the first eos id, or -1 if the config names none */
    public int eosTokenId() {
        return eosTokenIds.isEmpty() ? -1 : eosTokenIds.get(0);
    }

    /**
     * The JSON to write as {@code config.json} of a checkpoint whose tensors are float32.
     *
     * @return a copy of {@link #raw()} with the dtype key set to float32
     */
    public ObjectNode toJsonForFloat32() {
        ObjectNode copy = raw.deepCopy();
        if (copy.has("dtype")) {
            copy.put("dtype", "float32");
        } else {
            copy.put("torch_dtype", "float32");
        }
        return copy;
    }

    /**
     * The special token ids must be tokens of the vocabulary (or absent): a pad id past it would index
     * outside the embedding at the first padded batch, and a reward would be read at no position.
     */
    private static ModelConfig checkTokenIds(Reader r, ModelConfig c) {
        for (var id : List.of(Map.entry("pad_token_id", c.padTokenId()), Map.entry("bos_token_id", c.bosTokenId()))) {
            if (id.getValue() < -1 || id.getValue() >= c.vocabSize()) {
                throw r.error(
                        id.getKey(),
                        id.getValue() + " is outside the vocabulary of " + c.vocabSize() + " (vocab_size)");
            }
        }
        for (int eos : c.eosTokenIds()) {
            if (eos < 0 || eos >= c.vocabSize()) {
                throw r.error("eos_token_id", eos + " is outside the vocabulary of " + c.vocabSize() + " (vocab_size)");
            }
        }
        return c;
    }

    /** Reads typed keys and names the file and key in every error. */
    static final class Reader {
        private final ObjectNode root;
        private final Path source;

        Reader(ObjectNode root, Path source) {
            this.root = root;
            this.source = source;
        }

        JsonNode node(String key) {
            return root.get(key);
        }

        ConfigException error(String key, String message) {
            return new ConfigException(source, key, message);
        }

        String requireText(String key) {
            JsonNode n = root.get(key);
            if (n == null || n.isNull()) {
                throw error(key, "missing required key");
            }
            if (!n.isTextual()) {
                throw error(key, "expected a string, got " + n);
            }
            return n.asText();
        }

        /** A size (heads, layers, widths, vocabulary, positions): an integer of at least 1. */
        int requireSize(String key) {
            int v = requireInt(key);
            if (v < 1) {
                throw error(key, "must be at least 1, got " + v);
            }
            return v;
        }

        int optSize(String key, int fallback) {
            return root.get(key) == null || root.get(key).isNull() ? fallback : requireSize(key);
        }

        int requireInt(String key) {
            JsonNode n = root.get(key);
            if (n == null || n.isNull()) {
                throw error(key, "missing required key");
            }
            return asInt(key, n);
        }

        int asInt(String key, JsonNode n) {
            if (!n.isIntegralNumber() || !n.canConvertToInt()) {
                throw error(key, "expected an integer, got " + n);
            }
            return n.intValue();
        }

        int optInt(String key, int fallback) {
            JsonNode n = root.get(key);
            return n == null || n.isNull() ? fallback : asInt(key, n);
        }

        void checkProbability(String key, double fallback) {
            double p = optDouble(key, fallback);
            if (!(p >= 0 && p < 1)) {
                throw error(key, "a dropout probability must be in [0, 1), got " + p);
            }
        }

        double optDouble(String key, double fallback) {
            return optDouble(root, key, fallback);
        }

        double optDouble(JsonNode obj, String key, double fallback) {
            JsonNode n = obj.get(key);
            if (n == null || n.isNull()) {
                return fallback;
            }
            if (!n.isNumber()) {
                throw error(key, "expected a number, got " + n);
            }
            return n.doubleValue();
        }

        /** A number that must be finite and above 0 (an epsilon, a base, a factor). */
        double positive(String key, double fallback) {
            return positive(root, key, fallback);
        }

        double positive(JsonNode obj, String key, double fallback) {
            double v = optDouble(obj, key, fallback);
            if (!(v > 0) || !Double.isFinite(v)) {
                throw error(key, "must be a finite number above 0, got " + obj.get(key));
            }
            return v;
        }

        boolean optBool(String key, boolean fallback) {
            JsonNode n = root.get(key);
            if (n == null || n.isNull()) {
                return fallback;
            }
            if (!n.isBoolean()) {
                throw error(key, "expected true or false, got " + n);
            }
            return n.booleanValue();
        }

        String optText(String key, String fallback) {
            JsonNode n = root.get(key);
            if (n == null || n.isNull()) {
                return fallback;
            }
            if (!n.isTextual()) {
                throw error(key, "expected a string, got " + n);
            }
            return n.asText();
        }

        void checkActivation(String key, String act) {
            if (!ACTIVATIONS.contains(act.toLowerCase(Locale.ROOT))) {
                throw error(key, "unsupported activation '" + act + "'; supported: " + ACTIVATIONS);
            }
        }

        List<Integer> eosIds() {
            JsonNode n = root.get("eos_token_id");
            List<Integer> ids = new ArrayList<>();
            if (n == null || n.isNull()) {
                return ids;
            }
            if (n.isArray()) {
                for (JsonNode e : n) {
                    ids.add(asInt("eos_token_id", e));
                }
            } else {
                ids.add(asInt("eos_token_id", n));
            }
            return List.copyOf(ids);
        }
    }

    /**
     * Why a sequence cannot run through this model, checked where data meets the model so that the
     * answer names the record instead of libtorch's "index out of range in self": more tokens than
     * learned position embeddings (GPT-2's {@code n_positions}; rotary models extrapolate and are not
     * refused), or a token id outside the vocabulary (a tokenizer of another model).
     *
     * @param ids the sequence (prompt and completion)
     * @return the problem in words, or empty when the sequence fits
     */
    public Optional<String> problemWith(int[] ids) {
        if (rope == null && ids.length > maxPositions) {
            return Optional.of(ids.length + " tokens, more than the model's " + maxPositions
                    + " positions (config.json " + "n_positions); set max_length (--max-length) to " + maxPositions
                    + " or less");
        }
        for (int id : ids) {
            if (id < 0 || id >= vocabSize) {
                return Optional.of("token id " + id + " is outside the model's vocabulary of " + vocabSize
                        + " (config.json vocab_size): is the tokenizer this model's?");
            }
        }
        return Optional.empty();
    }
}
