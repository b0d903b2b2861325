package org.align4j.losses.rl;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import java.util.Random;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;

/**
 * The device loss against the host's per-token formulas ({@link Ppo#policyLoss}, {@link Ppo#valueLoss}, each
 * pinned to hand-worked examples in {@link PpoTest}), and its gradients against central finite differences.
 */
class PpoLossTest {
    private static final double CLIP = 0.2;
    private static final double CLIP_V = 0.3;
    private static final double VF = 0.1;

    private static double[] draw(Random r, int n, double scale, double shift) {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            v[i] = shift + scale * r.nextGaussian();
        }
        return v;
    }

    /** The loss in double precision on the host, token by token. */
    private static double host(double[] lp, double[] old, double[] adv, double[] v, double[] oldV, double[] ret) {
        double pg = 0;
        double vf = 0;
        for (int i = 0; i < lp.length; i++) {
            pg += Ppo.policyLoss(lp[i], old[i], adv[i], CLIP);
            vf += Ppo.valueLoss(v[i], oldV[i], ret[i], CLIP_V);
        }
        return pg / lp.length + VF * vf / lp.length;
    }

    @Test
    void lossAndGradientsMatchThePerTokenFormulas() {
        Random r = new Random(3);
        int n = 17;
        double[] lp = draw(r, n, 0.5, -2);
        double[] old = lp.clone();
        for (int i = 0; i < n; i++) {
            old[i] += 0.3 * r.nextGaussian(); // ratios on both sides of the clip range
        }
        double[] adv = draw(r, n, 1, 0);
        double[] v = draw(r, n, 1, 0);
        double[] oldV = v.clone();
        for (int i = 0; i < n; i++) {
            oldV[i] += 0.5 * r.nextGaussian();
        }
        double[] ret = draw(r, n, 1, 0.2);
        PpoLoss loss = new PpoLoss(CLIP, CLIP_V, VF);
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray lpA = m.create(lp);
            NDArray vA = m.create(v);
            lpA.setRequiresGradient(true);
            vA.setRequiresGradient(true);
            PpoLoss.Output out;
            try (GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
                out = loss.forward(lpA, m.create(old), m.create(adv), vA, m.create(oldV), m.create(ret));
                gc.backward(out.loss());
            }
            assertThat(out.loss().getDouble()).isCloseTo(host(lp, old, adv, v, oldV, ret), Offset.offset(1e-12));
            double[] gLp = lpA.getGradient().toDoubleArray();
            double[] gV = vA.getGradient().toDoubleArray();
            double h = 1e-6;
            for (int i = 0; i < n; i++) {
                double[] up = lp.clone();
                double[] down = lp.clone();
                up[i] += h;
                down[i] -= h;
                double fd = (host(up, old, adv, v, oldV, ret) - host(down, old, adv, v, oldV, ret)) / (2 * h);
                assertThat(gLp[i]).as("d loss / d log pi[%d]", i).isCloseTo(fd, Offset.offset(1e-6));
                double[] vu = v.clone();
                double[] vd = v.clone();
                vu[i] += h;
                vd[i] -= h;
                double fdv = (host(lp, old, adv, vu, oldV, ret) - host(lp, old, adv, vd, oldV, ret)) / (2 * h);
                assertThat(gV[i]).as("d loss / d V[%d]", i).isCloseTo(fdv, Offset.offset(1e-6));
            }
            // the statistics: ½ mean squared log-ratio, mean ratio
            double kl = 0;
            double ratio = 0;
            for (int i = 0; i < n; i++) {
                kl += 0.5 * (lp[i] - old[i]) * (lp[i] - old[i]) / n;
                ratio += Math.exp(lp[i] - old[i]) / n;
            }
            assertThat(out.approxKl().getDouble()).isCloseTo(kl, Offset.offset(1e-12));
            assertThat(out.ratio().getDouble()).isCloseTo(ratio, Offset.offset(1e-12));
            double frac = out.clipFraction().getDouble();
            assertThat(frac).isGreaterThan(0).isLessThan(1); // the draws clip some tokens and not others
        }
    }

    @Test
    void aRatioPastFloat32sRangeKeepsTheGradientFinite() {
        // log-ratios of 100 and -100 (e^100 overflows float32) with either sign of advantage
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray lp = m.create(new float[] {0f, 0f, 0f, 0f});
            lp.setRequiresGradient(true);
            NDArray v = m.create(new float[] {0f, 0f, 0f, 0f});
            v.setRequiresGradient(true);
            PpoLoss.Output out;
            try (GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
                out = new PpoLoss(CLIP, CLIP_V, VF)
                        .forward(
                                lp,
                                m.create(new float[] {-100f, -100f, 100f, 100f}),
                                m.create(new float[] {1f, -1f, 1f, -1f}),
                                v,
                                m.create(new float[] {0f, 0f, 0f, 0f}),
                                m.create(new float[] {1f, 1f, 1f, 1f}));
                gc.backward(out.loss());
            }
            assertThat(Double.isFinite(out.loss().getFloat())).isTrue();
            for (float g : lp.getGradient().toFloatArray()) {
                assertThat(Float.isFinite(g)).as("gradient %s", g).isTrue();
            }
        }
    }
}
