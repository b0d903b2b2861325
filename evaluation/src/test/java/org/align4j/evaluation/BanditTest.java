package org.align4j.evaluation;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.offset;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class BanditTest {
    @ParameterizedTest
    @ValueSource(doubles = {0.1, 0.5, 1.0, 2.0, 5.0})
    void ipoStopsAtItsClosedFormAndDpoIsStillRisingForEveryBeta(double beta) {
        Bandit.Curve ipo = Bandit.train("ipo", beta, Bandit.DEFAULT_STEPS, Bandit.DEFAULT_LEARNING_RATE, 100);
        Bandit.Curve dpo = Bandit.train("dpo", beta, Bandit.DEFAULT_STEPS, Bandit.DEFAULT_LEARNING_RATE, 100);
        double[] expected = Bandit.ipoClosedForm(beta);
        assertThat(ipo.converged())
                .as("IPO beta %s reached a minimum (gradient %s)", beta, ipo.gradientNorm())
                .isTrue();
        assertThat(ipo.steps()[ipo.steps().length - 1]).as("within the budget").isLessThan(Bandit.DEFAULT_STEPS);
        for (int a = 0; a < 3; a++) {
            assertThat(ipo.last()[a]).as("IPO beta %s pi[%d]", beta, a).isCloseTo(expected[a], offset(1e-9));
        }
        // DPO has no minimum: it uses the whole budget and its margin log π(a)/π(c) grows between every two records, to
        // the end
        assertThat(dpo.converged()).as("DPO beta %s converged", beta).isFalse();
        assertThat(dpo.gradientNorm()).isGreaterThan(1e3 * Bandit.TOLERANCE);
        double[][] p = dpo.probabilities();
        for (int i = 1; i < p.length; i++) {
            assertThat(Math.log(p[i][0] / p[i][2]))
                    .as("DPO beta %s margin at record %d", beta, i)
                    .isGreaterThan(Math.log(p[i - 1][0] / p[i - 1][2]));
        }
        assertThat(dpo.last()[0]).as("DPO goes past IPO's optimum").isGreaterThan(ipo.last()[0]);
        // both start at the uniform reference
        assertThat(ipo.probabilities()[0]).containsExactly(new double[] {1 / 3.0, 1 / 3.0, 1 / 3.0}, offset(1e-12));
        // the closed form itself: log π(a)/π(b) = log π(b)/π(c) = 1/(3β)
        assertThat(Math.log(expected[0] / expected[1])).isCloseTo(1 / (3 * beta), offset(1e-12));
        assertThat(Math.log(expected[1] / expected[2])).isCloseTo(1 / (3 * beta), offset(1e-12));
    }
}
