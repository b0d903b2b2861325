package org.align4j.trainer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.align4j.data.EncodedPair;
import org.align4j.data.PreferenceBatch;
import org.align4j.losses.LossType;
import org.align4j.model.CausalLm;
import org.align4j.model.Fixtures;
import org.align4j.model.tokenizer.TextTokenizer;
import org.assertj.core.api.Assertions;
import org.assertj.core.data.Offset;
import org.assertj.core.data.Percentage;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PreferenceTrainerTest {
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    Path firstFourPairs() throws IOException {
        Path f = tmp.resolve("four.jsonl");
        Files.write(
                f, Files.readAllLines(Fixtures.root().resolve("prefs.jsonl")).subList(0, 4));
        return f;
    }

    Map<String, Object> base(String output) throws IOException {
        Map<String, Object> o = new LinkedHashMap<>();
        o.put("model", Fixtures.model("gpt2-tiny").toString());
        o.put("reference_model", Fixtures.model("gpt2-tiny-ref").toString());
        o.put("data", firstFourPairs().toString());
        o.put("output", tmp.resolve(output).toString());
        o.put("loss", "dpo");
        o.put("beta", 0.1);
        o.put("batch_size", 4);
        o.put("max_steps", 1);
        o.put("learning_rate", 1e-3);
        o.put("max_grad_norm", 0.0);
        return o;
    }

    /** Collects per-step metrics and first-step gradient norms. */
    static final class Recorder implements TrainingListener {
        final List<Map<String, Double>> steps = new ArrayList<>();
        Map<String, Double> firstNorms;

        @Override
        public boolean wantsGradientNorms() {
            return firstNorms == null;
        }

        @Override
        public void onGradientNorms(long step, Map<String, Double> norms) {
            firstNorms = norms;
        }

        @Override
        public void onStep(long step, Map<String, Double> metrics) {
            steps.add(metrics);
        }
    }

    @Test
    void firstDpoStepLossAndEveryGradientNormMatchTransformers() throws IOException {
        JsonNode ref = Fixtures.referenceJson("gpt2-tiny");
        Recorder rec = new Recorder();
        try (PreferenceTrainer t = PreferenceTrainer.create(TrainConfig.resolve(null, base("run")), false)) {
            t.addListener(rec);
            t.train();
        }
        double expectedLoss = ref.get("dpo_sigmoid_loss_for_gradients").asDouble();
        assertThat(Math.abs(rec.steps.get(0).get("loss") - expectedLoss) / expectedLoss)
                .isLessThan(1e-4);
        JsonNode norms = ref.get("grad_norm_by_param");
        assertThat(rec.firstNorms.keySet()).containsExactlyInAnyOrderElementsOf(iterable(norms.fieldNames()));
        for (var it = norms.fields(); it.hasNext(); ) {
            var e = it.next();
            double expected = e.getValue().asDouble();
            assertThat(Math.abs(rec.firstNorms.get(e.getKey()) - expected) / expected)
                    .as(e.getKey())
                    .isLessThan(1e-4);
        }
        assertThat(rec.steps.get(0).get("grad_norm"))
                .isCloseTo(ref.get("grad_norm_total").asDouble(), Percentage.withPercentage(0.01));
        // TRL's metric names in metrics.jsonl, each line with its step
        List<String> lines = Files.readAllLines(tmp.resolve("run/metrics.jsonl"));
        JsonNode first = JSON.readTree(lines.get(0));
        for (String key : List.of(
                "step",
                "loss",
                "rewards/chosen",
                "rewards/rejected",
                "rewards/margins",
                "rewards/accuracies",
                "logps/chosen",
                "logps/rejected",
                "learning_rate",
                "grad_norm",
                "tokens_per_second")) {
            assertThat(first.has(key)).as(key).isTrue();
        }
        assertThat(tmp.resolve("run/final/model.safetensors")).exists();
        assertThat(tmp.resolve("run/checkpoint-1/optimizer.safetensors")).exists();
        assertThat(tmp.resolve("run/checkpoint-1/trainer_state.json")).exists();
        assertThat(tmp.resolve("run/checkpoint-1/config.yaml")).exists();
    }

    static Iterable<String> iterable(Iterator<String> it) {
        List<String> l = new ArrayList<>();
        it.forEachRemaining(l::add);
        return l;
    }

    List<Double> losses(Map<String, Object> cfg) throws IOException {
        Recorder rec = new Recorder();
        try (PreferenceTrainer t = PreferenceTrainer.create(TrainConfig.resolve(null, cfg), false)) {
            t.addListener(rec);
            t.train();
        }
        return rec.steps.stream().map(m -> m.get("loss")).toList();
    }

    @Test
    void aFloat16ReferenceTrainsCloseToTheFloat32One() throws IOException {
        Map<String, Object> fp32 = base("fp32");
        fp32.put("max_steps", 3);
        fp32.put("batch_size", 2);
        Map<String, Object> fp16 = new HashMap<>(fp32);
        fp16.put("output", tmp.resolve("fp16").toString());
        fp16.put("reference_dtype", "fp16");
        List<Double> a = losses(fp32);
        List<Double> b = losses(fp16);
        assertThat(b).hasSize(3);
        for (int i = 0; i < 3; i++) {
            // float16 weights move each summed log-prob by about 1e-3 relative; β = 0.1 shrinks that in the loss
            assertThat(b.get(i)).as("step %d", i + 1).isCloseTo(a.get(i), Offset.offset(5e-3));
            assertThat(b.get(i))
                    .as("step %d differs: the reference really is float16", i + 1)
                    .isNotEqualTo(a.get(i));
        }
    }

    @Test
    void precomputedAndFrozenCopyReferencesGiveTheSameLosses() throws IOException {
        for (String loss : List.of("dpo", "ipo")) {
            Map<String, Object> copy = base("copy-" + loss);
            copy.put("max_steps", 3);
            copy.put("batch_size", 2);
            copy.put("loss", loss);
            Map<String, Object> pre = new HashMap<>(copy);
            pre.put("output", tmp.resolve("pre-" + loss).toString());
            pre.put("reference", "precomputed");
            List<Double> a = losses(copy);
            List<Double> b = losses(pre);
            assertThat(a).hasSize(3);
            for (int i = 0; i < 3; i++) {
                assertThat(b.get(i))
                        .as("%s step %d", loss, i + 1)
                        .isCloseTo(a.get(i), Offset.offset(1e-6 * Math.max(1, Math.abs(a.get(i)))));
            }
            try (var files = Files.list(tmp.resolve("pre-" + loss + "/cache"))) {
                assertThat(files.filter(p -> p.getFileName().toString().startsWith("reference-logps-"))
                                .count())
                        .isEqualTo(1);
            }
        }
    }

    @Test
    void gradientAccumulationOfTwoHalvesEqualsOneFullBatch() throws IOException {
        Map<String, Object> full = base("full");
        full.put("max_steps", 2);
        full.put("learning_rate", 1e-2);
        Map<String, Object> halves = new HashMap<>(full);
        halves.put("output", tmp.resolve("halves").toString());
        halves.put("batch_size", 2);
        halves.put("grad_accum", 2);
        Recorder a = new Recorder();
        Recorder b = new Recorder();
        try (PreferenceTrainer t = PreferenceTrainer.create(TrainConfig.resolve(null, full), false)) {
            t.addListener(a);
            t.train();
        }
        try (PreferenceTrainer t = PreferenceTrainer.create(TrainConfig.resolve(null, halves), false)) {
            t.addListener(b);
            t.train();
        }
        for (int i = 0; i < 2; i++) {
            assertThat(b.steps.get(i).get("loss")).isCloseTo(a.steps.get(i).get("loss"), Offset.offset(1e-5));
            assertThat(b.steps.get(i).get("grad_norm"))
                    .isCloseTo(a.steps.get(i).get("grad_norm"), Percentage.withPercentage(1e-3));
        }
    }

    @Test
    void aNanLossStopsNamingStepAndBatchAndSetsTheDivergedWeightsAside() throws IOException {
        Map<String, Object> cfg = base("nan");
        cfg.put("max_steps", 5);
        cfg.put("learning_rate", 1e30);
        cfg.put("save_every", 1);
        cfg.put("keep_last", 5);
        cfg.put("schedule", "constant");
        try (PreferenceTrainer t = PreferenceTrainer.create(TrainConfig.resolve(null, cfg), false)) {
            assertThatThrownBy(() -> t.train())
                    .isInstanceOf(TrainingDivergedException.class)
                    .hasMessageContaining("four.jsonl:")
                    .hasMessageContaining("no checkpoint of this run has given a finite loss");
        }
        // the weights saved after step 1 are what diverged: never offered as good, never resumed
        assertThat(tmp.resolve("nan/checkpoint-1")).doesNotExist();
        assertThat(Checkpoints.latest(tmp.resolve("nan"))).isEmpty();
    }

    @Test
    void theCheckpointNamedAsLastGoodLoadsAndGivesAFiniteLoss() throws IOException {
        Map<String, Object> cfg = base("late-nan");
        cfg.put("max_steps", 8);
        cfg.put("learning_rate", 1e30); // reached after a warm-up of 4 steps from 0: step 1 is harmless, step 2 is not
        cfg.put("warmup_steps", 4);
        cfg.put("save_every", 1);
        cfg.put("keep_last", 1);
        cfg.put("schedule", "constant");
        String message;
        try (PreferenceTrainer t = PreferenceTrainer.create(TrainConfig.resolve(null, cfg), false)) {
            message = Assertions.catchThrowableOfType(t::train, TrainingDivergedException.class)
                    .getMessage();
        }
        assertThat(message)
                .contains("the last checkpoint whose weights gave a finite loss is "
                        + tmp.resolve("late-nan/checkpoint-1"));
        // keep_last 1 did not prune it, and it is good: it loads and scores finite log-probs
        try (var lm = CausalLm.load(tmp.resolve("late-nan/checkpoint-1"), Device.cpu());
                var tk = TextTokenizer.load(tmp.resolve("late-nan/checkpoint-1"));
                var m = NDManager.newBaseManager(Device.cpu())) {
            var batch = PreferenceBatch.of(
                    m,
                    List.of(new EncodedPair(tk.encode("Hi"), tk.encode(" there"), tk.encode(" no"), null)),
                    tk.padId());
            double logps = lm.completionLogProbs(batch.ids(), batch.attentionMask(), batch.completionMask(), false)
                    .sum()
                    .sum()
                    .getFloat();
            assertThat(logps).isFinite();
        }
        assertThat(Checkpoints.latest(tmp.resolve("late-nan")))
                .hasValueSatisfying(p -> assertThat(p.getFileName().toString()).isEqualTo("checkpoint-1"));
    }

    @Test
    void resumeInProcessReproducesTheUninterruptedLosses() throws IOException {
        Map<String, Object> straight = base("straight");
        straight.put("max_steps", 4);
        straight.put("batch_size", 2);
        straight.put("learning_rate", 1e-2);
        straight.put("schedule", "cosine");
        straight.put("warmup_steps", 1);
        List<Double> expected = losses(straight);

        Map<String, Object> stopped = new HashMap<>(straight);
        stopped.put("output", tmp.resolve("stopped").toString());
        Recorder first = new Recorder();
        try (PreferenceTrainer t = PreferenceTrainer.create(TrainConfig.resolve(null, stopped), false)) {
            t.addListener(first);
            t.addListener(new TrainingListener() {
                @Override
                public void onStep(long step, Map<String, Double> metrics) {
                    if (step == 2) {
                        t.requestStop();
                    }
                }
            });
            TrainResult r = t.train();
            assertThat(r.interrupted()).isTrue();
            assertThat(r.lastCheckpoint().getFileName().toString()).isEqualTo("checkpoint-2");
        }
        Recorder second = new Recorder();
        try (PreferenceTrainer t = PreferenceTrainer.create(TrainConfig.resolve(null, stopped), true)) {
            t.addListener(second);
            t.train();
        }
        List<Double> got = new ArrayList<>();
        first.steps.forEach(m -> got.add(m.get("loss")));
        second.steps.forEach(m -> got.add(m.get("loss")));
        assertThat(got).hasSize(4);
        for (int i = 0; i < 4; i++) {
            assertThat(got.get(i)).as("step %d", i + 1).isCloseTo(expected.get(i), Offset.offset(1e-6));
        }
        assertThat(Files.readAllLines(tmp.resolve("stopped/metrics.jsonl"))).hasSize(4);
    }

    @Test
    void configKeysAndValuesAreCheckedByName() throws IOException {
        Path yaml = tmp.resolve("c.yaml");
        Files.writeString(yaml, "model: m\ndata: d\noutput: o\nlearning_rat: 0.1\n");
        assertThatThrownBy(() -> TrainConfig.resolve(yaml, Map.of()))
                .hasMessageContaining("c.yaml")
                .hasMessageContaining("learning_rat")
                .hasMessageContaining("unknown");
        Files.writeString(yaml, "model: m\ndata: d\noutput: o\nbeta: -1\n");
        assertThatThrownBy(() -> TrainConfig.resolve(yaml, Map.of())).hasMessageContaining("beta");
        Files.writeString(yaml, "model: m\ndata: d\noutput: o\nbatch_size: many\n");
        assertThatThrownBy(() -> TrainConfig.resolve(yaml, Map.of())).hasMessageContaining("c.yaml");
        Files.writeString(yaml, "model: m\ndata: d\noutput: o\nbeta: 0.3\nloss: ipo\n");
        TrainConfig c = TrainConfig.resolve(yaml, Map.of("beta", 0.5));
        assertThat(c.beta()).isEqualTo(0.5);
        assertThat(c.loss()).isEqualTo(LossType.IPO);
        assertThat(TrainConfig.resolve(null, Map.of("model", "m", "data", "d", "output", "o"))
                        .toYaml())
                .contains("learning_rate");
    }
}
