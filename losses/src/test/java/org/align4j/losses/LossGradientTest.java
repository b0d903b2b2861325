package org.align4j.losses;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.training.GradientCollector;
import java.util.List;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class LossGradientTest {
    static Stream<Arguments> objectives() {
        List<Supplier<PreferenceLoss>> all = List.of(
                () -> new DpoLoss(0.5),
                () -> new DpoLoss(0.5, 0.2),
                () -> new RobustDpoLoss(0.5, 0.2),
                () -> new HingeLoss(0.5),
                () -> new IpoLoss(0.5),
                () -> new IpoLoss(0.5, PreferenceLoss.Reduction.SUM),
                () -> IpoLoss.soft(0.5, 0.8),
                () -> new SimPoLoss(2.0, 0.5));
        return all.stream().map(s -> Arguments.of(s.get().getName(), s));
    }

    // values chosen so no pair sits on the hinge's kink
    static final double[] PC = {-3.1, -7.4, -1.2, -5.0};
    static final double[] PR = {-4.0, -6.1, -2.7, -5.3};
    static final double[] RC = {-3.5, -7.0, -2.0, -4.1};
    static final double[] RR = {-3.2, -6.9, -2.2, -6.0};
    static final double[] P = {0.9, 0.6, 1.0, 0.3};

    static double loss(PreferenceLoss l, NDManager m, double[] pc, double[] pr) {
        return l.compute(m.create(pc), m.create(pr), m.create(RC), m.create(RR), m.create(P))
                .meanLoss()
                .getDouble();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("objectives")
    void gradientEqualsCentralFiniteDifference(String name, Supplier<PreferenceLoss> objective) {
        PreferenceLoss l = objective.get();
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray pc = m.create(PC);
            NDArray pr = m.create(PR);
            pc.setRequiresGradient(true);
            pr.setRequiresGradient(true);
            try (GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
                gc.backward(l.compute(pc, pr, m.create(RC), m.create(RR), m.create(P))
                        .meanLoss());
            }
            double[][] analytic = {
                pc.getGradient().toDoubleArray(), pr.getGradient().toDoubleArray()
            };
            double h = 1e-6;
            for (int which = 0; which < 2; which++) {
                for (int i = 0; i < 4; i++) {
                    double[] plus = (which == 0 ? PC : PR).clone();
                    double[] minus = plus.clone();
                    plus[i] += h;
                    minus[i] -= h;
                    double fd = which == 0
                            ? (loss(l, m, plus, PR) - loss(l, m, minus, PR)) / (2 * h)
                            : (loss(l, m, PC, plus) - loss(l, m, PC, minus)) / (2 * h);
                    double err = Math.abs(analytic[which][i] - fd) / Math.max(Math.abs(fd), 1e-8);
                    assertThat(err)
                            .as(
                                    "%s d/d%s[%d]: %s vs %s",
                                    name, which == 0 ? "policyChosen" : "policyRejected", i, analytic[which][i], fd)
                            .isLessThan(1e-3);
                }
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("objectives")
    void finiteAtBetaTimesMarginOfTenThousand(String name, Supplier<PreferenceLoss> objective) {
        PreferenceLoss l = objective.get();
        double margin = 1e4 / l.beta();
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            for (double sign : new double[] {1, -1}) {
                for (DataType type : new DataType[] {DataType.FLOAT32, DataType.FLOAT64}) {
                    NDArray pc = m.create(new double[] {sign * margin / 2, 0}).toType(type, false);
                    NDArray pr = m.create(new double[] {-sign * margin / 2, 0}).toType(type, false);
                    NDArray zero = m.zeros(pc.getShape(), type);
                    pc.setRequiresGradient(true);
                    NDArray value;
                    try (GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
                        value = l.compute(pc, pr, zero, zero, null).meanLoss();
                        gc.backward(value);
                    }
                    assertThat(Double.isFinite(
                                    value.toType(DataType.FLOAT64, false).getDouble()))
                            .as("%s loss at %s", name, sign)
                            .isTrue();
                    for (double g :
                            pc.getGradient().toType(DataType.FLOAT64, false).toDoubleArray()) {
                        assertThat(Double.isFinite(g))
                                .as("%s gradient at %s", name, sign)
                                .isTrue();
                    }
                }
            }
            // DPO's exact values there: 0 when the pair is won by 1e4, 1e4 when lost by it
            DpoLoss dpo = new DpoLoss(1.0);
            NDArray won = dpo.compute(
                            m.create(new double[] {1e4}),
                            m.create(new double[] {0}),
                            m.create(new double[] {0}),
                            m.create(new double[] {0}),
                            null)
                    .loss();
            NDArray lost = dpo.compute(
                            m.create(new double[] {-1e4}),
                            m.create(new double[] {0}),
                            m.create(new double[] {0}),
                            m.create(new double[] {0}),
                            null)
                    .loss();
            assertThat(won.getDouble(0)).isEqualTo(0.0);
            assertThat(lost.getDouble(0)).isEqualTo(1e4);
        }
    }

    @Test
    void badParametersAreNamed() {
        assertThatThrownBy(() -> new DpoLoss(0))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("beta");
        assertThatThrownBy(() -> new IpoLoss(-1)).hasMessageStartingWith("beta");
        assertThatThrownBy(() -> new DpoLoss(0.1, 0.5)).hasMessageStartingWith("labelSmoothing");
        assertThatThrownBy(() -> new RobustDpoLoss(0.1, -0.1)).hasMessageStartingWith("labelSmoothing");
        assertThatThrownBy(() -> IpoLoss.soft(0.1, 1.5)).hasMessageStartingWith("preference");
        assertThatThrownBy(() -> new SimPoLoss(2, -1)).hasMessageStartingWith("gamma");
        assertThatThrownBy(() -> LossType.parse("kto"))
                .hasMessageContaining("'kto'")
                .hasMessageContaining("ipo-soft");
        assertThat(LossType.parse("sigmoid")).as("TRL's loss_type name").isEqualTo(LossType.DPO);
        assertThat(LossType.parse("IPO_SUM")).isEqualTo(LossType.IPO_SUM);
        assertThat(LossType.CDPO.create(0.1))
                .isInstanceOfSatisfying(
                        DpoLoss.class, d -> assertThat(d.labelSmoothing()).isEqualTo(0.1));
        assertThat(LossType.DPO.create(0.1))
                .isInstanceOfSatisfying(
                        DpoLoss.class, d -> assertThat(d.labelSmoothing()).isZero());
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray two = m.create(new double[] {-1, -2});
            NDArray three = m.create(new double[] {-1, -2, -3});
            DpoLoss dpo = new DpoLoss(0.1);
            assertThatThrownBy(() -> dpo.compute(two, three, two, two, null)).hasMessageStartingWith("policyRejected");
            assertThatThrownBy(() -> dpo.compute(two, two, two, three, null))
                    .hasMessageStartingWith("referenceRejected");
            assertThatThrownBy(() -> dpo.compute(two, two, two, two, m.create(new double[] {0.5, 1.2})))
                    .hasMessageStartingWith("preference");
            assertThatThrownBy(() -> dpo.compute(two, two, two, two, m.create(new double[] {-0.1, 1})))
                    .hasMessageStartingWith("preference");
            assertThatThrownBy(() -> dpo.compute(two, two, null, two, null)).hasMessageStartingWith("referenceChosen");
        }
    }

    @Test
    void softLabelsGeneraliseTheHardOnes() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray pc = m.create(PC);
            NDArray pr = m.create(PR);
            NDArray rc = m.create(RC);
            NDArray rr = m.create(RR);
            NDArray ones = m.ones(pc.getShape(), DataType.FLOAT64);
            NDArray halves = ones.mul(0.5);
            double hard =
                    new IpoLoss(0.5).compute(pc, pr, rc, rr, null).meanLoss().getDouble();
            assertThat(IpoLoss.soft(0.5, 0.7)
                            .compute(pc, pr, rc, rr, ones)
                            .meanLoss()
                            .getDouble())
                    .isEqualTo(hard);
            // plain IPO ignores per-pair p; soft IPO at p = 1/2 regresses the margin to 0
            assertThat(new IpoLoss(0.5)
                            .compute(pc, pr, rc, rr, halves)
                            .meanLoss()
                            .getDouble())
                    .isEqualTo(hard);
            NDArray margin = pc.sub(rc).sub(pr.sub(rr));
            assertThat(IpoLoss.soft(0.5, 1)
                            .compute(pc, pr, rc, rr, halves)
                            .meanLoss()
                            .getDouble())
                    .isCloseTo(margin.square().mean().getDouble(), Offset.offset(1e-12));
            // DPO with p = 1 − ε per pair equals conservative DPO with ε
            double cdpo = new DpoLoss(0.5, 0.2)
                    .compute(pc, pr, rc, rr, null)
                    .meanLoss()
                    .getDouble();
            assertThat(new DpoLoss(0.5)
                            .compute(pc, pr, rc, rr, ones.mul(0.8))
                            .meanLoss()
                            .getDouble())
                    .isCloseTo(cdpo, Offset.offset(1e-12));
        }
    }

    @Test
    void pluggableAsADjlLoss() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            DpoLoss dpo = new DpoLoss(0.5);
            NDList predictions = new NDList(m.create(PC), m.create(PR), m.create(RC), m.create(RR));
            double direct = dpo.compute(
                            predictions.get(0), predictions.get(1), predictions.get(2), predictions.get(3), null)
                    .meanLoss()
                    .getDouble();
            assertThat(dpo.evaluate(new NDList(), predictions).getDouble()).isEqualTo(direct);
            SimPoLoss simpo = new SimPoLoss(2, 0.5);
            assertThat(simpo.evaluate(new NDList(), new NDList(m.create(PC), m.create(PR)))
                            .getDouble())
                    .isEqualTo(simpo.compute(m.create(PC), m.create(PR), null, null, null)
                            .meanLoss()
                            .getDouble());
        }
    }
}
