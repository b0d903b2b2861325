package org.align4j.model.io;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * Writes tensors as safetensors the way HF's {@code safetensors} library lays them out: header
 * JSON with {@code __metadata__: {format: pt}} first, tensors sorted by name, data offsets in that
 * order, the header padded with spaces to a multiple of 8 bytes. Above {@code maxShardBytes} the
 * tensors are split into {@code model-0000i-of-0000n.safetensors} plus {@code
 * model.safetensors.index.json}, as {@code save_pretrained} does.
 */
public final class SafetensorsWriter {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** The file name of an unsharded checkpoint. */
    public static final String SINGLE_FILE = "model.safetensors";

    /** The index file name of a sharded checkpoint. */
    public static final String INDEX_FILE = "model.safetensors.index.json";

    private SafetensorsWriter() {}

    /**
     * Writes one safetensors file.
     *
     * @param file the target (written directly; callers write into a temp folder and rename)
     * @param tensors name → array (FLOAT32, FLOAT16, INT64 or INT32)
     * @throws IOException on write failure
     */
    public static void write(Path file, Map<String, NDArray> tensors) throws IOException {
        Map<String, NDArray> sorted = new TreeMap<>(tensors);
        sorted.forEach((name, a) -> checkFinite(file, name, a));
        ObjectNode header = JSON.createObjectNode();
        header.putObject("__metadata__").put("format", "pt");
        long offset = 0;
        for (Map.Entry<String, NDArray> e : sorted.entrySet()) {
            NDArray a = e.getValue();
            long bytes = a.size() * a.getDataType().getNumOfBytes();
            ObjectNode t = header.putObject(e.getKey());
            t.put("dtype", dtypeName(e.getKey(), a.getDataType()));
            ArrayNode shape = t.putArray("shape");
            for (long d : a.getShape().getShape()) {
                shape.add(d);
            }
            t.putArray("data_offsets").add(offset).add(offset + bytes);
            offset += bytes;
        }
        byte[] json = JSON.writeValueAsBytes(header);
        int padded = (json.length + 7) / 8 * 8;
        try (OutputStream out = Files.newOutputStream(file)) {
            ByteBuffer len =
                    ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(padded);
            out.write(len.array());
            out.write(json);
            for (int i = json.length; i < padded; i++) {
                out.write(' ');
            }
            for (NDArray a : sorted.values()) {
                // a view of the tensor's memory on the CPU (a copy only for a strided view or another device):
                // toByteBuffer() copies every tensor into a direct buffer that lives until the next GC, and a
                // checkpoint of weights and AdamW moments then held its own size again in native memory
                ByteBuffer data = a.toByteBuffer(true);
                data.order(ByteOrder.LITTLE_ENDIAN);
                byte[] chunk = new byte[1 << 16];
                while (data.hasRemaining()) {
                    int n = Math.min(chunk.length, data.remaining());
                    data.get(chunk, 0, n);
                    out.write(chunk, 0, n);
                }
            }
        }
    }

    /**
     * Writes a checkpoint's weights into a folder: one {@link #SINGLE_FILE}, or shards of at most
     * {@code maxShardBytes} each plus {@link #INDEX_FILE}.
     *
     * @param dir the folder (must exist)
     * @param tensors name → array
     * @param maxShardBytes the shard size limit; a single tensor larger than it gets a shard alone
     * @return the files written, relative to {@code dir}
     * @throws IOException on write failure
     */
    public static List<String> writeCheckpoint(Path dir, Map<String, NDArray> tensors, long maxShardBytes)
            throws IOException {
        Map<String, NDArray> sorted = new TreeMap<>(tensors);
        List<Map<String, NDArray>> shards = new ArrayList<>();
        Map<String, NDArray> current = new LinkedHashMap<>();
        long currentBytes = 0;
        long total = 0;
        for (Map.Entry<String, NDArray> e : sorted.entrySet()) {
            long bytes = e.getValue().size() * e.getValue().getDataType().getNumOfBytes();
            if (!current.isEmpty() && currentBytes + bytes > maxShardBytes) {
                shards.add(current);
                current = new LinkedHashMap<>();
                currentBytes = 0;
            }
            current.put(e.getKey(), e.getValue());
            currentBytes += bytes;
            total += bytes;
        }
        shards.add(current);
        if (shards.size() == 1) {
            write(dir.resolve(SINGLE_FILE), shards.get(0));
            return List.of(SINGLE_FILE);
        }
        List<String> files = new ArrayList<>();
        ObjectNode index = JSON.createObjectNode();
        index.putObject("metadata").put("total_size", total);
        ObjectNode weightMap = index.putObject("weight_map");
        Map<String, String> byName = new TreeMap<>();
        for (int i = 0; i < shards.size(); i++) {
            String name = String.format(Locale.ROOT, "model-%05d-of-%05d.safetensors", i + 1, shards.size());
            write(dir.resolve(name), shards.get(i));
            files.add(name);
            for (String t : shards.get(i).keySet()) {
                byName.put(t, name);
            }
        }
        byName.forEach(weightMap::put);
        Files.writeString(
                dir.resolve(INDEX_FILE),
                JSON.writerWithDefaultPrettyPrinter().writeValueAsString(index) + "\n",
                StandardCharsets.UTF_8);
        files.add(INDEX_FILE);
        return files;
    }

    /**
     * Refuses to write a float tensor that holds NaN or an infinity, before the file is created: nothing
     * non-finite is ever written (a model, adapter or cache that only turns every output into NaN).
     *
     * @param file the file it was to go to
     * @param name the tensor
     * @param a the values
     * @throws CheckpointException naming the file and the tensor
     */
    public static void checkFinite(Path file, String name, NDArray a) {
        if (!a.getDataType().isFloating() || a.size() == 0) {
            return;
        }
        boolean bad;
        try (NDArray nan = a.isNaN();
                NDArray inf = a.isInfinite();
                NDArray either = nan.logicalOr(inf);
                NDArray any = either.any()) {
            bad = any.getBoolean();
        }
        if (bad) {
            throw new CheckpointException(
                    file,
                    "tensor '" + name + "' holds NaN or an infinity; nothing non-finite is written (are the inputs"
                            + " finite and in range?)");
        }
    }

    private static String dtypeName(String name, DataType type) {
        switch (type) {
            case FLOAT32:
                return "F32";
            case FLOAT16:
                return "F16";
            case FLOAT64:
                return "F64";
            case INT64:
                return "I64";
            case INT32:
                return "I32";
            case INT8:
                return "I8";
            case UINT8:
                return "U8";
            case BOOLEAN:
                return "BOOL";
            default:
                throw new IllegalArgumentException("tensor '" + name + "': cannot write dtype " + type);
        }
    }
}
