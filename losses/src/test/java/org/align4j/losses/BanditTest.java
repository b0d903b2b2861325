package org.align4j.losses;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import org.assertj.core.data.Offset;
import org.assertj.core.data.Percentage;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The IPO paper's Figure-1 setting in miniature (Azar et al., 2023): a tabular softmax policy over
 * three actions a, b, c, a uniform reference, and the deterministic preferences {a≻b, b≻c, a≻c}.
 *
 * <p>Closed form of the IPO minimiser. With logits θ and a uniform reference, the log-ratio margin of
 * a pair (y, y') is Δ(y, y') = (log π(y) − log 1/3) − (log π(y') − log 1/3) = θ_y − θ_y'. Write x =
 * θ_a − θ_b and y = θ_b − θ_c, so Δ(a, c) = x + y, and τ = 1/(2β). The IPO loss over the three pairs
 * is (x − τ)² + (y − τ)² + (x + y − τ)². Setting both partial derivatives to zero: (x − τ) + (x + y − τ)
 * = 0 and (y − τ) + (x + y − τ) = 0, so x = y, then 3x = 2τ: x = y = 2τ/3 = 1/(3β). Hence π(a) : π(b) :
 * π(c) = e^{2/(3β)} : e^{1/(3β)} : 1, a finite, β-dependent distribution: IPO keeps the policy away
 * from the deterministic optimum, more so for larger β.
 *
 * <p>DPO's loss Σ −log σ(βΔ) has no minimiser: it decreases for ever as x, y → ∞, so the margin keeps
 * growing and π(a) → 1 for every β.
 */
class BanditTest {
    static final long[] CHOSEN = {0, 1, 0}; // a≻b, b≻c, a≻c
    static final long[] REJECTED = {1, 2, 2};

    /** Gradient descent on θ (starting at the uniform policy) through the loss class under test. */
    static double[] train(PreferenceLoss loss, int steps, double lr) {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray theta = m.zeros(new Shape(3), DataType.FLOAT64);
            NDArray chosen = m.create(CHOSEN);
            NDArray rejected = m.create(REJECTED);
            NDArray reference = m.ones(new Shape(3), DataType.FLOAT64).mul(Math.log(1.0 / 3));
            for (int step = 0; step < steps; step++) {
                try (NDManager s = m.newSubManager()) {
                    theta.setRequiresGradient(true);
                    try (GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
                        NDArray logPi = theta.logSoftmax(0);
                        NDArray value = loss.compute(logPi.get(chosen), logPi.get(rejected), reference, reference, null)
                                .meanLoss();
                        gc.backward(value);
                    }
                    NDArray next = theta.sub(theta.getGradient().mul(lr));
                    next.attach(m);
                    theta = next;
                }
            }
            return theta.softmax(0).toDoubleArray();
        }
    }

    @ParameterizedTest
    @ValueSource(doubles = {0.1, 0.5, 1.0})
    void ipoConvergesToTheClosedFormMinimiser(double beta) {
        double[] pi = train(new IpoLoss(beta), 3000, 0.5);
        double x = 1 / (3 * beta);
        double z = Math.exp(2 * x) + Math.exp(x) + 1;
        double[] expected = {Math.exp(2 * x) / z, Math.exp(x) / z, 1 / z};
        for (int i = 0; i < 3; i++) {
            assertThat(pi[i]).as("beta %s, pi[%d]", beta, i).isCloseTo(expected[i], Offset.offset(1e-4));
        }
        // margins recovered from the policy: log π(a)/π(b) = log π(b)/π(c) = 1/(3β)
        assertThat(Math.log(pi[0] / pi[1])).isCloseTo(x, Percentage.withPercentage(0.1));
        assertThat(Math.log(pi[1] / pi[2])).isCloseTo(x, Percentage.withPercentage(0.1));
    }

    @ParameterizedTest
    @ValueSource(doubles = {0.1, 0.5, 1.0})
    void dpoDrivesTheMarginToInfinityAndPiOfAToOne(double beta) {
        double[] early = train(new DpoLoss(beta), 1000, 1.0);
        double[] late = train(new DpoLoss(beta), 4000, 1.0);
        double marginEarly = Math.log(early[0] / early[2]);
        double marginLate = Math.log(late[0] / late[2]);
        assertThat(marginLate).as("margin keeps growing").isGreaterThan(marginEarly + 0.5);
        assertThat(late[0]).as("beta %s: pi(a)", beta).isGreaterThan(0.99);
        // IPO at the same beta stays below that (for beta >= 0.5 clearly so)
        if (beta >= 0.5) {
            assertThat(train(new IpoLoss(beta), 3000, 0.5)[0]).isLessThan(0.9);
        }
    }
}
