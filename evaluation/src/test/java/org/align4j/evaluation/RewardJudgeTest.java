package org.align4j.evaluation;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.util.List;
import org.align4j.model.CausalLm;
import org.align4j.model.Fixtures;
import org.align4j.model.tokenizer.TextTokenizer;
import org.junit.jupiter.api.Test;

/**
 * A reward model judges as transformers scores: with the transformers-written fixture, the verdict on
 * (prompt, chosen, rejected) of each fixture pair follows transformers' own rewards of those sequences.
 */
class RewardJudgeTest {
    @Test
    void theVerdictFollowsTransformersRewards() throws IOException {
        JsonNode fx = new ObjectMapper()
                .readTree(Fixtures.reward("transformers-written/gpt2-tiny")
                        .resolve("rewards.json")
                        .toFile());
        List<JsonNode> prefs = Fixtures.prefs();
        int n = prefs.size();
        try (CausalLm rm = CausalLm.load(Fixtures.reward("transformers-written/gpt2-tiny"), Device.cpu());
                TextTokenizer tk = TextTokenizer.load(Fixtures.reward("transformers-written/gpt2-tiny"))) {
            WinRate.Judge judge = WinRate.Judge.byRewardModel(rm, tk);
            int first = 0;
            for (int i = 0; i < n; i++) {
                JsonNode p = prefs.get(i);
                double rc = fx.get("unpadded").get(i).asDouble();
                double rr = fx.get("unpadded").get(n + i).asDouble();
                WinRate.Judge.Verdict want = rc > rr ? WinRate.Judge.Verdict.FIRST : WinRate.Judge.Verdict.SECOND;
                assertThat(judge.compare(
                                p.get("prompt").asText(),
                                p.get("chosen").asText(),
                                p.get("rejected").asText()))
                        .as("pair %d", i)
                        .isEqualTo(want);
                assertThat(judge.compare(
                                p.get("prompt").asText(),
                                p.get("rejected").asText(),
                                p.get("chosen").asText()))
                        .as("pair %d swapped", i)
                        .isNotEqualTo(want);
                first += want == WinRate.Judge.Verdict.FIRST ? 1 : 0;
            }
            assertThat(first).as("the fixture has pairs either way").isBetween(1, n - 1);
            assertThat(judge.compare("a", " b", " b")).isEqualTo(WinRate.Judge.Verdict.TIE);
        }
        try (CausalLm lm = CausalLm.load(Fixtures.model("gpt2-tiny"), Device.cpu());
                TextTokenizer tk = TextTokenizer.load(Fixtures.model("gpt2-tiny"))) {
            assertThatThrownBy(() -> WinRate.Judge.byRewardModel(lm, tk))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("not a reward model");
        }
    }

    @Test
    void preferenceIsTheSigmoidOfTheMarginOverTheTemperature() {
        assertThat(RewardScorer.preference(0, 1)).isEqualTo(0.5);
        assertThat(RewardScorer.preference(Math.log(3), 1)).isCloseTo(0.75, within(1e-15));
        assertThat(RewardScorer.preference(2 * Math.log(3), 2)).isCloseTo(0.75, within(1e-15));
        assertThat(RewardScorer.preference(-Math.log(3), 1)).isCloseTo(0.25, within(1e-15));
        assertThat(RewardScorer.preference(-1e4, 1)).isZero();
        assertThat(RewardScorer.preference(1e4, 0.5)).isEqualTo(1.0);
        assertThat(new RewardScorer.PairRewards(1.5, 0.5).preference(1))
                .isCloseTo(1 / (1 + Math.exp(-1)), within(1e-15));
        assertThatThrownBy(() -> RewardScorer.preference(1, 0)).hasMessageStartingWith("temperature");
    }
}
