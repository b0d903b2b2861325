package org.align4j.model.config;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * Rotary position embedding settings, from transformers-5 {@code rope_parameters} or
 * transformers-4 top-level {@code rope_theta} + {@code rope_scaling}.
 *
 * @param theta the base
 * @param type default, linear or llama3 (others are refused)
 * @param factor scaling factor (linear, llama3)
 * @param lowFreqFactor llama3 low-frequency factor
 * @param highFreqFactor llama3 high-frequency factor
 * @param originalMaxPositions llama3 original context length
 */
public record RopeConfig(
        double theta,
        String type,
        double factor,
        double lowFreqFactor,
        double highFreqFactor,
        int originalMaxPositions) {

    static RopeConfig read(ModelConfig.Reader r, int maxPositions) {
        JsonNode params = r.node("rope_parameters");
        JsonNode scaling = r.node("rope_scaling");
        String where;
        JsonNode src;
        double theta;
        if (params != null && !params.isNull()) {
            if (!params.isObject()) {
                throw r.error("rope_parameters", "expected an object, got " + params);
            }
            where = "rope_parameters";
            src = params;
            theta = params.has("rope_theta")
                    ? r.positive(params, "rope_theta", 10000.0)
                    : r.positive("rope_theta", 10000.0);
        } else {
            where = "rope_scaling";
            src = scaling != null && !scaling.isNull() ? scaling : null;
            if (src != null && !src.isObject()) {
                throw r.error("rope_scaling", "expected an object, got " + scaling);
            }
            theta = r.positive("rope_theta", 10000.0);
        }
        String type = "default";
        if (src != null) {
            JsonNode t = src.has("rope_type") ? src.get("rope_type") : src.get("type");
            if (t != null && !t.isNull()) {
                type = t.asText();
            }
        }
        switch (type) {
            case "default":
                return new RopeConfig(theta, type, 1.0, 1.0, 1.0, maxPositions);
            case "linear":
                return new RopeConfig(theta, type, need(r, where, src, "factor"), 1.0, 1.0, maxPositions);
            case "llama3":
                return new RopeConfig(
                        theta,
                        type,
                        need(r, where, src, "factor"),
                        need(r, where, src, "low_freq_factor"),
                        need(r, where, src, "high_freq_factor"),
                        (int) need(r, where, src, "original_max_position_embeddings"));
            default:
                throw r.error(
                        where + ".rope_type",
                        "unsupported rope type '" + type + "'; supported: default, linear, llama3");
        }
    }

    private static double need(ModelConfig.Reader r, String where, JsonNode src, String key) {
        JsonNode n = src.get(key);
        if (n == null || !n.isNumber()) {
            throw r.error(where + "." + key, "missing or not a number");
        }
        if (!(n.doubleValue() > 0) || !Double.isFinite(n.doubleValue())) {
            throw r.error(where + "." + key, "must be a finite number above 0, got " + n);
        }
        return n.doubleValue();
    }

    /**
     * The inverse frequencies of the rotary embedding, with this config's scaling applied (as HF's
     * {@code ROPE_INIT_FUNCTIONS} compute them).
     *
     * @param headDim the rotated width
     * @return {@code headDim / 2} inverse frequencies
     */
    public float[] inverseFrequencies(int headDim) {
        int half = headDim / 2;
        float[] inv = new float[half];
        for (int i = 0; i < half; i++) {
            // HF computes the exponent in float32; do the same to match its tables bit for bit.
            float exponent = (float) (2 * i) / headDim;
            float f = (float) (1.0 / Math.pow(theta, exponent));
            inv[i] = scale(f);
        }
        return inv;
    }

    private float scale(float invFreq) {
        switch (type) {
            case "linear":
                return (float) (invFreq / factor);
            case "llama3":
                double lowWavelen = originalMaxPositions / lowFreqFactor;
                double highWavelen = originalMaxPositions / highFreqFactor;
                double wavelen = 2 * Math.PI / invFreq;
                if (wavelen > lowWavelen) {
                    return (float) (invFreq / factor);
                }
                if (wavelen < highWavelen) {
                    return invFreq;
                }
                double smooth = (originalMaxPositions / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
                return (float) ((1 - smooth) * invFreq / factor + smooth * invFreq);
            default:
                return invFreq;
        }
    }
}
