package org.align4j.evaluation;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.offset;

import ai.djl.Device;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.align4j.evaluation.WinRate.Judge.Verdict;
import org.align4j.model.CausalLm;
import org.align4j.model.Fixtures;
import org.align4j.model.generate.GenerationConfig;
import org.align4j.model.tokenizer.TextTokenizer;
import org.junit.jupiter.api.Test;

class WinRateTest {
    @Test
    void wilsonIntervalMatchesTheTextbookValues() {
        // 8 successes in 10: Wilson 95% interval (0.4902, 0.9433) (Newcombe 1998, method 3)
        List<Verdict> v = new ArrayList<>(Collections.nCopies(8, Verdict.FIRST));
        v.addAll(Collections.nCopies(2, Verdict.SECOND));
        WinRate w = WinRate.of(v);
        assertThat(w.rate()).isEqualTo(0.8);
        assertThat(w.lower()).isCloseTo(0.4902, offset(1e-4));
        assertThat(w.upper()).isCloseTo(0.9433, offset(1e-4));
        // 0 of 20: (0, 0.1611)
        WinRate none = WinRate.of(Collections.nCopies(20, Verdict.SECOND));
        assertThat(none.rate()).isZero();
        assertThat(none.lower()).isZero();
        assertThat(none.upper()).isCloseTo(0.1611, offset(1e-4));
    }

    @Test
    void tiesCountHalf() {
        WinRate w = WinRate.of(List.of(Verdict.FIRST, Verdict.TIE, Verdict.TIE, Verdict.SECOND));
        assertThat(w.wins()).isEqualTo(1);
        assertThat(w.ties()).isEqualTo(2);
        assertThat(w.losses()).isEqualTo(1);
        assertThat(w.rate()).isEqualTo(0.5);
        assertThat(w.lower()).isLessThan(0.5);
        assertThat(w.upper()).isGreaterThan(0.5);
        assertThatThrownBy(() -> WinRate.of(List.of())).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void scoreJudgePrefersTheHigherScore() {
        WinRate.Judge judge = WinRate.Judge.byScore((prompt, answer) -> answer.equals("4") ? 1 : 0);
        assertThat(judge.compare("2+2=", "4", "5")).isEqualTo(Verdict.FIRST);
        assertThat(judge.compare("2+2=", "5", "4")).isEqualTo(Verdict.SECOND);
        assertThat(judge.compare("2+2=", "3", "5")).isEqualTo(Verdict.TIE);
    }

    @Test
    void generatesFromBothModelsAndJudgesEachPrompt() {
        try (CausalLm policy = CausalLm.load(Fixtures.model("gpt2-tiny"), Device.cpu());
                CausalLm reference = CausalLm.load(Fixtures.model("gpt2-tiny-ref"), Device.cpu());
                TextTokenizer tk = TextTokenizer.load(Fixtures.model("gpt2-tiny"))) {
            List<String> prompts = List.of("The cat", "A dog is", "hello", "Preference");
            GenerationConfig greedy = GenerationConfig.greedy(5).withStopAtEos(false);
            // a judge that prefers the longer answer (in characters)
            WinRate.Result same = WinRate.evaluate(
                    policy, policy, tk, prompts, greedy, WinRate.Judge.byScore((p, a) -> a.length()), 2);
            assertThat(same.winRate().ties()).isEqualTo(4);
            assertThat(same.samples()).extracting(WinRate.Sample::prompt).containsExactlyElementsOf(prompts);
            WinRate.Result r = WinRate.evaluate(
                    policy, reference, tk, prompts, greedy, WinRate.Judge.byScore((p, a) -> a.length()), 3);
            List<String> mine = WinRate.generate(policy, tk, prompts, greedy, 4);
            List<String> theirs = WinRate.generate(reference, tk, prompts, greedy, 1);
            for (int i = 0; i < prompts.size(); i++) {
                WinRate.Sample s = r.samples().get(i);
                assertThat(s.policy()).isEqualTo(mine.get(i));
                assertThat(s.reference()).isEqualTo(theirs.get(i));
                Verdict expected =
                        Integer.compare(mine.get(i).length(), theirs.get(i).length()) > 0
                                ? Verdict.FIRST
                                : mine.get(i).length() < theirs.get(i).length() ? Verdict.SECOND : Verdict.TIE;
                assertThat(s.verdict()).isEqualTo(expected);
            }
        }
    }
}
