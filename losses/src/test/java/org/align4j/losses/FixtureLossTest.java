package org.align4j.losses;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import com.fasterxml.jackson.databind.JsonNode;
import java.util.Map;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.align4j.model.Fixtures;
import org.assertj.core.data.Offset;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/** Every loss in reference.json, recomputed from the fixture's log-prob tensors (1e-5 relative). */
class FixtureLossTest {
    static final double BETA = 0.1;
    static final String[] MODELS = {"gpt2-tiny", "llama-tiny", "qwen2-tiny"};

    static Stream<Arguments> cases() {
        Map<String, Supplier<PreferenceLoss>> objectives = Map.of(
                "sigmoid", () -> new DpoLoss(BETA),
                "sigmoid_label_smoothing_0.2", () -> new DpoLoss(BETA, 0.2),
                "hinge", () -> new HingeLoss(BETA),
                "ipo", () -> new IpoLoss(BETA),
                "ipo_sum_logps", () -> new IpoLoss(BETA, PreferenceLoss.Reduction.SUM),
                "ipo_soft_p0.8", () -> IpoLoss.soft(BETA, 0.8),
                "robust_0.2", () -> new RobustDpoLoss(BETA, 0.2));
        return Stream.of(MODELS)
                .flatMap(m -> objectives.entrySet().stream().map(e -> Arguments.of(m, e.getKey(), e.getValue())));
    }

    /** The fixture's [8] log-probs as float64: rows 0–3 chosen, 4–7 rejected. */
    static NDArray[] logps(Map<String, NDArray> ref, String policy, String reference) {
        NDArray p = ref.get(policy).toType(DataType.FLOAT64, false);
        NDArray r = ref.get(reference).toType(DataType.FLOAT64, false);
        return new NDArray[] {p.get("0:4"), p.get("4:8"), r.get("0:4"), r.get("4:8")};
    }

    static void assertRel(double actual, double expected, String what) {
        assertThat(Math.abs(actual - expected) / Math.abs(expected))
                .as("%s: %s vs %s", what, actual, expected)
                .isLessThan(1e-5);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cases")
    void lossMatchesTransformersReference(String model, String key, Supplier<PreferenceLoss> objective) {
        JsonNode expected = Fixtures.referenceJson(model).get("losses");
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            Map<String, NDArray> ref = Fixtures.reference(model, m);
            PreferenceLoss loss = objective.get();
            NDArray[] x = loss.reduction() == PreferenceLoss.Reduction.MEAN
                    ? logps(ref, "policy_logps_mean", "reference_logps_mean")
                    : logps(ref, "policy_logps", "reference_logps");
            double value = loss.compute(x[0], x[1], x[2], x[3], null).meanLoss().getDouble();
            assertRel(value, expected.get(key).asDouble(), model + " " + key);
            if (key.startsWith("ipo_soft")) {
                NDArray p = m.ones(x[0].getShape(), DataType.FLOAT64).mul(0.8);
                assertRel(
                        loss.compute(x[0], x[1], x[2], x[3], p).meanLoss().getDouble(),
                        expected.get(key).asDouble(),
                        key + " per-pair p");
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny", "llama-tiny", "qwen2-tiny"})
    void rewardsAreBetaTimesLogRatios(String model) {
        JsonNode json = Fixtures.referenceJson(model);
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray[] x = logps(Fixtures.reference(model, m), "policy_logps", "reference_logps");
            PreferenceLoss.Output out = new DpoLoss(BETA).compute(x[0], x[1], x[2], x[3], null);
            double[] c = out.chosenRewards().toDoubleArray();
            double[] r = out.rejectedRewards().toDoubleArray();
            for (int i = 0; i < 4; i++) {
                assertRel(c[i], json.get("rewards_chosen").get(i).asDouble(), "rewards_chosen[" + i + "]");
                assertRel(r[i], json.get("rewards_rejected").get(i).asDouble(), "rewards_rejected[" + i + "]");
            }
            Map<String, Double> metrics = RewardMetrics.of(out.chosenRewards(), out.rejectedRewards(), x[0], x[1]);
            Map<String, Double> host = RewardMetrics.of(c, r, x[0].toDoubleArray(), x[1].toDoubleArray());
            host.forEach((k, v) ->
                    assertThat(v).as("host and device agree on %s", k).isCloseTo(metrics.get(k), Offset.offset(1e-6)));
            assertThat(metrics)
                    .containsOnlyKeys(
                            "rewards/chosen",
                            "rewards/rejected",
                            "rewards/margins",
                            "rewards/accuracies",
                            "logps/chosen",
                            "logps/rejected");
            double accuracy = 0;
            for (int i = 0; i < 4; i++) {
                accuracy += json.get("rewards_chosen").get(i).asDouble()
                                > json.get("rewards_rejected").get(i).asDouble()
                        ? 0.25
                        : 0;
            }
            assertThat(metrics.get("rewards/accuracies")).isEqualTo(accuracy);
            // IPO reads mean log-probs, but reports rewards on sums, as TRL does
            PreferenceLoss ipo = new IpoLoss(BETA);
            NDArray[] mean = logps(Fixtures.reference(model, m), "policy_logps_mean", "reference_logps_mean");
            var ipoRewards = RewardMetrics.rewards(
                    ipo, ipo.compute(mean[0], mean[1], mean[2], mean[3], null), x[0], x[1], x[2], x[3]);
            assertThat(ipoRewards.get(0).toDoubleArray()).containsExactly(c, Offset.offset(1e-6));
            assertThat(metrics.get("rewards/margins"))
                    .isCloseTo(metrics.get("rewards/chosen") - metrics.get("rewards/rejected"), Offset.offset(1e-9));
        }
    }
}
