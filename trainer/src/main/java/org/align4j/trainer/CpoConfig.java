package org.align4j.trainer;

import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import org.align4j.losses.CpoLoss;
import org.align4j.losses.LossType;

/**
 * The options of CPO beside the shared training options ({@link TrainConfig}), as TRL 1.13's experimental
 * {@code CPOConfig}; keys and defaults are TRL's. {@code beta} (0.1), {@code label_smoothing} (0) and
 * {@code simpo_gamma} (align4j's {@code gamma}, 0.5) are shared keys.
 *
 * @param lossType sigmoid, hinge, ipo or simpo ({@code alphapo} given reads as simpo with cpo_alpha 0, as TRL)
 * @param cpoAlpha α_BC, the weight of the chosen completions' NLL (1; 0 for alphapo)
 * @param alpha AlphaPO's reward exponent α (0: rewards are log-probs)
 * @param alphapo whether {@code loss_type: alphapo} was given (for config.yaml)
 */
public record CpoConfig(CpoLoss.Type lossType, double cpoAlpha, double alpha, boolean alphapo) {

    /** Every key, with one line of help; the order {@code --help} and {@code config.yaml} use. */
    public static final Map<String, String> KEYS = keys();

    private static Map<String, String> keys() {
        Map<String, String> k = new LinkedHashMap<>();
        k.put(
                "loss_type",
                "sigmoid, hinge, ipo, simpo (SimPO's margin simpo_gamma; with cpo_alpha 0 it is SimPO) or alphapo"
                        + " (simpo with cpo_alpha 0)");
        k.put("cpo_alpha", "Weight of the chosen completions' NLL, the BC term (0 drops it)");
        k.put("alpha", "AlphaPO's reward shape: r = (1 - p^-alpha)/alpha (0: log-probs)");
        return Collections.unmodifiableMap(k);
    }

    /** @return the keys this record owns */
    public static Set<String> ownedKeys() {
        return KEYS.keySet();
    }

    /**
     * The shared and the CPO options of one run.
     *
     * @param train the shared training options
     * @param cpo CPO's options
     */
    public record Run(TrainConfig train, CpoConfig cpo) {}

    /**
     * Resolves a run's shared and CPO options from one YAML file and the flags.
     *
     * @param yaml a YAML file, or null
     * @param overrides key → value (flags)
     * @param overrideName key → how to name it in an error (the flag)
     * @return both configs
     * @throws IllegalArgumentException naming the key, flag or file:line at fault
     */
    public static Run resolve(Path yaml, Map<String, ?> overrides, Function<String, String> overrideName) {
        Map<String, TrainConfig.Given> own = new LinkedHashMap<>();
        TrainConfig train =
                TrainConfig.resolve(Map.of("loss", LossType.CPO), yaml, overrides, overrideName, ownedKeys(), own);
        return new Run(train, of(own, train));
    }

    /** @return TRL 1.13's defaults */
    public static CpoConfig defaults() {
        return new CpoConfig(CpoLoss.Type.SIGMOID, 1.0, 0.0, false);
    }

    /**
     * Builds the options from the given keys over TRL's defaults, checking the shared keys CPO reads.
     *
     * @param given key → value and where it came from
     * @param train the run's shared options ({@code label_smoothing} and {@code gamma} are checked against
     *     the loss type)
     * @return the options
     * @throws IllegalArgumentException naming where a key was given when its value is bad or does not apply
     */
    public static CpoConfig of(Map<String, TrainConfig.Given> given, TrainConfig train) {
        GivenKeys r = new GivenKeys(given);
        String name = r.choice("loss_type", List.of("sigmoid", "hinge", "ipo", "simpo", "alphapo"), "sigmoid");
        boolean alphapo = name.equals("alphapo");
        if (alphapo) {
            r.refuse("cpo_alpha", "loss_type alphapo is simpo with cpo_alpha 0 (give loss_type simpo to set it)");
        }
        CpoLoss.Type type = alphapo ? CpoLoss.Type.SIMPO : CpoLoss.Type.valueOf(name.toUpperCase(Locale.ROOT));
        double cpoAlpha = r.number("cpo_alpha", alphapo ? 0.0 : 1.0);
        r.require(cpoAlpha >= 0, "cpo_alpha", "must be >= 0, got " + cpoAlpha);
        double alpha = r.number("alpha", 0.0);
        if (train != null) {
            if ((type == CpoLoss.Type.HINGE || type == CpoLoss.Type.IPO) && train.labelSmoothing() != 0) {
                throw new IllegalArgumentException("key 'label_smoothing': has no effect here: loss_type " + type
                        + " has no label smoothing (sigmoid and simpo do)");
            }
            if (type != CpoLoss.Type.SIMPO && train.gamma() != 0.5) {
                throw new IllegalArgumentException(
                        "key 'simpo_gamma': has no effect here: only loss_type simpo (or alphapo) reads it");
            }
        }
        return new CpoConfig(type, cpoAlpha, alpha, alphapo);
    }

    /** @return the options as {@code config.yaml} holds them */
    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("loss_type", alphapo ? "alphapo" : lossType.toString());
        if (!alphapo) {
            m.put("cpo_alpha", cpoAlpha);
        }
        m.put("alpha", alpha);
        return m;
    }

    /**
     * @param train the run's shared options (β, ε, γ)
     * @return the objective
     */
    public CpoLoss loss(TrainConfig train) {
        return new CpoLoss(lossType, train.beta(), train.labelSmoothing(), train.gamma(), cpoAlpha, alpha);
    }
}
