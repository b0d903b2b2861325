package org.align4j.losses;

import java.util.ArrayList;
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
    /** EXO on pairs (Ji et al., 2024): reverse KL to the smoothed labels [1 − ε, ε]. */
    EXO_PAIR(
            "exo-pair",
            "exo_pair",
            "EXO: KL(softmax(beta*q) || [1-eps, eps]) over the pair; --label-smoothing eps > 0 (1e-3 unless given)",
            EnumSet.of(Hyperparameter.LABEL_SMOOTHING),
            false),
    /** NCA on pairs (Chen et al., 2024): each response's reward classified on its own. */
    NCA_PAIR(
            "nca-pair",
            "nca_pair",
            "NCA: -log sigmoid(r_c) - (log sigmoid(-r_c) + log sigmoid(-r_r))/2",
            EnumSet.noneOf(Hyperparameter.class),
            false),
    /** BCO on pairs (Jung et al., 2024): chosen rewards classified positive, rejected negative. */
    BCO_PAIR(
            "bco-pair",
            "bco_pair",
            "BCO: -log sigmoid(r_c) - log sigmoid(-r_r) (TRL 1.13: no running reward mean)",
            EnumSet.noneOf(Hyperparameter.class),
            false),
    /** SPPO with hard labels (Wu et al., 2024): log-ratios regressed on ±1/(2β). */
    SPPO_HARD(
            "sppo-hard",
            "sppo_hard",
            "SPPO, hard labels: (q_c - 1/(2 beta))^2 + (q_r + 1/(2 beta))^2",
            EnumSet.noneOf(Hyperparameter.class),
            false),
    /** AOT, paired (Melnyk et al., 2024): DPO on the batch's sorted policy and reference margins. */
    AOT(
            "aot",
            "aot",
            "AOT: DPO on sorted policy vs sorted reference margins over the batch; --label-smoothing",
            EnumSet.of(Hyperparameter.LABEL_SMOOTHING),
            false),
    /** AOT, unpaired (Melnyk et al., 2024): DPO on the batch's sorted chosen and rejected log-ratios. */
    AOT_UNPAIRED(
            "aot-unpaired",
            "aot_unpaired",
            "AOT unpaired: DPO on sorted chosen vs sorted rejected log-ratios; --label-smoothing",
            EnumSet.of(Hyperparameter.LABEL_SMOOTHING),
            false),
    /** APO-zero (D'Oosterlinck et al., 2024): chosen likelihood up, rejected down. */
    APO_ZERO(
            "apo-zero",
            "apo_zero",
            "APO-zero: 1 - sigmoid(beta q_c) + sigmoid(beta q_r)",
            EnumSet.noneOf(Hyperparameter.class),
            false),
    /** APO-down (D'Oosterlinck et al., 2024): both likelihoods down, the rejected one more. */
    APO_DOWN(
            "apo-down",
            "apo_down",
            "APO-down: sigmoid(beta q_c) + 1 - sigmoid(beta margin)",
            EnumSet.noneOf(Hyperparameter.class),
            false),
    /** DiscoPOP (Chan Lu et al., 2024): logistic and exponential losses blended by σ(βΔ/τ). */
    DISCOPOP(
            "discopop",
            "discopop",
            "DiscoPOP: logistic/exponential blend by sigmoid(beta margin/tau); --discopop-tau",
            EnumSet.of(Hyperparameter.DISCOPOP_TAU),
            false),
    /** DPO on length-normalised log-ratios. */
    SIGMOID_NORM(
            "sigmoid-norm",
            "sigmoid_norm",
            "DPO on length-normalised log-ratios: -log sigmoid(beta * mean-logratio margin) (as TRL)",
            EnumSet.noneOf(Hyperparameter.class),
            false),
    /** KTO (Ethayarajh et al., 2024) on unpaired desirable/undesirable examples, {@link KtoLoss} (the kto command). */
    KTO(
            "kto",
            "kto",
            "KTO: unpaired {prompt, completion, label}; lambda_D/U (1 - sigmoid(beta (q - z0))), z0 the batch's KL"
                    + " estimate from mismatched pairs; loss_type apo_zero_unpaired drops z0 (the kto command)",
            EnumSet.noneOf(Hyperparameter.class),
            false),
    /** ORPO (Hong et al., 2024): SFT plus an odds-ratio term, reference-free, {@link OrpoLoss} (the orpo command). */
    ORPO(
            "orpo",
            null,
            "ORPO: NLL of the chosen sequences - beta * mean log sigmoid(log odds ratio), reference-free (the orpo"
                    + " command)",
            EnumSet.noneOf(Hyperparameter.class),
            false),
    /** CPO (Xu et al., 2024): DPO without the reference plus a BC term; SimPO and AlphaPO as its loss types (the cpo command). */
    CPO(
            "cpo",
            null,
            "CPO: reference-free sigmoid/hinge/ipo/simpo loss on the policy's margin + cpo_alpha * NLL(chosen);"
                    + " loss_type simpo with cpo_alpha 0 is SimPO, alpha is AlphaPO's (the cpo command)",
            EnumSet.of(Hyperparameter.LABEL_SMOOTHING, Hyperparameter.GAMMA),
            false),
    /** Supervised fine-tuning: next-token negative log-likelihood of the completion tokens (the sft command). */
    SFT(
            "sft",
            null,
            "supervised fine-tuning: next-token NLL on completion tokens (the sft command; in a mix, of the chosen ones)",
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
            false),
    /**
     * PPO (Schulman et al., 2017; Ouyang et al., 2022 for RLHF): online RL with a value model and GAE, {@code
     * rl.PpoLoss} (the ppo command).
     */
    PPO(
            "ppo",
            null,
            "PPO: online RL, value model and GAE, clipped per-token ratio, KL to the reference in the reward (the ppo"
                    + " command)",
            EnumSet.noneOf(Hyperparameter.class),
            false),
    /**
     * Online DPO (Guo et al., 2024, "Direct language model alignment from online AI feedback"): two samples
     * per prompt, the reward picks chosen and rejected, DPO's or IPO's loss on them (the online-dpo command).
     */
    ONLINE_DPO(
            "online-dpo",
            null,
            "Online DPO: two samples per prompt, the reward picks chosen/rejected, DPO or IPO loss (the online-dpo"
                    + " command)",
            EnumSet.noneOf(Hyperparameter.class),
            false);

    /** The hyperparameters some objectives read and others do not. */
    public enum Hyperparameter {
        /** β: every preference objective. */
        BETA("beta"),
        /** ε: cDPO's label smoothing, robust DPO's flip rate, EXO's and AOT's smoothing. */
        LABEL_SMOOTHING("label_smoothing"),
        /** p used for pairs without their own: soft-label IPO. */
        PREFERENCE("preference"),
        /** γ: SimPO's target margin. */
        GAMMA("gamma"),
        /** c: a reward model's centring coefficient (TRL's {@code center_rewards_coefficient}). */
        CENTER_REWARDS_COEFFICIENT("center_rewards_coefficient"),
        /** τ: DiscoPOP's temperature. */
        DISCOPOP_TAU("discopop_tau");

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
        return this != SFT && this != REWARD && !isOnline() && !hasOwnTrainer();
    }

    /**
     * @return whether the objective is trained by a command of its own with options of its own, as TRL's
     *     {@code KTOTrainer} and its experimental {@code ORPOTrainer} and {@code CPOTrainer}: {@link #KTO}
     *     (unpaired data, a KL reference point), {@link #ORPO} and {@link #CPO} (reference-free)
     */
    public boolean hasOwnTrainer() {
        return this == KTO || this == ORPO || this == CPO;
    }

    /**
     * @return the keys of the objective's own command beyond the shared training options (TRL's {@code
     *     KTOConfig} and {@code CPOConfig} names), empty for the others
     */
    public List<String> ownOptions() {
        return switch (this) {
            case KTO -> List.of("loss_type", "desirable_weight", "undesirable_weight", "unpair_preference_dataset");
            case CPO -> List.of("loss_type", "cpo_alpha", "alpha");
            default -> List.of();
        };
    }

    /** @return whether the objective trains on pairs (the preference objectives and {@link #REWARD}) */
    public boolean isPairwise() {
        return this != SFT && this != KTO && !isOnline();
    }

    /** @return whether the objective samples its own completions from prompts (online RL: grpo, rloo) */
    public boolean isOnline() {
        return this == GRPO || this == RLOO || this == PPO || this == ONLINE_DPO;
    }

    /**
     * @param h a hyperparameter
     * @return whether this objective reads it
     */
    public boolean uses(Hyperparameter h) {
        return h == Hyperparameter.BETA ? isPreference() || hasOwnTrainer() : extra.contains(h);
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

    /** @return whether this objective can be a term of a mix ({@link CombinedLoss}): TRL's DPO loss types and {@code sft} */
    public boolean mixable() {
        return this == SFT || (isPreference() && this != SIMPO);
    }

    /**
     * @return whether the objective is built on the chosen − rejected difference of the implicit rewards,
     *     so that an f-divergence other than the reverse KL ({@link FDivergence}) applies to it (TRL's list,
     *     and align4j's own variants of those)
     */
    public boolean hasFDivergenceForm() {
        return switch (this) {
            case DPO, CDPO, ROBUST, HINGE, IPO, IPO_SUM, IPO_SOFT, EXO_PAIR, DISCOPOP, SIGMOID_NORM, SFT -> true;
            default -> false;
        };
    }

    /**
     * @return whether LD-DPO's {@code ld_alpha} (the weight of the tokens past the shorter completion's
     *     length) changes this objective: the objectives on summed log-ratios; not the length-averaged ones
     *     (ipo, ipo-soft, sigmoid-norm, simpo), which are already length-desensitised, nor the sft term
     */
    public boolean readsLdAlpha() {
        return isPreference() && this != SIMPO && this != IPO && this != IPO_SOFT && this != SIGMOID_NORM;
    }

    /**
     * @return whether WPO's per-pair weights ({@code use_weighting}) apply: not to aot and aot-unpaired,
     *     whose per-pair terms belong to ranks of the sorted batch, nor to the reference-free simpo
     */
    public boolean takesPairWeights() {
        return mixable() && this != AOT && this != AOT_UNPAIRED;
    }

    /** @return the paper the objective comes from, as "Author et al., year" (TRL's own variant: "TRL") */
    public String paper() {
        return switch (this) {
            case DPO -> "Rafailov et al., 2023";
            case CDPO -> "Mitchell, 2023";
            case ROBUST -> "Chowdhury et al., 2024";
            case HINGE -> "Zhao et al., 2023 (SLiC)";
            case IPO, IPO_SUM, IPO_SOFT -> "Azar et al., 2023";
            case SIMPO -> "Meng et al., 2024";
            case EXO_PAIR -> "Ji et al., 2024";
            case NCA_PAIR -> "Chen et al., 2024";
            case BCO_PAIR -> "Jung et al., 2024";
            case SPPO_HARD -> "Wu et al., 2024";
            case AOT, AOT_UNPAIRED -> "Melnyk et al., 2024";
            case APO_ZERO, APO_DOWN -> "D'Oosterlinck et al., 2024";
            case DISCOPOP -> "Chan Lu et al., 2024";
            case SIGMOID_NORM -> "TRL";
            case KTO -> "Ethayarajh et al., 2024";
            case ORPO -> "Hong et al., 2024";
            case CPO -> "Xu et al., 2024";
            case SFT -> "-";
            case REWARD -> "Ouyang et al., 2022";
            case GRPO -> "Shao et al., 2024";
            case RLOO -> "Ahmadian et al., 2024";
            case PPO -> "Schulman et al., 2017; Ouyang et al., 2022";
            case ONLINE_DPO -> "Guo et al., 2024";
        };
    }

    /**
     * @return the config keys the objective reads besides the shared training options: β and its own
     *     hyperparameters, then the modifiers it takes ({@code f_divergence_type}, {@code ld_alpha},
     *     {@code use_weighting}, {@code loss_weights} as a term of a mix)
     */
    public List<String> options() {
        List<String> keys = new ArrayList<>();
        for (Hyperparameter h : Hyperparameter.values()) {
            if (uses(h)) {
                // CPO reads align4j's gamma under TRL's CPOConfig name
                keys.add(this == CPO && h == Hyperparameter.GAMMA ? "simpo_gamma" : h.key());
            }
        }
        keys.addAll(ownOptions());
        if (isPreference() && hasFDivergenceForm()) {
            keys.add("f_divergence_type");
        }
        if (readsLdAlpha()) {
            keys.add("ld_alpha");
        }
        if (isPreference() && takesPairWeights()) {
            keys.add("use_weighting");
        }
        if (mixable()) {
            keys.add("loss_weights");
        }
        return keys;
    }

    /** @return the objectives that can be terms of a mix, by name */
    public static String mixableNames() {
        return String.join(
                ", ",
                Arrays.stream(values())
                        .filter(LossType::mixable)
                        .map(LossType::toString)
                        .toList());
    }

    /** @return the objectives with an f-divergence form, by name */
    public static String fDivergenceNames() {
        return String.join(
                ", ",
                Arrays.stream(values())
                        .filter(LossType::hasFDivergenceForm)
                        .map(LossType::toString)
                        .toList());
    }

    /**
     * Builds the objective.
     *
     * @param beta β &gt; 0
     * @param labelSmoothing ε for DPO (0 = plain DPO), cdpo, robust, exo-pair, aot and aot-unpaired (NaN = the
     *     objective's default: 0.1 for cdpo and robust, 1e-3 for exo-pair, 0 for the others)
     * @param preference p for pairs without their own (ipo-soft)
     * @param gamma γ for simpo
     * @param discopopTau τ for discopop
     * @return the loss
     * @throws IllegalArgumentException for {@link #SFT} and {@link #REWARD}, which are not preference objectives, or a value out of range
     */
    public PreferenceLoss create(
            double beta, double labelSmoothing, double preference, double gamma, double discopopTau) {
        double eps = Double.isNaN(labelSmoothing) ? defaultLabelSmoothing() : labelSmoothing;
        return switch (this) {
            case DPO, CDPO -> new DpoLoss(beta, eps);
            case ROBUST -> new RobustDpoLoss(beta, eps);
            case HINGE -> new HingeLoss(beta);
            case IPO -> new IpoLoss(beta);
            case IPO_SUM -> new IpoLoss(beta, PreferenceLoss.Reduction.SUM);
            case IPO_SOFT -> IpoLoss.soft(beta, preference);
            case SIMPO -> new SimPoLoss(beta, gamma);
            case EXO_PAIR -> new ExoPairLoss(beta, eps);
            case NCA_PAIR -> new NcaPairLoss(beta);
            case BCO_PAIR -> new BcoPairLoss(beta);
            case SPPO_HARD -> new SppoHardLoss(beta);
            case AOT -> new AotLoss(beta, eps, true);
            case AOT_UNPAIRED -> new AotLoss(beta, eps, false);
            case APO_ZERO -> new ApoLoss(beta, false);
            case APO_DOWN -> new ApoLoss(beta, true);
            case DISCOPOP -> new DiscoPopLoss(beta, discopopTau);
            case SIGMOID_NORM -> new SigmoidNormLoss(beta);
            case SFT ->
                throw new IllegalArgumentException(
                        "loss: sft is not a preference objective (it is the sft command, or a term of a mix)");
            case REWARD ->
                throw new IllegalArgumentException(
                        "loss: reward trains a reward model (BradleyTerryLoss; the reward train command)");
            case GRPO, RLOO, PPO, ONLINE_DPO ->
                throw new IllegalArgumentException("loss: " + this + " is online RL (the " + this + " command)");
            case KTO, ORPO, CPO ->
                throw new IllegalArgumentException(
                        "loss: " + this + " has a trainer of its own (the " + this + " command)");
        };
    }

    /** @return ε when none is given: 0.1 for cdpo and robust, 1e-3 (EXO's paper) for exo-pair, else 0 */
    public double defaultLabelSmoothing() {
        return switch (this) {
            case CDPO, ROBUST -> 0.1;
            case EXO_PAIR -> 1e-3;
            default -> 0;
        };
    }

    /**
     * Builds the objective with DiscoPOP's τ at its default.
     *
     * @param beta β &gt; 0
     * @param labelSmoothing ε (NaN = the objective's default)
     * @param preference p for ipo-soft
     * @param gamma γ for simpo
     * @return the loss
     */
    public PreferenceLoss create(double beta, double labelSmoothing, double preference, double gamma) {
        return create(beta, labelSmoothing, preference, gamma, 0.05);
    }

    /**
     * Builds an objective with its defaults (ε 0, 0.1 or 1e-3, p 1, γ 0.5, τ 0.05).
     *
     * @param beta β
     * @return the loss
     */
    public PreferenceLoss create(double beta) {
        return create(beta, Double.NaN, 1.0, 0.5);
    }
}
