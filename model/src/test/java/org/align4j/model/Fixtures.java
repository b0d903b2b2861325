package org.align4j.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.align4j.model.config.ModelConfig;
import org.align4j.model.io.SafetensorsFile;

/** The HF-transformers reference fixtures copied into the test resources (see REFERENCE.md there). */
public final class Fixtures {
    private Fixtures() {}

    /**
     * The config of a small Llama-family model at random weights, for the architectures the fixtures do not
     * cover (a test sets the key that makes its variant: {@code head_dim}, {@code sliding_window}, ...):
     * vocabulary 50, width 32, 2 layers, 4 query and 2 key/value heads, MLP 48.
     *
     * @param modelType HF's {@code model_type} ({@code llama}, {@code qwen3}, {@code mistral}, ...)
     * @return a mutable copy of its config.json
     */
    public static ObjectNode smallLlamaConfig(String modelType) {
        return ModelConfig.newLlama(modelType, 50, 32, 2, 4, 2, 48, 64, false, 0, 1, 2)
                .raw()
                .deepCopy();
    }

    /**
     * The {@code hf-tiny} folder on disk: the test-classes copy when it is a folder, otherwise (other
     * modules see it inside the model test-jar) the source copy found from the working directory.
     *
     * @return the folder
     */
    public static Path root() {
        var url = Fixtures.class.getResource("/hf-tiny/REFERENCE.md");
        if (url != null && "file".equals(url.getProtocol())) {
            try {
                return Path.of(url.toURI()).getParent();
            } catch (URISyntaxException e) {
                throw new IllegalStateException(e);
            }
        }
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            Path candidate = dir.resolve("model/src/test/resources/hf-tiny");
            if (Files.isRegularFile(candidate.resolve("REFERENCE.md"))) {
                return candidate;
            }
        }
        throw new IllegalStateException(
                "hf-tiny fixtures not found from " + Path.of("").toAbsolutePath());
    }

    /**
     * @param name a fixture model, e.g. gpt2-tiny
     * @return its folder
     */
    public static Path model(String name) {
        return root().resolve(name);
    }

    /**
     * The reward-model fixtures made by {@code trainer/src/test/python/reward_fixtures.py} (see REWARD.md
     * there).
     *
     * @param path e.g. {@code transformers-written/gpt2-tiny}
     * @return the folder
     */
    public static Path reward(String path) {
        return root().resolveSibling("reward").resolve(path);
    }

    /**
     * @param name a fixture model
     * @return its reference.json
     */
    public static JsonNode referenceJson(String name) {
        try {
            return new ObjectMapper().readTree(Files.readString(model(name).resolve("reference.json")));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * The LoRA fixtures made by {@code model/src/test/python/lora_fixtures.py} (see LORA.md there).
     *
     * @param path e.g. {@code peft-written/gpt2-tiny}
     * @return the folder
     */
    public static Path lora(String path) {
        return root().resolveSibling("lora").resolve(path);
    }

    /**
     * Reads every tensor of a safetensors file.
     *
     * @param file the file
     * @param manager owner of the arrays
     * @return tensors by name
     */
    public static Map<String, NDArray> tensors(Path file, NDManager manager) {
        Map<String, NDArray> out = new HashMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            for (String t : f.tensors().keySet()) {
                out.put(t, f.read(t, manager));
            }
        }
        return out;
    }

    /** @return the parsed lines of prefs.jsonl */
    public static List<JsonNode> prefs() {
        try {
            ObjectMapper json = new ObjectMapper();
            List<JsonNode> out = new ArrayList<>();
            for (String line : Files.readAllLines(root().resolve("prefs.jsonl"))) {
                if (!line.isBlank()) {
                    out.add(json.readTree(line));
                }
            }
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Reads every tensor of a model's reference.safetensors.
     *
     * @param name a fixture model
     * @param manager owner of the arrays
     * @return tensors by name
     */
    public static Map<String, NDArray> reference(String name, NDManager manager) {
        Map<String, NDArray> out = new HashMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(model(name).resolve("reference.safetensors"))) {
            for (String t : f.tensors().keySet()) {
                out.put(t, f.read(t, manager));
            }
        }
        return out;
    }
}
