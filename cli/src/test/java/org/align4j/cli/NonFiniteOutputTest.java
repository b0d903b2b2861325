package org.align4j.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.stream.Stream;
import org.align4j.model.CausalLm;
import org.align4j.model.Fixtures;
import org.align4j.model.io.AtomicDirectory;
import org.align4j.model.io.CheckpointException;
import org.align4j.model.io.SafetensorsWriter;
import org.align4j.model.lora.LoraConfig;
import org.align4j.model.nn.CausalLmBlock;
import org.align4j.trainer.Failure;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * NaN and infinities fed through each writer (a model, an adapter, a raw tensor file or cache, the JSON
 * lines of labels, scores and log-probs): none writes a file, and none leaves a temp folder behind; and
 * a write that fails (a full disk, a kill) keeps what was there and says where.
 */
class NonFiniteOutputTest {
    @TempDir
    Path tmp;

    private void assertNothingWritten(Path target) throws IOException {
        assertThat(target).doesNotExist();
        try (Stream<Path> s = Files.list(target.getParent())) {
            assertThat(s.map(p -> p.getFileName().toString()))
                    .noneMatch(n -> n.startsWith("." + target.getFileName() + ".tmp-"));
        }
    }

    @ParameterizedTest
    @ValueSource(floats = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY})
    void aTensorFileWithANonFiniteValueIsNeverCreated(float bad) throws Exception {
        Path file = tmp.resolve("t.safetensors");
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray a = m.create(new float[] {1f, bad, 3f}, new Shape(3));
            assertThatThrownBy(() -> SafetensorsWriter.write(file, Map.of("weights", a)))
                    .isInstanceOf(CheckpointException.class)
                    .hasMessageContaining("tensor 'weights' holds NaN or an infinity");
        }
        assertThat(file).doesNotExist();
    }

    @Test
    void aModelWithANaNWeightIsNotSaved() throws Exception {
        Path out = tmp.resolve("model");
        try (CausalLm lm = CausalLm.load(Fixtures.model("gpt2-tiny"), Device.cpu())) {
            CausalLmBlock block = (CausalLmBlock) lm.block();
            NDArray w = block.parametersByName().values().iterator().next().getArray();
            w.set(new NDIndex(0), Float.NaN);
            assertThatThrownBy(() -> lm.save(out, Fixtures.model("gpt2-tiny")))
                    .isInstanceOf(CheckpointException.class)
                    .hasMessageContaining("holds NaN or an infinity");
        }
        assertNothingWritten(out);
    }

    @Test
    void anAdapterWithAnInfiniteWeightIsNotSaved() throws Exception {
        Path out = tmp.resolve("adapter");
        try (CausalLm lm = CausalLm.load(Fixtures.model("gpt2-tiny"), Device.cpu())) {
            lm.addLora(LoraConfig.of(4, 8), 0);
            CausalLmBlock block = (CausalLmBlock) lm.block();
            block.adapterParameters()
                    .values()
                    .iterator()
                    .next()
                    .getArray()
                    .set(new NDIndex(0), Float.POSITIVE_INFINITY);
            assertThatThrownBy(() -> lm.save(out, null))
                    .isInstanceOf(CheckpointException.class)
                    .hasMessageContaining("lora_")
                    .hasMessageContaining("holds NaN or an infinity");
        }
        assertNothingWritten(out);
    }

    @Test
    void jsonOutputsRefuseNonFiniteNumbers() {
        // labels (an ObjectNode per record), scores and log-probs (maps) all go through Json
        ObjectNode label = Json.MAPPER.createObjectNode().put("prompt", "p").put("preference", Double.NaN);
        assertThatThrownBy(() -> Json.write(label))
                .isInstanceOf(Json.NonFiniteOutputException.class)
                .hasMessageContaining("'preference'");
        assertThatThrownBy(() -> Json.write(Map.of("logps", Double.NEGATIVE_INFINITY)))
                .isInstanceOf(Json.NonFiniteOutputException.class)
                .hasMessageContaining("'logps'");
        assertThatThrownBy(() -> Json.write(Map.of("reward_margin", Float.NaN)))
                .isInstanceOf(Json.NonFiniteOutputException.class);
        assertThat(Align4j.failure(new Json.NonFiniteOutputException("logps", Double.NaN))
                        .code())
                .isEqualTo(1);
        assertThat(Json.write(Map.of("logps", -1.5))).isEqualTo("{\"logps\":-1.5}");
    }

    @Test
    void aFullDiskKeepsThePreviousCheckpointAndNamesThePathAndTheFreeSpace() throws Exception {
        Path target = tmp.resolve("checkpoint-8");
        AtomicDirectory.write(target, d -> Files.writeString(d.resolve("model.safetensors"), "old"));
        IOException full = null;
        try {
            AtomicDirectory.write(target, d -> {
                Files.writeString(d.resolve("model.safetensors"), "half");
                throw new IOException("No space left on device");
            });
        } catch (IOException e) {
            full = e;
        }
        assertThat(full).isInstanceOf(FileSystemException.class);
        Failure f = Align4j.failure(full);
        assertThat(f.code()).isEqualTo(1);
        assertThat(f.message())
                .startsWith("cannot write or read " + target.toAbsolutePath() + ": No space left on device (")
                .contains("MiB free on that disk)")
                .doesNotContain("\n");
        assertThat(Files.readString(target.resolve("model.safetensors"))).isEqualTo("old");
        assertNothingWritten(tmp.resolve("other")); // and no temp folder of the failed write is left
        try (Stream<Path> s = Files.list(tmp)) {
            assertThat(s.map(p -> p.getFileName().toString())).noneMatch(n -> n.contains(".tmp-"));
        }
    }

    @Test
    void whatAKilledMergeLeftIsRemovedByTheNextWrite() throws Exception {
        Path merged = tmp.resolve("merged");
        // a merge killed while writing its temp folder, and one killed between moving the old folder aside and
        // renaming the new one into place
        Files.createDirectories(tmp.resolve(".merged.tmp-killed1"));
        Files.writeString(tmp.resolve(".merged.tmp-killed1").resolve("model.safetensors"), "half");
        Files.createDirectories(tmp.resolve(".merged.old-killed2"));
        Files.writeString(tmp.resolve(".merged.old-killed2").resolve("config.json"), "{}");
        CliTest.Result r = CliTest.run(
                "merge",
                "--adapter",
                Fixtures.lora("peft-written/gpt2-tiny").toString(),
                "--model",
                Fixtures.model("gpt2-tiny").toString(),
                "--output",
                merged.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(merged.resolve("model.safetensors")).exists();
        try (Stream<Path> s = Files.list(tmp)) {
            assertThat(s.map(p -> p.getFileName().toString())).containsExactly("merged");
        }
    }
}
