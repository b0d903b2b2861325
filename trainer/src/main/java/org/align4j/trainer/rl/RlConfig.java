package org.align4j.trainer.rl;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import org.align4j.evaluation.rewards.Rewards;
import org.align4j.losses.LossType;
import org.align4j.losses.rl.Advantages;
import org.align4j.losses.rl.GrpoLoss;
import org.align4j.losses.rl.Ppo;
import org.align4j.trainer.GivenKeys;
import org.align4j.trainer.TrainConfig;

/**
 * The options of online RL, beside the shared training options ({@link TrainConfig}), as TRL's {@code
 * GRPOConfig} and {@code RLOOConfig} extend {@code TrainingArguments}; keys and defaults are TRL 1.13's.
 * A YAML file or the flags set both at once ({@link #resolve}).
 *
 * <p>Batches are TRL's: {@code batch_size} ({@code per_device_train_batch_size}) counts completions per
 * micro-batch; one generation makes {@code batch_size × grad_accum} completions, {@code num_generations}
 * per prompt, and serves {@code num_iterations} optimizer steps (TRL's {@code steps_per_generation} is
 * {@code grad_accum}, its default). PPO's keys are TRL 0.x's {@code PPOConfig} names ({@link Ppo}): one
 * rollout of {@code batch_size × grad_accum × num_mini_batches} completions serves {@code num_ppo_epochs ×
 * num_mini_batches} optimizer steps.
 *
 * @param method GRPO or RLOO (not a key: the command)
 * @param numGenerations G, samples per prompt (GRPO 8, RLOO 2; at least 2)
 * @param maxCompletionLength the most new tokens per sample (512)
 * @param temperature sampling temperature; log-probs are scored at it too (1)
 * @param topK top-k filter, 0 = off
 * @param topP nucleus filter, 1 = off
 * @param minP min-p filter, 0 = off
 * @param beta KL coefficient β (GRPO 0: no reference is loaded; RLOO 0.05)
 * @param epsilon ε, the lower clip
 * @param epsilonHigh ε_high, the upper clip (NaN: ε)
 * @param numIterations μ, optimizer steps per generation (1: on-policy)
 * @param lossType GRPO's reduction ({@code dapo})
 * @param scaleRewards GRPO's advantage scaling ({@code group})
 * @param maskTruncatedCompletions leave samples cut at {@code max_completion_length} out of the loss
 * @param normalizeAdvantages RLOO: whiten advantages over the batch
 * @param rewardFuncs rewards: built-ins, {@code class:NAME} or reward model folders
 * @param rewardWeights one weight per reward (empty: all 1)
 * @param rewardModelEos a reward model reads prompt + completion + eos with special tokens, as reward
 *     training did (true), or as TRL's GRPO reads it (false)
 * @param shuffleDataset shuffle the prompts each epoch (TRL's {@code shuffle_dataset})
 * @param ppo PPO's own options (null for the other methods)
 * @param pairLoss Online DPO's {@code loss_type}: {@link LossType#DPO} ({@code sigmoid}) or {@link LossType#IPO}
 *     (null for the other methods)
 * @param missingEosPenalty PPO and Online DPO: subtracted from the score of a completion cut without an eos
 *     (NaN: none)
 * @param sources how each key that was given was given (the flag, or FILE:LINE: key 'name'), for errors found
 *     once models are loaded
 */
public record RlConfig(
        LossType method,
        int numGenerations,
        int maxCompletionLength,
        double temperature,
        int topK,
        double topP,
        double minP,
        double beta,
        double epsilon,
        double epsilonHigh,
        int numIterations,
        GrpoLoss.Aggregation lossType,
        Advantages.Scale scaleRewards,
        boolean maskTruncatedCompletions,
        boolean normalizeAdvantages,
        List<String> rewardFuncs,
        List<Double> rewardWeights,
        boolean rewardModelEos,
        boolean shuffleDataset,
        PpoOptions ppo,
        LossType pairLoss,
        double missingEosPenalty,
        Map<String, String> sources) {

    /**
     * @param key one of this record's keys
     * @return how it was given (its flag, or {@code FILE:LINE: key 'name'}), or {@code key 'name'} when it was not
     */
    public String where(String key) {
        return sources.getOrDefault(key, "key '" + key + "'");
    }

    /**
     * PPO's options, TRL 0.x's {@code PPOConfig} names (OpenRLHF's in brackets).
     *
     * @param numPpoEpochs passes over each rollout ({@code num_ppo_epochs}, 4)
     * @param numMiniBatches optimizer steps per pass ({@code num_mini_batches}, 1)
     * @param klCoef β of the KL penalty in the per-token reward ({@code kl_coef}, 0.05; [init_kl_coef])
     * @param klEstimator k1, k2 or k3 ({@code kl_estimator}, k1)
     * @param klTarget the adaptive controller's target KL, NaN for a fixed coefficient ([kl_target])
     * @param klHorizon the adaptive controller's horizon in samples ([kl_horizon], 10000)
     * @param cliprange ε of the policy ratio (0.2)
     * @param cliprangeValue ε_v of the value estimate (0.2)
     * @param vfCoef the value loss's weight (0.1)
     * @param gamma GAE's discount γ (1)
     * @param lam GAE's λ ({@code lam}, 0.95)
     * @param whitenRewards whiten the per-token rewards before GAE (false)
     * @param valueModel the value model's folder or Hub id (null: the reward model when exactly one reward is a
     *     model, else the policy's folder with a new head)
     */
    public record PpoOptions(
            int numPpoEpochs,
            int numMiniBatches,
            double klCoef,
            Ppo.KlEstimator klEstimator,
            double klTarget,
            double klHorizon,
            double cliprange,
            double cliprangeValue,
            double vfCoef,
            double gamma,
            double lam,
            boolean whitenRewards,
            String valueModel) {
        /** @return optimizer steps per rollout: {@code num_ppo_epochs × num_mini_batches} */
        public int stepsPerRollout() {
            return numPpoEpochs * numMiniBatches;
        }

        /** @return whether {@code kl_target} makes the coefficient adaptive */
        public boolean adaptiveKl() {
            return !Double.isNaN(klTarget);
        }
    }

    /** PPO's keys, with one line of help (TRL 0.x's PPOConfig names). */
    static final Map<String, String> PPO_KEYS = ppoKeys();

    private static Map<String, String> ppoKeys() {
        Map<String, String> k = new LinkedHashMap<>();
        k.put("num_ppo_epochs", "PPO: passes over each rollout");
        k.put("num_mini_batches", "PPO: optimizer steps per pass (a rollout is batch_size x grad_accum x this)");
        k.put("kl_coef", "PPO: KL coefficient of the per-token reward (the initial one with kl_target)");
        k.put("kl_estimator", "PPO: k1, k2 or k3");
        k.put("kl_target", "PPO: target KL of the adaptive coefficient (Ziegler et al.; default: fixed)");
        k.put("kl_horizon", "PPO: horizon, in samples, of the adaptive coefficient");
        k.put("cliprange", "PPO: clip of the policy ratio");
        k.put("cliprange_value", "PPO: clip of the value estimate around its rollout value");
        k.put("vf_coef", "PPO: weight of the value loss");
        k.put("gamma", "PPO: GAE discount");
        k.put("lam", "PPO: GAE lambda");
        k.put("whiten_rewards", "PPO: whiten the per-token rewards before GAE");
        k.put(
                "value_model",
                "PPO: value model folder or Hub id (default: the reward model, else the policy with a new head)");
        return Collections.unmodifiableMap(k);
    }

    /** Every key, with one line of help; the order {@code --help} and {@code config.yaml} use. */
    public static final Map<String, String> KEYS = keys();

    private static Map<String, String> keys() {
        Map<String, String> k = new LinkedHashMap<>();
        k.put("num_generations", "Samples per prompt, G (GRPO 8, RLOO 2)");
        k.put("max_completion_length", "Most new tokens per sample");
        k.put("temperature", "Sampling temperature (log-probs are scored at it too)");
        k.put("top_k", "Top-k sampling filter (0 = off)");
        k.put("top_p", "Nucleus sampling filter (1 = off)");
        k.put("min_p", "Min-p sampling filter (0 = off)");
        k.put("beta", "KL coefficient (GRPO 0: no reference model; RLOO 0.05; Online DPO's DPO/IPO beta 0.1)");
        k.put("epsilon", "Lower clip of the ratio (1 - epsilon)");
        k.put("epsilon_high", "Upper clip of the ratio (1 + epsilon_high; default epsilon)");
        k.put("num_iterations", "Optimizer steps per generation (1 = on-policy)");
        k.put("loss_type", "GRPO's reduction (grpo, bnpo, dr_grpo, dapo); Online DPO's loss (sigmoid, ipo)");
        k.put("scale_rewards", "GRPO's advantage scaling: group, batch or none");
        k.put("mask_truncated_completions", "Leave samples cut at max_completion_length out of the loss");
        k.put("normalize_advantages", "RLOO: whiten advantages over the batch");
        k.put(
                "reward_funcs",
                "Rewards: exact[:FIELD], regex:P, think_format, soft_overlong:MAX:CACHE, "
                        + "class:NAME or a reward model folder (comma-separated; \\, for a comma inside one)");
        k.put("reward_weights", "One weight per reward (comma-separated; default all 1)");
        k.put(
                "reward_model_eos",
                "A reward model reads prompt+completion+eos as reward train did (false: as TRL's GRPO)");
        k.put("shuffle_dataset", "Shuffle the prompts each epoch");
        k.putAll(PPO_KEYS);
        k.put(
                "missing_eos_penalty",
                "PPO and Online DPO: subtracted from the score of a completion cut without an eos (default: none)");
        return Collections.unmodifiableMap(k);
    }

    /** TRL names that mean a shared key here: none yet; TRL names refused with a reason. */
    private static final Map<String, String> REFUSED = Map.ofEntries(
            Map.entry(
                    "steps_per_generation",
                    "one generation serves grad_accum micro-batches (TRL's default); not settable"),
            Map.entry("use_vllm", "align4j samples with its own sampler on the training device"),
            Map.entry("repetition_penalty", "not built"),
            Map.entry("importance_sampling_level", "only token (TRL's default) is built"),
            Map.entry("reward_model_path", "give the reward model's folder in reward_funcs"),
            Map.entry("sft_model_path", "the policy is model; its reference, reference_model (default: model)"),
            Map.entry("value_model_path", "the value model is value_model"),
            // TRL 0.x PPOConfig / OnPolicyConfig names with no align4j counterpart, each with where it went
            Map.entry(
                    "total_episodes",
                    "the run's length is max_steps (or epochs over the prompts); a PPO rollout is batch_size x"
                            + " grad_accum x num_mini_batches completions"),
            Map.entry("stop_token", "completions stop at any eos id of generation_config.json (TRL's stop_token: eos)"),
            Map.entry(
                    "stop_token_id",
                    "completions stop at any eos id of generation_config.json (TRL's stop_token: eos)"),
            Map.entry("local_rollout_forward_batch_size", "rollouts are scored in micro-batches of batch_size"),
            Map.entry(
                    "num_sample_generations",
                    "held-out prompts are answered every eval_every steps (eval_data or eval_fraction)"),
            Map.entry("exp_name", "a run is named by its output folder"),
            Map.entry("ds3_gather_for_generation", "align4j has no DeepSpeed"),
            Map.entry("model_adapter_name", "with LoRA the reference is the policy with its adapters off"),
            Map.entry("ref_adapter_name", "with LoRA the reference is the policy with its adapters off"));

    /**
     * Whether a key of {@link #KEYS} is one of the method's options (its flag is shown in its {@code --help});
     * another method's key is refused by name.
     *
     * @param method GRPO, RLOO, PPO or ONLINE_DPO
     * @param key a key of {@link #KEYS}
     * @return whether the method reads it
     */
    public static boolean appliesTo(LossType method, String key) {
        if (PPO_KEYS.containsKey(key)) {
            return method == LossType.PPO;
        }
        return switch (key) {
            case "missing_eos_penalty" -> method == LossType.PPO || method == LossType.ONLINE_DPO;
            case "beta" -> method != LossType.PPO;
            case "epsilon", "epsilon_high", "num_iterations" -> method == LossType.GRPO || method == LossType.RLOO;
            case "loss_type" -> method == LossType.GRPO || method == LossType.ONLINE_DPO;
            case "scale_rewards" -> method == LossType.GRPO;
            case "normalize_advantages" -> method == LossType.RLOO;
            case "mask_truncated_completions" -> method != LossType.ONLINE_DPO;
            default -> true;
        };
    }

    /** @return the keys this record owns, plus the TRL names it reads (PPO's response_length) or refuses by name */
    public static Set<String> ownedKeys() {
        Set<String> s = new LinkedHashSet<>(KEYS.keySet());
        s.add("response_length");
        s.add("max_new_tokens");
        s.addAll(REFUSED.keySet());
        return s;
    }

    /**
     * Resolves a run's shared and RL options from one YAML file and the flags.
     *
     * @param method {@link LossType#GRPO} or {@link LossType#RLOO}
     * @param yaml a YAML file, or null
     * @param overrides key → value (flags)
     * @param overrideName key → how to name it in an error (the flag)
     * @return both configs
     * @throws IllegalArgumentException naming the key, flag or file:line at fault
     */
    public static Run resolve(
            LossType method, Path yaml, Map<String, ?> overrides, Function<String, String> overrideName) {
        Map<String, TrainConfig.Given> own = new LinkedHashMap<>();
        TrainConfig train =
                TrainConfig.resolve(Map.of("loss", method), yaml, overrides, overrideName, ownedKeys(), own);
        return new Run(train, of(method, own));
    }

    /**
     * The shared and the RL options of one run.
     *
     * @param train the shared training options
     * @param rl the method's options
     */
    public record Run(TrainConfig train, RlConfig rl) {}

    /**
     * @param method GRPO or RLOO
     * @return TRL 1.13's defaults for it
     */
    public static RlConfig defaults(LossType method) {
        return of(method, Map.of());
    }

    /**
     * Builds the options from the given keys over the method's defaults.
     *
     * @param method GRPO or RLOO
     * @param given key → value and where it came from
     * @return the options
     * @throws IllegalArgumentException naming where a key was given when its value is bad, or when it does not
     *     apply to the method
     */
    public static RlConfig of(LossType method, Map<String, TrainConfig.Given> given) {
        if (!method.isOnline()) {
            throw new IllegalArgumentException("method: grpo, rloo or ppo, got " + method);
        }
        boolean grpo = method == LossType.GRPO;
        boolean ppo = method == LossType.PPO;
        boolean onlineDpo = method == LossType.ONLINE_DPO;
        for (Map.Entry<String, TrainConfig.Given> e : given.entrySet()) {
            if (REFUSED.containsKey(e.getKey())) {
                throw new IllegalArgumentException(e.getValue().where() + ": " + REFUSED.get(e.getKey()));
            }
        }
        Map<String, TrainConfig.Given> keys = new LinkedHashMap<>(given);
        if (onlineDpo) {
            alias(keys, "max_new_tokens", "max_completion_length", "OnlineDPOConfig");
        }
        if (ppo) {
            alias(keys, "response_length", "max_completion_length", "PPOConfig");
        }
        GivenKeys r = new GivenKeys(keys);
        if (ppo) {
            r.refuse("beta", "PPO's KL coefficient is kl_coef (TRL's PPOConfig)");
            r.refuse("epsilon", "PPO's clip is cliprange (TRL's PPOConfig)");
            r.refuse("epsilon_high", "PPO clips the ratio symmetrically with cliprange");
            r.refuse("num_iterations", "PPO's passes over a rollout are num_ppo_epochs");
            for (String k : List.of("loss_type", "scale_rewards", "normalize_advantages")) {
                r.refuse(k, "GRPO's and RLOO's option; PPO's advantages are GAE from its value model, whitened");
            }
        } else {
            boolean group = method == LossType.GRPO || method == LossType.RLOO;
            for (String k : PPO_KEYS.keySet()) {
                String hint = !group
                        ? ""
                        : switch (k) {
                            case "kl_coef" -> "; its KL coefficient is beta";
                            case "cliprange" -> "; its clip is epsilon";
                            case "num_ppo_epochs" -> "; its passes over a generation are num_iterations";
                            default -> "";
                        };
                r.refuse(k, "PPO's option (the ppo command); " + method + " has no value model" + hint);
            }
            r.refuse("response_length", "PPO's name; here it is max_completion_length");
        }
        if (!onlineDpo) {
            r.refuse("max_new_tokens", "Online DPO's name; here it is max_completion_length");
        }
        if (!ppo && !onlineDpo) {
            r.refuse("missing_eos_penalty", "PPO's and Online DPO's option; " + method + " reads rewards as they are");
        }
        if (onlineDpo) {
            for (String k : List.of(
                    "epsilon",
                    "epsilon_high",
                    "num_iterations",
                    "scale_rewards",
                    "normalize_advantages",
                    "mask_truncated_completions")) {
                r.refuse(k, "not an Online DPO option: its loss is DPO's or IPO's on the chosen and rejected sample");
            }
        }
        if (grpo) {
            r.refuse("normalize_advantages", "RLOO's option; GRPO scales advantages with scale_rewards");
        } else if (method == LossType.RLOO) {
            for (String k : List.of("loss_type", "scale_rewards")) {
                r.refuse(k, "GRPO's option; RLOO's loss is per sequence with a leave-one-out baseline");
            }
        }
        int g = r.integer("num_generations", grpo ? 8 : ppo ? 1 : 2);
        if (onlineDpo) {
            r.require(g == 2, "num_generations", "Online DPO samples 2 completions per prompt, got " + g);
        } else if (ppo) {
            r.require(g >= 1, "num_generations", "at least 1 sample per prompt, got " + g);
        } else {
            r.require(
                    g >= 2, "num_generations", "at least 2 samples per prompt (the advantage compares them), got " + g);
        }
        int maxCompletion = r.integer("max_completion_length", ppo ? 53 : onlineDpo ? 64 : 512);
        r.require(maxCompletion > 0, "max_completion_length", "must be > 0, got " + maxCompletion);
        double temperature = r.number("temperature", ppo ? 0.7 : onlineDpo ? 0.9 : 1.0);
        r.require(temperature > 0, "temperature", "must be > 0, got " + temperature);
        int topK = r.integer("top_k", 0);
        r.require(topK >= 0, "top_k", "must be >= 0, got " + topK);
        double topP = r.number("top_p", 1.0);
        r.require(topP > 0 && topP <= 1, "top_p", "must lie in (0, 1], got " + topP);
        double minP = r.number("min_p", 0.0);
        r.require(minP >= 0 && minP <= 1, "min_p", "must lie in [0, 1], got " + minP);
        double beta = r.number("beta", grpo ? 0.0 : onlineDpo ? 0.1 : 0.05);
        r.require(!onlineDpo || beta > 0, "beta", "Online DPO needs beta > 0, got " + beta);
        r.require(beta >= 0, "beta", "must be >= 0, got " + beta);
        double epsilon = r.number("epsilon", 0.2);
        r.require(epsilon >= 0 && epsilon < 1, "epsilon", "must lie in [0, 1), got " + epsilon);
        double epsilonHigh = r.number("epsilon_high", epsilon);
        r.require(epsilonHigh >= 0, "epsilon_high", "must be >= 0, got " + epsilonHigh);
        int iterations = r.integer("num_iterations", 1);
        r.require(iterations >= 1, "num_iterations", "must be >= 1, got " + iterations);
        GrpoLoss.Aggregation lossType = onlineDpo
                ? GrpoLoss.Aggregation.DAPO
                : r.choice("loss_type", GrpoLoss.Aggregation.class, GrpoLoss.Aggregation.DAPO);
        LossType pairLoss = null;
        if (onlineDpo) {
            Object v = r.raw("loss_type");
            String s = v == null ? "sigmoid" : v.toString().trim().toLowerCase(Locale.ROOT);
            if (s.equals("dpo")) {
                s = "sigmoid"; // align4j's name of TRL's sigmoid everywhere else
            }
            if (!s.equals("sigmoid") && !s.equals("ipo")) {
                throw new IllegalArgumentException(
                        r.where("loss_type") + ": one of sigmoid (or dpo), ipo, got '" + v + "'");
            }
            pairLoss = s.equals("ipo") ? LossType.IPO : LossType.DPO;
        }
        Advantages.Scale scale = r.choice("scale_rewards", Advantages.Scale.class, Advantages.Scale.GROUP);
        boolean mask = r.bool("mask_truncated_completions", false);
        boolean normalize = r.bool("normalize_advantages", false);
        List<String> funcs = r.strings("reward_funcs");
        for (String f : funcs) {
            try {
                Rewards.check(f);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(r.where("reward_funcs") + ": " + e.getMessage(), e);
            }
        }
        List<Double> weights = new ArrayList<>();
        for (String w : r.strings("reward_weights")) {
            try {
                weights.add(Double.parseDouble(w));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(r.where("reward_weights") + ": not a number: '" + w + "'");
            }
        }
        if (!weights.isEmpty() && weights.size() != funcs.size()) {
            throw new IllegalArgumentException(r.where("reward_weights") + ": " + weights.size() + " weights for "
                    + funcs.size() + " reward_funcs; give one per function");
        }
        boolean rmEos = r.bool("reward_model_eos", true);
        boolean shuffle = r.bool("shuffle_dataset", true);
        PpoOptions ppoOptions = ppo ? ppo(r) : null;
        double penalty = r.number("missing_eos_penalty", Double.NaN);
        r.require(
                Double.isNaN(penalty) || penalty >= 0,
                "missing_eos_penalty",
                "must be >= 0 (it is subtracted from the score), got " + penalty);
        return new RlConfig(
                method,
                g,
                maxCompletion,
                temperature,
                topK,
                topP,
                minP,
                beta,
                epsilon,
                epsilonHigh,
                iterations,
                lossType,
                scale,
                mask,
                normalize,
                List.copyOf(funcs),
                List.copyOf(weights),
                rmEos,
                shuffle,
                ppoOptions,
                pairLoss,
                penalty,
                sources(keys));
    }

    /**
     * Reads TRL's name of a key as the key: a flag wins over the YAML file whichever name each uses; the
     * same source giving both names is refused.
     */
    private static void alias(Map<String, TrainConfig.Given> keys, String trl, String key, String config) {
        TrainConfig.Given a = keys.remove(trl);
        if (a == null) {
            return;
        }
        TrainConfig.Given k = keys.get(key);
        if (k != null && k.override() == a.override()) {
            throw new IllegalArgumentException(
                    a.where() + ": TRL's " + config + " name of " + key + ", which is given too; give one");
        }
        if (k == null || a.override()) {
            keys.put(key, a);
        }
    }

    private static Map<String, String> sources(Map<String, TrainConfig.Given> keys) {
        Map<String, String> out = new LinkedHashMap<>();
        keys.forEach((k, g) -> out.put(k, g.where()));
        return Collections.unmodifiableMap(out);
    }

    private static PpoOptions ppo(GivenKeys r) {
        int epochs = r.integer("num_ppo_epochs", 4);
        r.require(epochs >= 1, "num_ppo_epochs", "must be >= 1, got " + epochs);
        int miniBatches = r.integer("num_mini_batches", 1);
        r.require(miniBatches >= 1, "num_mini_batches", "must be >= 1, got " + miniBatches);
        double klCoef = r.number("kl_coef", 0.05);
        r.require(klCoef >= 0, "kl_coef", "must be >= 0, got " + klCoef);
        Ppo.KlEstimator estimator = r.choice("kl_estimator", Ppo.KlEstimator.class, Ppo.KlEstimator.K1);
        double target = r.number("kl_target", Double.NaN);
        r.require(Double.isNaN(target) || target > 0, "kl_target", "must be > 0, got " + target);
        r.require(Double.isNaN(target) || klCoef > 0, "kl_target", "adapts kl_coef, which is 0; give kl_coef > 0");
        double horizon = r.number("kl_horizon", 10_000);
        r.require(horizon > 0, "kl_horizon", "must be > 0, got " + horizon);
        double cliprange = r.number("cliprange", 0.2);
        r.require(cliprange >= 0 && cliprange < 1, "cliprange", "must lie in [0, 1), got " + cliprange);
        double cliprangeValue = r.number("cliprange_value", 0.2);
        r.require(cliprangeValue >= 0, "cliprange_value", "must be >= 0, got " + cliprangeValue);
        double vfCoef = r.number("vf_coef", 0.1);
        r.require(vfCoef >= 0, "vf_coef", "must be >= 0, got " + vfCoef);
        double gamma = r.number("gamma", 1.0);
        r.require(gamma >= 0 && gamma <= 1, "gamma", "must lie in [0, 1], got " + gamma);
        double lam = r.number("lam", 0.95);
        r.require(lam >= 0 && lam <= 1, "lam", "must lie in [0, 1], got " + lam);
        boolean whiten = r.bool("whiten_rewards", false);
        String valueModel = r.raw("value_model") == null
                ? null
                : r.raw("value_model").toString().trim();
        r.require(valueModel == null || !valueModel.isEmpty(), "value_model", "an empty path");
        return new PpoOptions(
                epochs,
                miniBatches,
                klCoef,
                estimator,
                target,
                horizon,
                cliprange,
                cliprangeValue,
                vfCoef,
                gamma,
                lam,
                whiten,
                valueModel);
    }

    /** @return the options as YAML lines ({@code key: value}), for the run's {@code config.yaml} */
    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("num_generations", numGenerations);
        m.put("max_completion_length", maxCompletionLength);
        m.put("temperature", temperature);
        m.put("top_k", topK);
        m.put("top_p", topP);
        m.put("min_p", minP);
        if (ppo != null) {
            m.put("num_ppo_epochs", ppo.numPpoEpochs());
            m.put("num_mini_batches", ppo.numMiniBatches());
            m.put("kl_coef", ppo.klCoef());
            m.put("kl_estimator", ppo.klEstimator().toString());
            if (ppo.adaptiveKl()) {
                m.put("kl_target", ppo.klTarget());
            }
            m.put("kl_horizon", ppo.klHorizon());
            m.put("cliprange", ppo.cliprange());
            m.put("cliprange_value", ppo.cliprangeValue());
            m.put("vf_coef", ppo.vfCoef());
            m.put("gamma", ppo.gamma());
            m.put("lam", ppo.lam());
            m.put("whiten_rewards", ppo.whitenRewards());
            if (ppo.valueModel() != null) {
                m.put("value_model", ppo.valueModel());
            }
        } else if (method == LossType.ONLINE_DPO) {
            m.put("beta", beta);
            m.put("loss_type", pairLoss == LossType.IPO ? "ipo" : "sigmoid");
        } else {
            m.put("beta", beta);
            m.put("epsilon", epsilon);
            m.put("epsilon_high", epsilonHigh);
            m.put("num_iterations", numIterations);
        }
        if ((method == LossType.PPO || method == LossType.ONLINE_DPO) && !Double.isNaN(missingEosPenalty)) {
            m.put("missing_eos_penalty", missingEosPenalty);
        }
        if (method == LossType.GRPO) {
            m.put("loss_type", lossType.toString());
            m.put("scale_rewards", scaleRewards.name().toLowerCase(Locale.ROOT));
        } else if (method == LossType.RLOO) {
            m.put("normalize_advantages", normalizeAdvantages);
        }
        if (method != LossType.ONLINE_DPO) {
            m.put("mask_truncated_completions", maskTruncatedCompletions);
        }
        m.put("reward_funcs", rewardFuncs);
        m.put("reward_weights", rewardWeights);
        m.put("reward_model_eos", rewardModelEos);
        m.put("shuffle_dataset", shuffleDataset);
        return m;
    }
}
