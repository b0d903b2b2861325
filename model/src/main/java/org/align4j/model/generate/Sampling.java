package org.align4j.model.generate;

import java.util.Arrays;
import java.util.Random;

/** Temperature, top-k and top-p (nucleus) sampling from one row of logits, as HF's logits warpers do. */
final class Sampling {
    private Sampling() {}

    static int sample(float[] logits, GenerationConfig cfg, Random random) {
        int v = logits.length;
        double[] scaled = new double[v];
        for (int i = 0; i < v; i++) {
            scaled[i] = logits[i] / cfg.temperature();
        }
        Integer[] order = new Integer[v];
        for (int i = 0; i < v; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> Double.compare(scaled[b], scaled[a]));
        int keep = cfg.topK() > 0 ? Math.min(cfg.topK(), v) : v;
        double max = scaled[order[0]];
        double[] p = new double[keep];
        double z = 0;
        for (int r = 0; r < keep; r++) {
            p[r] = Math.exp(scaled[order[r]] - max);
            z += p[r];
        }
        if (cfg.topP() < 1) {
            // keep the smallest prefix whose mass reaches topP (always at least one token)
            double cum = 0;
            int cut = keep;
            for (int r = 0; r < keep; r++) {
                cum += p[r] / z;
                if (cum >= cfg.topP()) {
                    cut = r + 1;
                    break;
                }
            }
            keep = cut;
            z = 0;
            for (int r = 0; r < keep; r++) {
                z += p[r];
            }
        }
        double u = random.nextDouble() * z;
        for (int r = 0; r < keep; r++) {
            u -= p[r];
            if (u <= 0) {
                return order[r];
            }
        }
        return order[keep - 1];
    }
}
