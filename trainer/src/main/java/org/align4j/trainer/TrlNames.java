package org.align4j.trainer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.TextNode;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.UnaryOperator;

/**
 * TRL 1.13's and transformers' names ({@code DPOConfig}, {@code SFTConfig}, {@code TrainingArguments},
 * TRL's {@code ModelConfig}) for align4j's options, so a TRL user's YAML and flags work: an alias with
 * the same meaning maps onto align4j's key (translating the value where TRL spells it differently), a
 * name whose only values mean what align4j does anyway is accepted without effect, and a name with no
 * align4j meaning is refused with the reason. Sources: {@code trl/trainer/dpo_config.py},
 * {@code sft_config.py}, {@code base_config.py} of TRL 1.13 and transformers' {@code training_args.py}.
 */
public final class TrlNames {
    /**
     * A TRL name for an align4j key.
     *
     * @param trlName TRL's name
     * @param key align4j's key
     * @param translate TRL's value → align4j's (throws IllegalArgumentException for a value align4j cannot honour)
     */
    public record Alias(String trlName, String key, UnaryOperator<JsonNode> translate) {
        JsonNode translate(JsonNode v) {
            return translate.apply(v);
        }
    }

    private static final Map<String, Alias> ALIASES = new LinkedHashMap<>();
    private static final Map<String, Set<String>> ACCEPTED = new LinkedHashMap<>();
    private static final Map<String, String> REFUSED = new LinkedHashMap<>();
    /** Options of TRL's other trainers (KTOConfig, CPOConfig) → the align4j command that reads them. */
    private static final Map<String, String> OTHER_TRAINER = new LinkedHashMap<>();

    static {
        same("per_device_train_batch_size", "batch_size");
        same("per_device_eval_batch_size", "eval_batch_size");
        same("gradient_accumulation_steps", "grad_accum");
        same("output_dir", "output");
        same("num_train_epochs", "epochs");
        same("save_total_limit", "keep_last");
        same("model_name_or_path", "model");
        same("max_seq_length", "max_length");
        same("simpo_gamma", "gamma");
        ALIASES.put("logging_steps", new Alias("logging_steps", "log_every", TrlNames::wholeSteps));
        ALIASES.put("save_steps", new Alias("save_steps", "save_every", TrlNames::wholeSteps));
        ALIASES.put("eval_steps", new Alias("eval_steps", "eval_every", TrlNames::wholeSteps));
        // a list is a mix of objectives (TrainConfig reads it into loss_terms)
        same("loss_type", "loss");
        ALIASES.put("lr_scheduler_type", new Alias("lr_scheduler_type", "schedule", v -> {
            String s = v.asText().toLowerCase(Locale.ROOT);
            return switch (s) {
                case "linear", "cosine", "constant" -> v;
                case "constant_with_warmup" -> TextNode.valueOf("constant");
                default ->
                    throw new IllegalArgumentException("'" + v.asText()
                            + "' is not implemented; linear, cosine, constant or constant_with_warmup");
            };
        }));
        ALIASES.put(
                "precompute_ref_log_probs",
                new Alias(
                        "precompute_ref_log_probs",
                        "reference",
                        v -> TextNode.valueOf(bool(v) ? "precomputed" : "copy")));
        ALIASES.put("bf16", new Alias("bf16", "precision", v -> TextNode.valueOf(bool(v) ? "bf16" : "fp32")));

        ACCEPTED.put("optim", Set.of("adamw_torch", "adamw_torch_fused", "adamw_hf"));
        ACCEPTED.put("report_to", Set.of("none", "[]"));
        ACCEPTED.put("logging_strategy", Set.of("steps"));
        ACCEPTED.put("save_strategy", Set.of("steps"));
        ACCEPTED.put("eval_strategy", Set.of("steps"));
        ACCEPTED.put("do_train", Set.of("true"));
        ACCEPTED.put("completion_only_loss", Set.of("true"));
        ACCEPTED.put("fp16", Set.of("false"));

        refuse(
                "truncation_mode",
                "TRL cuts prompt + completion from one end; align4j cuts the prompt to max_prompt_length (keeping "
                        + "the end given by 'truncation') and the completions to max_length");
        refuse("pad_to_multiple_of", "not implemented");
        refuse(
                "rpo_alpha",
                "RPO's NLL term is the sft term of a mix: loss_type [sigmoid, sft] with loss_weights [1, alpha]");
        for (String k : List.of("sync_ref_model", "ref_model_mixup_alpha", "ref_model_sync_steps")) {
            refuse(k, "TR-DPO's reference updates are not implemented");
        }
        refuse("reference_free", "use loss simpo for a reference-free objective");
        refuse("precompute_ref_batch_size", "precomputing uses eval_batch_size");
        refuse("activation_offloading", "not implemented");
        refuse("gradient_checkpointing", "not implemented: align4j keeps activations");
        refuse("use_liger_kernel", "align4j has its own fused kernels (attention: sdpa)");
        refuse("torch_compile", "align4j's kernels are TorchScript, compiled at start");
        refuse("model_init_kwargs", "align4j loads HF folders as they are");
        refuse("trust_remote_code", "align4j runs no model code from the Hub");
        refuse("router_aux_loss_coef", "mixture-of-experts models are not supported");
        refuse("dataset_num_proc", "align4j encodes in one pass");
        refuse("dataset_text_field", "align4j reads prompt/completion or preference records");
        refuse("packing", "not implemented for SFT");
        refuse("assistant_only_loss", "align4j trains on the completion's tokens");
        refuse("chat_template_path", "the chat template is the model folder's tokenizer_config.json");
        refuse("eos_token", "set it in the model folder's tokenizer_config.json");
        refuse("pad_token", "set it in the model folder's tokenizer_config.json");
        refuse("max_completion_length", "use max_length (prompt + completion) and max_prompt_length");
        refuse("lr_scheduler_kwargs", "not implemented");
        refuse("resume_from_checkpoint", "use --resume");
        refuse("overwrite_output_dir", "use --overwrite");
        refuse("push_to_hub", "after the run, `align4j push --model OUTPUT/final --repo owner/name` uploads it");
        for (String k : List.of("deepspeed", "fsdp", "local_rank", "ddp_backend")) {
            refuse(k, "distributed training is not implemented");
        }
        // lora_r, lora_alpha and lora_dropout are align4j's names too
        refuse("use_peft", "align4j trains LoRA adapters when lora_r > 0: give lora_r (16 with TRL's use_peft)");
        for (String k : KtoConfig.ownedKeys()) {
            if (!k.equals("loss_type")) {
                OTHER_TRAINER.put(k, "KTOConfig's: the align4j kto command reads it");
            }
        }
        for (String k : CpoConfig.ownedKeys()) {
            if (!k.equals("loss_type")) {
                OTHER_TRAINER.put(k, "CPOConfig's: the align4j cpo command reads it");
            }
        }
        ALIASES.put("lora_target_modules", new Alias("lora_target_modules", "lora_target", v -> {
            if (!v.isArray()) {
                return v;
            }
            List<String> names = new ArrayList<>();
            v.forEach(n -> names.add(n.asText()));
            return TextNode.valueOf(String.join(",", names));
        }));
    }

    private TrlNames() {}

    private static void same(String trl, String key) {
        ALIASES.put(trl, new Alias(trl, key, v -> v));
    }

    private static void refuse(String trl, String reason) {
        REFUSED.put(trl, reason);
    }

    private static boolean bool(JsonNode v) {
        if (v.isBoolean()) {
            return v.booleanValue();
        }
        return switch (v.asText().toLowerCase(Locale.ROOT)) {
            case "true", "1", "yes" -> true;
            case "false", "0", "no" -> false;
            default -> throw new IllegalArgumentException("expected true or false, got '" + v.asText() + "'");
        };
    }

    /** HF's logging/save/eval steps may be a share of all steps (&lt; 1); align4j takes whole steps. */
    private static JsonNode wholeSteps(JsonNode v) {
        if (v.isNumber() && v.doubleValue() > 0 && v.doubleValue() < 1) {
            throw new IllegalArgumentException(
                    v.asText() + " as a share of all steps is not supported; give whole steps");
        }
        return v;
    }

    /**
     * @param name a TRL name
     * @return the align4j key it maps onto, if any
     */
    public static Optional<Alias> alias(String name) {
        return Optional.ofNullable(ALIASES.get(name));
    }

    /**
     * Why a TRL name (with this value) cannot be honoured; empty when it can.
     *
     * @param name a key that is not align4j's
     * @param value its value
     * @return the reason to refuse it, if any
     */
    static Optional<String> refusal(String name, JsonNode value) {
        if (OTHER_TRAINER.containsKey(name)) {
            return Optional.of("TRL's '" + name + "' is " + OTHER_TRAINER.get(name) + ", not this command");
        }
        if (REFUSED.containsKey(name)) {
            return Optional.of("TRL's '" + name + "' has no align4j meaning: " + REFUSED.get(name));
        }
        Set<String> ok = ACCEPTED.get(name);
        if (ok != null) {
            String v = value == null || value.isNull()
                    ? "none"
                    : value.isArray() && value.isEmpty() ? "[]" : value.asText().toLowerCase(Locale.ROOT);
            return ok.contains(v)
                    ? Optional.empty()
                    : Optional.of(
                            "TRL's '" + name + "': only " + ok + " (what align4j does) is accepted, got '" + v + "'");
        }
        return Optional.empty();
    }

    /**
     * @param name a key that is not align4j's
     * @return whether it is a TRL name accepted without effect
     */
    static boolean acceptedWithoutEffect(String name) {
        return ACCEPTED.containsKey(name);
    }

    /** @return every TRL name this class knows: aliases, names accepted without effect, refused names */
    public static List<String> names() {
        List<String> all = new ArrayList<>(ALIASES.keySet());
        all.addAll(ACCEPTED.keySet());
        all.addAll(REFUSED.keySet());
        all.addAll(OTHER_TRAINER.keySet());
        return all;
    }

    /** @return the aliases, in the order the README lists them */
    public static List<Alias> aliases() {
        return List.copyOf(ALIASES.values());
    }

    /** @return TRL names accepted without effect → the values accepted */
    public static Map<String, Set<String>> acceptedWithoutEffectValues() {
        return Map.copyOf(ACCEPTED);
    }

    /** @return refused TRL names → why */
    public static Map<String, String> refused() {
        return Map.copyOf(REFUSED);
    }
}
