package org.align4j.evaluation.rewards;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.align4j.model.CausalLm;
import org.align4j.model.Fixtures;
import org.align4j.model.tokenizer.TextTokenizer;
import org.junit.jupiter.api.Test;

/**
 * A reward model as a reward function scores its samples longest first in batches bounded by rows and
 * positions, and returns each sample's reward in the samples' order, equal to its reward scored alone.
 */
class RewardModelFunctionTest {
    @Test
    void batchedRewardsAreEachSamplesOwnInOrder() {
        List<RewardFunction.Sample> samples = new ArrayList<>();
        for (JsonNode p : Fixtures.prefs()) {
            // completions of different lengths, so that longest-first reorders them
            for (String c :
                    new String[] {p.get("chosen").asText(), p.get("rejected").asText()}) {
                samples.add(new RewardFunction.Sample(p.get("prompt").asText(), c, new int[0], false, Map.of(), "t"));
            }
        }
        String dir = "transformers-written/gpt2-tiny";
        List<Double> alone = new ArrayList<>();
        List<Double> batched;
        try (CausalLm a = CausalLm.load(Fixtures.reward(dir), Device.cpu());
                TextTokenizer ta = TextTokenizer.load(Fixtures.reward(dir));
                CausalLm b = CausalLm.load(Fixtures.reward(dir), Device.cpu());
                TextTokenizer tb = TextTokenizer.load(Fixtures.reward(dir))) {
            RewardModelFunction one = new RewardModelFunction(a, ta, false, 1);
            for (RewardFunction.Sample s : samples) {
                alone.add(one.score(List.of(s)).get(0));
            }
            batched = new RewardModelFunction(b, tb, false, 3).score(samples);
        }
        assertThat(batched).hasSize(samples.size());
        for (int i = 0; i < samples.size(); i++) {
            assertThat(batched.get(i)).as("sample %d", i).isCloseTo(alone.get(i), within(1e-5));
        }
        assertThat(alone.stream().distinct().count())
                .as("the samples' rewards differ")
                .isGreaterThan(2);
    }
}
