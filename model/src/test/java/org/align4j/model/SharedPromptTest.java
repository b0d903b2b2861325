package org.align4j.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Supplier;
import org.align4j.model.config.ModelConfig;
import org.align4j.model.lora.LoraConfig;
import org.align4j.model.nn.Compute;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@link CausalLm#sharedPromptTokenLogProbs} (each distinct prompt run once for all its completions)
 * against {@link CausalLm#completionTokenLogProbs} on the same rows laid out as [prompt, completion,
 * padding]: every token's log-prob and entropy, and every parameter's gradient of a loss that weighs each
 * token differently, within 1e-5 (fp32). Two prompts of different lengths with three completions each,
 * of different lengths, one of them left out of the loss; prompts left- and right-padded; at temperature 1
 * and 0.7.
 */
class SharedPromptTest {
    private static final int[][] PROMPTS = {{5, 6, 7, 8, 9, 10}, {11, 12, 13}};
    private static final int[] PROMPT_OF_ROW = {0, 1, 0, 1, 1, 0};
    private static final int[][] COMPLETIONS = {{20, 21, 22}, {23}, {24, 25, 26, 27, 28}, {29, 30}, {31, 32, 33}, {34}};
    private static final boolean[] SCORED = {true, true, true, false, true, true};

    record Result(float[] logProbs, float[] entropy, Map<String, float[]> grads) {}

    private static Result padded(CausalLm lm, NDManager m, double temperature) {
        int b = COMPLETIONS.length;
        int t = 0;
        for (int r = 0; r < b; r++) {
            t = Math.max(t, PROMPTS[PROMPT_OF_ROW[r]].length + COMPLETIONS[r].length);
        }
        long[] ids = new long[b * t];
        long[] att = new long[b * t];
        long[] comp = new long[b * t];
        for (int r = 0; r < b; r++) {
            int[] p = PROMPTS[PROMPT_OF_ROW[r]];
            int[] c = COMPLETIONS[r];
            for (int j = 0; j < t; j++) {
                boolean inPrompt = j < p.length;
                boolean inCompletion = !inPrompt && j < p.length + c.length;
                ids[r * t + j] = inPrompt ? p[j] : inCompletion ? c[j - p.length] : 2;
                att[r * t + j] = inPrompt || inCompletion ? 1 : 0;
                comp[r * t + j] = inCompletion && SCORED[r] ? 1 : 0;
            }
        }
        Shape s = new Shape(b, t);
        return run(
                lm,
                m,
                () -> lm.completionTokenLogProbs(
                        m.create(ids, s), m.create(att, s), m.create(comp, s), temperature, true, true));
    }

    private static Result shared(CausalLm lm, NDManager m, double temperature, boolean rightPadded) {
        int lp = PROMPTS[0].length;
        long[] pIds = new long[2 * lp];
        long[] pMask = new long[2 * lp];
        for (int s = 0; s < 2; s++) {
            int offset = rightPadded ? 0 : lp - PROMPTS[s].length;
            for (int j = 0; j < lp; j++) {
                if (rightPadded) {
                    pIds[s * lp + j] = j < PROMPTS[s].length ? PROMPTS[s][j] : 2;
                    pMask[s * lp + j] = j < PROMPTS[s].length ? 1 : 0;
                    continue;
                }
                pIds[s * lp + j] = j < offset ? 2 : PROMPTS[s][j - offset];
                pMask[s * lp + j] = j < offset ? 0 : 1;
            }
        }
        int b = COMPLETIONS.length;
        int lc = 5;
        long[] cIds = new long[b * lc];
        long[] cAtt = new long[b * lc];
        long[] cMask = new long[b * lc];
        long[] of = new long[b];
        for (int r = 0; r < b; r++) {
            of[r] = PROMPT_OF_ROW[r];
            for (int j = 0; j < lc; j++) {
                boolean real = j < COMPLETIONS[r].length;
                cIds[r * lc + j] = real ? COMPLETIONS[r][j] : 2;
                cAtt[r * lc + j] = real ? 1 : 0;
                cMask[r * lc + j] = real && SCORED[r] ? 1 : 0;
            }
        }
        return run(
                lm,
                m,
                () -> lm.sharedPromptTokenLogProbs(
                        m.create(pIds, new Shape(2, lp)),
                        m.create(pMask, new Shape(2, lp)),
                        m.create(of),
                        m.create(cIds, new Shape(b, lc)),
                        m.create(cAtt, new Shape(b, lc)),
                        m.create(cMask, new Shape(b, lc)),
                        temperature,
                        true,
                        true));
    }

    private static Result run(CausalLm lm, NDManager m, Supplier<TokenLogProbs> pass) {
        TokenLogProbs lp;
        try (GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
            lp = pass.get();
            long n = lp.logProbs().getShape().get(0);
            // every token weighs differently, so a token's gradient reaching the wrong row or position shows
            NDArray w = m.arange(1f, 1f + n).div(n);
            gc.backward(lp.logProbs().mul(w).sum());
        }
        Map<String, float[]> grads = new LinkedHashMap<>();
        lm.trainableParameters().forEach((name, p) -> {
            NDArray g = p.getArray().getGradient();
            grads.put(name, g.toFloatArray());
            g.muli(0); // gradients accumulate: the next pass starts from zero
            g.close();
        });
        return new Result(lp.logProbs().toFloatArray(), lp.entropy().toFloatArray(), grads);
    }

    private static void assertClose(float[] want, float[] got, String what) {
        assertThat(got.length).as(what + " length").isEqualTo(want.length);
        double largest = 0;
        double worst = 0;
        for (int i = 0; i < want.length; i++) {
            largest = Math.max(largest, Math.abs(want[i]));
            worst = Math.max(worst, Math.abs(want[i] - got[i]));
        }
        assertThat(worst)
                .as("%s: largest difference (largest element %s)", what, largest)
                .isLessThan(1e-5 * Math.max(1, largest));
    }

    private static void assertSame(CausalLm lm, NDManager m, double temperature) {
        Result want = padded(lm, m, temperature);
        // 3 + 1 + 5 + 3 + 1 scored tokens (row 3 is out of the loss)
        assertThat(want.logProbs()).hasSize(13);
        // a sliding window counts positions by index: right-padded prompts would widen it by their padding
        boolean[] paddings = lm.config().slidingWindow() > 0 ? new boolean[] {false} : new boolean[] {false, true};
        for (boolean rightPadded : paddings) {
            Result got = shared(lm, m, temperature, rightPadded);
            String how = rightPadded ? "right-padded prompts: " : "left-padded prompts: ";
            assertClose(want.logProbs(), got.logProbs(), how + "log-probs");
            assertClose(want.entropy(), got.entropy(), how + "entropy");
            assertThat(got.grads().keySet())
                    .containsExactlyElementsOf(want.grads().keySet());
            want.grads().forEach((name, g) -> assertClose(g, got.grads().get(name), how + "gradient of " + name));
        }
    }

    @ParameterizedTest
    @ValueSource(
            strings = {"gpt2-tiny:eager", "gpt2-tiny:sdpa", "llama-tiny:eager", "llama-tiny:sdpa", "qwen2-tiny:sdpa"})
    void equalsTheRowsOnTheFixtures(String spec) {
        String[] s = spec.split(":");
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                CausalLm lm = CausalLm.load(Fixtures.model(s[0]), Device.cpu())) {
            lm.setCompute(Compute.parse(s[1], "fp32", Device.cpu()));
            lm.setTrainable(true);
            assertSame(lm, m, 1.0);
            assertSame(lm, m, 0.7);
        }
    }

    /** A sliding window shorter than prompt plus completion, q/k norms, grouped queries. */
    @ParameterizedTest
    @ValueSource(strings = {"mistral-window", "qwen3", "llama-gqa"})
    void equalsTheRowsOnOtherArchitectures(String variant) {
        ObjectNode c =
                Fixtures.smallLlamaConfig(variant.startsWith("llama") ? "llama" : variant.replace("-window", ""));
        switch (variant) {
            case "qwen3" -> c.put("head_dim", 24);
            case "mistral-window" -> c.put("sliding_window", 4);
            default -> c.put("num_key_value_heads", 2);
        }
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                CausalLm lm = CausalLm.create(ModelConfig.fromJson(c, null), Device.cpu(), 7)) {
            lm.setTrainable(true);
            assertSame(lm, m, 1.0);
        }
    }

    /** LoRA: the adapters' gradients through the shared prompt pass; adapter dropout refuses sharing. */
    @Test
    void loraAdaptersAndTheirDropout() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                CausalLm lm = CausalLm.load(Fixtures.model("llama-tiny"), Device.cpu())) {
            lm.addLora(new LoraConfig(4, 8, 0.0, new LoraConfig.AllLinear(), false), 3);
            assertThat(lm.canSharePrompts(true)).isTrue();
            assertSame(lm, m, 1.0);
            lm.setAdapterDropout(0.1);
            assertThat(lm.canSharePrompts(true)).isFalse();
            assertThat(lm.canSharePrompts(false)).isTrue();
            assertThatThrownBy(() -> shared(lm, m, 1.0, true))
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("dropout");
        }
    }
}
