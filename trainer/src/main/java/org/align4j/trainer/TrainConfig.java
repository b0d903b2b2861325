package org.align4j.trainer;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.TextNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLGenerator;
import com.fasterxml.jackson.dataformat.yaml.YAMLParser;
import java.io.IOException;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.RecordComponent;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.function.BiFunction;
import java.util.function.Function;
import org.align4j.data.DataFormat;
import org.align4j.data.EncodingOptions;
import org.align4j.data.EncodingOptions.Truncation;
import org.align4j.losses.FDivergence;
import org.align4j.losses.LossType;
import org.align4j.model.CausalLm;
import org.align4j.model.io.InputFiles;
import org.align4j.model.lora.LoraConfig;
import org.align4j.model.nn.Compute;
import org.align4j.model.nn.Compute.Attention;
import org.align4j.model.nn.Compute.Precision;
import org.align4j.trainer.rl.RlConfig;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Everything a training run is told, as one immutable typed record. A YAML file (snake_case keys,
 * e.g. {@code learning_rate: 5.0e-7}), CLI flags ({@code --learning-rate} or {@code --learning_rate})
 * and the Java {@link Builder} all map onto these fields through one path, {@link #resolve}: defaults,
 * then the file, then the overrides; then every value is checked, and a value given for an option the
 * run never reads (label smoothing for IPO, a reference for SFT) is refused by name. TRL's names for the
 * same options ({@code per_device_train_batch_size}, {@code loss_type: sigmoid}, ...) are accepted as
 * aliases ({@link TrlNames}). The resolved record is saved as {@code config.yaml} next to every
 * checkpoint.
 *
 * @param model the starting model folder (HF)
 * @param data training data (file or folder)
 * @param evalData held-out data, or null
 * @param evalFraction share of {@code data} held out when {@code evalData} is null (0 = none)
 * @param output the run folder
 * @param loss the objective ({@link LossType#SFT} for SFT runs)
 * @param beta β of the preference objectives
 * @param labelSmoothing ε for dpo (cDPO), cdpo and robust
 * @param preference p for pairs without their own, for ipo-soft
 * @param gamma γ for simpo
 * @param centerRewardsCoefficient c of a reward model's centring term c·(r_c + r_r)² (TRL's
 *     center_rewards_coefficient; 0 = off)
 * @param lossTerms the objectives of a mix, summed with {@code lossWeights} (TRL's {@code loss_type} as a
 *     list, e.g. dpo, bco-pair, sft for MPO); empty for {@code loss} alone, which is then the mix's first
 *     preference objective
 * @param lossWeights one weight per objective of the mix (empty: 1 each)
 * @param fDivergenceType the f-divergence of f-DPO applied to every objective (reverse_kl: DPO's own)
 * @param fAlphaDivergenceCoef α of the alpha_divergence
 * @param ldAlpha LD-DPO's weight of the tokens past the shorter completion of a pair (1 = none)
 * @param useWeighting WPO's per-pair weights from the policy's length-normalised sequence probabilities
 * @param discopopTau τ of discopop
 * @param learningRate peak learning rate (TRL's defaults: 1e-6 for preference objectives, 2e-5 for SFT)
 * @param weightDecay decoupled weight decay (not applied to biases and norm weights)
 * @param adamBeta1 AdamW β₁
 * @param adamBeta2 AdamW β₂
 * @param adamEpsilon AdamW ε
 * @param batchSize pairs (or SFT examples) per micro-batch
 * @param gradAccum micro-batches per optimizer step
 * @param maxSteps optimizer steps (0 = use epochs)
 * @param epochs passes over the data when maxSteps is 0 (may be fractional, as TRL's num_train_epochs)
 * @param warmupSteps linear warm-up steps
 * @param warmupRatio warm-up as a share of all optimizer steps (HF's warmup_ratio), when warmupSteps is 0
 * @param schedule the learning-rate schedule after warm-up
 * @param maxGradNorm global gradient-norm clip (0 = off)
 * @param saveEvery checkpoint every N steps (0 = only at the end)
 * @param keepLast checkpoints to keep
 * @param zeroStage optimizer state sharding across data-parallel processes: 0 (none) or 1 (ZeRO stage 1)
 * @param evalEvery evaluate every N steps (0 = only at the end)
 * @param logEvery write metrics every N steps
 * @param seed data order and initialisation seed
 * @param reference a frozen copy of the reference model, or its log-probs precomputed once
 * @param referenceModel the reference folder (default: {@code model})
 * @param referenceDtype the frozen copy's weights: fp32 or fp16
 * @param cacheDir where precomputed reference log-probs are cached (default: OUTPUT/cache)
 * @param device cpu, gpu or gpu:N
 * @param tf32 allow TF32 matmuls on a GPU
 * @param maxLength longest prompt + completion in tokens (0 = no limit)
 * @param maxPromptLength longest prompt in tokens (0 = no limit)
 * @param truncation which end of a long prompt to keep
 * @param format the record format (auto-detected per record by default)
 * @param skipInvalid skip bad records (counted, the first named) instead of stopping
 * @param chatTemplate render plain-string prompts through the model's chat template
 * @param groupByLength batch examples of similar length
 * @param paddingFree TRL's padding_free: the sequences of a micro-batch run as one row of their real
 *     tokens, without padding, each with its own position ids and attention confined to itself; the
 *     values and gradients are the padded pass's (native models; TorchScript models run padded)
 * @param evalBatchSize pairs per evaluation forward pass
 * @param evalKl add {@code eval_kl} to evaluation: the exact per-token KL(π ‖ π_ref) summed along the
 *     held-out chosen answers; with {@code reference: precomputed} this loads the reference model for
 *     evaluation only
 * @param evalSamples at each evaluation, generate greedy answers of the policy and of the reference to
 *     the first N held-out prompts, judge them with {@code evalJudge} and log {@code eval_win_rate} (0 = off)
 * @param evalJudge how {@code evalSamples} are judged: {@code exact} (an answer wins when it is the pair's
 *     chosen answer), {@code contains}, or {@code reward-model:DIR} (the higher reward wins)
 * @param evalMaxNewTokens the longest generated answer of {@code evalSamples}
 * @param attention eager (DJL ops) or sdpa (libtorch's fused scaled-dot-product attention through a
 *     TorchScript kernel), as HF's attn_implementation
 * @param precision fp32, or bf16: projections and attention computed in bfloat16 inside kernels with
 *     fp32 master weights (mixed precision, like autocast)
 * @param disableDropout train without the model config's dropout (TRL's disable_dropout: on for the
 *     preference objectives, off for SFT, as TRL's DPOTrainer and SFTTrainer)
 * @param chatTemplateKwargs chat-template variables for every conversation of the run (e.g. {@code
 *     enable_thinking: false}); a record's own {@code tools} and {@code chat_template_kwargs} win
 * @param loraR LoRA rank r (Hu et al., 2021): train adapters of this rank on the {@code loraTarget}
 *     projections instead of every weight, the reference being the same model with its adapters off
 *     (no copy); 0 trains every weight
 * @param loraAlpha LoRA α: the adapters' output is scaled by α/r (TRL's default 32)
 * @param loraDropout dropout on the adapters' input in training (TRL's default 0.05)
 * @param loraTarget the projections that get adapters: {@code all-linear}, or PEFT module names such
 *     as {@code q_proj,v_proj}; null for PEFT's defaults per architecture
 * @param adapter a PEFT adapter folder to continue training (its own r, α, dropout and targets); its
 *     base is {@code model}
 */
public record TrainConfig(
        @Key(label = "DIR", help = "Starting model: an HF folder, or a Hub id owner/name[@revision]")
        String model,

        @Key(label = "PATH", help = "Training data: a file, a folder, or a Hub dataset owner/name[:split]")
        String data,

        @Key(label = "PATH", help = "Held-out data (a Hub dataset too: owner/name:test)")
        String evalData,

        @Key(help = "Hold out this share of --data when no --eval-data")
        double evalFraction,

        @Key(label = "DIR", help = "Run folder (checkpoints, metrics.jsonl, train.log, final/)")
        String output,

        @Key(
                help =
                        "Objective: dpo, ipo, nca-pair, ... (align4j losses lists them; TRL's loss_type names too); a comma list is a mix")
        LossType loss,

        @Key(help = "Inverse temperature beta of the preference objectives")
        double beta,

        @Key(
                help =
                        "Label smoothing epsilon: cDPO for dpo/cdpo, the flip rate for robust (0.1 for cdpo and robust unless given)")
        double labelSmoothing,

        @Key(help = "Preference probability p for ipo-soft pairs that carry none")
        double preference,

        @Key(help = "Target margin gamma of simpo") double gamma,

        @Key(
                help =
                        "Reward model: weight c of c*(r_c + r_r)^2, pulling rewards to mean zero (TRL recommends 0.01; 0 = off)")
        double centerRewardsCoefficient,

        @Key(
                label = "LOSSES",
                help =
                        "A mix of objectives summed with --loss-weights, as TRL's loss_type list (e.g. dpo,bco-pair,sft: MPO); --loss given as a list sets it")
        List<LossType> lossTerms,

        @Key(label = "WEIGHTS", help = "One weight per objective of the mix (e.g. 0.8,0.2,1; default: 1 each)")
        List<Double> lossWeights,

        @Key(
                help =
                        "f-DPO's divergence: reverse_kl, forward_kl, js_divergence or alpha_divergence (objectives on the chosen - rejected difference)")
        FDivergence fDivergenceType,

        @Key(help = "Coefficient alpha of alpha_divergence") double fAlphaDivergenceCoef,

        @Key(
                help =
                        "LD-DPO: weight of the tokens past the shorter completion of a pair, in [0, 1] (1 = none; objectives on summed log-ratios)")
        double ldAlpha,

        @Key(help = "WPO: weigh each pair by the policy's length-normalised probabilities of its two completions")
        boolean useWeighting,

        @Key(help = "Temperature tau of discopop") double discopopTau,

        @Key(flags = "--lr", help = "Peak learning rate (TRL's defaults: 1e-6, and 2e-5 for sft)")
        double learningRate,

        @Key(help = "Decoupled weight decay (not on biases and norm weights)")
        double weightDecay,

        @Key(help = "AdamW beta1") double adamBeta1,
        @Key(help = "AdamW beta2") double adamBeta2,
        @Key(help = "AdamW epsilon") double adamEpsilon,

        @Key(help = "Pairs (or SFT examples) per micro-batch")
        int batchSize,

        @Key(help = "Micro-batches per optimizer step") int gradAccum,
        @Key(help = "Optimizer steps (0: use --epochs)") int maxSteps,

        @Key(help = "Passes over the data when --max-steps is 0 (may be fractional)")
        double epochs,

        @Key(help = "Linear warm-up steps") int warmupSteps,

        @Key(help = "Warm-up as a share of all steps (when --warmup-steps is 0)")
        double warmupRatio,

        @Key(help = "Learning-rate schedule after warm-up: constant, linear or cosine")
        Schedule schedule,

        @Key(help = "Global gradient-norm clip (0 = off)") double maxGradNorm,

        @Key(help = "Checkpoint every N steps (0 = at the end)")
        int saveEvery,

        @Key(help = "Checkpoints to keep") int keepLast,

        @Key(
                help = "With several processes: 1 shards AdamW's moments, each process keeping those of its share of"
                        + " the parameters (ZeRO stage 1); 0 keeps them all on every process")
        int zeroStage,

        @Key(help = "Evaluate every N steps (0 = at the end)")
        int evalEvery,

        @Key(help = "Write metrics every N steps") int logEvery,

        @Key(help = "Seed of the data order and the held-out split")
        long seed,

        @Key(help = "copy (a frozen model) or precomputed (its log-probs, cached once)")
        Reference reference,

        @Key(label = "DIR", help = "Reference model (default: --model)")
        String referenceModel,

        @Key(help = "Weights of the frozen copy: fp32 or fp16")
        ReferenceDtype referenceDtype,

        @Key(label = "DIR", help = "Cache of precomputed reference log-probs (default: OUTPUT/cache)")
        String cacheDir,

        @Key(help = "cpu, gpu or gpu:N") String device,

        @Key(help = "TF32 matmuls on a GPU (--no-tf32 keeps fp32 exact)")
        boolean tf32,

        @Key(help = "Longest prompt + completion in tokens (0 = no limit)")
        int maxLength,

        @Key(help = "Longest prompt in tokens (0 = no limit)")
        int maxPromptLength,

        @Key(help = "Which end of a long prompt to keep: keep_end or keep_start")
        Truncation truncation,

        @Key(help = "Record format: auto, standard, conversational, implicit_prompt")
        DataFormat format,

        @Key(help = "Skip bad records (counted, the first named) instead of stopping")
        boolean skipInvalid,

        @Key(help = "Render plain-string prompts through the model's chat template")
        boolean chatTemplate,

        @Key(help = "Batch examples of similar length") boolean groupByLength,

        @Key(help = "Run each micro-batch as one row of its real tokens, without padding (TRL's padding_free)")
        boolean paddingFree,

        @Key(help = "Pairs per evaluation forward pass") int evalBatchSize,

        @Key(help = "Log eval_kl, the KL to the reference along held-out chosen answers")
        boolean evalKl,

        @Key(
                help =
                        "At each evaluation, judge greedy answers of policy and reference to the first N held-out prompts: eval_win_rate (0 = off)")
        int evalSamples,

        @Key(
                label = "JUDGE",
                help =
                        "How eval_samples are judged: exact, contains (against the pair's chosen answer) or reward-model:DIR")
        String evalJudge,

        @Key(help = "Longest generated answer of eval_samples")
        int evalMaxNewTokens,

        @Key(help = "eager (DJL ops) or sdpa (fused attention kernel)")
        Attention attention,

        @Key(help = "fp32, or bf16 (mixed precision inside kernels, fp32 master weights)")
        Precision precision,

        @Key(help = "Train without the model's dropout (TRL: on for preference objectives, off for sft)")
        boolean disableDropout,

        @Key(
                label = "JSON",
                help =
                        "Chat-template variables for every conversation, as a JSON object (e.g. {\"enable_thinking\": false})")
        Map<String, Object> chatTemplateKwargs,

        @Key(
                help =
                        "LoRA rank r: train adapters of rank r instead of every weight; the reference is the model with adapters off (0 = off)")
        int loraR,

        @Key(help = "LoRA alpha: adapters' output scaled by alpha/r")
        double loraAlpha,

        @Key(help = "Dropout on the LoRA adapters' input") double loraDropout,

        @Key(
                label = "MODULES",
                help =
                        "Projections that get adapters: all-linear, or names like q_proj,v_proj (default: PEFT's for the model)")
        String loraTarget,

        @Key(label = "DIR", help = "A LoRA adapter (PEFT folder or Hub id) to continue training on --model")
        String adapter) {

    /** Describes a config key for {@code --help}, the README and the flag names. */
    @Retention(RetentionPolicy.RUNTIME)
    @Target(ElementType.RECORD_COMPONENT)
    public @interface Key {
        /** @return one line of help */
        String help();

        /** @return the value's label in {@code --help} (DIR, PATH), or empty for the type's */
        String label() default "";

        /** @return flag names besides {@code --kebab-case} and {@code --snake_case} */
        String[] flags() default {};
    }

    /** Where the reference policy's log-probs come from. */
    public enum Reference {
        /** A frozen copy of the reference model, run beside the policy. */
        COPY,
        /** The reference model's log-probs, computed once before training and cached (TRL's precompute_ref_log_probs). */
        PRECOMPUTED
    }

    /** The dtype of a frozen reference copy's weights. */
    public enum ReferenceDtype {
        /** float32. */
        FP32,
        /** float16: half the memory. */
        FP16
    }

    /** The learning-rate schedule after warm-up, as HF's {@code get_*_schedule_with_warmup}. */
    public enum Schedule {
        /** The peak rate. */
        CONSTANT,
        /** Linear decay to 0 at the last step. */
        LINEAR,
        /** Cosine decay to 0 at the last step. */
        COSINE
    }

    private static final Logger LOG = LoggerFactory.getLogger(TrainConfig.class);

    static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory()
            .disable(YAMLGenerator.Feature.WRITE_DOC_START_MARKER)
            .enable(YAMLGenerator.Feature.MINIMIZE_QUOTES));

    /** The defaults, by key: TRL's where TRL has the option, except the learning rate, which depends on the loss. */
    private static final Map<String, Object> DEFAULTS = defaultsByKey();

    private static final RecordComponent[] COMPONENTS = TrainConfig.class.getRecordComponents();

    private static Map<String, Object> defaultsByKey() {
        Map<String, Object> d = new LinkedHashMap<>();
        d.put("model", null);
        d.put("data", null);
        d.put("eval_data", null);
        d.put("eval_fraction", 0.0);
        d.put("output", null);
        d.put("loss", LossType.DPO);
        d.put("beta", 0.1);
        d.put("label_smoothing", 0.0);
        d.put("preference", 1.0);
        d.put("gamma", 0.5);
        d.put("center_rewards_coefficient", 0.0);
        d.put("loss_terms", List.of());
        d.put("loss_weights", List.of());
        d.put("f_divergence_type", FDivergence.REVERSE_KL);
        d.put("f_alpha_divergence_coef", 0.5);
        d.put("ld_alpha", 1.0);
        d.put("use_weighting", false);
        d.put("discopop_tau", 0.05);
        d.put("learning_rate", 1e-6);
        d.put("weight_decay", 0.0);
        d.put("adam_beta1", 0.9);
        d.put("adam_beta2", 0.999);
        d.put("adam_epsilon", 1e-8);
        d.put("batch_size", 4);
        d.put("grad_accum", 1);
        d.put("max_steps", 0);
        d.put("epochs", 1.0);
        d.put("warmup_steps", 0);
        d.put("warmup_ratio", 0.0);
        d.put("schedule", Schedule.LINEAR);
        d.put("max_grad_norm", 1.0);
        d.put("save_every", 0);
        d.put("keep_last", 2);
        d.put("zero_stage", 0);
        d.put("eval_every", 0);
        d.put("log_every", 1);
        d.put("seed", 42L);
        d.put("reference", Reference.COPY);
        d.put("reference_model", null);
        d.put("reference_dtype", ReferenceDtype.FP32);
        d.put("cache_dir", null);
        d.put("device", "cpu");
        d.put("tf32", true);
        d.put("max_length", 0);
        d.put("max_prompt_length", 0);
        d.put("truncation", Truncation.KEEP_END);
        d.put("format", DataFormat.AUTO);
        d.put("skip_invalid", false);
        d.put("chat_template", false);
        d.put("group_by_length", false);
        d.put("padding_free", true);
        d.put("eval_batch_size", 8);
        d.put("eval_kl", true);
        d.put("eval_samples", 0);
        d.put("eval_judge", "exact");
        d.put("eval_max_new_tokens", 64);
        d.put("attention", Attention.SDPA);
        d.put("precision", Precision.FP32);
        d.put("disable_dropout", true);
        d.put("chat_template_kwargs", Map.of());
        d.put("lora_r", 0);
        d.put("lora_alpha", 32.0);
        d.put("lora_dropout", 0.05);
        d.put("lora_target", null);
        d.put("adapter", null);
        return d;
    }

    /** @return every config key (snake_case), in the record's order */
    public static List<String> keys() {
        return List.copyOf(DEFAULTS.keySet());
    }

    /**
     * @param key a config key
     * @param loss the objective of the run (some defaults depend on it, as in TRL)
     * @return its default, as {@code --help} shows it (an enum's config spelling; 1e-6 rather than 1.0E-6), or null
     */
    public static Object defaultOf(String key, LossType loss) {
        Object v = key.equals("loss") ? loss : objectiveDefaults(loss).getOrDefault(key, DEFAULTS.get(key));
        if (v instanceof Double d) {
            return defaultFormat(d);
        }
        return v instanceof Enum<?> e ? configName(e) : v;
    }

    /**
     * @param d a number
     * @return it as a person writes it: 1e-6, 0.999, 1 (not Java's 1.0E-6 and 1.0)
     */
    public static String defaultFormat(double d) {
        String s = d == Math.rint(d) && Math.abs(d) < 1e6 ? Long.toString((long) d) : Double.toString(d);
        return s.replace(".0E", "E").replace("E", "e");
    }

    /**
     * @param key a config key
     * @return the key's Java type and its {@link Key} description
     * @throws IllegalArgumentException for an unknown key
     */
    public static RecordComponent component(String key) {
        for (RecordComponent rc : COMPONENTS) {
            if (snake(rc.getName()).equals(key)) {
                return rc;
            }
        }
        throw new IllegalArgumentException("unknown config key '" + key + "'");
    }

    /** @return the defaults, with no model, data or output (not a valid config on its own) */
    public static TrainConfig defaults() {
        return construct(new LinkedHashMap<>(DEFAULTS));
    }

    /**
     * Where a value came from, for error messages.
     *
     * @param describe key → how to name it to the user ({@code --beta}, {@code dpo.yaml:7: key 'beta'})
     */
    private record Origin(Function<String, String> describe) {}

    /**
     * Resolves a config: defaults, then the YAML file (if any), then the given overrides, then checks
     * every value. Keys may be align4j's or TRL's names; an override named by the user is described as
     * {@code key 'name'} in errors.
     *
     * @param yaml a YAML file, or null
     * @param overrides key → value (Java values or strings, as typed on a command line)
     * @return the resolved config
     * @throws IllegalArgumentException naming the file, line and key, or the key, at fault
     */
    public static TrainConfig resolve(Path yaml, Map<String, ?> overrides) {
        return resolve(yaml, overrides, key -> "key '" + key + "'");
    }

    /**
     * As {@link #resolve(Path, Map)}, with the overrides' names as the caller knows them (the CLI passes
     * {@code key -> "--" + key} so that errors name the flag).
     *
     * @param yaml a YAML file, or null
     * @param overrides key → value
     * @param overrideName key → how to name that override in an error
     * @return the resolved config
     * @throws IllegalArgumentException naming the file, line and key, or the override, at fault
     */
    public static TrainConfig resolve(Path yaml, Map<String, ?> overrides, Function<String, String> overrideName) {
        return resolve(Map.of(), yaml, overrides, overrideName);
    }

    /**
     * The one resolution path: the defaults, replaced by {@code base} (a trainer's own defaults, such as
     * {@code loss: sft}, which count as not given), then the YAML file, then the overrides.
     *
     * @param base defaults of the caller, key → value
     * @param yaml a YAML file, or null
     * @param overrides key → value
     * @param overrideName key → how to name that override in an error
     * @return the resolved config
     * @throws IllegalArgumentException naming the file, line and key, or the override, at fault
     */
    public static TrainConfig resolve(
            Map<String, ?> base, Path yaml, Map<String, ?> overrides, Function<String, String> overrideName) {
        return resolve(base, yaml, overrides, overrideName, Set.of(), null);
    }

    /**
     * A method's own key as the user gave it: its value and how to name it in an error.
     *
     * @param value the value as a plain Java value (string, number, boolean, list, map)
     * @param where {@code FILE:LINE: key 'name'} or the flag
     * @param override given as a flag or override (which wins over the YAML file), not in the file
     */
    public record Given(Object value, String where, boolean override) {
        /**
         * A key from the YAML file.
         *
         * @param value the value
         * @param where {@code FILE:LINE: key 'name'}
         */
        public Given(Object value, String where) {
            this(value, where, false);
        }
    }

    /**
     * The shared resolution for a trainer whose method has options of its own (as TRL's {@code GRPOConfig}
     * extends {@code TrainingArguments}): the keys in {@code ownKeys}, from the YAML file or the overrides,
     * are handed back in {@code own} instead of being set here; everything else resolves as in {@link
     * #resolve(Map, Path, Map, Function)}.
     *
     * @param base defaults of the caller
     * @param yaml a YAML file, or null
     * @param overrides key → value
     * @param overrideName key → how to name that override in an error
     * @param ownKeys the method's own keys (snake_case)
     * @param own receives the method's keys that were given, in the order given (the overrides after the file)
     * @return the resolved shared config
     * @throws IllegalArgumentException naming the file, line and key, or the override, at fault
     */
    public static TrainConfig resolve(
            Map<String, ?> base,
            Path yaml,
            Map<String, ?> overrides,
            Function<String, String> overrideName,
            Set<String> ownKeys,
            Map<String, Given> own) {
        return resolve(base, yaml, overrides, overrideName, ownKeys, own, false);
    }

    private static TrainConfig resolve(
            Map<String, ?> base,
            Path yaml,
            Map<String, ?> overrides,
            Function<String, String> overrideName,
            Set<String> ownKeys,
            Map<String, Given> own,
            boolean saved) {
        Map<String, Object> values = mergeBase(base);
        Map<String, String> given = new LinkedHashMap<>(); // key → how to name it to the user
        if (yaml != null) {
            YamlFile file = YamlFile.read(yaml);
            Map<String, String> fromFile = new HashMap<>();
            file.values().forEach((name, node) -> {
                String where = yaml + ":" + file.lines().get(name) + ": key '" + name + "'";
                if (ownKeys.contains(name)) {
                    own.put(name, new Given(YAML.convertValue(node, Object.class), where));
                } else {
                    withOwnKeys(ownKeys, () -> set(values, fromFile, name, node, where));
                }
            });
            given.putAll(fromFile);
        }
        Map<String, String> fromOverrides = new HashMap<>();
        overrides.forEach((name, value) -> {
            if (ownKeys.contains(name)) {
                own.put(name, new Given(value, overrideName.apply(name), true));
            } else {
                withOwnKeys(
                        ownKeys,
                        () -> set(values, fromOverrides, name, YAML.valueToTree(value), overrideName.apply(name)));
            }
        });
        given.putAll(fromOverrides);
        Object fixedLoss = mergeBase(base).get("loss");
        @SuppressWarnings("unchecked")
        List<LossType> terms = (List<LossType>) values.get("loss_terms");
        if (!terms.isEmpty()) {
            if (base.containsKey("loss")) {
                throw new IllegalArgumentException(
                        given.get("loss_terms") + ": this command trains loss " + fixedLoss + " only, not a mix");
            }
            LossType first = terms.stream()
                    .filter(LossType::isPreference)
                    .findFirst()
                    .orElseThrow(() -> new IllegalArgumentException(
                            given.get("loss_terms") + ": a mix needs a preference objective, got " + terms));
            if (given.containsKey("loss") && values.get("loss") != first) {
                throw new IllegalArgumentException(
                        given.get("loss") + ": the mix " + terms + " starts with " + first + "; give the mix alone");
            }
            values.put("loss", first);
        }
        LossType loss = (LossType) values.get("loss");
        if (loss.hasOwnTrainer() && !base.containsKey("loss") && !saved) {
            // a run's saved config.yaml names it, and is read back (resolveSaved) to compare or reuse
            throw new IllegalArgumentException(given.getOrDefault("loss", "key 'loss'") + ": " + loss
                    + " has a trainer of its own: the align4j " + loss + " command");
        }
        if (base.containsKey("loss") && given.containsKey("loss") && loss != fixedLoss) {
            throw new IllegalArgumentException(
                    given.get("loss") + ": this command trains loss " + fixedLoss + " only, got " + loss);
        }
        // defaults that depend on the objective, where the user gave none (TRL's SFT and DPO defaults differ)
        for (Map.Entry<String, Object> d : objectiveDefaults(loss).entrySet()) {
            if (!given.containsKey(d.getKey())) {
                values.put(d.getKey(), d.getValue());
            }
        }
        TrainConfig c = construct(values);
        // a key given at its default changes nothing, so only the others count as given (a saved config.yaml resolves
        // again)
        Map<String, Object> defaults = mergeBase(base);
        defaults.put("loss", loss);
        defaults.putAll(objectiveDefaults(loss));
        given.keySet().removeIf(k -> Objects.equals(values.get(k), defaults.get(k)) && !k.equals("loss"));
        c.validate(given);
        return c;
    }

    private static Map<String, Object> mergeBase(Map<String, ?> base) {
        Map<String, Object> values = new LinkedHashMap<>(DEFAULTS);
        base.forEach((key, value) ->
                set(values, new HashMap<>(), key, YAML.valueToTree(value), "default of key '" + key + "'"));
        return values;
    }

    /** @return the defaults that differ by objective: TRL SFT's and RewardTrainer's learning rates, and cDPO's and robust DPO's ε */
    private static Map<String, Object> objectiveDefaults(LossType loss) {
        return switch (loss) {
            case SFT -> Map.of("learning_rate", 2e-5, "disable_dropout", false);
            case REWARD -> Map.of("learning_rate", 1e-4, "padding_free", false); // a reward run pads its batches
            // TRL's GRPOConfig/RLOOConfig: 8 completions per micro-batch, the model's dropout kept
            case GRPO, RLOO -> Map.of("batch_size", 8, "disable_dropout", false);
            // TRL 0.x's PPOTrainer: dropout off in policy, reference, value and reward models (the shared default)
            case PPO -> Map.of("batch_size", 8);
            // TRL's OnlineDPOConfig: 8 prompts (16 samples) per micro-batch, learning rate 5e-7
            case ONLINE_DPO -> Map.of("batch_size", 8, "learning_rate", 5e-7);
            case CDPO, ROBUST -> Map.of("label_smoothing", 0.1);
            // nothing measures eval_kl for these; ORPO and CPO run HF's padded batches (their logits metrics
            // read the padding positions)
            case KTO -> Map.of("eval_kl", false);
            case ORPO, CPO -> Map.of("eval_kl", false, "padding_free", false);
            case EXO_PAIR -> Map.of("label_smoothing", 1e-3);
            default -> Map.of();
        };
    }

    /** Sets one key of one source, translating TRL's name and value, and records how to name it. */
    private static void set(
            Map<String, Object> values, Map<String, String> source, String name, JsonNode value, String where) {
        String key = name;
        JsonNode node = value;
        if (!DEFAULTS.containsKey(name)) {
            Optional<String> refusal = TrlNames.refusal(name, node);
            if (refusal.isPresent()) {
                throw new IllegalArgumentException(where + ": " + refusal.get());
            }
            if (TrlNames.acceptedWithoutEffect(name)) {
                return;
            }
            Optional<TrlNames.Alias> alias = TrlNames.alias(name);
            if (alias.isEmpty()) {
                List<String> all = new ArrayList<>(keys());
                all.addAll(OWN_KEYS.get());
                throw new IllegalArgumentException(
                        where + ": unknown" + suggestion(name) + "; align4j keys: " + String.join(", ", all));
            }
            key = alias.get().key();
            try {
                node = alias.get().translate(node);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(where + ": " + e.getMessage());
            }
        }
        if (key.equals("loss") && (node.isArray() || node.asText().contains(","))) {
            // a list of objectives is a mix (TRL's loss_type list); a list of one is that objective
            List<String> names = listItems(node);
            if (names.size() == 1) {
                node = TextNode.valueOf(names.get(0));
            } else {
                key = "loss_terms";
            }
        }
        if (source.containsKey(key)) {
            throw new IllegalArgumentException(where + ": sets '" + key + "' again (" + source.get(key) + ")");
        }
        values.put(key, convert(component(key), node, where));
        source.put(key, where);
    }

    /** A method's own keys while its config resolves: an unknown key's suggestions and key list include them. */
    private static final ThreadLocal<Set<String>> OWN_KEYS = ThreadLocal.withInitial(Set::of);

    private static void withOwnKeys(Set<String> ownKeys, Runnable r) {
        Set<String> before = OWN_KEYS.get();
        OWN_KEYS.set(ownKeys);
        try {
            r.run();
        } finally {
            OWN_KEYS.set(before);
        }
    }

    /**
     * Resolves a run's saved {@code config.yaml} to compare it or reuse it: the keys of a method with options
     * of its own (online RL, KTO, CPO; their records read them) are left out, not refused.
     *
     * @param yaml a saved config.yaml
     * @return the shared config it holds
     * @throws IllegalArgumentException naming the file, line and key at fault
     */
    public static TrainConfig resolveSaved(Path yaml) {
        Set<String> methodKeys = new LinkedHashSet<>(RlConfig.ownedKeys());
        methodKeys.addAll(KtoConfig.ownedKeys());
        methodKeys.addAll(CpoConfig.ownedKeys());
        return resolve(Map.of(), yaml, Map.of(), key -> "key '" + key + "'", methodKeys, new HashMap<>(), true);
    }

    /** @return " (did you mean 'x'?)" for the nearest known names (one or two), or "" */
    static String suggestion(String name) {
        List<String> known = new ArrayList<>(keys());
        known.addAll(OWN_KEYS.get());
        known.addAll(TrlNames.names());
        String n = name.toLowerCase(Locale.ROOT).replace('-', '_');
        int limit = Math.max(2, n.length() / 3);
        List<String> near = known.stream()
                .filter(k -> editDistance(n, k) <= limit)
                .sorted(Comparator.comparingInt(k -> editDistance(n, k)))
                .limit(2)
                .toList();
        return near.isEmpty() ? "" : " (did you mean '" + String.join("' or '", near) + "'?)";
    }

    private static int editDistance(String a, String b) {
        int[] prev = new int[b.length() + 1];
        int[] cur = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) {
            prev[j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            cur[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                int sub = prev[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1);
                cur[j] = Math.min(sub, Math.min(prev[j] + 1, cur[j - 1] + 1));
            }
            int[] t = prev;
            prev = cur;
            cur = t;
        }
        return prev[b.length()];
    }

    /** The largest LoRA rank: wider than any model's modules, small enough that r × width fits a tensor. */
    static final int MAX_LORA_RANK = 65536;

    /** Text keys that hold a comma-separated list, so a YAML list is read as the same list. */
    private static final Set<String> LIST_AS_TEXT = Set.of("loraTarget");

    /** Converts a YAML or override value to the key's Java type, naming the key when it cannot. */
    private static Object convert(RecordComponent rc, JsonNode v, String where) {
        Class<?> type = rc.getType();
        if (v == null || v.isNull()) {
            if (type.isPrimitive() || type.isEnum()) {
                throw new IllegalArgumentException(where + ": needs a value");
            }
            return type == Map.class ? Map.of() : null;
        }
        if (type == Map.class) {
            return mapping(v, where);
        }
        if (type == List.class) {
            boolean objectives = rc.getGenericType().getTypeName().contains(LossType.class.getSimpleName());
            List<Object> out = new ArrayList<>();
            for (String item : listItems(v)) {
                out.add(objectives ? parseEnum(LossType.class, item, where) : (Object) number(item, where));
            }
            return List.copyOf(out);
        }
        if (type == String.class && v.isArray() && LIST_AS_TEXT.contains(rc.getName())) {
            // a YAML list for a key whose flag takes a comma-separated list (lora_target: [q_proj, v_proj])
            List<String> items = new ArrayList<>();
            for (JsonNode item : v) {
                if (item.isContainerNode()
                        || item.isNull()
                        || item.asText().isBlank()
                        || item.asText().contains(",")) {
                    throw new IllegalArgumentException(where + ": expected a list of names, got " + v);
                }
                items.add(item.asText().trim());
            }
            return String.join(",", items);
        }
        if (v.isContainerNode()) {
            throw new IllegalArgumentException(
                    where + ": expected a single value, got " + (v.isArray() ? "a list" : "a mapping"));
        }
        String text = v.asText().trim();
        if (type == String.class) {
            return text;
        }
        if (type == boolean.class) {
            if (v.isBoolean()) {
                return v.booleanValue();
            }
            return switch (text.toLowerCase(Locale.ROOT)) {
                case "true", "yes", "on", "1" -> true;
                case "false", "no", "off", "0" -> false;
                default -> throw new IllegalArgumentException(where + ": expected true or false, got '" + text + "'");
            };
        }
        if (type == int.class || type == long.class) {
            long n;
            if (v.isIntegralNumber()) {
                n = v.longValue();
            } else {
                double d = number(text, where);
                if (d != Math.rint(d) || Math.abs(d) > Long.MAX_VALUE / 2) {
                    throw new IllegalArgumentException(where + ": expected a whole number, got " + text);
                }
                n = (long) d;
            }
            if (type == int.class && (n > Integer.MAX_VALUE || n < Integer.MIN_VALUE)) {
                throw new IllegalArgumentException(where + ": " + n + " is out of range");
            }
            return type == int.class ? (Object) (int) n : (Object) n;
        }
        if (type == double.class) {
            double d = v.isNumber() ? v.doubleValue() : number(text, where);
            if (!Double.isFinite(d)) {
                throw new IllegalArgumentException(where + ": must be a finite number, got " + text);
            }
            return d;
        }
        if (type.isEnum()) {
            return parseEnum(type, text, where);
        }
        throw new IllegalStateException("no conversion for " + type);
    }

    /** The items of a list: a YAML list, or (from a flag) comma-separated text, blanks dropped. */
    private static List<String> listItems(JsonNode v) {
        List<String> items = new ArrayList<>();
        if (v.isArray()) {
            v.forEach(n -> items.add(n.asText().trim()));
        } else {
            String text = v.asText().trim();
            if (text.startsWith("[") && text.endsWith("]")) {
                text = text.substring(1, text.length() - 1);
            }
            for (String part : text.split(",")) {
                items.add(part.trim());
            }
        }
        items.removeIf(String::isEmpty);
        return items;
    }

    /** A mapping: a YAML mapping, a Java map, or (from a flag) its JSON text. */
    private static Map<String, Object> mapping(JsonNode v, String where) {
        JsonNode n = v;
        if (v.isTextual()) {
            try {
                n = YAML.readTree(v.asText());
            } catch (JsonProcessingException e) {
                throw new IllegalArgumentException(where + ": expected a JSON object, got '" + v.asText() + "'");
            }
        }
        if (n == null || !n.isObject()) {
            throw new IllegalArgumentException(where + ": expected a mapping of names to values, got " + v);
        }
        return Collections.unmodifiableMap(YAML.convertValue(n, new TypeReference<LinkedHashMap<String, Object>>() {}));
    }

    private static double number(String text, String where) {
        try {
            return Double.parseDouble(text);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(where + ": expected a number, got '" + text + "'");
        }
    }

    private static Object parseEnum(Class<?> type, String text, String where) {
        if (type == LossType.class) {
            try {
                return LossType.parse(text);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(where + ": " + e.getMessage());
            }
        }
        String n = text.toLowerCase(Locale.ROOT).replace('-', '_');
        List<String> choices = new ArrayList<>();
        for (Object c : type.getEnumConstants()) {
            String name = configName((Enum<?>) c);
            choices.add(name);
            if (name.replace('-', '_').equals(n)) {
                return c;
            }
        }
        throw new IllegalArgumentException(where + ": '" + text + "' is not one of " + String.join(", ", choices));
    }

    /**
     * @param e an enum constant of a config field
     * @return how the config spells it: its {@code toString()} where the enum defines one, else its name in lower case
     */
    public static String configName(Enum<?> e) {
        String s = e.toString();
        return s.equals(e.name()) ? e.name().toLowerCase(Locale.ROOT) : s;
    }

    private static TrainConfig construct(Map<String, Object> values) {
        Object[] args = new Object[COMPONENTS.length];
        Class<?>[] types = new Class<?>[COMPONENTS.length];
        for (int i = 0; i < COMPONENTS.length; i++) {
            args[i] = values.get(snake(COMPONENTS[i].getName()));
            types[i] = COMPONENTS[i].getType();
        }
        try {
            return TrainConfig.class.getDeclaredConstructor(types).newInstance(args);
        } catch (InvocationTargetException e) {
            throw e.getCause() instanceof RuntimeException r ? r : new IllegalStateException(e.getCause());
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(e);
        }
    }

    static String snake(String camel) {
        StringBuilder sb = new StringBuilder();
        for (char ch : camel.toCharArray()) {
            if (Character.isUpperCase(ch)) {
                sb.append('_').append(Character.toLowerCase(ch));
            } else {
                sb.append(ch);
            }
        }
        return sb.toString();
    }

    /** Checks every value with the keys the user gave, naming the key at fault. */
    private void validate(Map<String, String> given) {
        Function<String, String> name = key -> given.getOrDefault(key, "key '" + key + "'");
        require(model != null, name.apply("model"), "missing: the starting model folder");
        require(data != null, name.apply("data"), "missing: the training data");
        require(output != null, name.apply("output"), "missing: the run folder");
        validate(name);
        List<LossType> objectives = objectives();
        for (LossType.Hyperparameter h : LossType.Hyperparameter.values()) {
            if (given.containsKey(h.key()) && objectives.stream().noneMatch(t -> t.uses(h))) {
                List<String> users = Arrays.stream(LossType.values())
                        .filter(t -> t.uses(h))
                        .map(LossType::toString)
                        .toList();
                String who = h == LossType.Hyperparameter.BETA
                        ? "every preference objective does"
                        : String.join(", ", users) + (users.size() == 1 ? " does" : " do");
                throw new IllegalArgumentException(
                        given.get(h.key()) + ": loss " + lossName() + " does not use it (" + who + ")");
            }
        }
        validateModifiers(given, name);
        if (loss == LossType.SFT) {
            for (String k : List.of("reference", "reference_model", "reference_dtype", "cache_dir", "eval_kl")) {
                refuseIf(given, k, "sft has no reference policy");
            }
        } else if (loss == LossType.REWARD) {
            for (String k : List.of("reference", "reference_model", "reference_dtype", "cache_dir", "eval_kl")) {
                refuseIf(given, k, "a reward model has no reference policy");
            }
            for (String k : List.of("eval_samples", "eval_judge", "eval_max_new_tokens")) {
                refuseIf(given, k, "a reward model generates nothing to judge");
            }
            for (String k : List.of("max_prompt_length", "truncation")) {
                refuseIf(
                        given,
                        k,
                        "a reward model reads whole sequences; a pair longer than max_length is dropped, never cut (as TRL)");
            }
            if (paddingFree) {
                refuseIf(given, "padding_free", "not built for reward models: a reward run pads its batches");
            }
        } else if (loss.isOnline()) {
            for (String k : List.of("reference", "cache_dir")) {
                refuseIf(
                        given,
                        k,
                        "an online run scores its own fresh samples: its reference is a frozen copy (or the "
                                + "policy with adapters off), never precomputed");
            }
            for (String k : List.of("eval_samples", "eval_judge", "eval_max_new_tokens", "eval_kl")) {
                refuseIf(
                        given,
                        k,
                        "an online run evaluates by sampling held-out prompts and scoring them with its "
                                + "rewards (eval_reward, eval_accuracy)");
            }
            refuseIf(given, "max_length", "an online run's lengths are max_prompt_length and max_completion_length");
        } else if (loss == LossType.ORPO || loss == LossType.CPO) {
            for (String k : List.of("reference", "reference_model", "reference_dtype", "cache_dir", "eval_kl")) {
                refuseIf(given, k, loss + " is reference-free");
            }
            for (String k : List.of("max_prompt_length", "truncation")) {
                refuseIf(
                        given,
                        k,
                        "TRL's " + loss + " trainer cuts only the completions to max_length, never the prompt");
            }
            if (paddingFree) {
                refuseIf(
                        given,
                        "padding_free",
                        loss + " runs HF's padded batches: TRL's logits metrics read the padding positions");
            }
        } else if (loss == LossType.SIMPO) {
            for (String k : List.of("reference", "reference_dtype", "cache_dir")) {
                refuseIf(given, k, "simpo is reference-free (eval_kl still reads reference_model)");
            }
        } else if (reference == Reference.PRECOMPUTED) {
            refuseIf(
                    given,
                    "reference_dtype",
                    "the precomputed reference is scored once in fp32; reference_dtype is for reference: copy");
        } else {
            refuseIf(given, "cache_dir", "only reference: precomputed reads a cache");
        }
        if (loss == LossType.KTO) {
            refuseIf(given, "eval_kl", "kto's evaluation logs its own kl (the reference point of held-out batches)");
            for (String k : List.of("eval_samples", "eval_judge", "eval_max_new_tokens")) {
                refuseIf(
                        given,
                        k,
                        "kto's held-out examples are labelled completions, with no chosen answer to judge against");
            }
            if (groupByLength) {
                refuseIf(
                        given,
                        "group_by_length",
                        "kto takes the data in order: each example's mismatched completion for the KL estimate is its"
                                + " predecessor's in the same batch (TRL's sequential sampling)");
            }
        }
        if (evalData == null && evalFraction == 0) {
            for (String k : List.of("eval_every", "eval_batch_size")) {
                if (given.containsKey(k)) {
                    LOG.warn(
                            "{}: has no effect: there is no held-out set (give eval_data or eval_fraction)",
                            given.get(k));
                }
            }
        }
        if (evalSamples == 0) {
            refuseIf(given, "eval_judge", "there are no eval_samples to judge");
            refuseIf(given, "eval_max_new_tokens", "there are no eval_samples to generate");
        } else if (evalData == null && evalFraction == 0) {
            throw new IllegalArgumentException(given.getOrDefault("eval_samples", "key 'eval_samples'")
                    + ": there is no held-out set to take prompts from (give eval_data or eval_fraction)");
        }
        if (given.containsKey("warmup_steps")
                && given.containsKey("warmup_ratio")
                && warmupSteps > 0
                && warmupRatio > 0) {
            throw new IllegalArgumentException(
                    given.get("warmup_ratio") + ": give warmup_steps or warmup_ratio, not both");
        }
        if (given.containsKey("epochs") && given.containsKey("max_steps") && maxSteps > 0) {
            throw new IllegalArgumentException(
                    given.get("epochs") + ": max_steps " + maxSteps + " is also given and would override it; give one");
        }
        if (maxLength > 0 && maxPromptLength > maxLength) {
            throw new IllegalArgumentException(
                    name.apply("max_prompt_length") + ": " + maxPromptLength + " exceeds max_length " + maxLength);
        }
        require(
                loraR >= 0,
                name.apply("lora_r"),
                "the LoRA rank must be at least 1 (0 trains every weight), got " + loraR);
        require(
                loraR <= MAX_LORA_RANK,
                name.apply("lora_r"),
                "the LoRA rank must be at most " + MAX_LORA_RANK + " (a rank above a module's width adds nothing), got "
                        + loraR);
        if (adapter != null) {
            for (String k : List.of("lora_r", "lora_alpha", "lora_dropout", "lora_target")) {
                refuseIf(given, k, "the adapter's adapter_config.json sets it");
            }
        } else if (loraR == 0) {
            for (String k : List.of("lora_alpha", "lora_dropout", "lora_target")) {
                refuseIf(given, k, "LoRA is off: give lora_r (or an adapter)");
            }
        }
        if (loraR > 0 && disableDropout) {
            refuseIf(
                    given,
                    "lora_dropout",
                    "disable_dropout is on, which turns the adapters' dropout off too (as TRL); give disable_dropout: false");
        }
        if (usesLora() && referenceModel == null) {
            refuseIf(given, "reference_dtype", "a LoRA run's reference is the policy with its adapters off, no copy");
        }
        if (loraR > 0) {
            try {
                loraConfig();
            } catch (IllegalArgumentException e) {
                String key = e.getMessage().contains("dropout")
                        ? "lora_dropout"
                        : e.getMessage().contains("alpha") ? "lora_alpha" : "lora_target";
                throw new IllegalArgumentException(name.apply(key) + ": " + e.getMessage());
            }
        }
    }

    /** @return where precomputed reference log-probs are cached: {@code cache_dir}, or OUTPUT/cache */
    public Path referenceCacheDir() {
        return cacheDir != null ? Path.of(cacheDir) : Path.of(output, "cache");
    }

    /** @return whether the run trains LoRA adapters (new ones, or an adapter it continues) */
    public boolean usesLora() {
        return loraR > 0 || adapter != null;
    }

    /**
     * @return the LoRA configuration of new adapters ({@code lora_r}, {@code lora_alpha}, {@code
     *     lora_dropout}, {@code lora_target})
     * @throws IllegalStateException when {@code lora_r} is 0
     */
    public LoraConfig loraConfig() {
        if (loraR == 0) {
            throw new IllegalStateException("lora_r is 0: this run trains every weight");
        }
        return new LoraConfig(loraR, loraAlpha, loraDropout, LoraConfig.parseTargets(loraTarget), false);
    }

    /** @return the objectives of the run: the mix's terms, or {@code loss} alone */
    public List<LossType> objectives() {
        return lossTerms.isEmpty() ? List.of(loss) : lossTerms;
    }

    /** @return the weight of each of {@link #objectives()}: {@code loss_weights}, or 1 each */
    public List<Double> objectiveWeights() {
        return lossWeights.isEmpty() ? Collections.nCopies(objectives().size(), 1.0) : lossWeights;
    }

    /** @return the objective as the log names it: {@code dpo}, or a mix {@code dpo+bco-pair+sft} */
    public String lossName() {
        return String.join("+", objectives().stream().map(LossType::toString).toList());
    }

    /** @return whether the run needs more than one plain objective: a mix, weights, an f-divergence or WPO */
    public boolean combinedObjective() {
        return objectives().size() > 1
                || objectiveWeights().get(0) != 1.0
                || fDivergenceType != FDivergence.REVERSE_KL
                || useWeighting;
    }

    /** The mix and its modifiers: each read by every objective of the run, or refused by name. */
    private void validateModifiers(Map<String, String> given, Function<String, String> name) {
        List<LossType> objectives = objectives();
        List<String> modifiers =
                List.of("loss_weights", "f_divergence_type", "f_alpha_divergence_coef", "ld_alpha", "use_weighting");
        if (!loss.isPreference()) {
            for (String k : modifiers) {
                refuseIf(
                        given,
                        k,
                        loss.hasOwnTrainer()
                                ? "DPO's modifiers apply to align4j train's objectives, not to " + loss
                                : loss + " trains no preference objective");
            }
            return;
        }
        for (LossType t : objectives) {
            if (objectives.size() > 1 && !t.mixable()) {
                throw new IllegalArgumentException(name.apply("loss_terms") + ": " + t + " cannot be a term of a mix ("
                        + LossType.mixableNames() + " can)");
            }
        }
        if (!lossWeights.isEmpty() && lossWeights.size() != objectives.size()) {
            throw new IllegalArgumentException(name.apply("loss_weights") + ": " + lossWeights.size() + " weights for "
                    + objectives.size() + " objectives (" + lossName() + ")");
        }
        if (given.containsKey("f_divergence_type")) {
            for (LossType t : objectives) {
                if (!t.hasFDivergenceForm()) {
                    throw new IllegalArgumentException(given.get("f_divergence_type") + ": loss " + t
                            + " has no f-divergence form (only objectives on the chosen - rejected difference: "
                            + LossType.fDivergenceNames() + ")");
                }
            }
        }
        if (fDivergenceType != FDivergence.ALPHA_DIVERGENCE) {
            refuseIf(given, "f_alpha_divergence_coef", "read only with f_divergence_type alpha_divergence");
        }
        if (given.containsKey("ld_alpha")) {
            for (LossType t : objectives) {
                if (!t.readsLdAlpha()) {
                    throw new IllegalArgumentException(given.get("ld_alpha") + ": loss " + t
                            + " does not use it (LD-DPO weighs summed log-ratios; "
                            + String.join(
                                    ", ",
                                    Arrays.stream(LossType.values())
                                            .filter(LossType::readsLdAlpha)
                                            .map(LossType::toString)
                                            .toList())
                            + " do)");
                }
            }
            refuseIf(
                    given,
                    "ld_alpha",
                    reference == Reference.PRECOMPUTED
                            ? "the precomputed reference cache holds whole sums; use reference: copy"
                            : null);
        }
        if (useWeighting) {
            for (LossType t : objectives) {
                if (!t.takesPairWeights()) {
                    throw new IllegalArgumentException(name.apply("use_weighting") + ": loss " + t
                            + " does not take per-pair weights (aot and aot-unpaired sort the batch; simpo has no"
                            + " reference)");
                }
            }
        }
        if (objectives.contains(LossType.EXO_PAIR)) {
            require(
                    labelSmoothing > 0,
                    name.apply("label_smoothing"),
                    "exo-pair needs epsilon > 0 (the EXO paper: 1e-3), got " + labelSmoothing);
        }
    }

    private static void refuseIf(Map<String, String> given, String key, String why) {
        if (why != null && given.containsKey(key)) {
            throw new IllegalArgumentException(given.get(key) + ": has no effect here: " + why);
        }
    }

    /**
     * Checks every value that does not depend on what the user gave.
     *
     * @throws IllegalArgumentException naming the key at fault
     */
    public void validate() {
        validate(key -> "key '" + key + "'");
    }

    /** As {@link #validate()}, naming each key by {@code name} (the flag or the YAML line it came from). */
    private void validate(Function<String, String> name) {
        require(beta > 0, name.apply("beta"), "must be > 0, got " + beta);
        require(
                labelSmoothing >= 0 && labelSmoothing < 0.5,
                name.apply("label_smoothing"),
                "must lie in [0, 0.5), got " + labelSmoothing);
        require(preference >= 0 && preference <= 1, name.apply("preference"), "must lie in [0, 1], got " + preference);
        require(gamma >= 0, name.apply("gamma"), "must be >= 0, got " + gamma);
        require(ldAlpha >= 0 && ldAlpha <= 1, name.apply("ld_alpha"), "must lie in [0, 1], got " + ldAlpha);
        require(discopopTau > 0, name.apply("discopop_tau"), "must be > 0, got " + discopopTau);
        for (double w : lossWeights) {
            require(Double.isFinite(w), name.apply("loss_weights"), "must be finite numbers, got " + lossWeights);
        }
        require(
                centerRewardsCoefficient >= 0,
                name.apply("center_rewards_coefficient"),
                "must be >= 0, got " + centerRewardsCoefficient);
        require(evalSamples >= 0, name.apply("eval_samples"), "must be >= 0, got " + evalSamples);
        require(evalMaxNewTokens > 0, name.apply("eval_max_new_tokens"), "must be > 0, got " + evalMaxNewTokens);
        require(
                evalJudge != null
                        && (evalJudge.equals("exact")
                                || evalJudge.equals("contains")
                                || evalJudge.startsWith("reward-model:")
                                        && evalJudge.length() > "reward-model:".length()),
                name.apply("eval_judge"),
                "exact, contains or reward-model:DIR, got '" + evalJudge + "'");
        require(learningRate > 0, name.apply("learning_rate"), "must be > 0, got " + learningRate);
        require(weightDecay >= 0, name.apply("weight_decay"), "must be >= 0, got " + weightDecay);
        require(adamBeta1 >= 0 && adamBeta1 < 1, name.apply("adam_beta1"), "must lie in [0, 1), got " + adamBeta1);
        require(adamBeta2 >= 0 && adamBeta2 < 1, name.apply("adam_beta2"), "must lie in [0, 1), got " + adamBeta2);
        require(adamEpsilon > 0, name.apply("adam_epsilon"), "must be > 0, got " + adamEpsilon);
        require(batchSize > 0, name.apply("batch_size"), "must be > 0, got " + batchSize);
        require(gradAccum > 0, name.apply("grad_accum"), "must be > 0, got " + gradAccum);
        require(maxSteps >= 0, name.apply("max_steps"), "must be >= 0, got " + maxSteps);
        require(maxSteps > 0 || epochs > 0, name.apply("epochs"), "give max_steps or a positive epochs");
        require(warmupSteps >= 0, name.apply("warmup_steps"), "must be >= 0, got " + warmupSteps);
        require(
                warmupRatio >= 0 && warmupRatio < 1,
                name.apply("warmup_ratio"),
                "must lie in [0, 1), got " + warmupRatio);
        require(maxGradNorm >= 0, name.apply("max_grad_norm"), "must be >= 0, got " + maxGradNorm);
        require(saveEvery >= 0, name.apply("save_every"), "must be >= 0, got " + saveEvery);
        require(keepLast >= 1, name.apply("keep_last"), "must be >= 1, got " + keepLast);
        require(zeroStage == 0 || zeroStage == 1, name.apply("zero_stage"), "must be 0 or 1, got " + zeroStage);
        require(evalEvery >= 0, name.apply("eval_every"), "must be >= 0, got " + evalEvery);
        require(logEvery >= 1, name.apply("log_every"), "must be >= 1, got " + logEvery);
        require(
                evalFraction >= 0 && evalFraction < 1,
                name.apply("eval_fraction"),
                "must lie in [0, 1), got " + evalFraction);
        require(evalBatchSize > 0, name.apply("eval_batch_size"), "must be > 0, got " + evalBatchSize);
        require(maxLength >= 0, name.apply("max_length"), "must be >= 0, got " + maxLength);
        require(maxPromptLength >= 0, name.apply("max_prompt_length"), "must be >= 0, got " + maxPromptLength);
        require(
                device != null && device.matches("cpu|gpu(:\\d+)?"),
                name.apply("device"),
                "cpu, gpu or gpu:N, got '" + device + "'");
        require(
                loraDropout >= 0 && loraDropout < 1,
                name.apply("lora_dropout"),
                "must lie in [0, 1), got " + loraDropout);
    }

    private static void require(boolean ok, String where, String message) {
        if (!ok) {
            throw new IllegalArgumentException(where + ": " + message);
        }
    }

    /** @return the config as YAML (what {@code config.yaml} in a checkpoint holds), keys in the record's order */
    public String toYaml() {
        Map<String, Object> m = new LinkedHashMap<>();
        for (RecordComponent rc : COMPONENTS) {
            try {
                Object v = rc.getAccessor().invoke(this);
                if (v instanceof List<?> list) {
                    v = list.stream()
                            .map(x -> x instanceof Enum<?> e ? configName(e) : x)
                            .toList();
                }
                m.put(snake(rc.getName()), v instanceof Enum<?> e ? configName(e) : v);
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException(e);
            }
        }
        try {
            return YAML.writeValueAsString(m);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * The keys whose values differ between two configs (for a resumed run told something new).
     *
     * @param other another config
     * @return key → [this value, other value], in the record's order
     */
    public Map<String, List<Object>> differences(TrainConfig other) {
        Map<String, List<Object>> out = new LinkedHashMap<>();
        for (RecordComponent rc : COMPONENTS) {
            try {
                Object a = rc.getAccessor().invoke(this);
                Object b = rc.getAccessor().invoke(other);
                if (!Objects.equals(a, b)) {
                    out.put(snake(rc.getName()), Arrays.asList(a, b));
                }
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException(e);
            }
        }
        return out;
    }

    /**
     * Loads a model for this run with the configured attention and precision.
     *
     * @param dir the model folder
     * @param dev where it runs
     * @param dtype the weights' type (FLOAT32, or FLOAT16 for a frozen reference)
     * @return the model
     */
    public CausalLm loadModel(Path dir, Device dev, DataType dtype) {
        CausalLm lm = CausalLm.load(dir, dev, dtype);
        try {
            lm.setCompute(Compute.of(attention, precision, dev));
            lm.setPaddingFree(paddingFree);
        } catch (RuntimeException e) {
            lm.close();
            throw e;
        }
        return lm;
    }

    /** @return how this run's data is encoded: lengths, truncation, chat template and its variables */
    public EncodingOptions encodingOptions() {
        return new EncodingOptions(maxLength, maxPromptLength, truncation, chatTemplate, chatTemplateKwargs);
    }

    /** @return the reference folder: {@code referenceModel}, or {@code model} */
    public String referenceModelOrModel() {
        return referenceModel != null ? referenceModel : model;
    }

    /**
     * Optimizer steps of the run: {@code maxSteps}, or the steps {@code epochs} passes over {@code
     * examples} take.
     *
     * @param examples training examples (pairs or sequences)
     * @return the number of optimizer steps
     */
    public long totalSteps(int examples) {
        return totalSteps(examples, 1);
    }

    /**
     * @param examples training examples
     * @param processes data-parallel processes, each taking {@code batch_size} examples of every global batch
     * @return optimizer steps of the run: {@code max_steps}, or what {@code epochs} of global batches take
     */
    public long totalSteps(int examples, int processes) {
        if (maxSteps > 0) {
            return maxSteps;
        }
        int global = batchSize * processes;
        int batchesPerEpoch = (examples + global - 1) / global;
        return Math.max(1, (long) Math.ceil(epochs * batchesPerEpoch / gradAccum));
    }

    /**
     * @param totalSteps the run's optimizer steps
     * @return warm-up steps: {@code warmupSteps}, or {@code ceil(warmupRatio × totalSteps)} as HF computes it
     */
    public int warmupStepsOf(long totalSteps) {
        return warmupSteps > 0 ? warmupSteps : (int) Math.ceil(warmupRatio * totalSteps);
    }

    /** @return a builder with the defaults */
    public static Builder<TrainConfig> builder() {
        return new Builder<>(Map.of(), c -> c);
    }

    /**
     * Typed setters for every key, resolved through the same path as YAML and flags when built.
     *
     * <pre>{@code
     * TrainConfig c = TrainConfig.builder().model(base).data(prefs).output(run)
     *         .loss(LossType.IPO).beta(0.1).learningRate(1e-6).batchSize(8).maxSteps(1000).build();
     * }</pre>
     *
     * @param <T> what {@link #build} makes from the resolved config
     */
    public static final class Builder<T> {
        private final Map<String, Object> values = new LinkedHashMap<>();
        private final Map<String, ?> base;
        private final Set<String> ownKeys;
        private final BiFunction<TrainConfig, Map<String, Given>, T> finish;
        private Path yaml;

        /**
         * @param base the product's own defaults (such as {@code loss: sft}), key → value
         * @param finish makes the product from the resolved config
         */
        public Builder(Map<String, ?> base, Function<TrainConfig, T> finish) {
            this(base, Set.of(), (config, own) -> finish.apply(config));
        }

        /**
         * A builder for a trainer whose method has options of its own ({@link #set} takes them too).
         *
         * @param base the product's own defaults, key → value
         * @param ownKeys the method's own keys
         * @param finish makes the product from the resolved config and the method's keys as given
         */
        public Builder(
                Map<String, ?> base, Set<String> ownKeys, BiFunction<TrainConfig, Map<String, Given>, T> finish) {
            this.base = base;
            this.ownKeys = ownKeys;
            this.finish = finish;
        }

        private Builder<T> put(String key, Object value) {
            if (value instanceof List<?> list) {
                value = list.stream()
                        .map(x -> x instanceof Enum<?> e ? configName(e) : x)
                        .toList();
            }
            values.put(
                    key, value instanceof Enum<?> e ? configName(e) : value instanceof Path p ? p.toString() : value);
            return this;
        }

        /**
         * Sets any key by name (align4j's or TRL's), as a YAML file would.
         *
         * @param key the key
         * @param value its value
         * @return this
         */
        public Builder<T> set(String key, Object value) {
            return put(key, value);
        }

        /** @param file a YAML file the builder's own values override @return this */
        public Builder<T> yaml(Path file) {
            this.yaml = file;
            return this;
        }

        /** @param v {@link TrainConfig#model} @return this */
        public Builder<T> model(Path v) {
            return put("model", v);
        }

        /** @param v {@link TrainConfig#data} @return this */
        public Builder<T> data(Path v) {
            return put("data", v);
        }

        /** @param v {@link TrainConfig#evalData} @return this */
        public Builder<T> evalData(Path v) {
            return put("eval_data", v);
        }

        /** @param v {@link TrainConfig#evalFraction} @return this */
        public Builder<T> evalFraction(double v) {
            return put("eval_fraction", v);
        }

        /** @param v {@link TrainConfig#output} @return this */
        public Builder<T> output(Path v) {
            return put("output", v);
        }

        /** @param v {@link TrainConfig#loss} @return this */
        public Builder<T> loss(LossType v) {
            return put("loss", v);
        }

        /** @param v {@link TrainConfig#lossTerms}: a mix of objectives @return this */
        public Builder<T> lossTerms(List<LossType> v) {
            return put("loss_terms", v);
        }

        /** @param v {@link TrainConfig#lossWeights} @return this */
        public Builder<T> lossWeights(List<Double> v) {
            return put("loss_weights", v);
        }

        /** @param v {@link TrainConfig#fDivergenceType} @return this */
        public Builder<T> fDivergenceType(FDivergence v) {
            return put("f_divergence_type", v);
        }

        /** @param v {@link TrainConfig#fAlphaDivergenceCoef} @return this */
        public Builder<T> fAlphaDivergenceCoef(double v) {
            return put("f_alpha_divergence_coef", v);
        }

        /** @param v {@link TrainConfig#ldAlpha} @return this */
        public Builder<T> ldAlpha(double v) {
            return put("ld_alpha", v);
        }

        /** @param v {@link TrainConfig#useWeighting} @return this */
        public Builder<T> useWeighting(boolean v) {
            return put("use_weighting", v);
        }

        /** @param v {@link TrainConfig#discopopTau} @return this */
        public Builder<T> discopopTau(double v) {
            return put("discopop_tau", v);
        }

        /** @param v {@link TrainConfig#beta} @return this */
        public Builder<T> beta(double v) {
            return put("beta", v);
        }

        /** @param v {@link TrainConfig#labelSmoothing} @return this */
        public Builder<T> labelSmoothing(double v) {
            return put("label_smoothing", v);
        }

        /** @param v {@link TrainConfig#preference} @return this */
        public Builder<T> preference(double v) {
            return put("preference", v);
        }

        /** @param v {@link TrainConfig#gamma} @return this */
        public Builder<T> gamma(double v) {
            return put("gamma", v);
        }

        /** @param v {@link TrainConfig#centerRewardsCoefficient} @return this */
        public Builder<T> centerRewardsCoefficient(double v) {
            return put("center_rewards_coefficient", v);
        }

        /** @param v {@link TrainConfig#evalSamples} @return this */
        public Builder<T> evalSamples(int v) {
            return put("eval_samples", v);
        }

        /** @param v {@link TrainConfig#evalJudge}: exact, contains or reward-model:DIR @return this */
        public Builder<T> evalJudge(String v) {
            return put("eval_judge", v);
        }

        /** @param v {@link TrainConfig#evalMaxNewTokens} @return this */
        public Builder<T> evalMaxNewTokens(int v) {
            return put("eval_max_new_tokens", v);
        }

        /** @param v {@link TrainConfig#learningRate} @return this */
        public Builder<T> learningRate(double v) {
            return put("learning_rate", v);
        }

        /** @param v {@link TrainConfig#weightDecay} @return this */
        public Builder<T> weightDecay(double v) {
            return put("weight_decay", v);
        }

        /** @param beta1 AdamW β₁ @param beta2 AdamW β₂ @param epsilon AdamW ε @return this */
        public Builder<T> adam(double beta1, double beta2, double epsilon) {
            return put("adam_beta1", beta1).put("adam_beta2", beta2).put("adam_epsilon", epsilon);
        }

        /** @param v {@link TrainConfig#batchSize} @return this */
        public Builder<T> batchSize(int v) {
            return put("batch_size", v);
        }

        /** @param v {@link TrainConfig#gradAccum} @return this */
        public Builder<T> gradAccum(int v) {
            return put("grad_accum", v);
        }

        /** @param v {@link TrainConfig#maxSteps} @return this */
        public Builder<T> maxSteps(int v) {
            return put("max_steps", v);
        }

        /** @param v {@link TrainConfig#epochs} @return this */
        public Builder<T> epochs(double v) {
            return put("epochs", v);
        }

        /** @param v {@link TrainConfig#warmupSteps} @return this */
        public Builder<T> warmupSteps(int v) {
            return put("warmup_steps", v);
        }

        /** @param v {@link TrainConfig#warmupRatio} @return this */
        public Builder<T> warmupRatio(double v) {
            return put("warmup_ratio", v);
        }

        /** @param v {@link TrainConfig#schedule} @return this */
        public Builder<T> schedule(Schedule v) {
            return put("schedule", v);
        }

        /** @param v {@link TrainConfig#maxGradNorm} @return this */
        public Builder<T> maxGradNorm(double v) {
            return put("max_grad_norm", v);
        }

        /** @param v {@link TrainConfig#saveEvery} @return this */
        public Builder<T> saveEvery(int v) {
            return put("save_every", v);
        }

        /** @param v {@link TrainConfig#keepLast} @return this */
        public Builder<T> keepLast(int v) {
            return put("keep_last", v);
        }

        /** @param v {@link TrainConfig#zeroStage} @return this */
        public Builder<T> zeroStage(int v) {
            return put("zero_stage", v);
        }

        /** @param v {@link TrainConfig#evalEvery} @return this */
        public Builder<T> evalEvery(int v) {
            return put("eval_every", v);
        }

        /** @param v {@link TrainConfig#logEvery} @return this */
        public Builder<T> logEvery(int v) {
            return put("log_every", v);
        }

        /** @param v {@link TrainConfig#seed} @return this */
        public Builder<T> seed(long v) {
            return put("seed", v);
        }

        /** @param v {@link TrainConfig#reference} @return this */
        public Builder<T> reference(Reference v) {
            return put("reference", v);
        }

        /** @param v {@link TrainConfig#referenceModel} @return this */
        public Builder<T> referenceModel(Path v) {
            return put("reference_model", v);
        }

        /** @param v {@link TrainConfig#referenceDtype} @return this */
        public Builder<T> referenceDtype(ReferenceDtype v) {
            return put("reference_dtype", v);
        }

        /** @param v {@link TrainConfig#cacheDir} @return this */
        public Builder<T> cacheDir(Path v) {
            return put("cache_dir", v);
        }

        /** @param v {@link TrainConfig#device} @return this */
        public Builder<T> device(String v) {
            return put("device", v);
        }

        /** @param v {@link TrainConfig#maxLength} @return this */
        public Builder<T> maxLength(int v) {
            return put("max_length", v);
        }

        /** @param v {@link TrainConfig#maxPromptLength} @return this */
        public Builder<T> maxPromptLength(int v) {
            return put("max_prompt_length", v);
        }

        /** @param v {@link TrainConfig#truncation} @return this */
        public Builder<T> truncation(Truncation v) {
            return put("truncation", v);
        }

        /** @param v {@link TrainConfig#format} @return this */
        public Builder<T> format(DataFormat v) {
            return put("format", v);
        }

        /** @param v {@link TrainConfig#skipInvalid} @return this */
        public Builder<T> skipInvalid(boolean v) {
            return put("skip_invalid", v);
        }

        /** @param v {@link TrainConfig#chatTemplate} @return this */
        public Builder<T> chatTemplate(boolean v) {
            return put("chat_template", v);
        }

        /** @param v {@link TrainConfig#groupByLength} @return this */
        public Builder<T> groupByLength(boolean v) {
            return put("group_by_length", v);
        }

        /** @param v {@link TrainConfig#paddingFree} @return this */
        public Builder<T> paddingFree(boolean v) {
            return put("padding_free", v);
        }

        /** @param v {@link TrainConfig#evalBatchSize} @return this */
        public Builder<T> evalBatchSize(int v) {
            return put("eval_batch_size", v);
        }

        /** @param v {@link TrainConfig#evalKl} @return this */
        public Builder<T> evalKl(boolean v) {
            return put("eval_kl", v);
        }

        /** @param v {@link TrainConfig#attention} @return this */
        public Builder<T> attention(Attention v) {
            return put("attention", v);
        }

        /** @param v {@link TrainConfig#loraR} @return this */
        public Builder<T> loraR(int v) {
            return put("lora_r", v);
        }

        /** @param v {@link TrainConfig#loraAlpha} @return this */
        public Builder<T> loraAlpha(double v) {
            return put("lora_alpha", v);
        }

        /** @param v {@link TrainConfig#loraDropout} @return this */
        public Builder<T> loraDropout(double v) {
            return put("lora_dropout", v);
        }

        /** @param v {@link TrainConfig#loraTarget}: all-linear or comma-separated module names @return this */
        public Builder<T> loraTarget(String v) {
            return put("lora_target", v);
        }

        /** @param v {@link TrainConfig#adapter} @return this */
        public Builder<T> adapter(Path v) {
            return put("adapter", v);
        }

        /** @param v {@link TrainConfig#precision} @return this */
        public Builder<T> precision(Precision v) {
            return put("precision", v);
        }

        /** @param v {@link TrainConfig#chatTemplateKwargs} @return this */
        public Builder<T> chatTemplateKwargs(Map<String, Object> v) {
            return put("chat_template_kwargs", v);
        }

        /** @param v {@link TrainConfig#disableDropout} @return this */
        public Builder<T> disableDropout(boolean v) {
            return put("disable_dropout", v);
        }

        /**
         * @return the product of the resolved config
         * @throws IllegalArgumentException naming the key at fault
         */
        public T build() {
            Map<String, Given> own = new LinkedHashMap<>();
            TrainConfig c = resolve(base, yaml, values, key -> "key '" + key + "'", ownKeys, own);
            return finish.apply(c, own);
        }
    }

    /** A YAML file's top-level keys with their values and line numbers. */
    private record YamlFile(Map<String, JsonNode> values, Map<String, Integer> lines) {
        static YamlFile read(Path yaml) {
            String problem = InputFiles.problem(yaml);
            if (problem != null) {
                throw new IllegalArgumentException(yaml + ": " + problem);
            }
            String text;
            try {
                text = Files.readString(yaml);
            } catch (NoSuchFileException e) {
                throw new IllegalArgumentException(yaml + ": file not found");
            } catch (IOException e) {
                throw new IllegalArgumentException(yaml + ": cannot read: " + e.getMessage());
            }
            requireOneDocumentWithoutAliases(yaml, text);
            Map<String, JsonNode> values = new LinkedHashMap<>();
            Map<String, Integer> lines = new HashMap<>();
            try (JsonParser p = YAML.getFactory().createParser(text)) {
                JsonToken t = p.nextToken();
                if (t == null) {
                    return new YamlFile(values, lines);
                }
                if (t != JsonToken.START_OBJECT) {
                    throw new IllegalArgumentException(yaml + ": expected a mapping of keys to values");
                }
                Set<String> seen = new LinkedHashSet<>();
                while ((t = p.nextToken()) == JsonToken.FIELD_NAME) {
                    String name = p.currentName();
                    int line = p.currentTokenLocation().getLineNr();
                    if (!seen.add(name)) {
                        throw new IllegalArgumentException(yaml + ":" + line + ": key '" + name + "' appears twice");
                    }
                    p.nextToken();
                    values.put(name, YAML.readTree(p));
                    lines.put(name, line);
                }
            } catch (JsonProcessingException e) {
                JsonLocation at = e.getLocation();
                String msg = e.getOriginalMessage().lines().findFirst().orElse("");
                throw new IllegalArgumentException(
                        yaml + (at != null ? ":" + at.getLineNr() : "") + ": not valid YAML: " + msg);
            } catch (IOException e) {
                throw new IllegalArgumentException(yaml + ": cannot read: " + e.getMessage());
            }
            return new YamlFile(values, lines);
        }

        /**
         * A config is one YAML document: a second one ({@code ---} then more keys) is refused, not ignored;
         * an alias ({@code *name}) is refused, not read as the text of its name; a key given twice at any
         * depth is refused.
         */
        private static void requireOneDocumentWithoutAliases(Path yaml, String text) {
            try (JsonParser p = YAML.getFactory().createParser(text)) {
                p.enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);
                int depth = 0;
                boolean ended = false;
                JsonToken t;
                while ((t = p.nextToken()) != null) {
                    int line = p.currentTokenLocation().getLineNr();
                    if (ended) {
                        throw new IllegalArgumentException(yaml + ":" + line
                                + ": a second YAML document; a config is one document (remove the '---' and merge"
                                + " the keys)");
                    }
                    if (p instanceof YAMLParser y && y.isCurrentAlias()) {
                        throw new IllegalArgumentException(yaml + ":" + line + ": an alias (*" + p.getText()
                                + "); align4j reads no YAML anchors and aliases: write the value");
                    }
                    if (t.isStructStart()) {
                        depth++;
                    } else if (t.isStructEnd()) {
                        depth--;
                    }
                    ended = depth == 0 && t != JsonToken.FIELD_NAME;
                }
            } catch (JsonProcessingException e) {
                JsonLocation at = e.getLocation();
                String msg = e.getOriginalMessage().lines().findFirst().orElse("");
                throw new IllegalArgumentException(
                        yaml + (at != null ? ":" + at.getLineNr() : "") + ": not valid YAML: " + msg);
            } catch (IOException e) {
                throw new IllegalArgumentException(yaml + ": cannot read: " + e.getMessage());
            }
        }
    }
}
