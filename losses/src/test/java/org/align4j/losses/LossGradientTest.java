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
import java.util.ArrayList;
import java.util.Arrays;
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
                () -> new SimPoLoss(2.0, 0.5),
                () -> new ExoPairLoss(0.5, 1e-3),
                () -> new NcaPairLoss(0.5),
                () -> new BcoPairLoss(0.5),
                () -> new SppoHardLoss(0.5),
                () -> new AotLoss(0.5, 0, true),
                () -> new AotLoss(0.5, 0.1, false),
                () -> new ApoLoss(0.5, false),
                () -> new ApoLoss(0.5, true),
                () -> new DiscoPopLoss(0.5, 0.05),
                () -> new SigmoidNormLoss(0.5),
                () -> mix(FDivergence.REVERSE_KL, LossType.DPO, 0.8, LossType.BCO_PAIR, 0.2));
        return all.stream().map(s -> Arguments.of(s.get().getName(), s));
    }

    /** The objectives above, and each f-divergence on the objectives that have one (whose scores overflow as TRL's). */
    static Stream<Arguments> withDivergences() {
        List<Supplier<PreferenceLoss>> all = List.of(
                () -> mix(FDivergence.FORWARD_KL, LossType.DPO, 1),
                () -> mix(FDivergence.JS_DIVERGENCE, LossType.HINGE, 1),
                () -> mix(FDivergence.ALPHA_DIVERGENCE, LossType.ROBUST, 1),
                () -> mix(FDivergence.JS_DIVERGENCE, LossType.EXO_PAIR, 0.5, LossType.DISCOPOP, 0.5));
        return Stream.concat(
                objectives(), all.stream().map(s -> Arguments.of(s.get().getName() + " (f-divergence)", s)));
    }

    static CombinedLoss mix(FDivergence divergence, Object... typesAndWeights) {
        List<CombinedLoss.Term> terms = new ArrayList<>();
        for (int i = 0; i < typesAndWeights.length; i += 2) {
            LossType t = (LossType) typesAndWeights[i];
            double w = ((Number) typesAndWeights[i + 1]).doubleValue();
            terms.add(new CombinedLoss.Term(t, t == LossType.SFT ? null : t.create(0.5), w));
        }
        return new CombinedLoss(0.5, terms, divergence, 0.5);
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
    @MethodSource("withDivergences")
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
        assertThatThrownBy(() -> LossType.parse("rpo"))
                .hasMessageContaining("'rpo'")
                .hasMessageContaining("ipo-soft");
        // kto, orpo and cpo are objectives with commands of their own, not preference objectives of train
        assertThat(LossType.parse("kto")).isEqualTo(LossType.KTO);
        assertThatThrownBy(() -> LossType.KTO.create(0.1)).hasMessageContaining("the kto command");
        assertThat(LossType.preferenceTypes()).doesNotContain(LossType.KTO, LossType.ORPO, LossType.CPO);
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

    static final double[] CHOSEN_TOKENS = {3, 9, 1, 6};
    static final double[] REJECTED_TOKENS = {4, 7, 2, 6};
    static final double[] PAIR_WEIGHTS = {0.2, 0.7, 1.0, 0.05};

    static Stream<Arguments> mixesWithTokenCounts() {
        List<Supplier<CombinedLoss>> all = List.of(
                () -> mix(FDivergence.REVERSE_KL, LossType.DPO, 0.8, LossType.BCO_PAIR, 0.2, LossType.SFT, 1.0),
                () -> mix(FDivergence.JS_DIVERGENCE, LossType.IPO, 1, LossType.SFT, 0.5),
                () -> mix(FDivergence.ALPHA_DIVERGENCE, LossType.SIGMOID_NORM, 1),
                () -> mix(FDivergence.REVERSE_KL, LossType.SIGMOID_NORM, 1, LossType.NCA_PAIR, 2));
        return all.stream().map(s -> Arguments.of(s.get().getName(), s));
    }

    static double mixLoss(CombinedLoss l, NDManager m, double[] pc, double[] pr, boolean weighted) {
        return l.compute(
                        m.create(pc),
                        m.create(pr),
                        m.create(RC),
                        m.create(RR),
                        null,
                        m.create(CHOSEN_TOKENS),
                        m.create(REJECTED_TOKENS),
                        weighted ? m.create(PAIR_WEIGHTS) : null)
                .meanLoss()
                .getDouble();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("mixesWithTokenCounts")
    void mixGradientEqualsCentralFiniteDifferenceWithAndWithoutPairWeights(
            String name, Supplier<CombinedLoss> objective) {
        CombinedLoss l = objective.get();
        for (boolean weighted : new boolean[] {false, true}) {
            try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
                NDArray pc = m.create(PC);
                NDArray pr = m.create(PR);
                pc.setRequiresGradient(true);
                pr.setRequiresGradient(true);
                try (GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
                    gc.backward(l.compute(
                                    pc,
                                    pr,
                                    m.create(RC),
                                    m.create(RR),
                                    null,
                                    m.create(CHOSEN_TOKENS),
                                    m.create(REJECTED_TOKENS),
                                    weighted ? m.create(PAIR_WEIGHTS) : null)
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
                                ? (mixLoss(l, m, plus, PR, weighted) - mixLoss(l, m, minus, PR, weighted)) / (2 * h)
                                : (mixLoss(l, m, PC, plus, weighted) - mixLoss(l, m, PC, minus, weighted)) / (2 * h);
                        assertThat(Math.abs(analytic[which][i] - fd))
                                .as("%s weighted %s d/d%s[%d]", name, weighted, which == 0 ? "pc" : "pr", i)
                                .isLessThan(1e-3 * Math.max(Math.abs(fd), 1e-5));
                    }
                }
            }
        }
    }

    @Test
    void aMixOfOneReverseKlTermIsThatTermAndTheSftTermIsTheMeanTokenNll() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            for (LossType t : List.of(LossType.DPO, LossType.NCA_PAIR, LossType.AOT, LossType.DISCOPOP)) {
                double plain = t.create(0.5)
                        .compute(m.create(PC), m.create(PR), m.create(RC), m.create(RR), null)
                        .meanLoss()
                        .getDouble();
                assertThat(mixLoss(mix(FDivergence.REVERSE_KL, t, 1), m, PC, PR, false))
                        .as(t.toString())
                        .isCloseTo(plain, Offset.offset(1e-12));
            }
            double tokens = Arrays.stream(CHOSEN_TOKENS).sum();
            assertThat(mixLoss(mix(FDivergence.JS_DIVERGENCE, LossType.SFT, 2), m, PC, PR, false))
                    .isCloseTo(-2 * Arrays.stream(PC).sum() / tokens, Offset.offset(1e-12));
            // forward KL scores are 1 - exp(-q): DPO on them by hand
            double sum = 0;
            for (int i = 0; i < 4; i++) {
                double d = Math.exp(-(PR[i] - RR[i])) - Math.exp(-(PC[i] - RC[i]));
                sum += Math.log1p(Math.exp(-0.5 * d));
            }
            assertThat(mixLoss(mix(FDivergence.FORWARD_KL, LossType.DPO, 1), m, PC, PR, false))
                    .isCloseTo(sum / 4, Offset.offset(1e-12));
        }
    }

    @Test
    void whatCannotBeCombinedIsNamed() {
        assertThatThrownBy(() -> mix(FDivergence.JS_DIVERGENCE, LossType.NCA_PAIR, 1))
                .hasMessageStartingWith("f_divergence_type: js_divergence")
                .hasMessageContaining("nca-pair");
        assertThatThrownBy(() -> mix(FDivergence.REVERSE_KL, LossType.SIMPO, 1))
                .hasMessageStartingWith("loss: simpo cannot be a term of a mix");
        assertThatThrownBy(() -> new ExoPairLoss(0.1, 0)).hasMessageStartingWith("labelSmoothing");
        assertThatThrownBy(() -> new DiscoPopLoss(0.1, 0)).hasMessageStartingWith("discopopTau");
        assertThatThrownBy(() -> FDivergence.parse("kl")).hasMessageContaining("alpha_divergence");
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            CombinedLoss withSft = mix(FDivergence.REVERSE_KL, LossType.DPO, 1, LossType.SFT, 1);
            assertThatThrownBy(() -> withSft.compute(m.create(PC), m.create(PR), m.create(RC), m.create(RR), null))
                    .hasMessageStartingWith("chosenTokens");
        }
        for (LossType t : LossType.values()) {
            assertThat(LossType.parse(t.trlName().orElse(t.toString()))).isEqualTo(t);
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
