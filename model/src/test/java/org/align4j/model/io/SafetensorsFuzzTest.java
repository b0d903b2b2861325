package org.align4j.model.io;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.fail;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The safetensors reader against files that lie: thousands of random headers, offsets, shapes, dtypes
 * and truncations from a fixed seed. Whatever the file says, the reader either reads tensors that lie
 * inside the file or refuses with its own {@link CheckpointException}; anything else (an
 * OutOfMemoryError from a size taken on trust, an index error, a JNI abort) fails the test.
 */
class SafetensorsFuzzTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final List<String> DTYPES =
            List.of("F32", "F16", "BF16", "F64", "I64", "I32", "I8", "U8", "BOOL", "F8_E4M3", "Q4", "");
    private static final int CASES = 3000;

    @TempDir
    Path tmp;

    @Test
    void lyingFilesAreReadInsideTheFileOrRefusedByTheReader() throws Exception {
        Random r = new Random(20261130L);
        Path file = tmp.resolve("fuzz.safetensors");
        int refused = 0;
        int read = 0;
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            for (int c = 0; c < CASES; c++) {
                byte[] bytes = mutate(valid(r), r);
                Files.write(file, bytes);
                try (SafetensorsFile f = SafetensorsFile.open(file)) {
                    for (SafetensorsFile.TensorInfo t : f.tensors().values()) {
                        assertThat(t.end())
                                .as("case %d: tensor %s inside the file", c, t.name())
                                .isLessThanOrEqualTo(bytes.length);
                        try (NDManager step = m.newSubManager()) {
                            f.read(t.name(), step);
                        }
                    }
                    read++;
                } catch (CheckpointException e) {
                    assertThat(e.getMessage()).as("case %d names the file", c).startsWith(file.toString());
                    refused++;
                } catch (Throwable t) {
                    fail(
                            "case " + c + ": " + t + " from a file of " + bytes.length + " bytes, header "
                                    + new String(bytes, 8, Math.min(bytes.length - 8, 400), StandardCharsets.UTF_8),
                            t);
                }
            }
        }
        // the mutations must exercise both outcomes
        assertThat(read).as("files read").isGreaterThan(CASES / 20);
        assertThat(refused).as("files refused").isGreaterThan(CASES / 2);
    }

    @Test
    void overlappingOrHoledOffsetsAreRefusedByName() throws Exception {
        Path file = tmp.resolve("overlap.safetensors");
        // two F32[2] tensors on the same eight bytes: each would read the other's weights
        Files.write(
                file,
                file(
                        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                        8));
        assertThatThrownBy(() -> SafetensorsFile.open(file))
                .isInstanceOf(CheckpointException.class)
                .hasMessageContaining("overlap");
        Files.write(
                file,
                file(
                        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                        12));
        assertThatThrownBy(() -> SafetensorsFile.open(file))
                .isInstanceOf(CheckpointException.class)
                .hasMessageContaining("'b'")
                .hasMessageContaining("overlap");
        Files.write(file, file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16));
        assertThatThrownBy(() -> SafetensorsFile.open(file)).hasMessageContaining("hole at bytes [0, 8)");
        Files.write(
                file,
                file(
                        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
                                + "\"data_offsets\":[0,8]}}",
                        8));
        assertThatThrownBy(() -> SafetensorsFile.open(file)).hasMessageContaining("Duplicate field 'a'");
    }

    private static byte[] file(String header, int dataBytes) {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h);
        return b.array();
    }

    /** A well-formed file of one to four small tensors. */
    private static ObjectNode valid(Random r) {
        ObjectNode header = JSON.createObjectNode();
        long offset = 0;
        int n = 1 + r.nextInt(4);
        for (int i = 0; i < n; i++) {
            String dtype = List.of("F32", "F16", "BF16", "I64", "U8").get(r.nextInt(5));
            int width = switch (dtype) {
                case "I64" -> 8;
                case "F32" -> 4;
                case "F16", "BF16" -> 2;
                default -> 1;
            };
            int rank = r.nextInt(3);
            long numel = 1;
            ArrayNode shape = JSON.createArrayNode();
            for (int d = 0; d < rank; d++) {
                int s = r.nextInt(5);
                shape.add(s);
                numel *= s;
            }
            ObjectNode t = header.putObject("t" + i);
            t.put("dtype", dtype);
            t.set("shape", shape);
            t.putArray("data_offsets").add(offset).add(offset + numel * width);
            offset += numel * width;
        }
        if (r.nextInt(4) == 0) {
            header.putObject("__metadata__").put("format", "pt");
        }
        header.put("__data_bytes__", offset); // removed before writing; says how much data to append
        return header;
    }

    private static byte[] mutate(ObjectNode header, Random r) throws Exception {
        long dataBytes = header.remove("__data_bytes__").asLong();
        int kind = r.nextInt(12);
        List<String> names = new ArrayList<>();
        header.fieldNames().forEachRemaining(names::add);
        names.remove("__metadata__");
        ObjectNode victim = names.isEmpty() ? null : (ObjectNode) header.get(names.get(r.nextInt(names.size())));
        switch (kind) {
            case 0 -> {} // left valid
            case 1 ->
                victim.withArray("data_offsets")
                        .set(r.nextInt(2), JSON.getNodeFactory().numberNode(randomLong(r)));
            case 2 -> victim.withArray("shape").add(randomLong(r));
            case 3 -> victim.put("dtype", DTYPES.get(r.nextInt(DTYPES.size())));
            case 4 -> victim.set("data_offsets", JSON.createArrayNode().add(0).add(dataBytes));
            case 5 ->
                victim.set(
                        "shape",
                        JSON.createArrayNode().add(1L << 31).add(1L << 31).add(1L << 31));
            case 6 -> victim.putArray("data_offsets").add(1.5).add("x");
            case 7 -> header.put(names.isEmpty() ? "x" : names.get(0), 7);
            case 8 -> header.put("__metadata__", 3);
            default -> {} // valid header; the bytes are damaged below
        }
        byte[] h = JSON.writeValueAsBytes(header);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        long declared = h.length;
        if (kind == 9) {
            declared = r.nextBoolean() ? randomLong(r) : h.length + r.nextInt(64) - 32;
        }
        out.write(ByteBuffer.allocate(8)
                .order(ByteOrder.LITTLE_ENDIAN)
                .putLong(declared)
                .array());
        out.write(h);
        byte[] data = new byte[(int) dataBytes];
        r.nextBytes(data);
        out.write(data);
        byte[] bytes = out.toByteArray();
        if (kind == 10) {
            bytes = Arrays.copyOf(bytes, r.nextInt(bytes.length + 1)); // truncated anywhere
        } else if (kind == 11 && bytes.length > 8) {
            for (int i = 0; i < 4; i++) {
                bytes[8 + r.nextInt(bytes.length - 8)] = (byte) r.nextInt(256); // flipped bytes, header included
            }
        }
        return bytes;
    }

    private static long randomLong(Random r) {
        return switch (r.nextInt(5)) {
            case 0 -> -1 - r.nextInt(100);
            case 1 -> Long.MAX_VALUE - r.nextInt(100);
            case 2 -> 1L << (32 + r.nextInt(30));
            case 3 -> r.nextInt(64);
            default -> r.nextLong();
        };
    }
}
