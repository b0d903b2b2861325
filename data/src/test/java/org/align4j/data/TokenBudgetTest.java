package org.align4j.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Scoring batches bounded by padded tokens: every pair once, longest first, within the budget. */
class TokenBudgetTest {
    private static EncodedPair pair(int prompt, int chosen, int rejected) {
        return new EncodedPair(new int[prompt], new int[chosen], new int[rejected], null);
    }

    @Test
    void everyPairOnceLongestFirstWithinTheBudget() {
        Random rnd = new Random(7);
        List<EncodedPair> pairs = new ArrayList<>();
        for (int i = 0; i < 200; i++) {
            pairs.add(pair(rnd.nextInt(50), 1 + rnd.nextInt(300), 1 + rnd.nextInt(300)));
        }
        pairs.add(pair(10, 1000, 5)); // longer than the budget alone
        int budget = 1024;
        List<int[]> plan = TokenBudget.plan(pairs, 16, budget);
        boolean[] seen = new boolean[pairs.size()];
        int previous = Integer.MAX_VALUE;
        for (int[] b : plan) {
            int longest = 0;
            for (int i : b) {
                assertThat(seen[i]).as("pair %d twice", i).isFalse();
                seen[i] = true;
                int len = pairs.get(i).maxLength();
                assertThat(len).as("longest first").isLessThanOrEqualTo(previous);
                previous = len;
                longest = Math.max(longest, len);
            }
            assertThat(b.length).isBetween(1, 16);
            if (b.length > 1) {
                assertThat(2L * b.length * longest).isLessThanOrEqualTo(budget);
            }
        }
        for (boolean s : seen) {
            assertThat(s).isTrue();
        }
        assertThat(plan.get(0)).containsExactly(pairs.size() - 1);
    }

    @Test
    void shortPairsFillTheBatchUpToTheRowCap() {
        List<EncodedPair> pairs = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            pairs.add(pair(2, 3, 1));
        }
        assertThat(TokenBudget.plan(pairs, 4, 8192)).extracting(b -> b.length).containsExactly(4, 4, 2);
        assertThat(TokenBudget.plan(pairs, 4, 8192).get(0)).containsExactly(0, 1, 2, 3);
        assertThat(TokenBudget.plan(List.of(), 4, 10)).isEmpty();
    }

    @Test
    void boundsMustBePositive() {
        assertThatThrownBy(() -> TokenBudget.plan(List.of(), 0, 10)).hasMessageStartingWith("maxPairs");
        assertThatThrownBy(() -> TokenBudget.plan(List.of(), 1, 0)).hasMessageStartingWith("maxTokens");
    }
}
