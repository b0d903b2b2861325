package org.align4j.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.nn.Parameter;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.stream.Stream;
import org.align4j.model.config.ConfigException;
import org.align4j.model.io.CheckpointException;
import org.align4j.model.io.SafetensorsFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class CheckpointIoTest {
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    /** Copies a fixture model folder so a test can change it. */
    Path copyOf(String name) throws IOException {
        Path dst = tmp.resolve(name);
        Files.createDirectories(dst);
        try (Stream<Path> files = Files.list(Fixtures.model(name))) {
            for (Path f : (Iterable<Path>) files::iterator) {
                Files.copy(f, dst.resolve(f.getFileName()));
            }
        }
        return dst;
    }

    static void assertSameWeights(CausalLm a, CausalLm b) {
        assertThat(b.parameters().keySet())
                .containsExactlyElementsOf(a.parameters().keySet());
        for (Map.Entry<String, Parameter> e : a.parameters().entrySet()) {
            NDArray x = e.getValue().getArray();
            NDArray y = b.parameters().get(e.getKey()).getArray();
            assertThat(y.getShape()).as(e.getKey()).isEqualTo(x.getShape());
            assertThat(y.toFloatArray()).as(e.getKey()).containsExactly(x.toFloatArray());
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny", "llama-tiny", "qwen2-tiny"})
    void saveThenLoadIsBitExact(String name) throws IOException {
        Path out = tmp.resolve("saved");
        try (CausalLm lm = CausalLm.load(Fixtures.model(name), Device.cpu())) {
            lm.save(out, Fixtures.model(name));
            try (CausalLm back = CausalLm.load(out, Device.cpu())) {
                assertSameWeights(lm, back);
            }
        }
        assertThat(out.resolve("tokenizer.json")).exists();
        assertThat(out.resolve("tokenizer_config.json")).exists();
        // no temp folders left beside the checkpoint
        try (Stream<Path> left = Files.list(tmp)) {
            assertThat(left.map(p -> p.getFileName().toString())).containsExactly("saved");
        }
    }

    @Test
    void savedFileHasTheHeaderLayoutTransformersWrites() throws IOException {
        Path out = tmp.resolve("saved");
        try (CausalLm lm = CausalLm.load(Fixtures.model("gpt2-tiny"), Device.cpu())) {
            lm.save(out, null);
        }
        byte[] bytes = Files.readAllBytes(out.resolve("model.safetensors"));
        long headerLen =
                ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertThat(headerLen % 8).isZero();
        String header = new String(bytes, 8, (int) headerLen, StandardCharsets.UTF_8);
        assertThat(header).startsWith("{\"__metadata__\":{\"format\":\"pt\"}");
        JsonNode h = JSON.readTree(header);
        long expectedOffset = 0;
        String previous = "";
        for (var it = h.fields(); it.hasNext(); ) {
            var e = it.next();
            if (e.getKey().equals("__metadata__")) {
                continue;
            }
            assertThat(e.getKey()).isGreaterThan(previous);
            previous = e.getKey();
            assertThat(e.getValue().get("dtype").asText()).isEqualTo("F32");
            assertThat(e.getValue().get("data_offsets").get(0).asLong()).isEqualTo(expectedOffset);
            expectedOffset = e.getValue().get("data_offsets").get(1).asLong();
        }
        assertThat(8 + headerLen + expectedOffset).isEqualTo(bytes.length);
        // tied head is not written, as HF omits it
        assertThat(h.has("lm_head.weight")).isFalse();
        JsonNode config = JSON.readTree(out.resolve("config.json").toFile());
        assertThat(config.get("dtype").asText()).isEqualTo("float32");
        assertThat(config.get("model_type").asText()).isEqualTo("gpt2");
    }

    @Test
    void shardedSaveWritesAnIndexAndLoadsBack() throws IOException {
        Path out = tmp.resolve("sharded");
        try (CausalLm lm = CausalLm.load(Fixtures.model("llama-tiny"), Device.cpu())) {
            lm.save(out, null, 100_000);
            JsonNode index =
                    JSON.readTree(out.resolve("model.safetensors.index.json").toFile());
            assertThat(index.get("weight_map").size()).isEqualTo(lm.parameters().size());
            try (Stream<Path> files = Files.list(out)) {
                assertThat(files.filter(p -> p.getFileName().toString().matches("model-\\d{5}-of-\\d{5}\\.safetensors"))
                                .count())
                        .isGreaterThan(2);
            }
            try (CausalLm back = CausalLm.load(out, Device.cpu())) {
                assertSameWeights(lm, back);
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny-bf16-sharded", "llama-tiny-bf16-sharded"})
    void bf16ShardedCheckpointsFromTransformersLoadAsFloat32(String name) {
        try (CausalLm lm = CausalLm.load(Fixtures.model(name), Device.cpu());
                NDManager m = NDManager.newBaseManager(Device.cpu())) {
            Map<String, NDArray> ref = Fixtures.reference(name, m);
            NDArray logits = lm.logits(ref.get("input_ids"), ref.get("attention_mask"), false);
            assertThat(HfParityTest.maxAbsOnValid(logits, ref.get("logits"), ref.get("attention_mask")))
                    .isLessThan(1e-4);
        }
    }

    /** Writes a one-tensor safetensors file by hand. */
    static void writeSafetensors(Path file, String dtype, long[] shape, byte[] data, long claimedBytes)
            throws IOException {
        String header = "{\"w\":{\"dtype\":\"" + dtype + "\",\"shape\":"
                + Arrays.toString(shape).replace(" ", "") + ",\"data_offsets\":[0," + claimedBytes + "]}}";
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer buf = ByteBuffer.allocate(8 + h.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        buf.putLong(h.length).put(h).put(data);
        Files.write(file, buf.array());
    }

    @Test
    void bf16AndF16TensorsWidenToTheExactFloat32Values() throws IOException {
        float[] values = {1.0f, -2.5f, 3.140625f, 0.0078125f, -65280f, 0f};
        ByteBuffer bf16 = ByteBuffer.allocate(values.length * 2).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer f16 = ByteBuffer.allocate(values.length * 2).order(ByteOrder.LITTLE_ENDIAN);
        // f16 bit patterns of the same values, computed by hand (sign | exponent+15 | mantissa)
        short[] halfBits = {0x3C00, (short) 0xC100, 0x4248, 0x2000, (short) 0xFBF8, 0x0000};
        for (int i = 0; i < values.length; i++) {
            bf16.putShort((short) (Float.floatToIntBits(values[i]) >>> 16));
            f16.putShort(halfBits[i]);
        }
        Path b = tmp.resolve("bf16.safetensors");
        Path h = tmp.resolve("f16.safetensors");
        writeSafetensors(b, "BF16", new long[] {2, 3}, bf16.array(), 12);
        writeSafetensors(h, "F16", new long[] {2, 3}, f16.array(), 12);
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                SafetensorsFile fb = SafetensorsFile.open(b);
                SafetensorsFile fh = SafetensorsFile.open(h)) {
            NDArray wb = fb.read("w", m);
            assertThat(wb.getDataType()).isEqualTo(DataType.FLOAT32);
            assertThat(wb.getShape().getShape()).containsExactly(2, 3);
            assertThat(wb.toFloatArray()).containsExactly(values);
            assertThat(fh.read("w", m).toFloatArray()).containsExactly(values);
        }
    }

    @Test
    void truncatedFileNamesFileAndTensor() throws IOException {
        Path dir = copyOf("gpt2-tiny");
        Path weights = dir.resolve("model.safetensors");
        byte[] all = Files.readAllBytes(weights);
        Files.write(weights, Arrays.copyOf(all, all.length - 1000));
        assertThatThrownBy(() -> CausalLm.load(dir, Device.cpu()))
                .isInstanceOf(CheckpointException.class)
                .hasMessageContaining("model.safetensors")
                .hasMessageContaining("truncated")
                .hasMessageMatching("(?s).*tensor '[^']+'.*");
    }

    @Test
    void headerThatLiesAboutSizesIsRefused() throws IOException {
        Path f = tmp.resolve("lie.safetensors");
        writeSafetensors(f, "F32", new long[] {4}, new byte[16], 12);
        assertThatThrownBy(() -> SafetensorsFile.open(f))
                .isInstanceOf(CheckpointException.class)
                .hasMessageContaining("lie.safetensors")
                .hasMessageContaining("tensor 'w'")
                .hasMessageContaining("needs 16");
        Path g = tmp.resolve("huge-header.safetensors");
        ByteBuffer buf = ByteBuffer.allocate(16)
                .order(ByteOrder.LITTLE_ENDIAN)
                .putLong(1 << 20)
                .putLong(0);
        Files.write(g, buf.array());
        assertThatThrownBy(() -> SafetensorsFile.open(g))
                .isInstanceOf(CheckpointException.class)
                .hasMessageContaining("header length");
    }

    @Test
    void missingWeightsFileIsNamed() throws IOException {
        Path dir = copyOf("gpt2-tiny");
        Files.delete(dir.resolve("model.safetensors"));
        assertThatThrownBy(() -> CausalLm.load(dir, Device.cpu()))
                .isInstanceOf(CheckpointException.class)
                .hasMessageContaining("no model.safetensors");
    }

    ObjectNode config(Path dir) throws IOException {
        return (ObjectNode) JSON.readTree(dir.resolve("config.json").toFile());
    }

    void writeConfig(Path dir, ObjectNode c) throws IOException {
        Files.writeString(dir.resolve("config.json"), JSON.writeValueAsString(c));
    }

    @Test
    void configWithAMissingKeyNamesFileAndKey() throws IOException {
        Path dir = copyOf("llama-tiny");
        ObjectNode c = config(dir);
        c.remove("num_hidden_layers");
        writeConfig(dir, c);
        assertThatThrownBy(() -> CausalLm.load(dir, Device.cpu()))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining(dir.resolve("config.json").toString())
                .hasMessageContaining("num_hidden_layers");
    }

    @Test
    void unknownModelTypeIsRefusedByName() throws IOException {
        Path dir = copyOf("llama-tiny");
        ObjectNode c = config(dir);
        c.put("model_type", "mamba");
        writeConfig(dir, c);
        assertThatThrownBy(() -> CausalLm.load(dir, Device.cpu()))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("model_type")
                .hasMessageContaining("mamba");
    }

    @Test
    void unsupportedFeaturesAreRefusedNotIgnored() throws IOException {
        Path dir = copyOf("qwen2-tiny");
        ObjectNode c = config(dir);
        c.put("use_sliding_window", true);
        writeConfig(dir, c);
        assertThatThrownBy(() -> CausalLm.load(dir, Device.cpu())).hasMessageContaining("use_sliding_window");
        c.put("use_sliding_window", false);
        ((ObjectNode) c.get("rope_parameters")).put("rope_type", "yarn");
        writeConfig(dir, c);
        assertThatThrownBy(() -> CausalLm.load(dir, Device.cpu()))
                .hasMessageContaining("yarn")
                .hasMessageContaining("rope_type");
    }

    @Test
    void tensorWithTheWrongShapeIsNamed() throws IOException {
        Path dir = copyOf("llama-tiny");
        ObjectNode c = config(dir);
        c.put("intermediate_size", 128);
        writeConfig(dir, c);
        assertThatThrownBy(() -> CausalLm.load(dir, Device.cpu()))
                .isInstanceOf(CheckpointException.class)
                .hasMessageContaining("mlp.gate_proj.weight")
                .hasMessageContaining("shape");
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama-tiny", "qwen2-tiny"})
    void transformers4StyleConfigGivesTheSameLogits(String name) throws IOException {
        Path dir = copyOf(name);
        ObjectNode c = config(dir);
        JsonNode rope = c.remove("rope_parameters");
        c.put("rope_theta", rope.get("rope_theta").asDouble());
        c.putNull("rope_scaling");
        c.remove("dtype");
        c.put("torch_dtype", "float32");
        writeConfig(dir, c);
        try (CausalLm lm = CausalLm.load(dir, Device.cpu());
                NDManager m = NDManager.newBaseManager(Device.cpu())) {
            assertThat(lm.config().rope().theta())
                    .isEqualTo(rope.get("rope_theta").asDouble());
            Map<String, NDArray> ref = Fixtures.reference(name, m);
            NDArray logits = lm.logits(ref.get("input_ids"), ref.get("attention_mask"), false);
            assertThat(HfParityTest.maxAbsOnValid(logits, ref.get("logits"), ref.get("attention_mask")))
                    .isLessThan(1e-4);
        }
    }
}
