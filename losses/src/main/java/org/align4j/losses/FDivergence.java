package org.align4j.losses;

import ai.djl.ndarray.NDArray;
import ai.djl.nn.Activation;
import java.util.Arrays;
import java.util.Locale;

/**
 * The divergence from the reference that a preference objective regularises with (Wang et al., 2023,
 * "Beyond Reverse KL: Generalizing Direct Preference Optimization with Diverse Divergence
 * Constraints"). Under an f-divergence the implicit reward of a response is β·f′(π/π_ref) instead of
 * β·log(π/π_ref); the log-partition term cancels only in the chosen − rejected difference, so only the
 * objectives built on that difference have an f-divergence form ({@link LossType#hasFDivergenceForm}).
 *
 * <p>For a log-ratio u = log(π/π_ref) on summed log-probs, the score that replaces it is: reverse KL
 * u; forward KL 1 − e^{−u}; Jensen–Shannon log 2 + log σ(u); α-divergence (e^{(α−1)u} − 1)/(α − 1),
 * with (α − 1)u clamped above at 80 so the exponential stays finite (α = 1 is the reverse KL). As TRL
 * 1.13's {@code f_divergence_type} and {@code f_alpha_divergence_coef}.
 */
public enum FDivergence {
    /** KL(π ‖ π_ref): DPO's own. */
    REVERSE_KL("reverse_kl"),
    /** KL(π_ref ‖ π). */
    FORWARD_KL("forward_kl"),
    /** Jensen–Shannon. */
    JS_DIVERGENCE("js_divergence"),
    /** The α-divergence, with its coefficient α. */
    ALPHA_DIVERGENCE("alpha_divergence");

    private final String configName;

    FDivergence(String configName) {
        this.configName = configName;
    }

    /** @return TRL's and the config's spelling ({@code js_divergence}) */
    @Override
    public String toString() {
        return configName;
    }

    /**
     * @param name {@code reverse_kl}, {@code forward_kl}, {@code js_divergence} or {@code alpha_divergence}
     *     ('-' and '_' alike)
     * @return the divergence
     * @throws IllegalArgumentException naming the choices
     */
    public static FDivergence parse(String name) {
        String n = name.trim().toLowerCase(Locale.ROOT).replace('-', '_');
        for (FDivergence d : values()) {
            if (d.configName.equals(n)) {
                return d;
            }
        }
        throw new IllegalArgumentException("unknown f-divergence '" + name + "'; choose one of "
                + Arrays.stream(values()).map(FDivergence::toString).toList());
    }

    /**
     * The score that replaces a log-ratio.
     *
     * @param logRatio [B] u = log π − log π_ref (summed over the completion)
     * @param alpha α of {@link #ALPHA_DIVERGENCE} (ignored by the others)
     * @return [B] f′(e^u)
     */
    public NDArray score(NDArray logRatio, double alpha) {
        return switch (this) {
            case REVERSE_KL -> logRatio;
            case FORWARD_KL -> logRatio.neg().exp().neg().add(1);
            case JS_DIVERGENCE -> Activation.softPlus(logRatio.neg()).neg().add(Math.log(2));
            case ALPHA_DIVERGENCE -> {
                if (Math.abs(alpha - 1) < 1e-6) {
                    yield logRatio; // the limit α → 1 is the reverse KL
                }
                NDArray t = PreferenceLoss.times(logRatio, alpha - 1).minimum(80);
                yield PreferenceLoss.times(t.exp().sub(1), 1 / (alpha - 1));
            }
        };
    }
}
