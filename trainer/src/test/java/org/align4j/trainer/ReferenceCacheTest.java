package org.align4j.trainer;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.align4j.data.EncodedPair;
import org.align4j.data.PreferenceBatch;
import org.align4j.model.CausalLm;
import org.align4j.model.Fixtures;
import org.align4j.model.config.ModelConfig;
import org.align4j.model.tokenizer.TextTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The precomputed reference's cache serves the model it was computed from, and no other. */
class ReferenceCacheTest {
    @TempDir
    Path tmp;

    @Test
    void twoCheckpointsThatDifferOnlyAfterTheFirstMibGetTheirOwnLogProbs() throws Exception {
        // a GPT-2 of 12 layers (2.4 MB of weights) from the fixture's config, and a copy whose last float differs
        Path config = tmp.resolve("config/config.json");
        Files.createDirectories(config.getParent());
        Files.writeString(
                config,
                Files.readString(Fixtures.model("gpt2-tiny").resolve("config.json"))
                        .replace("\"n_layer\": 2", "\"n_layer\": 12"));
        Path a = tmp.resolve("a");
        try (CausalLm lm = CausalLm.create(ModelConfig.read(config), Device.cpu(), 7)) {
            lm.save(a, Fixtures.model("gpt2-tiny"));
        }
        Path b = tmp.resolve("b");
        Files.createDirectories(b);
        try (Stream<Path> files = Files.list(a)) {
            for (Path f : files.toList()) {
                Files.copy(f, b.resolve(f.getFileName()));
            }
        }
        Path weights = b.resolve("model.safetensors");
        assertThat(Files.size(weights)).isGreaterThan(2L << 20);
        try (RandomAccessFile f = new RandomAccessFile(weights.toFile(), "rw")) {
            f.seek(f.length() - (64 << 10));
            for (int i = 0; i < (16 << 10); i++) {
                f.writeFloat(0.5f); // the last 64 KiB of weights (rows of the tied embedding and LM head), far past the
                // first MiB
            }
        }
        List<EncodedPair> pairs;
        try (TextTokenizer tk = TextTokenizer.load(a)) {
            pairs = List.of(new EncodedPair(
                    tk.encode("What is 2+2?"), tk.encode(" 4<|im_end|>"), tk.encode(" 5<|im_end|>"), null));
        }
        Path cache = tmp.resolve("cache");
        PrecomputedReference ra = PrecomputedReference.load(a, Device.cpu(), pairs, List.of(), cache, 3, 8);
        PrecomputedReference rb = PrecomputedReference.load(b, Device.cpu(), pairs, List.of(), cache, 3, 8);
        try (Stream<Path> files = Files.list(cache)) {
            assertThat(files.filter(p -> p.getFileName().toString().startsWith("reference-logps-"))
                            .count())
                    .as("one cache file each")
                    .isEqualTo(2);
        }
        assertThat(PrecomputedReference.modelKey(a, cache)).isNotEqualTo(PrecomputedReference.modelKey(b, cache));
        // and a second run reads its own file back, without hashing the weights again
        PrecomputedReference again = PrecomputedReference.load(b, Device.cpu(), pairs, List.of(), cache, 3, 8);
        try (var m = NDManager.newBaseManager(Device.cpu())) {
            var batch = PreferenceBatch.of(m, pairs, 3);
            float chosenA = ra.logProbs(batch, ReferencePolicy.Split.TRAIN, new int[] {0}, m)
                    .chosenSum()
                    .getFloat(0);
            float chosenB = rb.logProbs(batch, ReferencePolicy.Split.TRAIN, new int[] {0}, m)
                    .chosenSum()
                    .getFloat(0);
            float chosenAgain = again.logProbs(batch, ReferencePolicy.Split.TRAIN, new int[] {0}, m)
                    .chosenSum()
                    .getFloat(0);
            assertThat(chosenB).isEqualTo(chosenAgain);
            assertThat(Files.readString(cache.resolve("weight-digests.json")))
                    .contains(b.resolve("model.safetensors").toRealPath().toString());
            assertThat(chosenB).as("B's own log-probs, not A's from the cache").isNotEqualTo(chosenA);
        }
    }

    /** The listener given to {@code load} hears each split's pass from 0 to its end; a cached split is silent. */
    @Test
    void aListenerHearsEachSplitsProgress() throws Exception {
        Path model = Fixtures.model("llama-tiny");
        List<EncodedPair> train = new ArrayList<>();
        List<EncodedPair> eval;
        try (TextTokenizer tk = TextTokenizer.load(model)) {
            for (int i = 0; i < 5; i++) {
                train.add(new EncodedPair(
                        tk.encode("What is " + i + "+2?"), tk.encode(" " + (i + 2)), tk.encode(" 9"), null));
            }
            eval = List.of(new EncodedPair(tk.encode("What is 3+3?"), tk.encode(" 6"), tk.encode(" 7"), null));
        }
        List<String> heard = new ArrayList<>();
        TrainingListener listener = new TrainingListener() {
            @Override
            public void onPrepare(String what, String unit, long done, long total) {
                heard.add(what + " " + done + "/" + total + " " + unit);
            }
        };
        Path cache = tmp.resolve("cache");
        PrecomputedReference.load(model, Device.cpu(), train, eval, cache, 3, 2, "pairs", listener);
        // 0, then the count after every batch, ending at the total; TRAIN before EVAL
        assertThat(heard)
                .startsWith("reference log-probs (TRAIN) 0/5 pairs")
                .contains("reference log-probs (TRAIN) 5/5 pairs", "reference log-probs (EVAL) 0/1 pairs")
                .endsWith("reference log-probs (EVAL) 1/1 pairs");
        assertThat(heard.indexOf("reference log-probs (TRAIN) 5/5 pairs"))
                .isLessThan(heard.indexOf("reference log-probs (EVAL) 0/1 pairs"));
        heard.clear();
        PrecomputedReference.load(model, Device.cpu(), train, eval, cache, 3, 2, "pairs", listener);
        assertThat(heard).as("read from the cache: nothing to report").isEmpty();
    }
}
