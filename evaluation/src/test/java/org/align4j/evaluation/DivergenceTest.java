package org.align4j.evaluation;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import org.align4j.model.CausalLm;
import org.align4j.model.Fixtures;
import org.align4j.model.generate.GenerationConfig;
import org.align4j.model.generate.Generator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class DivergenceTest {
    private static final int PAD = 3;
    private static final int[] PROMPT = {1, 57, 200, 13, 44};

    @Test
    void aModelHasZeroKlToItself() {
        try (CausalLm lm = CausalLm.load(Fixtures.model("gpt2-tiny"), Device.cpu())) {
            List<int[]> prompts = List.of(PROMPT, new int[] {1, 9});
            List<int[]> completions = List.of(new int[] {5, 6, 7}, new int[] {400, 2});
            assertThat(Divergence.perSequenceKl(lm, lm, prompts, completions, PAD, 2))
                    .containsExactly(0.0, 0.0);
            Divergence.Estimate mc =
                    Divergence.sampledSequenceKl(lm, lm, prompts, 8, sampling(3, 7), PAD, Set.of(2), 16);
            assertThat(mc.samples()).isEqualTo(16);
            assertThat(mc.values()).containsOnly(0.0);
            assertThat(mc.mean()).isZero();
            assertThat(mc.standardError()).isZero();
        }
    }

    /**
     * The exact KL of two-token completions, by enumeration: KL = Σ_y1 π(y1)[log π(y1)/π_ref(y1) +
     * KL(π(·∣y1) ‖ π_ref(·∣y1))], one forward pass over all 600 continuations y1. The Monte-Carlo estimate
     * from sampled sequences must fall within three standard errors of it.
     */
    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny", "llama-tiny"})
    void monteCarloSequenceKlAgreesWithTheExactValue(String name) {
        try (CausalLm policy = CausalLm.load(Fixtures.model(name), Device.cpu());
                CausalLm reference = CausalLm.load(Fixtures.model(name + "-ref"), Device.cpu())) {
            double exact = exactTwoTokenKl(policy, reference, PROMPT);
            Divergence.Estimate mc = Divergence.sampledSequenceKl(
                    policy, reference, List.of(PROMPT), 3000, sampling(2, 11), PAD, Set.of(2), 500);
            assertThat(mc.samples()).isEqualTo(3000);
            assertThat(exact).isGreaterThan(0.01); // the two models really differ
            assertThat(mc.standardError()).isGreaterThan(0).isLessThan(exact / 5);
            assertThat(Math.abs(mc.mean() - exact))
                    .as("|MC %s − exact %s| vs 3 SE %s", mc.mean(), exact, 3 * mc.standardError())
                    .isLessThan(3 * mc.standardError());
            // the per-token exact KL along the same kind of samples estimates the same quantity
            List<int[]> prompts = new ArrayList<>();
            List<int[]> samples = new ArrayList<>();
            var g = new Generator(policy, PAD, Set.of(2));
            for (int i = 0; i < 4; i++) {
                prompts.addAll(Collections.nCopies(500, PROMPT));
            }
            for (int i = 0; i < 4; i++) {
                samples.addAll(g.generate(prompts.subList(0, 500), sampling(2, 100 + i)));
            }
            Divergence.Estimate perToken =
                    Divergence.Estimate.of(Divergence.perSequenceKl(policy, reference, prompts, samples, PAD, 500));
            assertThat(Math.abs(perToken.mean() - exact)).isLessThan(3 * perToken.standardError() + 1e-6);
        }
    }

    @Test
    void refusesSamplingThatIsNotThePolicysOwn() {
        try (CausalLm lm = CausalLm.load(Fixtures.model("gpt2-tiny"), Device.cpu())) {
            assertThatThrownBy(() -> Divergence.sampledSequenceKl(
                            lm, lm, List.of(PROMPT), 2, GenerationConfig.sample(2, 0.7, 0, 1.0, 1), PAD, Set.of(2), 4))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("temperature 1");
        }
    }

    private static GenerationConfig sampling(int tokens, long seed) {
        return GenerationConfig.sample(tokens, 1.0, 0, 1.0, seed).withStopAtEos(false);
    }

    static double exactTwoTokenKl(CausalLm policy, CausalLm reference, int[] prompt) {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            int v = (int) policy.config().vocabSize();
            int t = prompt.length + 1;
            long[] ids = new long[v * t];
            for (int y = 0; y < v; y++) {
                for (int j = 0; j < prompt.length; j++) {
                    ids[y * t + j] = prompt[j];
                }
                ids[y * t + prompt.length] = y;
            }
            NDArray idArr = m.create(ids, new Shape(v, t));
            NDArray mask = m.ones(new Shape(v, t), DataType.INT64);
            NDArray lp = policy.logits(idArr, mask, false)
                    .toType(DataType.FLOAT64, false)
                    .logSoftmax(-1);
            NDArray lq = reference
                    .logits(idArr, mask, false)
                    .toType(DataType.FLOAT64, false)
                    .logSoftmax(-1);
            // first token: the distributions at the prompt's last position (the same in every row)
            double[] p1 = lp.get("0, " + (prompt.length - 1) + ", :").toDoubleArray();
            double[] q1 = lq.get("0, " + (prompt.length - 1) + ", :").toDoubleArray();
            // second token: for each y1, the KL at the last position
            NDArray last = lp.get(":, -1, :");
            double[] kl2 = last.exp()
                    .mul(last.sub(lq.get(":, -1, :")))
                    .sum(new int[] {1})
                    .toDoubleArray();
            double kl = 0;
            for (int y = 0; y < v; y++) {
                kl += Math.exp(p1[y]) * (p1[y] - q1[y] + kl2[y]);
            }
            return kl;
        }
    }
}
