package org.align4j.model.lora;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import org.align4j.model.io.CheckpointException;
import org.align4j.model.io.InputFiles;
import org.align4j.model.io.SafetensorsFile;
import org.align4j.model.io.SafetensorsWriter;
import org.align4j.model.nn.CausalLmBlock;
import org.align4j.model.nn.LoraAdapter;
import org.align4j.model.nn.Projection;

/**
 * LoRA adapters in PEFT's format, in and out: a folder with {@code adapter_config.json} and {@code
 * adapter_model.safetensors}, whose tensors are named {@code base_model.model.MODULE.lora_A.weight}
 * ([r, in]) and {@code base_model.model.MODULE.lora_B.weight} ([out, r]). A folder written here loads
 * with PEFT's {@code PeftModel.from_pretrained(base, folder)}, and one PEFT writes loads here.
 *
 * <p>On a reward model (a sequence classifier, {@code score.weight}) the adapters are PEFT's {@code
 * task_type: SEQ_CLS}: the score head trains in full beside them and is saved with them as PEFT saves
 * its {@code modules_to_save} ({@code base_model.model.score.weight}; {@code modules_to_save:
 * ["classifier", "score"]}, as PEFT 0.21 writes it for SEQ_CLS), so {@code PeftModel.from_pretrained(
 * AutoModelForSequenceClassification.from_pretrained(base, num_labels=1), folder)} gives the same rewards.
 *
 * <p>New adapters are initialised as PEFT's default ({@code init_lora_weights=True}): A from
 * Kaiming-uniform with a = √5, which is U(−1/√in, 1/√in), and B zero, so a new adapter leaves the
 * model's outputs unchanged.
 */
public final class PeftAdapter {
    /** The configuration file of an adapter folder. */
    public static final String CONFIG_FILE = "adapter_config.json";

    /** The weights file of an adapter folder. */
    public static final String WEIGHTS_FILE = "adapter_model.safetensors";

    /** PEFT's prefix of every tensor name ({@code PeftModel.base_model.model}). */
    public static final String PREFIX = "base_model.model.";

    /** The score head of a reward model's adapter (PEFT's {@code modules_to_save} of task_type SEQ_CLS). */
    public static final String SCORE_TENSOR = PREFIX + "score.weight";

    /** PEFT's task type of a sequence classifier's adapter. */
    public static final String SEQ_CLS = "SEQ_CLS";

    private static final ObjectMapper JSON = InputFiles.strictMapper();

    private PeftAdapter() {}

    /**
     * Whether a folder holds an adapter rather than a model.
     *
     * @param dir a folder
     * @return true when it has {@value #CONFIG_FILE}
     */
    public static boolean isAdapterFolder(Path dir) {
        return Files.isRegularFile(dir.resolve(CONFIG_FILE));
    }

    /**
     * Puts new adapters on the projections the configuration selects, initialised as PEFT does.
     *
     * @param block the model (without adapters)
     * @param config the configuration
     * @param seed seeds A's random values (the same seed gives the same adapters on any machine)
     * @param manager owner of the new arrays (the model's)
     * @return the adapters, in the model's order
     * @throws IllegalArgumentException when a target matches nothing, or the model already has adapters
     */
    public static List<LoraAdapter> attach(CausalLmBlock block, LoraConfig config, long seed, NDManager manager) {
        return attach(block, LoraAdapter.DEFAULT, config, seed, manager);
    }

    /**
     * Puts a new named adapter set on the projections the configuration selects, initialised as PEFT
     * does (PEFT's {@code add_adapter(adapter_name, config)}).
     *
     * @param block the model (without adapters of this set)
     * @param adapterName the set
     * @param config the configuration
     * @param seed seeds A's random values
     * @param manager owner of the new arrays (the model's)
     * @return the adapters, in the model's order
     * @throws IllegalArgumentException when a target matches nothing, or the model already has this set
     */
    public static List<LoraAdapter> attach(
            CausalLmBlock block, String adapterName, LoraConfig config, long seed, NDManager manager) {
        requireNoAdapters(block, adapterName);
        SplittableRandom random = new SplittableRandom(seed);
        List<LoraAdapter> out = new ArrayList<>();
        for (Projection p : config.select(block)) {
            requireRankFits(config.r(), p);
            int in = Math.toIntExact(p.inFeatures());
            float[] a = new float[config.r() * in];
            // kaiming_uniform_(a=√5): gain √(2/(1+5)), bound gain·√(3/fan_in) = 1/√fan_in
            double bound = 1.0 / Math.sqrt(in);
            for (int i = 0; i < a.length; i++) {
                a[i] = (float) ((2 * random.nextDouble() - 1) * bound);
            }
            NDArray aArr = manager.create(a, new Shape(config.r(), in));
            NDArray bArr = manager.zeros(new Shape(p.outFeatures(), config.r()), DataType.FLOAT32);
            out.add(block.addAdapter(adapterName, p.module(), aArr, bArr, config.scale(), config.dropout()));
        }
        return out;
    }

    /**
     * Writes an adapter folder's two files into an existing folder (callers that want it atomic write
     * into a temp folder and rename, see {@code AtomicDirectory}).
     *
     * @param block the model with its adapters
     * @param config their configuration
     * @param dir the folder
     * @param baseModel {@code base_model_name_or_path}: the base model's folder (or hub id)
     * @throws IOException on write failure
     * @throws IllegalStateException when the model has no adapters
     */
    public static void write(CausalLmBlock block, LoraConfig config, Path dir, String baseModel) throws IOException {
        write(block, LoraAdapter.DEFAULT, config, dir, baseModel, block.scoreWeight());
    }

    /**
     * Writes one adapter set as an adapter folder, its tensors under PEFT's saved names (the set's name
     * dropped, as {@code save_pretrained} writes every set to its own folder), with a score head as a
     * sequence classifier's (task_type SEQ_CLS, {@code base_model.model.score.weight}) when one is given.
     *
     * @param block the model with the set
     * @param adapterName the set
     * @param config its configuration
     * @param dir the folder
     * @param baseModel {@code base_model_name_or_path}
     * @param score the set's score head [1, H] (a sequence classifier's), or null for a causal LM's adapter
     * @throws IOException on write failure
     * @throws IllegalStateException when the model has no adapters of this set
     */
    public static void write(
            CausalLmBlock block, String adapterName, LoraConfig config, Path dir, String baseModel, Parameter score)
            throws IOException {
        if (!block.hasAdapters(adapterName)) {
            throw new IllegalStateException("the model has no adapters" + setName(adapterName) + " to write");
        }
        Map<String, NDArray> tensors = new TreeMap<>();
        List<NDArray> copies = new ArrayList<>();
        List<String> modules = new ArrayList<>();
        boolean conv1d = false;
        try {
            for (Projection p : block.projections().values()) {
                LoraAdapter a = p.adapter(adapterName);
                if (a == null) {
                    continue;
                }
                modules.add(p.module());
                conv1d |= p.layout() == Projection.Layout.CONV1D;
                tensors.put(PREFIX + p.module() + ".lora_A.weight", onCpu(a.a().getArray(), copies));
                tensors.put(PREFIX + p.module() + ".lora_B.weight", onCpu(a.b().getArray(), copies));
            }
            boolean classifier = score != null;
            if (classifier) {
                // a reward or value model: its score head trained in full, saved as PEFT saves modules_to_save
                NDArray head = score.getArray();
                if (head.getDataType() != DataType.FLOAT32) {
                    head = head.toType(DataType.FLOAT32, true);
                    copies.add(head);
                }
                tensors.put(SCORE_TENSOR, onCpu(head, copies));
            }
            Files.writeString(dir.resolve(CONFIG_FILE), configJson(config, modules, conv1d, baseModel, classifier));
            SafetensorsWriter.write(dir.resolve(WEIGHTS_FILE), tensors);
        } finally {
            copies.forEach(NDArray::close);
        }
    }

    private static NDArray onCpu(NDArray a, List<NDArray> copies) {
        if (a.getDevice().isGpu()) {
            NDArray c = a.toDevice(Device.cpu(), true);
            copies.add(c);
            return c;
        }
        return a;
    }

    /** {@value #CONFIG_FILE} as PEFT 0.21 writes it (keys sorted), with the options align4j has. */
    static String configJson(LoraConfig config, List<String> modules, boolean conv1d, String baseModel)
            throws IOException {
        return configJson(config, modules, conv1d, baseModel, false);
    }

    /** As above; a sequence classifier's adapter is PEFT's SEQ_CLS, with the score head in modules_to_save. */
    static String configJson(
            LoraConfig config, List<String> modules, boolean conv1d, String baseModel, boolean classifier)
            throws IOException {
        ObjectNode o = JSON.createObjectNode();
        o.putObject("alpha_pattern");
        o.put("base_model_name_or_path", baseModel);
        o.put("bias", "none");
        o.putNull("exclude_modules");
        o.put("fan_in_fan_out", conv1d);
        o.put("inference_mode", true);
        o.put("init_lora_weights", true);
        o.putNull("layers_pattern");
        o.putNull("layers_to_transform");
        if (config.alpha() == Math.rint(config.alpha()) && Math.abs(config.alpha()) < 1e15) {
            o.put("lora_alpha", (long) config.alpha());
        } else {
            o.put("lora_alpha", config.alpha());
        }
        o.put("lora_bias", false);
        o.put("lora_dropout", config.dropout());
        if (classifier) {
            // what PEFT 0.21's LoraConfig(task_type=SEQ_CLS) writes: its classifier-head names
            o.putArray("modules_to_save").add("classifier").add("score");
        } else {
            o.putNull("modules_to_save");
        }
        o.put("peft_type", "LORA");
        o.put("r", config.r());
        o.putObject("rank_pattern");
        o.putNull("revision");
        LoraConfig.Targets t = config.targets();
        if (t instanceof LoraConfig.Regex re) {
            o.put("target_modules", re.regex());
        } else {
            ArrayNode targets = o.putArray("target_modules");
            if (t instanceof LoraConfig.Names names) {
                names.names().forEach(targets::add);
            } else if (t instanceof LoraConfig.AllLinear) {
                // PEFT writes all-linear resolved into the full names of the modules it chose
                modules.stream().sorted().forEach(targets::add);
            } else {
                // PEFT writes its default targets as the list of names
                modules.stream()
                        .map(m -> m.substring(m.lastIndexOf('.') + 1))
                        .distinct()
                        .forEach(targets::add);
            }
        }
        o.put("task_type", classifier ? SEQ_CLS : "CAUSAL_LM");
        o.put("use_dora", false);
        o.put("use_rslora", config.useRslora());
        return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(o) + "\n";
    }

    /**
     * Reads an adapter folder's configuration.
     *
     * @param dir the folder
     * @return the configuration
     * @throws CheckpointException naming the file and key when the file is missing, broken, not LoRA,
     *     or asks for a PEFT option align4j does not implement
     */
    public static LoraConfig readConfig(Path dir) {
        return parseConfig(dir.resolve(CONFIG_FILE), readJson(dir.resolve(CONFIG_FILE)));
    }

    /**
     * Whether an adapter folder is a sequence classifier's (a reward model's): PEFT's {@code task_type:
     * SEQ_CLS}, its score head saved beside the adapters.
     *
     * @param dir the folder
     * @return true for task_type SEQ_CLS
     */
    public static boolean isSequenceClassifier(Path dir) {
        return SEQ_CLS.equals(text(readJson(dir.resolve(CONFIG_FILE)), "task_type", ""));
    }

    /**
     * The base model an adapter folder names ({@code base_model_name_or_path}).
     *
     * @param dir the folder
     * @return the value, or null when absent
     */
    public static String baseModel(Path dir) {
        JsonNode v = readJson(dir.resolve(CONFIG_FILE)).get("base_model_name_or_path");
        return v == null || v.isNull() ? null : v.asText();
    }

    /**
     * A rank whose A or B would hold more elements than one Java array or tensor buffer can (r·in or
     * out·r past 2^31) is refused by name before anything is allocated.
     */
    private static void requireRankFits(int r, Projection p) {
        long width = Math.max(p.inFeatures(), p.outFeatures());
        if ((long) r * width > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("LoRA rank r = " + r + " makes " + p.module() + "'s adapter a " + r
                    + " × " + width + " matrix, more elements than one tensor holds; a rank above the module's"
                    + " width (" + Math.min(p.inFeatures(), p.outFeatures()) + ") adds nothing");
        }
    }

    private static JsonNode readJson(Path file) {
        if (!Files.isRegularFile(file)) {
            String problem = InputFiles.problem(file);
            throw new CheckpointException(
                    file,
                    ("file not found".equals(problem) ? "not found" : problem) + ": an adapter folder has "
                            + CONFIG_FILE + " and " + WEIGHTS_FILE);
        }
        try {
            JsonNode n = JSON.readTree(Files.readString(file));
            if (n == null || !n.isObject()) {
                throw new CheckpointException(file, "not a JSON object");
            }
            return n;
        } catch (IOException e) {
            throw new CheckpointException(file, "not valid JSON: " + e.getMessage(), e);
        }
    }

    static LoraConfig parseConfig(Path file, JsonNode n) {
        String type = text(n, "peft_type", "LORA");
        if (!"LORA".equals(type.toUpperCase(Locale.ROOT))) {
            throw new CheckpointException(
                    file, "key 'peft_type': align4j reads LoRA adapters only, got '" + type + "'");
        }
        unsupported(file, n, "use_dora", "DoRA adapters");
        unsupported(file, n, "lora_bias", "adapters with a bias on lora_B");
        unsupported(file, n, "use_qalora", "QA-LoRA adapters");
        unsupported(file, n, "use_bdlora", "BD-LoRA adapters");
        unsupported(file, n, "rank_pattern", "a rank per module");
        unsupported(file, n, "alpha_pattern", "an alpha per module");
        unsupported(file, n, "layers_to_transform", "adapters on some layers only");
        if (SEQ_CLS.equals(text(n, "task_type", ""))) {
            // a reward model's adapter: the score head is the one fully trained module align4j knows
            JsonNode m = n.get("modules_to_save");
            if (m != null && !m.isNull()) {
                if (!m.isArray()) {
                    throw new CheckpointException(file, "key 'modules_to_save': a list of module names, got " + m);
                }
                for (JsonNode x : m) {
                    if (!List.of("classifier", "score").contains(x.asText())) {
                        throw new CheckpointException(
                                file,
                                "key 'modules_to_save': align4j trains the score head in full and nothing else, got '"
                                        + x.asText() + "'");
                    }
                }
            }
        } else {
            unsupported(file, n, "modules_to_save", "fully trained extra modules");
        }
        unsupported(file, n, "exclude_modules", "excluded modules");
        unsupported(file, n, "layer_replication", "replicated layers");
        unsupported(file, n, "target_parameters", "adapters on parameters");
        unsupported(file, n, "trainable_token_indices", "trainable token embeddings");
        unsupported(file, n, "alora_invocation_tokens", "activated LoRA");
        String bias = text(n, "bias", "none");
        if (!"none".equals(bias)) {
            throw new CheckpointException(
                    file, "key 'bias': align4j trains no biases in LoRA runs ('none'), got '" + bias + "'");
        }
        JsonNode r = n.get("r");
        if (r == null || !r.canConvertToInt() || !r.isIntegralNumber()) {
            throw new CheckpointException(file, "key 'r': an integer rank is required, got " + r);
        }
        double alpha = number(file, n, "lora_alpha", 8);
        double dropout = number(file, n, "lora_dropout", 0);
        JsonNode rs = n.get("use_rslora");
        boolean rslora = rs != null && rs.asBoolean(false);
        LoraConfig.Targets targets;
        JsonNode t = n.get("target_modules");
        if (t == null || t.isNull()) {
            targets = new LoraConfig.Default();
        } else if (t.isTextual()) {
            targets = LoraConfig.ALL_LINEAR.equals(t.asText().toLowerCase(Locale.ROOT))
                    ? new LoraConfig.AllLinear()
                    : new LoraConfig.Regex(t.asText());
        } else if (t.isArray() && t.size() > 0) {
            List<String> names = new ArrayList<>();
            t.forEach(x -> names.add(x.asText()));
            targets = new LoraConfig.Names(names);
        } else {
            throw new CheckpointException(file, "key 'target_modules': a list of module names or a string, got " + t);
        }
        try {
            return new LoraConfig(r.asInt(), alpha, dropout, targets, rslora);
        } catch (IllegalArgumentException e) {
            throw new CheckpointException(file, e.getMessage(), e);
        }
    }

    private static void unsupported(Path file, JsonNode n, String key, String what) {
        JsonNode v = n.get(key);
        boolean set = v != null
                && !v.isNull()
                && !(v.isBoolean() && !v.asBoolean())
                && !(v.isContainerNode() && v.isEmpty())
                && !(v.isTextual() && v.asText().isEmpty());
        if (set) {
            throw new CheckpointException(
                    file, "key '" + key + "': " + what + " are not supported by align4j (got " + v + ")");
        }
    }

    private static String text(JsonNode n, String key, String fallback) {
        JsonNode v = n.get(key);
        return v == null || v.isNull() ? fallback : v.asText();
    }

    private static double number(Path file, JsonNode n, String key, double fallback) {
        JsonNode v = n.get(key);
        if (v == null || v.isNull()) {
            return fallback;
        }
        if (!v.isNumber()) {
            throw new CheckpointException(file, "key '" + key + "': a number is required, got " + v);
        }
        return v.asDouble();
    }

    /**
     * Loads an adapter folder onto a model: the projections its configuration selects get its A and
     * B.
     *
     * @param block the model (without adapters)
     * @param dir the adapter folder
     * @param manager owner of the arrays (the model's)
     * @return the adapter's configuration
     * @throws CheckpointException naming the file and tensor when a tensor is missing, unexpected, or
     *     of a shape that does not fit the model (an adapter made for another base model)
     */
    public static LoraConfig load(CausalLmBlock block, Path dir, NDManager manager) {
        return load(block, dir, manager, LoraAdapter.DEFAULT, block.scoreWeight());
    }

    /**
     * Loads an adapter folder onto a model as a named set (PEFT's {@code load_adapter(dir,
     * adapter_name)}); a sequence classifier's folder (task_type SEQ_CLS) needs a score head to receive
     * its {@code score.weight}: the block's own, or one kept beside it for the set (PEFT's per-adapter
     * copy of a {@code modules_to_save} module).
     *
     * @param block the model (without adapters of this set)
     * @param dir the adapter folder
     * @param manager owner of the arrays (the model's)
     * @param adapterName the set
     * @param score the score head [1, H] that receives the folder's, or null on a causal LM
     * @return the adapter's configuration
     * @throws CheckpointException naming the file and tensor when a tensor is missing, unexpected, or
     *     of a shape that does not fit the model, or the folder's task type does not fit {@code score}
     */
    public static LoraConfig load(
            CausalLmBlock block, Path dir, NDManager manager, String adapterName, Parameter score) {
        requireNoAdapters(block, adapterName);
        Path configFile = dir.resolve(CONFIG_FILE);
        LoraConfig config = readConfig(dir);
        List<Projection> selected;
        try {
            selected = config.select(block);
        } catch (IllegalArgumentException e) {
            throw new CheckpointException(
                    configFile,
                    "key 'target_modules': " + e.getMessage() + " (an adapter made for another base model?)",
                    e);
        }
        try {
            selected.forEach(p -> requireRankFits(config.r(), p));
        } catch (IllegalArgumentException e) {
            throw new CheckpointException(configFile, "key 'r': " + e.getMessage(), e);
        }
        Path weights = dir.resolve(WEIGHTS_FILE);
        if (!Files.isRegularFile(weights)) {
            String hint = Files.isRegularFile(dir.resolve("adapter_model.bin"))
                    ? ": this folder has adapter_model.bin (a pickle, not read by align4j); save it with safe_serialization=True"
                    : "";
            throw new CheckpointException(weights, "not found" + hint);
        }
        Map<String, Projection> byModule = new LinkedHashMap<>();
        selected.forEach(p -> byModule.put(p.module(), p));
        boolean classifier = isSequenceClassifier(dir);
        if (classifier != (score != null)) {
            throw new CheckpointException(
                    configFile,
                    "key 'task_type': "
                            + (classifier
                                    ? "a sequence classifier's adapter (SEQ_CLS, a reward model) cannot go on a causal LM; load its base as a reward model"
                                    : "'" + text(readJson(configFile), "task_type", "")
                                            + "' adapter on a reward model: a reward model's adapter is task_type SEQ_CLS"
                                            + " and carries its score head"));
        }
        try (SafetensorsFile f = SafetensorsFile.open(weights)) {
            for (String name : f.tensors().keySet()) {
                if (classifier && name.equals(SCORE_TENSOR)) {
                    continue;
                }
                String module = moduleOf(name);
                if (module == null || !byModule.containsKey(module)) {
                    throw new CheckpointException(
                            weights,
                            "unexpected tensor '" + name + "': "
                                    + (module == null
                                            ? "not a LoRA weight (" + PREFIX + "MODULE.lora_A.weight or .lora_B.weight)"
                                            : "module '" + module + "' is not a target of " + CONFIG_FILE
                                                    + " or not a linear map of this "
                                                    + block.config().modelType() + " model"));
                }
            }
            List<NDArray> made = new ArrayList<>();
            try {
                for (Projection p : selected) {
                    NDArray a = read(
                            f,
                            weights,
                            PREFIX + p.module() + ".lora_A.weight",
                            new long[] {config.r(), p.inFeatures()},
                            manager,
                            made);
                    NDArray b = read(
                            f,
                            weights,
                            PREFIX + p.module() + ".lora_B.weight",
                            new long[] {p.outFeatures(), config.r()},
                            manager,
                            made);
                    block.addAdapter(adapterName, p.module(), a, b, config.scale(), config.dropout());
                }
                if (classifier) {
                    NDArray target = score.getArray();
                    NDArray saved =
                            read(f, weights, SCORE_TENSOR, target.getShape().getShape(), manager, made);
                    // the score head as the adapter saved it, in place of the base's (PEFT's modules_to_save)
                    try (NDArray cast = saved.toType(target.getDataType(), true)) {
                        target.set(cast.toByteBuffer());
                    }
                    saved.close();
                }
            } catch (RuntimeException e) {
                block.removeAdapters(adapterName);
                made.forEach(NDArray::close);
                throw e;
            }
        }
        return config;
    }

    private static NDArray read(
            SafetensorsFile f, Path file, String name, long[] shape, NDManager manager, List<NDArray> made) {
        SafetensorsFile.TensorInfo info = f.tensors().get(name);
        if (info == null) {
            throw new CheckpointException(
                    file, "missing tensor '" + name + "' (" + CONFIG_FILE + " selects this module)");
        }
        if (!Arrays.equals(info.shape(), shape)) {
            String want = name.contains(".lora_")
                    ? "this model and r = " + shape[name.contains("lora_A") ? 0 : 1] + " want "
                    : "this model wants ";
            throw new CheckpointException(
                    file,
                    "tensor '" + name + "' has shape " + Arrays.toString(info.shape()) + " but " + want
                            + Arrays.toString(shape) + " (an adapter made for another base model?)");
        }
        if (!List.of("F32", "F16", "BF16", "F64").contains(info.dtype())) {
            throw new CheckpointException(
                    file,
                    "tensor '" + name + "' is stored as " + info.dtype()
                            + "; adapter weights are floating point (F32, F16 or BF16)");
        }
        NDArray a = f.read(name, manager);
        made.add(a);
        return a;
    }

    /** base_model.model.MODULE.lora_A.weight → MODULE; null for any other name. */
    static String moduleOf(String tensor) {
        for (String suffix : new String[] {".lora_A.weight", ".lora_B.weight"}) {
            if (tensor.startsWith(PREFIX) && tensor.endsWith(suffix)) {
                return tensor.substring(PREFIX.length(), tensor.length() - suffix.length());
            }
        }
        return null;
    }

    private static void requireNoAdapters(CausalLmBlock block, String adapterName) {
        if (block.hasAdapters(adapterName)) {
            throw new IllegalStateException(
                    "the model already carries adapters" + setName(adapterName) + ": merge or remove them first");
        }
    }

    private static String setName(String adapterName) {
        return LoraAdapter.DEFAULT.equals(adapterName) ? "" : " of set '" + adapterName + "'";
    }
}
