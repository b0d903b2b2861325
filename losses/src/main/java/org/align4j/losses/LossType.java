package org.align4j.losses;

import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;

/**
 * The registry of training objectives: what {@code --loss} (TRL's {@code loss_type}) can name, which
 * hyperparameters each one reads, and how to build it. The CLI lists this table; a config that sets a
 * hyperparameter the chosen objective never reads is refused with {@link #uses}.
 *
 * <p>Names are align4j's ({@code dpo}, {@code ipo-sum}, ...); {@link #parse} also takes TRL 1.13's
 * {@code loss_type} spelling where the meaning is the same ({@code sigmoid} is DPO).
 */
public enum LossType {
    /** DPO (Rafailov et al., 2023): −log σ(βΔ); with label smoothing ε it is cDPO; per-pair p gives soft labels. */
    DPO(
            "dpo",
            "sigmoid",
            "DPO: -log sigmoid(beta * margin); with --label-smoothing it is cDPO",
            EnumSet.of(Hyperparameter.LABEL_SMOOTHING),
            true),
    /** Conservative DPO: DPO with label smoothing ε (0.1 unless given). */
    CDPO(
            "cdpo",
            null,
            "conservative DPO: DPO with label smoothing (0.1 unless given)",
            EnumSet.of(Hyperparameter.LABEL_SMOOTHING),
            true),
    /** Robust DPO (Chowdhury et al., 2024): unbiased under label-flip noise ε (0.1 unless given). */
    ROBUST(
            "robust",
            "robust",
            "robust DPO: unbiased under a label-flip rate (--label-smoothing, 0.1 unless given)",
            EnumSet.of(Hyperparameter.LABEL_SMOOTHING),
            false),
    /** SLiC's hinge (Zhao et al., 2023): relu(1 − βΔ). */
    HINGE("hinge", "hinge", "hinge (SLiC): relu(1 - beta * margin)", EnumSet.noneOf(Hyperparameter.class), false),
    /** IPO (Azar et al., 2023): (Δ − 1/(2β))² on length-averaged log-probs, as the authors and TRL. */
    IPO(
            "ipo",
            "ipo",
            "IPO: (margin - 1/(2 beta))^2 on length-averaged log-probs (as TRL)",
            EnumSet.noneOf(Hyperparameter.class),
            false),
    /** IPO on summed log-probs. */
    IPO_SUM("ipo-sum", null, "IPO on summed log-probs", EnumSet.noneOf(Hyperparameter.class), false),
    /** Soft-label IPO: target (2p − 1)/(2β) for a pair's preference probability p. */
    IPO_SOFT(
            "ipo-soft",
            null,
            "soft-label IPO: target (2p - 1)/(2 beta) for each pair's preference p (--preference when a pair has none)",
            EnumSet.of(Hyperparameter.PREFERENCE),
            true),
    /** SimPO (Meng et al., 2024): −log σ(β·(mean log-prob margin) − γ), reference-free. */
    SIMPO(
            "simpo",
            null,
            "SimPO: reference-free, -log sigmoid(beta * mean-logp margin - gamma)",
            EnumSet.of(Hyperparameter.GAMMA),
            false),
    /** Supervised fine-tuning: next-token negative log-likelihood of the completion tokens (the sft command). */
    SFT(
            "sft",
            null,
            "supervised fine-tuning: next-token NLL on completion tokens (the sft command)",
            EnumSet.noneOf(Hyperparameter.class),
            false),
    /** A reward model: Bradley–Terry on its scalar rewards, {@link BradleyTerryLoss} (the reward train command). */
    REWARD(
            "reward",
            null,
            "reward model: Bradley-Terry -log sigmoid(r_c - r_r - margin) (the reward train command)",
            EnumSet.of(Hyperparameter.CENTER_REWARDS_COEFFICIENT),
            false),
    /** GRPO (Shao et al., 2024): online RL with group-relative advantages, {@code rl.GrpoLoss} (the grpo command). */
    GRPO(
            "grpo",
            null,
            "GRPO: online RL, group-relative advantages, clipped per-token ratio, k3 KL in the loss (the grpo command)",
            EnumSet.noneOf(Hyperparameter.class),
            false),
    /** RLOO (Ahmadian et al., 2024): online RL with a leave-one-out baseline, {@code rl.RlooLoss} (the rloo command). */
    RLOO(
            "rloo",
            null,
            "RLOO: online RL, leave-one-out baseline, clipped sequence ratio, k1 KL in the reward (the rloo command)",
            EnumSet.noneOf(Hyperparameter.class),
            false);

    /** The hyperparameters some objectives read and others do not. */
    public enum Hyperparameter {
        /** β: every preference objective. */
        BETA("beta"),
        /** ε: cDPO's label smoothing, robust DPO's flip rate. */
        LABEL_SMOOTHING("label_smoothing"),
        /** p used for pairs without their own: soft-label IPO. */
        PREFERENCE("preference"),
        /** γ: SimPO's target margin. */
        GAMMA("gamma"),
        /** c: a reward model's centring coefficient (TRL's {@code center_rewards_coefficient}). */
        CENTER_REWARDS_COEFFICIENT("center_rewards_coefficient");

        private final String key;

        Hyperparameter(String key) {
            this.key = key;
        }

        /** @return the config key ({@code label_smoothing}) */
        public String key() {
            return key;
        }
    }

    private final String configName;
    private final String trlName;
    private final String description;
    private final Set<Hyperparameter> extra;
    private final boolean readsPairPreference;

    LossType(
            String configName,
            String trlName,
            String description,
            Set<Hyperparameter> extra,
            boolean readsPairPreference) {
        this.configName = configName;
        this.trlName = trlName;
        this.description = description;
        this.extra = extra;
        this.readsPairPreference = readsPairPreference;
    }

    /** @return the name {@code --loss} and YAML use ({@code ipo-sum}) */
    @Override
    public String toString() {
        return configName;
    }

    /** @return TRL 1.13's {@code loss_type} of the same objective, if TRL has it */
    public Optional<String> trlName() {
        return Optional.ofNullable(trlName);
    }

    /** @return one line for {@code --help} and the README */
    public String description() {
        return description;
    }

    /**
     * @return whether this is an offline preference objective of a policy (everything but {@link #SFT}, {@link
     *     #REWARD} and the online {@link #GRPO} and {@link #RLOO})
     */
    public boolean isPreference() {
        return this != SFT && this != REWARD && !isOnline();
    }

    /** @return whether the objective trains on pairs (the preference objectives and {@link #REWARD}) */
    public boolean isPairwise() {
        return this != SFT && !isOnline();
    }

    /** @return whether the objective samples its own completions from prompts (online RL: grpo, rloo) */
    public boolean isOnline() {
        return this == GRPO || this == RLOO;
    }

    /**
     * @param h a hyperparameter
     * @return whether this objective reads it
     */
    public boolean uses(Hyperparameter h) {
        return h == Hyperparameter.BETA ? isPreference() : extra.contains(h);
    }

    /** @return whether a pair's own preference probability ({@code preference}, {@code p}, scores) changes this objective */
    public boolean readsPairPreference() {
        return readsPairPreference;
    }

    /** @return the preference objectives, in the order the CLI lists them */
    public static List<LossType> preferenceTypes() {
        return Arrays.stream(values()).filter(LossType::isPreference).toList();
    }

    /**
     * Reads a name as {@code --loss} or TRL's {@code loss_type} spells it; case, '-' and '_' do not matter.
     *
     * @param name {@code dpo}, {@code ipo_sum}, {@code sigmoid}, ...
     * @return the objective
     * @throws IllegalArgumentException naming the choices when nothing matches
     */
    public static LossType parse(String name) {
        String n = name.trim().toLowerCase(Locale.ROOT).replace('_', '-');
        for (LossType t : values()) {
            if (t.configName.equals(n) || n.equals(t.trlName)) {
                return t;
            }
        }
        throw new IllegalArgumentException("unknown objective '" + name + "'; choose one of "
                + Arrays.stream(values()).map(LossType::toString).toList());
    }

    /**
     * Builds the objective.
     *
     * @param beta β &gt; 0
     * @param labelSmoothing ε for DPO (0 = plain DPO), cdpo and robust (NaN = the objective's default: 0.1 for cdpo and robust, 0 for dpo)
     * @param preference p for pairs without their own (ipo-soft)
     * @param gamma γ for simpo
     * @return the loss
     * @throws IllegalArgumentException for {@link #SFT} and {@link #REWARD}, which are not preference objectives, or a value out of range
     */
    public PreferenceLoss create(double beta, double labelSmoothing, double preference, double gamma) {
        return switch (this) {
            case DPO -> new DpoLoss(beta, Double.isNaN(labelSmoothing) ? 0 : labelSmoothing);
            case CDPO -> new DpoLoss(beta, Double.isNaN(labelSmoothing) ? 0.1 : labelSmoothing);
            case ROBUST -> new RobustDpoLoss(beta, Double.isNaN(labelSmoothing) ? 0.1 : labelSmoothing);
            case HINGE -> new HingeLoss(beta);
            case IPO -> new IpoLoss(beta);
            case IPO_SUM -> new IpoLoss(beta, PreferenceLoss.Reduction.SUM);
            case IPO_SOFT -> IpoLoss.soft(beta, preference);
            case SIMPO -> new SimPoLoss(beta, gamma);
            case SFT ->
                throw new IllegalArgumentException("loss: sft is not a preference objective (it is the sft command)");
            case REWARD ->
                throw new IllegalArgumentException(
                        "loss: reward trains a reward model (BradleyTerryLoss; the reward train command)");
            case GRPO, RLOO ->
                throw new IllegalArgumentException("loss: " + this + " is online RL (the " + this + " command)");
        };
    }

    /**
     * Builds an objective with its defaults (ε 0 or 0.1, p 1, γ 0.5).
     *
     * @param beta β
     * @return the loss
     */
    public PreferenceLoss create(double beta) {
        return create(beta, Double.NaN, 1.0, 0.5);
    }
}
