package org.align4j.evaluation;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.offset;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class BanditTest {
    @ParameterizedTest
    @ValueSource(doubles = {0.1, 0.5, 1.0})
    void ipoEndsAtItsClosedFormAndDpoAtTheDeterministicPolicy(double beta) {
        Bandit.Curve ipo = Bandit.train("ipo", beta, Bandit.DEFAULT_STEPS, Bandit.DEFAULT_LEARNING_RATE, 100);
        Bandit.Curve dpo = Bandit.train("dpo", beta, Bandit.DEFAULT_STEPS, Bandit.DEFAULT_LEARNING_RATE, 100);
        double[] expected = Bandit.ipoClosedForm(beta);
        for (int a = 0; a < 3; a++) {
            assertThat(ipo.last()[a]).as("IPO beta %s pi[%d]", beta, a).isCloseTo(expected[a], offset(1e-3));
        }
        assertThat(dpo.last()[0]).as("DPO beta %s pi(a)", beta).isGreaterThan(0.99);
        // both start at the uniform reference, and the curve records every 100 steps plus the start
        assertThat(ipo.probabilities()[0]).containsExactly(new double[] {1 / 3.0, 1 / 3.0, 1 / 3.0}, offset(1e-12));
        assertThat(ipo.steps()).hasSize(Bandit.DEFAULT_STEPS / 100 + 1);
        // the closed form itself: log π(a)/π(b) = log π(b)/π(c) = 1/(3β)
        assertThat(Math.log(expected[0] / expected[1])).isCloseTo(1 / (3 * beta), offset(1e-12));
        assertThat(Math.log(expected[1] / expected[2])).isCloseTo(1 / (3 * beta), offset(1e-12));
    }
}
