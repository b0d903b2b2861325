package org.align4j.losses.rl;

import static org.assertj.core.api.Assertions.assertThat;

import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;

/** PPO's pieces against values worked out by hand on a three-token completion. */
class PpoTest {
    private static final Offset<Double> EXACT = Offset.offset(1e-12);

    @Test
    void gaeWithGammaAndLambdaOneIsRewardToGoMinusValue() {
        double[][] ar = Ppo.gae(new double[] {0.1, -0.2, 1.0}, new double[] {0.5, 0.4, 0.3}, 1, 1);
        // A_t = Σ_{k≥t} r_k − V_t: 0.9 − 0.5, 0.8 − 0.4, 1.0 − 0.3
        assertThat(ar[0][0]).isCloseTo(0.4, EXACT);
        assertThat(ar[0][1]).isCloseTo(0.4, EXACT);
        assertThat(ar[0][2]).isCloseTo(0.7, EXACT);
        // returns = A + V = the reward to go
        assertThat(ar[1][0]).isCloseTo(0.9, EXACT);
        assertThat(ar[1][2]).isCloseTo(1.0, EXACT);
    }

    @Test
    void gaeWithLambdaBelowOneDiscountsLaterErrors() {
        double[][] ar = Ppo.gae(new double[] {0.1, -0.2, 1.0}, new double[] {0.5, 0.4, 0.3}, 1, 0.95);
        // δ = (0.1 + 0.4 − 0.5, −0.2 + 0.3 − 0.4, 1.0 − 0.3) = (0, −0.3, 0.7)
        assertThat(ar[0][2]).isCloseTo(0.7, EXACT);
        assertThat(ar[0][1]).isCloseTo(-0.3 + 0.95 * 0.7, EXACT);
        assertThat(ar[0][0]).isCloseTo(0.95 * (-0.3 + 0.95 * 0.7), EXACT);
        double[][] discounted = Ppo.gae(new double[] {0, 0, 1}, new double[] {0, 0, 0}, 0.9, 1);
        assertThat(discounted[0][0]).isCloseTo(0.81, EXACT);
    }

    @Test
    void klEstimatorsAndTheirClamp() {
        double lp = -1.0;
        double ref = -1.5; // r = 0.5
        assertThat(Ppo.kl(lp, ref, Ppo.KlEstimator.K1, 10)).isCloseTo(0.5, EXACT);
        assertThat(Ppo.kl(lp, ref, Ppo.KlEstimator.K2, 10)).isCloseTo(0.125, EXACT);
        assertThat(Ppo.kl(lp, ref, Ppo.KlEstimator.K3, 10)).isCloseTo(Math.exp(-0.5) - 1 + 0.5, EXACT);
        assertThat(Ppo.kl(0, -30, Ppo.KlEstimator.K1, 10)).isEqualTo(10.0);
        assertThat(Ppo.kl(-30, 0, Ppo.KlEstimator.K3, 10)).isEqualTo(10.0);
    }

    @Test
    void perTokenRewardsCarryTheScoreAtTheLastTokenAndTheEosPenalty() {
        double[] r = Ppo.tokenRewards(new double[] {0.1, 0.2, -0.1}, 0.05, 2.0, false, 1.0);
        assertThat(r[0]).isCloseTo(-0.005, EXACT);
        assertThat(r[1]).isCloseTo(-0.01, EXACT);
        assertThat(r[2]).isCloseTo(0.005 + 2.0, EXACT);
        double[] cut = Ppo.tokenRewards(new double[] {0.1, 0.2, -0.1}, 0.05, 2.0, true, 1.0);
        assertThat(cut[2]).isCloseTo(0.005 + 1.0, EXACT);
    }

    @Test
    void whiteningOverRaggedRows() {
        double[][] w = Ppo.whiten(new double[][] {{1, 2}, {3}}, true);
        // mean 2, var (Bessel) 1: TRL's (x - mean) * rsqrt(var + 1e-8)
        assertThat(w[0][0]).isCloseTo(-1 / Math.sqrt(1 + 1e-8), EXACT);
        assertThat(w[0][1]).isCloseTo(0.0, EXACT);
        assertThat(w[1][0]).isCloseTo(1 / Math.sqrt(1 + 1e-8), EXACT);
        double[][] kept = Ppo.whiten(new double[][] {{1, 2}, {3}}, false);
        assertThat(kept[1][0]).isCloseTo(2 + 1 / Math.sqrt(1 + 1e-8), EXACT);
        // values 0, 0, 3: mean 1, var (1 + 1 + 4) / 2 = 3
        double[][] u = Ppo.whiten(new double[][] {{0}, {0, 3}}, true);
        assertThat(u[1][1]).isCloseTo(2 / Math.sqrt(3 + 1e-8), EXACT);
    }

    @Test
    void clippedValueAndPolicyLosses() {
        // V moved from 1.0 to 1.5 against a return of 2.0, clip 0.2: max((−0.5)², (1.2 − 2)²)/2 = 0.32
        assertThat(Ppo.valueLoss(1.5, 1.0, 2.0, 0.2)).isCloseTo(0.32, EXACT);
        // within the clip the plain squared error
        assertThat(Ppo.valueLoss(1.1, 1.0, 2.0, 0.2)).isCloseTo(0.5 * 0.81, EXACT);
        // ratio e^0.5 > 1.2 with A > 0: clipped at 1.2
        assertThat(Ppo.policyLoss(-0.5, -1.0, 2.0, 0.2)).isCloseTo(-2.4, EXACT);
        // A < 0: the unclipped (larger) loss wins
        assertThat(Ppo.policyLoss(-0.5, -1.0, -2.0, 0.2)).isCloseTo(2 * Math.exp(0.5), EXACT);
    }

    @Test
    void adaptiveKlCoefficientFollowsZieglerEtAl() {
        // KL 2x the target: the error clips at 0.2; 64 samples over a horizon of 10000: x (1 + 0.2 * 64 / 10000)
        assertThat(Ppo.adaptKlCoef(0.1, 12, 6, 10_000, 64)).isCloseTo(0.1 * 1.00128, EXACT);
        // KL 10% under target: e = -0.1
        assertThat(Ppo.adaptKlCoef(0.1, 5.4, 6, 100, 10)).isCloseTo(0.1 * (1 - 0.01), EXACT);
    }
}
