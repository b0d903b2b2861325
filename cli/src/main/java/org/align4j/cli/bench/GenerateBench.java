package org.align4j.cli.bench;

import ai.djl.Device;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.align4j.model.CausalLm;
import org.align4j.model.generate.GenerationConfig;
import org.align4j.model.generate.Generator;
import org.align4j.model.generate.RowStream;

/**
 * Times the sampler as an RL rollout uses it: a batch of prompts of random ids (seeded), each row
 * sampled at temperature 1 for exactly {@code newTokens} tokens (no stopping, so every run does the same
 * work), with the KV cache. Reports new tokens per second (median over timed runs) and the peak resident
 * set size; {@code benchmarks/compare-generate.sh} runs transformers' {@code generate} on the same folder.
 */
public final class GenerateBench {
    private GenerateBench() {}

    /**
     * @param model an HF model folder
     * @param device where to run
     * @param rows prompts per batch
     * @param promptLength tokens per prompt
     * @param newTokens tokens sampled per row
     * @param runs timed runs
     * @param warmup untimed runs first
     * @param seed seed of the prompts and the row streams
     * @return JSON fields: new_tokens_per_s, run_ms_median, peak_bytes, ...
     * @throws IOException when the peak memory cannot be read
     */
    public static Map<String, Object> run(
            Path model, Device device, int rows, int promptLength, int newTokens, int runs, int warmup, long seed)
            throws IOException {
        if (rows < 1 || promptLength < 1 || newTokens < 1 || runs < 1 || warmup < 0) {
            throw new IllegalArgumentException("--batch-pairs, --seq-len, --new-tokens and --steps: at least 1");
        }
        try (CausalLm lm = CausalLm.load(model, device)) {
            lm.setTrainable(false);
            int vocab = (int) lm.config().vocabSize();
            Random r = new Random(seed);
            List<int[]> prompts = new ArrayList<>();
            long[] keys = new long[rows];
            for (int i = 0; i < rows; i++) {
                int[] p = new int[promptLength];
                for (int t = 0; t < promptLength; t++) {
                    p[t] = r.nextInt(vocab);
                }
                prompts.add(p);
                keys[i] = RowStream.key(seed, i);
            }
            // eos ids nothing reaches: every row runs newTokens steps
            Generator g = new Generator(lm, 0, List.of(-1));
            GenerationConfig cfg = GenerationConfig.sample(newTokens, 1.0, 0, 1.0, seed);
            double[] ms = new double[runs];
            for (int i = 0; i < warmup + runs; i++) {
                long t0 = System.nanoTime();
                g.generate(prompts, keys, cfg);
                double took = (System.nanoTime() - t0) / 1e6;
                if (i >= warmup) {
                    ms[i - warmup] = took;
                }
            }
            Arrays.sort(ms);
            double median = ms[runs / 2];
            Map<String, Object> v = new LinkedHashMap<>();
            v.put("framework", "align4j");
            v.put("model", model.toString());
            v.put("device", device.toString());
            v.put("rows", rows);
            v.put("prompt_tokens", promptLength);
            v.put("new_tokens", newTokens);
            v.put("vocab", vocab);
            v.put("new_tokens_per_s", rows * (double) newTokens / (median / 1000));
            v.put("run_ms_median", median);
            v.put("run_ms_min", ms[0]);
            v.put("run_ms_max", ms[runs - 1]);
            v.put("peak_rss_bytes", StepBench.peakResidentBytes());
            return v;
        }
    }
}
