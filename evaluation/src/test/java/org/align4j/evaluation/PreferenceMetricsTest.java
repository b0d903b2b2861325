package org.align4j.evaluation;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.offset;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.align4j.data.EncodedPair;
import org.align4j.model.CausalLm;
import org.align4j.model.Fixtures;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class PreferenceMetricsTest {
    /** The fixture's four pairs, split back into prompt and completion by its completion mask. */
    static List<EncodedPair> fixturePairs(String name) {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            Map<String, NDArray> ref = Fixtures.reference(name, m);
            long[] ids = ref.get("pref_input_ids").toLongArray();
            long[] att = ref.get("pref_attention_mask").toLongArray();
            long[] comp = ref.get("pref_completion_mask").toLongArray();
            int rows = (int) ref.get("pref_input_ids").getShape().get(0);
            int t = ids.length / rows;
            List<int[][]> parts = new ArrayList<>();
            for (int r = 0; r < rows; r++) {
                List<Integer> prompt = new ArrayList<>();
                List<Integer> completion = new ArrayList<>();
                for (int j = 0; j < t; j++) {
                    if (att[r * t + j] == 1) {
                        (comp[r * t + j] == 1 ? completion : prompt).add((int) ids[r * t + j]);
                    }
                }
                parts.add(new int[][] {
                    prompt.stream().mapToInt(i -> i).toArray(),
                    completion.stream().mapToInt(i -> i).toArray()
                });
            }
            List<EncodedPair> pairs = new ArrayList<>();
            int n = rows / 2;
            for (int i = 0; i < n; i++) {
                assertThat(parts.get(i)[0]).isEqualTo(parts.get(n + i)[0]);
                pairs.add(new EncodedPair(parts.get(i)[0], parts.get(i)[1], parts.get(n + i)[1], null));
            }
            return pairs;
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny", "llama-tiny", "qwen2-tiny"})
    void rewardsMatchTransformers(String name) {
        JsonNode json = Fixtures.referenceJson(name);
        double beta = json.get("beta").asDouble();
        try (CausalLm policy = CausalLm.load(Fixtures.model(name), Device.cpu());
                CausalLm reference = CausalLm.load(Fixtures.model(name + "-ref"), Device.cpu())) {
            List<EncodedPair> pairs = fixturePairs(name);
            PreferenceMetrics pm = PreferenceMetrics.evaluate(policy, reference, pairs, beta, 3, 3);
            double chosen = 0;
            double rejected = 0;
            double right = 0;
            for (int i = 0; i < 4; i++) {
                double c = json.get("rewards_chosen").get(i).asDouble();
                double r = json.get("rewards_rejected").get(i).asDouble();
                chosen += c / 4;
                rejected += r / 4;
                right += c > r ? 0.25 : 0;
            }
            assertThat(pm.pairs()).isEqualTo(4);
            assertThat(pm.chosenReward()).isCloseTo(chosen, offset(1e-4 * Math.max(1, Math.abs(chosen))));
            assertThat(pm.rejectedReward()).isCloseTo(rejected, offset(1e-4 * Math.max(1, Math.abs(rejected))));
            assertThat(pm.rewardMargin()).isCloseTo(chosen - rejected, offset(2e-4));
            assertThat(pm.rewardAccuracy()).isEqualTo(right);
            assertThat(pm.kl()).isGreaterThan(0);
            assertThat(pm.asMap()).containsKeys("rewards/accuracies", "rewards/margins", "kl", "logps/chosen");

            PreferenceMetrics self = PreferenceMetrics.evaluate(policy, policy, pairs, beta, 4, 3);
            assertThat(self.rewardAccuracy()).as("a tie counts 0, as in TRL").isZero();
            assertThat(self.rewardMargin()).isZero();
            assertThat(self.kl()).isZero();
            assertThat(Arrays.asList(self.chosenLogps(), self.referenceChosenLogps()))
                    .containsOnly(self.chosenLogps());
        }
    }
}
