package org.align4j.evaluation;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import ai.djl.Device;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import org.align4j.data.EncodedPair;
import org.align4j.model.CausalLm;
import org.align4j.model.Fixtures;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Length-sorted batches bounded by tokens give each pair the log-probs it gets alone, in the pairs' order. */
class PairScorerTest {
    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny", "llama-tiny"})
    void tokenBudgetBatchesGiveTheLogProbsOfBatchSizeOne(String fixture) {
        Random rnd = new Random(5);
        List<EncodedPair> pairs = new ArrayList<>();
        for (int i = 0; i < 30; i++) {
            pairs.add(new EncodedPair(
                    ids(rnd, 1 + rnd.nextInt(i % 3 == 0 ? 100 : 10)),
                    ids(rnd, 1 + rnd.nextInt(i % 4 == 0 ? 120 : 20)),
                    ids(rnd, 1 + rnd.nextInt(20)),
                    null));
        }
        try (CausalLm lm = CausalLm.load(Fixtures.model(fixture), Device.cpu())) {
            lm.setTrainable(false);
            List<PairScorer.PairScore> alone = PairScorer.score(lm, pairs, 1, 1);
            for (long budget : new long[] {50, 500, 8192}) {
                AtomicInteger told = new AtomicInteger();
                List<PairScorer.PairScore> batched = PairScorer.score(lm, pairs, 8, budget, 1, told::addAndGet);
                assertThat(told.get()).isEqualTo(pairs.size());
                for (int i = 0; i < pairs.size(); i++) {
                    PairScorer.PairScore a = alone.get(i);
                    PairScorer.PairScore b = batched.get(i);
                    String what = fixture + " budget " + budget + " pair " + i;
                    assertThat(b.chosenLogps()).as(what).isCloseTo(a.chosenLogps(), within(1e-3));
                    assertThat(b.rejectedLogps()).as(what).isCloseTo(a.rejectedLogps(), within(1e-3));
                    assertThat(b.chosenLogpsMean()).as(what).isCloseTo(a.chosenLogpsMean(), within(1e-4));
                    assertThat(b.rejectedTokens()).as(what).isEqualTo(a.rejectedTokens());
                }
            }
            assertThat(alone.get(0).chosenLogps()).isNotCloseTo(alone.get(1).chosenLogps(), within(1e-6));
        }
    }

    private static int[] ids(Random rnd, int n) {
        int[] a = new int[n];
        for (int i = 0; i < n; i++) {
            a[i] = 4 + rnd.nextInt(590);
        }
        return a;
    }
}
