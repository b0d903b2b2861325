package org.align4j.model.io;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The weights of an HF checkpoint folder: {@code model.safetensors}, or the shards named by {@code
 * model.safetensors.index.json}. Tensors are read one at a time, on demand.
 */
public final class TensorSource implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(TensorSource.class);

    private static final ObjectMapper JSON = InputFiles.strictMapper();

    private final Path dir;
    private final List<SafetensorsFile> files;
    private final Map<String, SafetensorsFile> byName;

    private TensorSource(Path dir, List<SafetensorsFile> files, Map<String, SafetensorsFile> byName) {
        this.dir = dir;
        this.files = files;
        this.byName = byName;
    }

    /**
     * Opens the weights of a checkpoint folder.
     *
     * @param dir the folder
     * @return the open source; close it when done
     * @throws CheckpointException if neither weights file exists, or the index or a shard is broken
     */
    public static TensorSource open(Path dir) {
        Path single = dir.resolve(SafetensorsWriter.SINGLE_FILE);
        Path index = dir.resolve(SafetensorsWriter.INDEX_FILE);
        List<SafetensorsFile> files = new ArrayList<>();
        Map<String, SafetensorsFile> byName = new LinkedHashMap<>();
        try {
            if (Files.exists(single, LinkOption.NOFOLLOW_LINKS)) { // a link loop or FIFO is named by open()
                // what transformers loads when both are there: the single file; the shards are left alone
                if (Files.isRegularFile(index)) {
                    LOG.warn(
                            "{}: both {} and {}; reading {} as transformers does",
                            dir,
                            SafetensorsWriter.SINGLE_FILE,
                            SafetensorsWriter.INDEX_FILE,
                            SafetensorsWriter.SINGLE_FILE);
                }
                SafetensorsFile f = SafetensorsFile.open(single);
                files.add(f);
                for (String name : f.tensors().keySet()) {
                    byName.put(name, f);
                }
            } else if (Files.isRegularFile(index)) {
                JsonNode root;
                InputFiles.requireRegular(index);
                try {
                    root = JSON.readTree(Files.readString(index));
                } catch (IOException e) {
                    throw new CheckpointException(index, "not valid JSON: " + e.getMessage(), e);
                }
                JsonNode map = root == null ? null : root.get("weight_map");
                if (map == null || !map.isObject()) {
                    throw new CheckpointException(index, "key 'weight_map': missing or not an object");
                }
                Map<String, SafetensorsFile> opened = new LinkedHashMap<>();
                for (var it = map.fields(); it.hasNext(); ) {
                    var e = it.next();
                    String shard = e.getValue().asText();
                    if (!e.getValue().isTextual()
                            || !shard.matches("[^/\\\\]+")
                            || shard.equals("..")
                            || shard.equals(".")) {
                        throw new CheckpointException(
                                index,
                                "key 'weight_map." + e.getKey() + "': shard '" + shard
                                        + "' is not a file name in this folder (paths outside the model folder are refused)");
                    }
                    SafetensorsFile f = opened.get(shard);
                    if (f == null) {
                        f = SafetensorsFile.open(dir.resolve(shard));
                        opened.put(shard, f);
                        files.add(f);
                    }
                    if (!f.tensors().containsKey(e.getKey())) {
                        throw new CheckpointException(
                                index, "key 'weight_map." + e.getKey() + "': shard " + shard + " has no such tensor");
                    }
                    byName.put(e.getKey(), f);
                }
            } else {
                throw new CheckpointException(
                        dir,
                        "no " + SafetensorsWriter.SINGLE_FILE + " or " + SafetensorsWriter.INDEX_FILE
                                + " in this folder");
            }
        } catch (RuntimeException e) {
            files.forEach(SafetensorsFile::close);
            throw e;
        }
        return new TensorSource(dir, files, byName);
    }

    /** @return the names of all tensors */
    public Set<String> names() {
        return Collections.unmodifiableSet(byName.keySet());
    }

    /**
     * @param name a tensor name
     * @return its header entry
     */
    public SafetensorsFile.TensorInfo info(String name) {
        SafetensorsFile f = byName.get(name);
        if (f == null) {
            throw new CheckpointException(dir, "checkpoint has no tensor '" + name + "'");
        }
        return f.tensors().get(name);
    }

    /**
     * @param name a tensor name
     * @return whether the checkpoint has it
     */
    public boolean has(String name) {
        return byName.containsKey(name);
    }

    /**
     * Reads a tensor (floats widened to FLOAT32).
     *
     * @param name the tensor
     * @param manager owner of the new array
     * @return the array
     */
    public NDArray read(String name, NDManager manager) {
        SafetensorsFile f = byName.get(name);
        if (f == null) {
            throw new CheckpointException(dir, "checkpoint has no tensor '" + name + "'");
        }
        return f.read(name, manager);
    }

    @Override
    public void close() {
        files.forEach(SafetensorsFile::close);
    }
}
