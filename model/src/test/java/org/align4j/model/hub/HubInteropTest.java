package org.align4j.model.hub;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.align4j.model.CausalLm;
import org.align4j.model.Fixtures;
import org.align4j.model.tokenizer.TextTokenizer;
import org.junit.jupiter.api.Test;

/**
 * The cache is shared with Python: {@code src/test/hub-interop/hf-written} was written by huggingface_hub's
 * {@code snapshot_download} ({@code src/test/python/hub_interop.py}) and is read here offline; the same
 * script had huggingface_hub and transformers read a cache align4j wrote, and its findings are pinned.
 */
class HubInteropTest {
    static final Path DIR = Path.of("src/test/hub-interop");

    @Test
    void aCacheHuggingFaceHubWroteIsReadOfflineAndLoads() throws IOException {
        HubClient offline = HubClient.fromEnvironment(
                        Map.of("HF_HUB_CACHE", DIR.resolve("hf-written").toString(), "HF_HUB_OFFLINE", "1"),
                        Path.of("target"))
                .build();
        Path dir = offline.model(HubId.parse("tiny/gpt2", HubId.Type.MODEL));
        assertThat(dir.getFileName().toString()).isEqualTo("0123456789abcdef0123456789abcdef01234567");
        assertThat(Files.readAllBytes(dir.resolve("model.safetensors")))
                .isEqualTo(Files.readAllBytes(Fixtures.model("gpt2-tiny").resolve("model.safetensors")));
        try (CausalLm lm = CausalLm.load(dir, Device.cpu());
                TextTokenizer tk = TextTokenizer.load(dir)) {
            assertThat(lm.config().vocabSize()).isPositive();
            assertThat(tk.encode("Hello there")).isNotEmpty();
        }
        List<Path> data = offline.dataset(HubId.parse("team/prefs", HubId.Type.DATASET));
        assertThat(data).hasSize(1);
        assertThat(Files.readString(data.get(0)))
                .isEqualTo(Files.readString(Fixtures.root().resolve("prefs.jsonl")));
    }

    @Test
    void huggingFaceHubAndTransformersReadTheCacheAlign4jWrote() throws IOException {
        JsonNode r = new ObjectMapper().readTree(DIR.resolve("results.json").toFile());
        JsonNode read = r.path("python_reads_java_cache");
        assertThat(read.has("error")).as(read.toString()).isFalse();
        assertThat(read.path("snapshot_download").asText())
                .isEqualTo("models--tiny--gpt2/snapshots/0123456789abcdef0123456789abcdef01234567");
        assertThat(read.path("weights_sha256").asText())
                .isEqualTo(r.path("fixture_weights_sha256").asText());
        assertThat(read.path("model_class").asText()).isEqualTo("GPT2LMHeadModel");
        assertThat(read.path("dataset_files").get(0).asText()).isEqualTo("data/train-00000-of-00001.jsonl");
        // both writers lay out the same files and links (huggingface_hub adds CACHEDIR.TAG and trees/ metadata)
        r.path("java_written_cache")
                .properties()
                .forEach(e -> assertThat(
                                r.path("hf_written_cache").path(e.getKey()).asText())
                        .as(e.getKey())
                        .isEqualTo(e.getValue().asText()));
    }

    @Test
    void uploadsSendWhatHuggingFaceHubsUploadFolderSends() throws IOException {
        JsonNode upload = new ObjectMapper()
                .readTree(DIR.resolve("results.json").toFile())
                .path("upload");
        assertThat(upload.path("align4j").size()).isEqualTo(5); // create, preupload, LFS batch, PUT, commit
        assertThat(upload.path("align4j")).isEqualTo(upload.path("huggingface_hub"));
    }
}
