package org.align4j.model.generate;

/**
 * How to pick new tokens.
 *
 * @param maxNewTokens how many tokens at most per row
 * @param greedy take the most likely token (ignores temperature, topK, topP)
 * @param temperature divides the logits before sampling (&gt; 0)
 * @param topK keep only the K most likely tokens (0 = all)
 * @param topP keep the smallest set whose probability reaches P (1 = all)
 * @param minP keep the tokens whose probability is at least P times the most likely token's (0 = all)
 * @param seed sampling seed; the same seed and prompts give the same tokens
 * @param stopAtEos stop a row after it emits an eos id
 * @param useCache reuse keys and values of earlier tokens (native models); output is identical
 */
public record GenerationConfig(
        int maxNewTokens,
        boolean greedy,
        double temperature,
        int topK,
        double topP,
        double minP,
        long seed,
        boolean stopAtEos,
        boolean useCache) {

    /** Checks the values. */
    public GenerationConfig {
        if (maxNewTokens < 0) {
            throw new IllegalArgumentException("maxNewTokens: must be >= 0, got " + maxNewTokens);
        }
        if (!greedy && !(temperature > 0)) {
            throw new IllegalArgumentException("temperature: must be > 0, got " + temperature);
        }
        if (topK < 0) {
            throw new IllegalArgumentException("topK: must be >= 0, got " + topK);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("topP: must be in (0, 1], got " + topP);
        }
        if (!(minP >= 0 && minP <= 1)) {
            throw new IllegalArgumentException("minP: must be in [0, 1], got " + minP);
        }
    }

    /**
     * @param maxNewTokens tokens per row
     * @return greedy decoding with the cache, stopping at eos
     */
    public static GenerationConfig greedy(int maxNewTokens) {
        return new GenerationConfig(maxNewTokens, true, 1.0, 0, 1.0, 0, 0, true, true);
    }

    /**
     * @param maxNewTokens tokens per row
     * @param temperature softmax temperature
     * @param topK top-k filter (0 = off)
     * @param topP nucleus filter (1 = off)
     * @param seed sampling seed
     * @return sampling with the cache, stopping at eos
     */
    public static GenerationConfig sample(int maxNewTokens, double temperature, int topK, double topP, long seed) {
        return new GenerationConfig(maxNewTokens, false, temperature, topK, topP, 0, seed, true, true);
    }

    /** @param stop whether to stop at eos @return a copy */
    public GenerationConfig withStopAtEos(boolean stop) {
        return new GenerationConfig(maxNewTokens, greedy, temperature, topK, topP, minP, seed, stop, useCache);
    }

    /** @param cache whether to use the KV cache @return a copy */
    public GenerationConfig withCache(boolean cache) {
        return new GenerationConfig(maxNewTokens, greedy, temperature, topK, topP, minP, seed, stopAtEos, cache);
    }

    /** @param p the min-p filter (0 = off) @return a copy */
    public GenerationConfig withMinP(double p) {
        return new GenerationConfig(maxNewTokens, greedy, temperature, topK, topP, p, seed, stopAtEos, useCache);
    }

    /** @param tokens the most new tokens per row @return a copy */
    public GenerationConfig withMaxNewTokens(int tokens) {
        return new GenerationConfig(tokens, greedy, temperature, topK, topP, minP, seed, stopAtEos, useCache);
    }
}
