package org.align4j.trainer;

import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import org.align4j.losses.KtoLoss;
import org.align4j.losses.LossType;

/**
 * The options of KTO beside the shared training options ({@link TrainConfig}), as TRL 1.13's {@code
 * KTOConfig} extends {@code TrainingArguments}; keys and defaults are TRL's ({@code beta}, 0.1, is a shared
 * key). A YAML file or the flags set both at once ({@link #resolve}).
 *
 * @param lossType kto (with the KL reference point) or apo_zero_unpaired
 * @param desirableWeight λ_D, the weight of the desirable examples' losses (1)
 * @param undesirableWeight λ_U, the weight of the undesirable examples' losses (1)
 * @param unpairPreferenceDataset read preference pairs and train on each as a desirable and an undesirable
 *     example (TRL's {@code unpair_preference_dataset}, which its KTOTrainer applies to pairs by itself);
 *     without it a pair in the data is refused
 */
public record KtoConfig(
        KtoLoss.Type lossType, double desirableWeight, double undesirableWeight, boolean unpairPreferenceDataset) {

    /** Every key, with one line of help; the order {@code --help} and {@code config.yaml} use. */
    public static final Map<String, String> KEYS = keys();

    private static Map<String, String> keys() {
        Map<String, String> k = new LinkedHashMap<>();
        k.put("loss_type", "kto, or apo_zero_unpaired (no KL reference point)");
        k.put("desirable_weight", "Weight lambda_D of the desirable examples' losses");
        k.put("undesirable_weight", "Weight lambda_U of the undesirable examples' losses");
        k.put(
                "unpair_preference_dataset",
                "Train on preference pairs, each as a desirable and an undesirable completion (TRL's"
                        + " unpair_preference_dataset)");
        return Collections.unmodifiableMap(k);
    }

    /** @return the keys this record owns */
    public static Set<String> ownedKeys() {
        return KEYS.keySet();
    }

    /**
     * The shared and the KTO options of one run.
     *
     * @param train the shared training options
     * @param kto KTO's options
     */
    public record Run(TrainConfig train, KtoConfig kto) {}

    /**
     * Resolves a run's shared and KTO options from one YAML file and the flags.
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
                TrainConfig.resolve(Map.of("loss", LossType.KTO), yaml, overrides, overrideName, ownedKeys(), own);
        return new Run(train, of(own));
    }

    /** @return TRL 1.13's defaults */
    public static KtoConfig defaults() {
        return of(Map.of());
    }

    /**
     * Builds the options from the given keys over TRL's defaults.
     *
     * @param given key → value and where it came from
     * @return the options
     * @throws IllegalArgumentException naming where a key was given when its value is bad
     */
    public static KtoConfig of(Map<String, TrainConfig.Given> given) {
        GivenKeys r = new GivenKeys(given);
        String type = r.choice("loss_type", List.of("kto", "apo_zero_unpaired"), "kto");
        double dw = r.number("desirable_weight", 1.0);
        r.require(dw > 0, "desirable_weight", "must be > 0, got " + dw);
        double uw = r.number("undesirable_weight", 1.0);
        r.require(uw > 0, "undesirable_weight", "must be > 0, got " + uw);
        boolean unpair = r.bool("unpair_preference_dataset", false);
        return new KtoConfig(type.equals("kto") ? KtoLoss.Type.KTO : KtoLoss.Type.APO_ZERO_UNPAIRED, dw, uw, unpair);
    }

    /** @return the options as {@code config.yaml} holds them */
    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("loss_type", lossType.toString());
        m.put("desirable_weight", desirableWeight);
        m.put("undesirable_weight", undesirableWeight);
        m.put("unpair_preference_dataset", unpairPreferenceDataset);
        return m;
    }

    /** @return the objective */
    public KtoLoss loss(TrainConfig train) {
        return new KtoLoss(lossType, train.beta(), desirableWeight, undesirableWeight);
    }
}
