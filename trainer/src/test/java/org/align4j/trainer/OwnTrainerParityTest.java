package org.align4j.trainer;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.align4j.model.Fixtures;
import org.align4j.model.nn.Compute;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * KTO, ORPO and CPO against TRL 1.13's {@code KTOTrainer} and its experimental {@code ORPOTrainer} and
 * {@code CPOTrainer} on the fixture models: ten steps, every metric TRL logs (but {@code epoch}) compared
 * at every step within 1e-4 relative. The expected values are TRL's own logs, made by {@code
 * src/test/python/trl_fixtures.py} (its {@code UNPAIRED} runs): KTO on unpaired records (plain and
 * conversational, both loss types, with gradient accumulation) and on pairs TRL unpairs itself; ORPO on
 * plain and conversational pairs; CPO with each loss type, label smoothing, SimPO with and without the BC
 * term, and AlphaPO.
 */
class OwnTrainerParityTest {
    private static final Logger LOG = LoggerFactory.getLogger(OwnTrainerParityTest.class);

    private static final double RELATIVE = 1e-4;
    private static final double ABSOLUTE = 1e-6;

    /** The step's number and epoch, which are not metrics. */
    private static final Set<String> NOT_COMPARED = Set.of("step", "epoch");

    /** The runs of trl_fixtures.py's UNPAIRED table, on gpt2-tiny, and those also on llama-tiny and qwen2-tiny. */
    private static final List<String> GPT2_ONLY = List.of(
            "kto-paired",
            "kto-apo_zero_unpaired",
            "kto-conversational",
            "kto-accumulation",
            "orpo-conversational",
            "cpo-hinge",
            "cpo-ipo",
            "cpo-label_smoothing",
            "cpo-simpo-bc",
            "cpo-alphapo");

    private static final List<String> EVERYWHERE = List.of("kto", "orpo", "cpo", "cpo-simpo");

    @TempDir
    Path tmp;

    static Stream<String> fixtures() {
        return Stream.concat(
                Stream.of("gpt2-tiny", "llama-tiny", "qwen2-tiny")
                        .flatMap(m -> EVERYWHERE.stream().map(r -> m + "-" + r)),
                GPT2_ONLY.stream().map(r -> "gpt2-tiny-" + r));
    }

    @ParameterizedTest
    @MethodSource("fixtures")
    void everyMetricEqualsTrlsAtEveryStep(String name) throws IOException {
        JsonNode doc = TrlParityTest.fixture(name);
        compare(name, doc, run(doc));
    }

    /** A fixture's data file: prefs.jsonl of the hf-tiny fixtures, or one of this module's test resources. */
    static Path data(String path) {
        if (path.startsWith("model/")) {
            return Fixtures.root().resolve(Path.of(path).getFileName());
        }
        try {
            return Path.of(OwnTrainerParityTest.class
                    .getResource("/trl/" + Path.of(path).getFileName())
                    .toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    private List<Map<String, Double>> run(JsonNode doc) throws IOException {
        JsonNode s = doc.get("settings");
        String trainer = s.get("trainer").asText();
        TrlParityTest.Recorder rec = new TrlParityTest.Recorder();
        TrainConfig.Builder<? extends TrainingLoop> b = switch (trainer) {
            case "kto" -> KtoTrainer.builder();
            case "orpo" -> ReferenceFreeTrainer.orpoBuilder();
            case "cpo" -> ReferenceFreeTrainer.cpoBuilder();
            default -> throw new IllegalArgumentException(trainer);
        };
        b.model(Fixtures.model(s.get("model").asText()))
                .data(data(s.get("data").asText()))
                .output(tmp.resolve("run"))
                .learningRate(s.get("learning_rate").asDouble())
                .batchSize(s.get("per_device_train_batch_size").asInt())
                .gradAccum(s.get("gradient_accumulation_steps").asInt())
                .maxSteps(s.get("max_steps").asInt())
                .schedule(TrainConfig.Schedule.LINEAR)
                .warmupSteps(s.get("warmup_steps").asInt())
                .weightDecay(s.get("weight_decay").asDouble())
                .maxGradNorm(s.get("max_grad_norm").asDouble())
                .seed(s.get("seed").asLong())
                .beta(s.get("beta").asDouble())
                .attention(
                        "eager".equals(s.get("attention").asText()) ? Compute.Attention.EAGER : Compute.Attention.SDPA);
        switch (trainer) {
            case "kto" -> {
                b.referenceModel(Fixtures.model(s.get("reference_model").asText()));
                for (String k :
                        List.of("loss_type", "desirable_weight", "undesirable_weight", "unpair_preference_dataset")) {
                    b.set(k, value(s.get(k)));
                }
            }
            case "cpo" -> {
                b.set("loss_type", s.get("loss_type").asText());
                for (String k : List.of("cpo_alpha", "simpo_gamma", "alpha", "label_smoothing")) {
                    if (s.has(k)) {
                        b.set(k, value(s.get(k)));
                    }
                }
            }
            default -> {}
        }
        try (TrainingLoop t = b.build()) {
            t.addListener(rec);
            t.train();
        }
        return rec.steps;
    }

    private static Object value(JsonNode v) {
        return v.isBoolean() ? v.asBoolean() : v.isNumber() ? v.asDouble() : v.asText();
    }

    private static void compare(String name, JsonNode doc, List<Map<String, Double>> got) {
        JsonNode steps = doc.get("steps");
        assertThat(got).as(name + ": steps").hasSize(steps.size());
        List<String> failures = new ArrayList<>();
        double worst = 0;
        String worstAt = "";
        for (int i = 0; i < steps.size(); i++) {
            JsonNode want = steps.get(i);
            Iterator<String> names = want.fieldNames();
            while (names.hasNext()) {
                String metric = names.next();
                if (NOT_COMPARED.contains(metric)) {
                    continue;
                }
                double w = want.get(metric).asDouble();
                Double g = got.get(i).get(metric);
                if (g == null) {
                    failures.add(name + " step " + (i + 1) + " " + metric + ": not logged by align4j");
                    continue;
                }
                double error = Math.abs(g - w);
                double relative = error / Math.max(Math.abs(w), 1e-30);
                if (error > ABSOLUTE && relative > worst) {
                    worst = relative;
                    worstAt = "step " + (i + 1) + " " + metric;
                }
                if (error > Math.max(ABSOLUTE, RELATIVE * Math.abs(w))) {
                    failures.add(String.format(
                            "%s step %d %s: align4j %.8g, TRL %.8g (relative %.2g)",
                            name, i + 1, metric, g, w, relative));
                }
            }
            // a metric TRL leaves out of a step (KTO's rewards/rejected of a batch of desirable examples only)
            for (String conditional : List.of(
                    "rewards/chosen",
                    "rewards/rejected",
                    "rewards/margins",
                    "logps/chosen",
                    "logps/rejected",
                    "logits/chosen",
                    "logits/rejected")) {
                if (!want.has(conditional) && got.get(i).containsKey(conditional)) {
                    failures.add(name + " step " + (i + 1) + " " + conditional + ": logged by align4j, not by TRL");
                }
            }
        }
        LOG.info("{}: worst relative difference {} at {}", name, String.format("%.2g", worst), worstAt);
        assertThat(failures).as(name).isEmpty();
    }
}
