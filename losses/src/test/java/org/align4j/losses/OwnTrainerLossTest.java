package org.align4j.losses;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.util.List;
import java.util.function.Function;
import java.util.stream.Stream;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * KTO, ORPO and CPO (the objectives with trainers of their own): values against the formulas of TRL
 * 1.13's trainers written out in double precision, and gradients against central finite differences.
 */
class OwnTrainerLossTest {
    static final double[] POLICY = {-31.0, -74.0, -12.5, -50.2, -8.0};
    static final double[] REFERENCE = {-32.5, -71.0, -12.0, -52.0, -9.5};
    static final boolean[] DESIRABLE = {true, false, true, false, false};
    static final double[] KL_POLICY = {-40.0, -60.0, -20.0, -45.0, -11.0};
    static final double[] KL_REFERENCE = {-41.0, -62.5, -19.0, -44.0, -13.0};

    // mean log-probs for ORPO and for the length-averaged CPO losses
    static final double[] CHOSEN_MEAN = {-1.3, -0.2, -2.7, -0.9};
    static final double[] REJECTED_MEAN = {-1.1, -0.6, -3.4, -0.05};
    static final double[] CHOSEN_SUM = {-31.0, -7.4, -12.2, -50.0};
    static final double[] REJECTED_SUM = {-40.0, -6.1, -27.0, -53.0};

    private static double sigmoid(double x) {
        return 1 / (1 + Math.exp(-x));
    }

    private static double logSigmoid(double x) {
        return -Math.log1p(Math.exp(-x));
    }

    @Test
    void ktoIsTrlsFormulaWithTheClampedKlOfTheMismatchedPairs() {
        double beta = 0.1;
        double dw = 1.0;
        double uw = 1.4;
        double kl = 0;
        for (int i = 0; i < KL_POLICY.length; i++) {
            kl += KL_POLICY[i] - KL_REFERENCE[i];
        }
        kl = Math.max(0, kl / KL_POLICY.length);
        assertThat(kl).isPositive();
        double want = 0;
        for (int i = 0; i < POLICY.length; i++) {
            double q = POLICY[i] - REFERENCE[i];
            want += DESIRABLE[i] ? dw * (1 - sigmoid(beta * (q - kl))) : uw * (1 - sigmoid(beta * (kl - q)));
        }
        want /= POLICY.length;
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            KtoLoss loss = new KtoLoss(KtoLoss.Type.KTO, beta, dw, uw);
            NDArray z = KtoLoss.referencePoint(m.create(KL_POLICY), m.create(KL_REFERENCE));
            assertThat(z.getDouble()).isCloseTo(kl, Offset.offset(1e-12));
            KtoLoss.Output out = loss.compute(m.create(POLICY), m.create(REFERENCE), m.create(DESIRABLE), z);
            assertThat(out.meanLoss().getDouble()).isCloseTo(want, Offset.offset(1e-12));
            assertThat(out.rewards().toDoubleArray()[0]).isCloseTo(0.15, Offset.offset(1e-12));
        }
    }

    @Test
    void theReferencePointIsNeverNegative() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            assertThat(KtoLoss.referencePoint(m.create(KL_REFERENCE), m.create(KL_POLICY))
                            .getDouble())
                    .isZero();
        }
    }

    @Test
    void apoZeroUnpairedPushesDesirableUpAndUndesirableDownWithoutAReferencePoint() {
        double beta = 0.1;
        double want = 0;
        for (int i = 0; i < POLICY.length; i++) {
            double q = POLICY[i] - REFERENCE[i];
            want += DESIRABLE[i] ? 2.0 * (1 - sigmoid(beta * q)) : 0.5 * sigmoid(beta * q);
        }
        want /= POLICY.length;
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            KtoLoss loss = new KtoLoss(KtoLoss.Type.APO_ZERO_UNPAIRED, beta, 2.0, 0.5);
            double got = loss.compute(m.create(POLICY), m.create(REFERENCE), m.create(DESIRABLE), null)
                    .meanLoss()
                    .getDouble();
            assertThat(got).isCloseTo(want, Offset.offset(1e-12));
        }
    }

    @Test
    void ktoWithoutItsReferencePointAndBadWeightsAreRefusedByName() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            KtoLoss loss = new KtoLoss(KtoLoss.Type.KTO, 0.1, 1, 1);
            assertThatThrownBy(() -> loss.compute(m.create(POLICY), m.create(REFERENCE), m.create(DESIRABLE), null))
                    .hasMessageStartingWith("referencePoint:");
            assertThatThrownBy(() -> loss.compute(m.create(POLICY), m.create(CHOSEN_MEAN), m.create(DESIRABLE), null))
                    .hasMessageStartingWith("reference:");
        }
        assertThatThrownBy(() -> new KtoLoss(KtoLoss.Type.KTO, 0.1, 0, 1)).hasMessageStartingWith("desirable_weight:");
        assertThatThrownBy(() -> new KtoLoss(KtoLoss.Type.KTO, 0.1, 1, -1))
                .hasMessageStartingWith("undesirable_weight:");
    }

    @Test
    void orpoIsTrlsOddsRatioLossWithItsMetrics() {
        double beta = 0.1;
        double nll = 2.5;
        double ratioSum = 0;
        double oddsSum = 0;
        for (int i = 0; i < CHOSEN_MEAN.length; i++) {
            double c = CHOSEN_MEAN[i];
            double r = REJECTED_MEAN[i];
            double logOdds = (c - r) - (Math.log(-Math.expm1(c)) - Math.log(-Math.expm1(r)));
            ratioSum += logSigmoid(logOdds);
            oddsSum += logOdds;
        }
        double n = CHOSEN_MEAN.length;
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            OrpoLoss.Output out =
                    new OrpoLoss(beta).compute(m.create(CHOSEN_MEAN), m.create(REJECTED_MEAN), m.create(nll));
            assertThat(out.loss().getDouble()).isCloseTo(nll - beta * ratioSum / n, Offset.offset(1e-12));
            assertThat(out.logSigmoidOdds().mean().getDouble()).isCloseTo(ratioSum / n, Offset.offset(1e-12));
            assertThat(out.logOdds().mean().getDouble()).isCloseTo(oddsSum / n, Offset.offset(1e-12));
            assertThat(out.chosenRewards().toDoubleArray()[1]).isCloseTo(-0.02, Offset.offset(1e-12));
        }
    }

    @Test
    void log1mexpIsAccurateInFloat32AtBothEndsAndDifferentiable() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            float[] x = {-1e-6f, -0.3f, -0.6931472f, -5f, -20f};
            float[] got = OrpoLoss.log1mexp(m.create(x)).toFloatArray();
            for (int i = 0; i < x.length; i++) {
                double want = Math.log(-Math.expm1(x[i]));
                // float32 keeps log(1 − exp x) to its relative precision near 0 and to 1e-7 absolute below −ln 2
                assertThat((double) got[i]).isCloseTo(want, Offset.offset(Math.max(Math.abs(want) * 1e-6, 2e-7)));
            }
            // a float32 input keeps its graph (a cast to float64 and back would cut it)
            NDArray y = m.create(x);
            y.setRequiresGradient(true);
            try (GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
                gc.backward(OrpoLoss.log1mexp(y).sum());
            }
            float[] grad = y.getGradient().toFloatArray();
            for (int i = 0; i < x.length; i++) {
                double want = -Math.exp(x[i]) / -Math.expm1(x[i]);
                assertThat((double) grad[i]).isCloseTo(want, Offset.offset(Math.abs(want) * 1e-5 + 1e-9));
            }
        }
    }

    static Stream<Arguments> cpoLosses() {
        return Stream.of(
                Arguments.of("sigmoid", new CpoLoss(CpoLoss.Type.SIGMOID, 0.1, 0, 0.5, 1.0, 0)),
                Arguments.of("sigmoid, label smoothing 0.1", new CpoLoss(CpoLoss.Type.SIGMOID, 0.1, 0.1, 0.5, 1.0, 0)),
                Arguments.of("hinge", new CpoLoss(CpoLoss.Type.HINGE, 0.1, 0, 0.5, 1.0, 0)),
                Arguments.of("ipo", new CpoLoss(CpoLoss.Type.IPO, 0.5, 0, 0.5, 1.0, 0)),
                Arguments.of("simpo (SimPO)", new CpoLoss(CpoLoss.Type.SIMPO, 2.0, 0, 0.5, 0.0, 0)),
                Arguments.of("simpo with BC (CPO-SimPO)", new CpoLoss(CpoLoss.Type.SIMPO, 2.0, 0, 1.0, 0.5, 0)),
                Arguments.of("alphapo", new CpoLoss(CpoLoss.Type.SIMPO, 2.0, 0, 0.5, 0.0, 0.25)),
                Arguments.of("sigmoid, AlphaPO rewards", new CpoLoss(CpoLoss.Type.SIGMOID, 0.1, 0, 0.5, 1.0, -0.1)));
    }

    /** TRL's cpo_loss in double precision. */
    static double trlCpo(
            CpoLoss l,
            double[] chosen,
            double[] rejected,
            double nll,
            double beta,
            double eps,
            double gamma,
            double cpoAlpha,
            double alpha) {
        double sum = 0;
        for (int i = 0; i < chosen.length; i++) {
            double rc = alpha == 0 ? chosen[i] : (1 - Math.pow(Math.exp(chosen[i]), -alpha)) / alpha;
            double rr = alpha == 0 ? rejected[i] : (1 - Math.pow(Math.exp(rejected[i]), -alpha)) / alpha;
            double logits = rc - rr;
            sum += switch (l.type()) {
                case SIMPO -> {
                    double g = logits - gamma / beta;
                    yield -logSigmoid(beta * g) * (1 - eps) - logSigmoid(-beta * g) * eps;
                }
                case SIGMOID -> -logSigmoid(beta * logits) * (1 - eps) - logSigmoid(-beta * logits) * eps;
                case HINGE -> Math.max(0, 1 - beta * logits);
                case IPO -> Math.pow(logits - 1 / (2 * beta), 2);
            };
        }
        return sum / chosen.length + cpoAlpha * nll;
    }

    @Test
    void cpoIsTrlsLossForEveryLossType() {
        record Case(CpoLoss loss, double beta, double eps, double gamma, double cpoAlpha, double alpha) {}
        List<Case> cases = List.of(
                new Case(new CpoLoss(CpoLoss.Type.SIGMOID, 0.1, 0.1, 0.5, 1.0, 0), 0.1, 0.1, 0.5, 1.0, 0),
                new Case(new CpoLoss(CpoLoss.Type.HINGE, 0.1, 0, 0.5, 1.0, 0), 0.1, 0, 0.5, 1.0, 0),
                new Case(new CpoLoss(CpoLoss.Type.IPO, 0.5, 0, 0.5, 0.3, 0), 0.5, 0, 0.5, 0.3, 0),
                new Case(new CpoLoss(CpoLoss.Type.SIMPO, 2.0, 0, 1.0, 0.0, 0), 2.0, 0, 1.0, 0, 0),
                new Case(new CpoLoss(CpoLoss.Type.SIMPO, 2.0, 0, 0.5, 0.0, 0.25), 2.0, 0, 0.5, 0, 0.25));
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            for (Case c : cases) {
                boolean mean = c.loss().reduction() == PreferenceLoss.Reduction.MEAN;
                double[] chosen = mean ? CHOSEN_MEAN : CHOSEN_SUM;
                double[] rejected = mean ? REJECTED_MEAN : REJECTED_SUM;
                double want =
                        trlCpo(c.loss(), chosen, rejected, 1.75, c.beta(), c.eps(), c.gamma(), c.cpoAlpha(), c.alpha());
                double got = c.loss()
                        .compute(m.create(chosen), m.create(rejected), c.cpoAlpha() == 0 ? null : m.create(1.75))
                        .loss()
                        .getDouble();
                assertThat(got).as(c.loss().getName()).isCloseTo(want, Offset.offset(1e-10));
            }
        }
    }

    /** Central finite differences of a scalar function of several [n] inputs against its autograd gradient. */
    private static void checkGradient(String name, double[][] inputs, Function<NDArray[], NDArray> f) {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray[] x = new NDArray[inputs.length];
            for (int k = 0; k < inputs.length; k++) {
                x[k] = m.create(inputs[k]);
                x[k].setRequiresGradient(true);
            }
            try (GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
                gc.backward(f.apply(x));
            }
            double h = 1e-6;
            for (int k = 0; k < inputs.length; k++) {
                double[] analytic = x[k].getGradient().toDoubleArray();
                for (int i = 0; i < inputs[k].length; i++) {
                    double[] plus = inputs[k].clone();
                    double[] minus = inputs[k].clone();
                    plus[i] += h;
                    minus[i] -= h;
                    double fd = (value(m, inputs, k, plus, f) - value(m, inputs, k, minus, f)) / (2 * h);
                    double err = Math.abs(analytic[i] - fd) / Math.max(Math.abs(fd), 1e-8);
                    assertThat(err)
                            .as("%s d/dinput%d[%d]: %s vs %s", name, k, i, analytic[i], fd)
                            .isLessThan(1e-4);
                }
            }
        }
    }

    private static double value(
            NDManager m, double[][] inputs, int k, double[] replaced, Function<NDArray[], NDArray> f) {
        NDArray[] x = new NDArray[inputs.length];
        for (int j = 0; j < inputs.length; j++) {
            x[j] = m.create(j == k ? replaced : inputs[j]);
        }
        return f.apply(x).toType(DataType.FLOAT64, false).getDouble();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("ktoTypes")
    void ktoGradientEqualsCentralFiniteDifference(String name, KtoLoss.Type type) {
        KtoLoss l = new KtoLoss(type, 0.1, 1.0, 1.4);
        // the reference point is a constant of the step (detached), so only the policy's log-probs are varied
        checkGradient(name, new double[][] {POLICY}, x -> {
            NDManager m = x[0].getManager();
            NDArray z = type.usesReferencePoint()
                    ? KtoLoss.referencePoint(m.create(KL_POLICY), m.create(KL_REFERENCE))
                    : null;
            return l.compute(x[0], m.create(REFERENCE), m.create(DESIRABLE), z).meanLoss();
        });
    }

    static Stream<Arguments> ktoTypes() {
        return Stream.of(KtoLoss.Type.values()).map(t -> Arguments.of(t.toString(), t));
    }

    @Test
    void theReferencePointCarriesNoGradient() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray kl = m.create(KL_POLICY);
            kl.setRequiresGradient(true);
            NDArray p = m.create(POLICY);
            p.setRequiresGradient(true);
            try (GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
                KtoLoss l = new KtoLoss(KtoLoss.Type.KTO, 0.1, 1, 1);
                gc.backward(l.compute(
                                p,
                                m.create(REFERENCE),
                                m.create(DESIRABLE),
                                KtoLoss.referencePoint(kl, m.create(KL_REFERENCE)))
                        .meanLoss());
            }
            assertThat(kl.getGradient()
                            .abs()
                            .sum()
                            .toType(DataType.FLOAT64, false)
                            .getDouble())
                    .isZero();
            assertThat(p.getGradient()
                            .abs()
                            .sum()
                            .toType(DataType.FLOAT64, false)
                            .getDouble())
                    .isPositive();
        }
    }

    @Test
    void orpoGradientEqualsCentralFiniteDifference() {
        checkGradient(
                "orpo",
                new double[][] {CHOSEN_MEAN, REJECTED_MEAN, {2.5}},
                x -> new OrpoLoss(0.1)
                        .compute(x[0], x[1], x[2].reshape(new Shape()))
                        .loss());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cpoLosses")
    void cpoGradientEqualsCentralFiniteDifference(String name, CpoLoss l) {
        boolean mean = l.reduction() == PreferenceLoss.Reduction.MEAN;
        checkGradient(
                name,
                new double[][] {mean ? CHOSEN_MEAN : CHOSEN_SUM, mean ? REJECTED_MEAN : REJECTED_SUM, {1.75}},
                x -> l.compute(x[0], x[1], l.cpoAlpha() == 0 ? null : x[2].reshape(new Shape()))
                        .loss()
                        .add(x[2].sum().mul(0)));
    }

    @Test
    void cpoWithABcTermNeedsTheNll() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            CpoLoss l = new CpoLoss(CpoLoss.Type.SIGMOID, 0.1, 0, 0.5, 1.0, 0);
            assertThatThrownBy(() -> l.compute(m.create(CHOSEN_SUM), m.create(REJECTED_SUM), null))
                    .hasMessageStartingWith("nll:");
        }
        assertThatThrownBy(() -> new CpoLoss(CpoLoss.Type.SIGMOID, 0.1, 0.5, 0.5, 1, 0))
                .hasMessageStartingWith("label_smoothing:");
        assertThatThrownBy(() -> new CpoLoss(CpoLoss.Type.SIMPO, 0.1, 0, 0.5, -1, 0))
                .hasMessageStartingWith("cpo_alpha:");
    }
}
