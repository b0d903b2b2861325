package org.align4j.model;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.TreeSet;
import org.align4j.model.generate.GenerationConfig;
import org.align4j.model.generate.Generator;
import org.align4j.model.generate.RowStream;
import org.align4j.model.generate.Sampling;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;

/**
 * The device sampler against transformers' logits warpers (fixture by {@code
 * src/test/python/sampling_fixtures.py}) and against its own distribution (chi-square), and a row's
 * independence from its batch.
 */
class SamplingTest {
    private static JsonNode warpers() throws Exception {
        try (InputStream in = SamplingTest.class.getResourceAsStream("/sampling/warpers.json")) {
            return new ObjectMapper().readTree(in);
        }
    }

    private static float[] flat(JsonNode rows) {
        List<Float> v = new ArrayList<>();
        rows.forEach(r -> r.forEach(x -> v.add((float) x.asDouble())));
        float[] out = new float[v.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = v.get(i);
        }
        return out;
    }

    private static GenerationConfig config(JsonNode c) {
        return GenerationConfig.sample(
                        1,
                        c.get("temperature").asDouble(),
                        c.get("top_k").asInt(),
                        c.get("top_p").asDouble(),
                        0)
                .withMinP(c.get("min_p").asDouble());
    }

    @Test
    void keptSetsAndProbabilitiesEqualTransformersWarpers() throws Exception {
        JsonNode fx = warpers();
        float[] logits = flat(fx.get("logits"));
        int rows = fx.get("logits").size();
        int v = logits.length / rows;
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray l = m.create(logits, new Shape(rows, v));
            for (JsonNode c : fx.get("cases")) {
                float[] warped = Sampling.warp(l, config(c)).toFloatArray();
                float[] probs = Sampling.warp(l, config(c)).softmax(1).toFloatArray();
                for (int r = 0; r < rows; r++) {
                    TreeSet<Integer> kept = new TreeSet<>();
                    for (int i = 0; i < v; i++) {
                        if (Float.isFinite(warped[r * v + i])) {
                            kept.add(i);
                        }
                    }
                    TreeSet<Integer> want = new TreeSet<>();
                    c.get("kept").get(r).forEach(x -> want.add(x.asInt()));
                    assertThat(kept).as("case %s row %d", c, r).isEqualTo(want);
                    for (int i = 0; i < v; i++) {
                        assertThat((double) probs[r * v + i])
                                .as("case %s row %d token %d", c, r, i)
                                .isCloseTo(c.get("probs").get(r).get(i).asDouble(), Offset.offset(1e-5));
                    }
                }
            }
        }
    }

    /**
     * Pearson's chi-square of 20,000 draws per case against transformers' warped probabilities, bins with
     * fewer than 5 expected draws merged; critical value at α = 0.001 by Wilson and Hilferty's approximation.
     */
    @Test
    void drawsFollowTheWarpedDistribution() throws Exception {
        JsonNode fx = warpers();
        float[] logits = flat(fx.get("logits"));
        int v = fx.get("logits").get(0).size();
        int n = 20_000;
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            float[] row0 = Arrays.copyOf(logits, v);
            NDArray l = m.create(row0, new Shape(1, v)).broadcast(n, v);
            RowStream stream = new RowStream(RowStream.key(99));
            double[] u = new double[n];
            for (int i = 0; i < n; i++) {
                u[i] = stream.uniform(i);
            }
            for (JsonNode c : fx.get("cases")) {
                long[] drawn = Sampling.draw(Sampling.warp(l, config(c)), u).toLongArray();
                double[] counts = new double[v];
                for (long d : drawn) {
                    counts[(int) d]++;
                }
                double chi = 0;
                int bins = 0;
                double pendingObserved = 0;
                double pendingExpected = 0;
                for (int i = 0; i < v; i++) {
                    double p = c.get("probs").get(0).get(i).asDouble();
                    if (p == 0) {
                        assertThat(counts[i])
                                .as("case %s: a removed token was drawn", c)
                                .isZero();
                        continue;
                    }
                    pendingObserved += counts[i];
                    pendingExpected += p * n;
                    if (pendingExpected >= 5) {
                        chi += Math.pow(pendingObserved - pendingExpected, 2) / pendingExpected;
                        bins++;
                        pendingObserved = 0;
                        pendingExpected = 0;
                    }
                }
                if (bins <= 1) {
                    continue; // one token kept: every draw is it (checked above through the zeros)
                }
                int df = bins - 1;
                double z = 3.090232; // the 0.999 quantile of the standard normal
                double critical = df * Math.pow(1 - 2.0 / (9 * df) + z * Math.sqrt(2.0 / (9 * df)), 3);
                assertThat(chi).as("case %s: chi-square with %d df", c, df).isLessThan(critical);
            }
        }
    }

    @Test
    void aRowDrawsTheSameTokensAloneAndInABatchOfSixteen() {
        JsonNode ref = Fixtures.referenceJson("llama-tiny");
        int[] longPrompt = GenerationTest.ints(ref.get("chat_template_ids"));
        int[] shortPrompt = GenerationTest.ints(ref.get("text_ids").get(1));
        try (CausalLm lm = CausalLm.load(Fixtures.model("llama-tiny"), Device.cpu())) {
            Generator g = new Generator(lm, 3, List.of(2));
            GenerationConfig cfg = GenerationConfig.sample(12, 1.0, 0, 1.0, 0).withStopAtEos(false);
            List<int[]> prompts = new ArrayList<>();
            long[] keys = new long[16];
            for (int i = 0; i < 16; i++) {
                prompts.add(i % 2 == 0 ? longPrompt : shortPrompt);
                keys[i] = RowStream.key(42, 7, i);
            }
            Generator.Completions batch = g.generate(prompts, keys, cfg);
            for (int i : new int[] {0, 5, 15}) {
                Generator.Completions alone = g.generate(List.of(prompts.get(i)), new long[] {keys[i]}, cfg);
                assertThat(alone.tokens().get(0))
                        .as("row %d", i)
                        .containsExactly(batch.tokens().get(i));
            }
            // rows with the same prompt but their own streams differ
            assertThat(batch.tokens().get(0)).isNotEqualTo(batch.tokens().get(2));
            assertThat(batch.truncated()).containsOnly(true); // no eos asked for: every row hit the limit
        }
    }
}
