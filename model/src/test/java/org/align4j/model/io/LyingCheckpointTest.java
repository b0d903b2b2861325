package org.align4j.model.io;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Stream;
import org.align4j.model.CausalLm;
import org.align4j.model.Fixtures;
import org.align4j.model.config.ConfigException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Checkpoint folders that lie: each is refused by name before it can load wrong weights, or loads what transformers loads. */
class LyingCheckpointTest {
    @TempDir
    Path tmp;

    private Path copyOf(String model) throws Exception {
        Path dir = tmp.resolve(model + "-" + System.nanoTime());
        Files.createDirectories(dir);
        try (Stream<Path> files = Files.list(Fixtures.model(model))) {
            for (Path f : files.toList()) {
                Files.copy(f, dir.resolve(f.getFileName()));
            }
        }
        return dir;
    }

    @ParameterizedTest
    @CsvSource({"../outside.safetensors", "/etc/hostname", "sub/dir.safetensors", "."})
    void aShardOutsideTheFolderIsRefused(String shard) throws Exception {
        Path dir = copyOf("gpt2-tiny");
        Files.move(dir.resolve("model.safetensors"), tmp.resolve("outside.safetensors"));
        Files.writeString(
                dir.resolve("model.safetensors.index.json"),
                "{\"metadata\": {}, \"weight_map\": {\"transformer.wte.weight\": \"" + shard + "\"}}");
        assertThatThrownBy(() -> TensorSource.open(dir))
                .isInstanceOf(CheckpointException.class)
                .hasMessageContaining("model.safetensors.index.json")
                .hasMessageContaining("is not a file name in this folder");
    }

    @Test
    void aSingleFileBesideShardsIsWhatLoadsAsInTransformers() throws Exception {
        Path dir = copyOf("gpt2-tiny");
        // a stale index naming a shard that does not even exist: transformers reads model.safetensors and never opens
        // it
        Files.writeString(
                dir.resolve("model.safetensors.index.json"),
                "{\"weight_map\": {\"transformer.wte.weight\": \"model-00001-of-00002.safetensors\"}}");
        try (TensorSource s = TensorSource.open(dir)) {
            assertThat(s.names()).contains("transformer.wte.weight", "transformer.h.0.attn.c_attn.weight");
        }
    }

    @ParameterizedTest
    @CsvSource(
            delimiter = '|',
            value = {
                "\"n_head\": 4|\"n_head\": 0|key 'n_head': must be at least 1, got 0",
                "\"n_layer\": 2|\"n_layer\": -2|key 'n_layer': must be at least 1, got -2",
                "\"vocab_size\": 600|\"vocab_size\": 0|key 'vocab_size': must be at least 1, got 0",
                "\"n_embd\": 64|\"n_embd\": 64.5|key 'n_embd': expected an integer, got 64.5"
            })
    void impossibleSizesInConfigAreNamed(String from, String to, String message) throws Exception {
        Path dir = copyOf("gpt2-tiny");
        Path config = dir.resolve("config.json");
        Files.writeString(config, Files.readString(config).replace(from, to));
        assertThatThrownBy(() -> CausalLm.load(dir, Device.cpu()))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining(message);
    }

    @ParameterizedTest
    @CsvSource({"FLOAT64", "INT32"})
    void weightsOfAnotherDtypeLoadAsFp32OrAreRefusedByName(DataType dtype) throws Exception {
        Path dir = copyOf("gpt2-tiny");
        Path weights = dir.resolve("model.safetensors");
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                SafetensorsFile f =
                        SafetensorsFile.open(Fixtures.model("gpt2-tiny").resolve("model.safetensors"))) {
            Map<String, NDArray> tensors = new LinkedHashMap<>();
            for (String name : f.tensors().keySet()) {
                NDArray a = f.read(name, m);
                tensors.put(name, name.equals("transformer.h.0.mlp.c_fc.weight") ? a.toType(dtype, false) : a);
            }
            Files.delete(weights);
            SafetensorsWriter.write(weights, tensors);
        }
        if (dtype == DataType.FLOAT64) {
            // transformers casts floating weights to the model's dtype; so does align4j
            try (CausalLm lm = CausalLm.load(dir, Device.cpu());
                    CausalLm ref = CausalLm.load(Fixtures.model("gpt2-tiny"), Device.cpu())) {
                NDArray got =
                        lm.parameters().get("transformer.h.0.mlp.c_fc.weight").getArray();
                assertThat(got.getDataType()).isEqualTo(DataType.FLOAT32);
                assertThat(got.toFloatArray())
                        .containsExactly(ref.parameters()
                                .get("transformer.h.0.mlp.c_fc.weight")
                                .getArray()
                                .toFloatArray());
            }
        } else {
            assertThatThrownBy(() -> CausalLm.load(dir, Device.cpu()))
                    .isInstanceOf(CheckpointException.class)
                    .hasMessageContaining("transformer.h.0.mlp.c_fc.weight")
                    .hasMessageContaining("I32");
        }
    }
}
