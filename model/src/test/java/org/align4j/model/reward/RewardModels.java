package org.align4j.model.reward;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.align4j.model.CausalLm;

/** What the reward-model tests share: the fixture batches and how a model scores them. */
final class RewardModels {
    static final ObjectMapper JSON = new ObjectMapper();

    /** The fixture models with a transformers-written and an align4j-written reward model. */
    static final List<String> MODELS = List.of("gpt2-tiny", "llama-tiny");

    private RewardModels() {}

    static JsonNode json(Path file) {
        try {
            return JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static int[][] rows(JsonNode sequenceIds) {
        int[][] out = new int[sequenceIds.size()][];
        for (int i = 0; i < out.length; i++) {
            JsonNode r = sequenceIds.get(i);
            out[i] = new int[r.size()];
            for (int j = 0; j < r.size(); j++) {
                out[i][j] = r.get(j).asInt();
            }
        }
        return out;
    }

    /** The batch of rows padded on one side with {@code pad}, scored in one forward pass. */
    static double[] score(CausalLm rm, int[][] rows, int pad, boolean left) {
        int t = 0;
        for (int[] r : rows) {
            t = Math.max(t, r.length);
        }
        long[] ids = new long[rows.length * t];
        long[] mask = new long[rows.length * t];
        Arrays.fill(ids, pad);
        for (int i = 0; i < rows.length; i++) {
            int offset = i * t + (left ? t - rows[i].length : 0);
            for (int j = 0; j < rows[i].length; j++) {
                ids[offset + j] = rows[i][j];
                mask[offset + j] = 1;
            }
        }
        try (NDManager m = rm.manager().newSubManager()) {
            Shape shape = new Shape(rows.length, t);
            NDArray r = rm.rewards(m.create(ids, shape), m.create(mask, shape), false);
            float[] f = r.toFloatArray();
            double[] out = new double[f.length];
            for (int i = 0; i < f.length; i++) {
                out[i] = f[i];
            }
            return out;
        }
    }

    /** Each row alone, unpadded. */
    static double[] scoreOneByOne(CausalLm rm, int[][] rows) {
        double[] out = new double[rows.length];
        for (int i = 0; i < rows.length; i++) {
            out[i] = score(rm, new int[][] {rows[i]}, 0, false)[0];
        }
        return out;
    }

    static double[] doubles(JsonNode a) {
        double[] out = new double[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.get(i).asDouble();
        }
        return out;
    }
}
