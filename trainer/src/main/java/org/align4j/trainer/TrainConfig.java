package org.align4j.trainer;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.align4j.losses.Objectives;

/**
 * Everything a training run is told, as one immutable record. A YAML file (snake_case keys, e.g.
 * {@code learning_rate: 5.0e-7}) and CLI flags map onto the same fields; flags override the file,
 * the file overrides the defaults. The resolved record is saved as {@code config.yaml} next to every
 * checkpoint.
 *
 * @param model the starting model folder (HF)
 * @param data training data (file or folder)
 * @param evalData held-out data, or null
 * @param evalFraction share of {@code data} held out when {@code evalData} is null (0 = none)
 * @param output the run folder
 * @param loss objective: dpo, cdpo, robust, hinge, ipo, ipo-sum, ipo-soft, simpo (sft for SFT runs)
 * @param beta β
 * @param labelSmoothing ε for cdpo/robust
 * @param preference default p for ipo-soft
 * @param gamma γ for simpo
 * @param learningRate peak learning rate
 * @param weightDecay decoupled weight decay (not applied to biases and norm weights)
 * @param adamBeta1 AdamW β₁
 * @param adamBeta2 AdamW β₂
 * @param adamEpsilon AdamW ε
 * @param batchSize pairs (or SFT examples) per micro-batch
 * @param gradAccum micro-batches per optimizer step
 * @param maxSteps optimizer steps (0 = use epochs)
 * @param epochs passes over the data when maxSteps is 0
 * @param warmupSteps linear warm-up steps
 * @param schedule constant, linear or cosine
 * @param maxGradNorm global gradient-norm clip (0 = off)
 * @param saveEvery checkpoint every N steps (0 = only at the end)
 * @param keepLast checkpoints to keep
 * @param evalEvery evaluate every N steps (0 = only at the end)
 * @param logEvery write metrics every N steps
 * @param seed data order and initialisation seed
 * @param reference copy (a frozen model) or precomputed (cached log-probs)
 * @param referenceModel the reference folder (default: {@code model})
 * @param referenceDtype fp32 or fp16 for the frozen copy
 * @param cacheDir where precomputed reference log-probs are cached (default: OUTPUT/cache)
 * @param device cpu or gpu
 * @param tf32 allow TF32 matmuls on a GPU
 * @param maxLength longest prompt + completion (0 = no limit)
 * @param maxPromptLength longest prompt (0 = no limit)
 * @param truncation keep_end or keep_start
 * @param format auto, standard, conversational or implicit_prompt
 * @param skipInvalid skip bad records instead of stopping
 * @param chatTemplate render plain prompts through the chat template
 * @param groupByLength batch pairs of similar length
 * @param evalBatchSize pairs per evaluation forward pass
 * @param evalKl add {@code eval_kl} to evaluation: the exact per-token KL(π ‖ π_ref) summed along the
 *     held-out chosen answers; with {@code reference: precomputed} this loads the reference model for
 *     evaluation only
 * @param attention eager (DJL ops) or sdpa (libtorch's fused scaled-dot-product attention through a
 *     TorchScript kernel), as HF's attn_implementation
 * @param precision fp32, or bf16: projections and attention computed in bfloat16 inside kernels with
 *     fp32 master weights (mixed precision, like autocast)
 * @param chatTemplateKwargs chat-template variables for every conversation of the run (e.g. {@code
 *     enable_thinking: false}); a record's own {@code tools} and {@code chat_template_kwargs} win
 */
@JsonInclude(JsonInclude.Include.ALWAYS)
public record TrainConfig(
        String model,
        String data,
        String evalData,
        double evalFraction,
        String output,
        String loss,
        double beta,
        double labelSmoothing,
        double preference,
        double gamma,
        double learningRate,
        double weightDecay,
        double adamBeta1,
        double adamBeta2,
        double adamEpsilon,
        int batchSize,
        int gradAccum,
        int maxSteps,
        int epochs,
        int warmupSteps,
        String schedule,
        double maxGradNorm,
        int saveEvery,
        int keepLast,
        int evalEvery,
        int logEvery,
        long seed,
        String reference,
        String referenceModel,
        String referenceDtype,
        String cacheDir,
        String device,
        boolean tf32,
        int maxLength,
        int maxPromptLength,
        String truncation,
        String format,
        boolean skipInvalid,
        boolean chatTemplate,
        boolean groupByLength,
        int evalBatchSize,
        boolean evalKl,
        String attention,
        String precision,
        java.util.Map<String, Object> chatTemplateKwargs) {

    static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory())
            .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, true)
            .configure(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES, true);

    /** @return TRL-like defaults (DPO, β 0.1, lr 5e-7 is TRL's; align4j uses 1e-6 for small models) */
    public static TrainConfig defaults() {
        return new TrainConfig(null, null, null, 0.0, "runs/align4j", "dpo", 0.1, 0.0, 1.0, 0.5, 1e-6, 0.0, 0.9, 0.999, 1e-8,
                4, 1, 0, 1, 0, "linear", 1.0, 0, 2, 0, 1, 42, "copy", null, "fp32", null, "cpu", true, 0, 0, "keep_end",
                "auto", false, false, false, 8, true, "sdpa", "fp32", java.util.Map.of());
    }

    /**
     * Resolves a config: defaults, then the YAML file (if any), then the given overrides (CLI flags
     * that were set), then checks every value.
     *
     * @param yaml a YAML file, or null
     * @param overrides snake_case key → value
     * @return the resolved config
     * @throws IllegalArgumentException naming the file and key, or the flag, at fault
     */
    public static TrainConfig resolve(Path yaml, Map<String, Object> overrides) {
        ObjectNode node = YAML.valueToTree(defaults());
        if (yaml != null) {
            JsonNode file;
            try {
                file = YAML.readTree(Files.readString(yaml));
            } catch (NoSuchFileException e) {
                throw new IllegalArgumentException(yaml + ": file not found");
            } catch (IOException e) {
                throw new IllegalArgumentException(yaml + ": not valid YAML: " + e.getMessage().lines().findFirst().orElse(""));
            }
            if (file != null && !file.isNull()) {
                if (!file.isObject()) {
                    throw new IllegalArgumentException(yaml + ": expected a mapping of keys to values");
                }
                overlay(node, (ObjectNode) file, yaml + ": key '");
            }
        }
        overlay(node, YAML.valueToTree(overrides), "flag for key '");
        TrainConfig c;
        try {
            c = YAML.treeToValue(node, TrainConfig.class);
        } catch (IOException e) {
            String where = yaml != null ? yaml.toString() : "config";
            throw new IllegalArgumentException(where + ": " + e.getMessage().lines().findFirst().orElse(""));
        }
        c.validate();
        return c;
    }

    private static void overlay(ObjectNode base, ObjectNode over, String where) {
        for (Iterator<Map.Entry<String, JsonNode>> it = over.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (!base.has(e.getKey())) {
                List<String> known = new ArrayList<>();
                base.fieldNames().forEachRemaining(known::add);
                throw new IllegalArgumentException(where + e.getKey() + "': unknown; known keys: " + String.join(", ", known));
            }
            base.set(e.getKey(), e.getValue());
        }
    }

    /** Checks every value and names the key at fault. */
    public void validate() {
        require(model != null, "model", "missing: the starting model folder");
        require(data != null, "data", "missing: the training data");
        require(output != null, "output", "missing: the run folder");
        require(loss.equals("sft") || Objectives.NAMES.contains(loss), "loss", "unknown objective '" + loss + "'; choose one of " + Objectives.NAMES);
        require(beta > 0, "beta", "must be > 0, got " + beta);
        require(learningRate > 0, "learning_rate", "must be > 0, got " + learningRate);
        require(weightDecay >= 0, "weight_decay", "must be >= 0, got " + weightDecay);
        require(batchSize > 0, "batch_size", "must be > 0, got " + batchSize);
        require(gradAccum > 0, "grad_accum", "must be > 0, got " + gradAccum);
        require(maxSteps >= 0, "max_steps", "must be >= 0, got " + maxSteps);
        require(maxSteps > 0 || epochs > 0, "epochs", "give max_steps or a positive epochs");
        require(warmupSteps >= 0, "warmup_steps", "must be >= 0, got " + warmupSteps);
        require(List.of("constant", "linear", "cosine").contains(schedule), "schedule", "constant, linear or cosine, got '" + schedule + "'");
        require(maxGradNorm >= 0, "max_grad_norm", "must be >= 0, got " + maxGradNorm);
        require(saveEvery >= 0, "save_every", "must be >= 0, got " + saveEvery);
        require(keepLast >= 1, "keep_last", "must be >= 1, got " + keepLast);
        require(evalEvery >= 0, "eval_every", "must be >= 0, got " + evalEvery);
        require(logEvery >= 1, "log_every", "must be >= 1, got " + logEvery);
        require(List.of("copy", "precomputed").contains(reference), "reference", "copy or precomputed, got '" + reference + "'");
        require(List.of("fp32", "fp16").contains(referenceDtype), "reference_dtype", "fp32 or fp16, got '" + referenceDtype + "'");
        require(evalFraction >= 0 && evalFraction < 1, "eval_fraction", "must lie in [0, 1), got " + evalFraction);
        require(evalBatchSize > 0, "eval_batch_size", "must be > 0, got " + evalBatchSize);
        require(List.of("keep_end", "keep_start").contains(truncation), "truncation", "keep_end or keep_start, got '" + truncation + "'");
        require(adamBeta1 >= 0 && adamBeta1 < 1, "adam_beta1", "must lie in [0, 1)");
        require(List.of("eager", "sdpa").contains(attention), "attention", "eager or sdpa, got '" + attention + "'");
        require(List.of("fp32", "bf16").contains(precision), "precision", "fp32 or bf16, got '" + precision + "'");
        require(adamBeta2 >= 0 && adamBeta2 < 1, "adam_beta2", "must lie in [0, 1)");
    }

    private static void require(boolean ok, String key, String message) {
        if (!ok) {
            throw new IllegalArgumentException("key '" + key + "': " + message);
        }
    }

    /**
     * @return the config as YAML (what {@code config.yaml} in a checkpoint holds)
     */
    public String toYaml() {
        try {
            return YAML.writeValueAsString(this);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Loads a model for this run with the configured attention and precision.
     *
     * @param dir the model folder
     * @param device where it runs
     * @param dtype the weights' type (FLOAT32, or FLOAT16 for a frozen reference)
     * @return the model
     */
    public org.align4j.model.CausalLm loadModel(Path dir, ai.djl.Device device, ai.djl.ndarray.types.DataType dtype) {
        org.align4j.model.CausalLm lm = org.align4j.model.CausalLm.load(dir, device, dtype);
        try {
            lm.setCompute(org.align4j.model.nn.Compute.parse(attention, precision, device));
        } catch (RuntimeException e) {
            lm.close();
            throw e;
        }
        return lm;
    }

    /** @return the reference folder: {@code referenceModel}, or {@code model} */
    public String referenceModelOrModel() {
        return referenceModel != null ? referenceModel : model;
    }
}
