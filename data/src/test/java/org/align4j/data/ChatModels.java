package org.align4j.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Clock;
import java.time.LocalDateTime;
import java.time.ZoneId;
import java.util.List;
import org.tukaani.xz.XZInputStream;

/**
 * The chat-template corpus of {@code src/test/resources/chat}: model folders (a real tokenizer.json
 * and the model's tokenizer_config.json) unpacked under {@code target/chat-models}, and the expected
 * texts and ids that {@code src/test/python/make_chat_fixtures.py} made with transformers and TRL.
 */
public final class ChatModels {
    /** Every template of the corpus. */
    public static final List<String> NAMES = List.of(
            "qwen3",
            "llama3_1",
            "gemma3",
            "deepseek_v3",
            "llama3_2",
            "qwen2_5",
            "mistral_nemo",
            "zephyr",
            "mistral_v0_1",
            "phi3_5",
            "smollm2");

    private static final ObjectMapper JSON = new ObjectMapper();

    private ChatModels() {}

    static Path resources() {
        try {
            return Path.of(ChatModels.class
                            .getResource("/chat/fixtures/qwen3.json")
                            .toURI())
                    .getParent()
                    .getParent();
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * @param name a corpus template
     * @return its model folder (unpacked once, under target/)
     */
    public static synchronized Path model(String name) {
        Path res = resources();
        Path dir = res.getParent().getParent().resolve("chat-models").resolve(name); // target/chat-models
        if (Files.isRegularFile(dir.resolve("tokenizer_config.json"))
                && Files.isRegularFile(dir.resolve("tokenizer.json"))) {
            return dir;
        }
        try {
            Files.createDirectories(dir);
            String family = Files.readString(res.resolve("models").resolve(name).resolve("family"))
                    .strip();
            unxz(res.resolve("tokenizers").resolve(family).resolve("tokenizer.json.xz"), dir.resolve("tokenizer.json"));
            Path cfg = res.resolve("models").resolve(name).resolve("tokenizer_config.json");
            if (Files.isRegularFile(cfg)) {
                Files.copy(cfg, dir.resolve("tokenizer_config.json"), StandardCopyOption.REPLACE_EXISTING);
            } else {
                unxz(
                        res.resolve("models").resolve(name).resolve("tokenizer_config.json.xz"),
                        dir.resolve("tokenizer_config.json"));
            }
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void unxz(Path from, Path to) throws IOException {
        Path tmp = to.resolveSibling(to.getFileName() + ".tmp");
        try (InputStream in = new XZInputStream(Files.newInputStream(from))) {
            Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
        }
        Files.move(tmp, to, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    /**
     * @param name a corpus template
     * @return what transformers and TRL made for it
     */
    public static JsonNode fixture(String name) {
        try {
            return JSON.readTree(
                    resources().resolve("fixtures").resolve(name + ".json").toFile());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * @param fixture a fixture
     * @return a clock at the instant the fixture froze {@code strftime_now} at, in this machine's zone
     *     (Python's {@code datetime.now()} is local time)
     */
    public static Clock frozenClock(JsonNode fixture) {
        LocalDateTime t = LocalDateTime.parse(fixture.get("frozen_now").asText());
        return Clock.fixed(t.atZone(ZoneId.systemDefault()).toInstant(), ZoneId.systemDefault());
    }

    /**
     * @param ids a JSON array of ids
     * @return them
     */
    public static int[] ids(JsonNode ids) {
        int[] out = new int[ids.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = ids.get(i).asInt();
        }
        return out;
    }
}
