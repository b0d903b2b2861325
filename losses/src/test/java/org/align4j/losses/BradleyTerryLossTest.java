package org.align4j.losses;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.training.GradientCollector;
import org.junit.jupiter.api.Test;

class BradleyTerryLossTest {
    static final double[] RC = {1.3, -0.4, 2.5, 0.1};
    static final double[] RR = {0.2, 0.6, -1.0, 0.1};
    static final double[] M = {0.5, 0.0, 1.5, -0.3};

    private static double sigmoid(double x) {
        return 1 / (1 + Math.exp(-x));
    }

    @Test
    void lossIsTheNegativeLogLikelihoodOfTheLabelPlusTheCentringTerm() {
        double c = 0.01;
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            double[] got = new BradleyTerryLoss(c)
                    .compute(m.create(RC), m.create(RR), m.create(M))
                    .loss()
                    .toDoubleArray();
            for (int i = 0; i < RC.length; i++) {
                double want = -Math.log(sigmoid(RC[i] - RR[i] - M[i])) + c * Math.pow(RC[i] + RR[i], 2);
                assertThat(got[i]).as("pair %d", i).isCloseTo(want, within(1e-12));
            }
            // equal rewards and no margin: ln 2, the loss of a coin
            assertThat(new BradleyTerryLoss()
                            .compute(m.create(new double[] {0.7}), m.create(new double[] {0.7}), null)
                            .meanLoss()
                            .getDouble())
                    .isCloseTo(Math.log(2), within(1e-12));
        }
    }

    @Test
    void gradientEqualsCentralFiniteDifference() {
        BradleyTerryLoss l = new BradleyTerryLoss(0.05);
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray rc = m.create(RC);
            NDArray rr = m.create(RR);
            rc.setRequiresGradient(true);
            rr.setRequiresGradient(true);
            try (GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
                gc.backward(l.compute(rc, rr, m.create(M)).meanLoss());
            }
            double[][] analytic = {
                rc.getGradient().toDoubleArray(), rr.getGradient().toDoubleArray()
            };
            double h = 1e-6;
            for (int which = 0; which < 2; which++) {
                for (int i = 0; i < RC.length; i++) {
                    double[] plus = (which == 0 ? RC : RR).clone();
                    double[] minus = plus.clone();
                    plus[i] += h;
                    minus[i] -= h;
                    double fd = which == 0
                            ? (loss(l, m, plus, RR) - loss(l, m, minus, RR)) / (2 * h)
                            : (loss(l, m, RC, plus) - loss(l, m, RC, minus)) / (2 * h);
                    assertThat(analytic[which][i])
                            .as("d/d%s[%d]", which == 0 ? "chosen" : "rejected", i)
                            .isCloseTo(fd, within(1e-7));
                }
            }
        }
    }

    private static double loss(BradleyTerryLoss l, NDManager m, double[] rc, double[] rr) {
        return l.compute(m.create(rc), m.create(rr), m.create(M)).meanLoss().getDouble();
    }

    @Test
    void aMarginAsksForMoreThanARanking() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray rc = m.create(new double[] {1.0});
            NDArray rr = m.create(new double[] {0.0});
            double without =
                    new BradleyTerryLoss().compute(rc, rr, null).meanLoss().getDouble();
            double with = new BradleyTerryLoss()
                    .compute(rc, rr, m.create(new double[] {1.0}))
                    .meanLoss()
                    .getDouble();
            assertThat(with).isCloseTo(Math.log(2), within(1e-12)).isGreaterThan(without);
        }
    }

    @Test
    void finiteForHugeRewardDifferences() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            double[] loss = new BradleyTerryLoss()
                    .compute(m.create(new float[] {1e4f, -1e4f}), m.create(new float[] {-1e4f, 1e4f}), null)
                    .loss()
                    .toType(DataType.FLOAT64, false)
                    .toDoubleArray();
            assertThat(loss[0]).isEqualTo(0.0);
            assertThat(loss[1]).isEqualTo(2e4);
        }
    }

    @Test
    void metricsAreTrlsAndTheDeviceAndHostVersionsAgree() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            double[] device =
                    BradleyTerryLoss.metrics(m.create(RC), m.create(RR)).toDoubleArray();
            double[] host = BradleyTerryLoss.metrics(RC, RR);
            assertThat(device).containsExactly(host, within(1e-12));
            // a tie (pair 3) counts 0, as in TRL: two of four pairs have r_c > r_r
            assertThat(host[0]).isEqualTo(0.5);
            assertThat(host[1]).isCloseTo((1.1 - 1.0 + 3.5 + 0) / 4, within(1e-12));
            assertThat(host[2]).isEqualTo(-1.0);
            assertThat(host[4]).isEqualTo(2.5);
            assertThat(host[3]).isCloseTo((3.5 + -0.1) / 8, within(1e-12));
            assertThat(BradleyTerryLoss.METRIC_NAMES)
                    .hasSize(host.length)
                    .startsWith("accuracy", "margin", "min_reward", "mean_reward", "max_reward");
        }
    }

    @Test
    void badInputIsNamed() {
        assertThatThrownBy(() -> new BradleyTerryLoss(-0.1))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("centerCoefficient");
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray two = m.create(new double[] {1, 2});
            NDArray three = m.create(new double[] {1, 2, 3});
            BradleyTerryLoss l = new BradleyTerryLoss();
            assertThatThrownBy(() -> l.compute(two, three, null)).hasMessageStartingWith("rejectedRewards");
            assertThatThrownBy(() -> l.compute(two, two, three)).hasMessageStartingWith("margin");
            assertThatThrownBy(() -> l.compute(two, two, m.create(new double[] {1, Double.NaN})))
                    .hasMessageStartingWith("margin");
            assertThat(l.evaluate(new NDList(), new NDList(two, two)).getDouble())
                    .isCloseTo(Math.log(2), within(1e-12));
        }
    }
}
