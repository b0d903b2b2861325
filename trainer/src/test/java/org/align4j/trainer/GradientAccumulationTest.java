package org.align4j.trainer;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.Map;
import java.util.Set;
import org.align4j.losses.LossType;
import org.align4j.model.Fixtures;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * One optimizer step over the same eight examples must not depend on how it is split into
 * micro-batches: SFT weighs every completion token of the step equally (transformers' {@code
 * num_items_in_batch}), a preference objective every pair; the logged loss is the one differentiated.
 */
class GradientAccumulationTest {
    @TempDir
    Path tmp;

    private Map<String, Double> firstStep(LossType loss, int batchSize, int gradAccum) throws Exception {
        TrainConfig.Builder<TrainConfig> b = TrainConfig.builder()
                .model(Fixtures.model("gpt2-tiny"))
                .data(Fixtures.root().resolve("prefs.jsonl"))
                .output(tmp.resolve(loss + "-" + batchSize + "x" + gradAccum))
                .loss(loss)
                .learningRate(1e-3)
                .batchSize(batchSize)
                .gradAccum(gradAccum)
                .maxSteps(1)
                .maxGradNorm(0)
                // dropout masks follow the micro-batches' shapes, so only a step without dropout is the same however
                // split
                .disableDropout(true);
        TrlParityTest.Recorder rec = new TrlParityTest.Recorder();
        if (loss == LossType.SFT) {
            try (SftTrainer t = SftTrainer.create(b.build(), false)) {
                t.addListener(rec);
                t.train();
            }
        } else {
            try (PreferenceTrainer t = PreferenceTrainer.create(
                    b.referenceModel(Fixtures.model("gpt2-tiny-ref")).build(), false)) {
                t.addListener(rec);
                t.train();
            }
        }
        return rec.steps.get(0);
    }

    /**
     * TRL's token metrics are means over a micro-batch's tokens, combined over the step's micro-batches as
     * every metric is (by pairs; TRL: equally), so they depend on the split, as TRL's do.
     */
    private static final Set<String> TOKEN_MEANS =
            Set.of("entropy", "logits/chosen", "logits/rejected", "mean_token_accuracy");

    @ParameterizedTest(name = "{0}: {1} x {2} (micro-batches of {3})")
    @CsvSource({
        "sft, 1, 8, 1 each",
        "sft, 2, 4, 2 each",
        "sft, 3, 3, '3, 3, 2'",
        "sft, 5, 2, '5, 3'",
        "dpo, 1, 8, 1 each",
        "dpo, 4, 2, 4 each",
        "dpo, 3, 3, '3, 3, 2'",
        "ipo, 5, 2, '5, 3'"
    })
    void everySplitOfAStepGivesTheSameLossAndGradientNorm(
            String loss, int batchSize, int gradAccum, String microBatches) throws Exception {
        LossType type = LossType.parse(loss);
        Map<String, Double> whole = firstStep(type, 8, 1);
        Map<String, Double> split = firstStep(type, batchSize, gradAccum);
        for (String metric : whole.keySet()) {
            if (metric.equals("tokens_per_second") || TOKEN_MEANS.contains(metric)) {
                continue;
            }
            assertThat(split.get(metric))
                    .as("%s with %d x %d: %s", loss, batchSize, gradAccum, metric)
                    .isCloseTo(whole.get(metric), Offset.offset(1e-5 * Math.max(1, Math.abs(whole.get(metric)))));
        }
    }
}
