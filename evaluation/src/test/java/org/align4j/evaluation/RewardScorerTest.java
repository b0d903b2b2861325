package org.align4j.evaluation;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import ai.djl.Device;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import org.align4j.data.EncodedPair;
import org.align4j.model.CausalLm;
import org.align4j.model.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Length-sorted batches bounded by tokens give each pair the rewards it gets alone (batch size 1), in
 * the pairs' order, on mixed lengths: a learned-position model (GPT-2) and a rotary one (Llama).
 */
class RewardScorerTest {
    private static List<EncodedPair> mixedPairs(int n, int pad) {
        Random rnd = new Random(11);
        List<EncodedPair> pairs = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int lc = 1 + rnd.nextInt(i % 4 == 0 ? 200 : 30);
            int lr = 1 + rnd.nextInt(i % 5 == 0 ? 120 : 30);
            pairs.add(new EncodedPair(new int[0], ids(rnd, lc, pad), ids(rnd, lr, pad), null));
        }
        return pairs;
    }

    private static int[] ids(Random rnd, int n, int pad) {
        int[] a = new int[n];
        for (int i = 0; i < n; i++) {
            do {
                a[i] = 4 + rnd.nextInt(590);
            } while (a[i] == pad);
        }
        return a;
    }

    @ParameterizedTest
    @ValueSource(strings = {"transformers-written/gpt2-tiny", "transformers-written/llama-tiny"})
    void tokenBudgetBatchesGiveTheRewardsOfBatchSizeOne(String fixture) {
        try (CausalLm rm = CausalLm.load(Fixtures.reward(fixture), Device.cpu())) {
            rm.setTrainable(false);
            int pad = RewardScorer.padId(rm, 3);
            List<EncodedPair> pairs = mixedPairs(40, pad);
            List<RewardScorer.PairRewards> alone = RewardScorer.score(rm, pairs, 1, pad);
            for (long budget : new long[] {64, 600, 8192}) {
                AtomicInteger told = new AtomicInteger();
                List<RewardScorer.PairRewards> batched =
                        RewardScorer.score(rm, pairs, 16, budget, pad, told::addAndGet);
                assertThat(told.get()).as("progress counts every pair once").isEqualTo(pairs.size());
                assertThat(batched).hasSameSizeAs(pairs);
                for (int i = 0; i < pairs.size(); i++) {
                    assertThat(batched.get(i).chosen())
                            .as("%s budget %d pair %d chosen", fixture, budget, i)
                            .isCloseTo(alone.get(i).chosen(), within(1e-4));
                    assertThat(batched.get(i).rejected())
                            .as("%s budget %d pair %d rejected", fixture, budget, i)
                            .isCloseTo(alone.get(i).rejected(), within(1e-4));
                }
            }
            assertThat(alone.get(0).chosen())
                    .as("the pairs are not all alike")
                    .isNotCloseTo(alone.get(1).chosen(), within(1e-6));
        }
    }

    /** Known rewards (a resumed run) are kept as they are and not scored again; the rest equal a full run's. */
    @Test
    void knownRewardsAreNotScoredAgain() {
        try (CausalLm rm = CausalLm.load(Fixtures.reward("transformers-written/gpt2-tiny"), Device.cpu())) {
            rm.setTrainable(false);
            int pad = RewardScorer.padId(rm, 3);
            List<EncodedPair> pairs = mixedPairs(12, pad);
            List<RewardScorer.PairRewards> full = RewardScorer.score(rm, pairs, 4, 600, pad, n -> {});
            RewardScorer.PairRewards[] known = new RewardScorer.PairRewards[pairs.size()];
            known[0] = new RewardScorer.PairRewards(123, -123);
            known[7] = new RewardScorer.PairRewards(7, 7);
            List<Integer> told = new ArrayList<>();
            List<RewardScorer.PairRewards> resumed =
                    RewardScorer.score(rm, pairs, 4, 600, pad, known, (indices, rewards) -> {
                        assertThat(rewards).hasSameSizeAs(indices);
                        for (int i : indices) {
                            told.add(i);
                        }
                    });
            assertThat(told).hasSize(10).doesNotContain(0, 7).doesNotHaveDuplicates();
            assertThat(resumed.get(0)).isEqualTo(new RewardScorer.PairRewards(123, -123));
            assertThat(resumed.get(7)).isEqualTo(new RewardScorer.PairRewards(7, 7));
            for (int i : told) {
                assertThat(resumed.get(i).chosen()).isCloseTo(full.get(i).chosen(), within(1e-4));
                assertThat(resumed.get(i).rejected()).isCloseTo(full.get(i).rejected(), within(1e-4));
            }
        }
    }

    @Test
    void boundsMustBePositive() {
        assertThatThrownBy(() -> RewardScorer.score(null, List.of(), 1, 0, 3, n -> {}))
                .hasMessageStartingWith("maxBatchTokens");
        assertThatThrownBy(() -> RewardScorer.score(null, List.of(), 0, 10, 3, n -> {}))
                .hasMessageStartingWith("maxPairs");
    }
}
