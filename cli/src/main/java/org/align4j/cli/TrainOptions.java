package org.align4j.cli;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.align4j.trainer.TrainConfig;
import picocli.CommandLine.Option;

/**
 * The flags of {@code train} and {@code sft}. Each maps onto a {@link TrainConfig} key; only flags
 * given on the command line override the YAML file.
 */
final class TrainOptions {
    @Option(names = "--config", paramLabel = "FILE.yaml", description = "YAML config (snake_case keys); flags override it")
    Path config;

    @Option(names = "--resume", description = "Continue from the newest checkpoint in --output")
    boolean resume;

    @Option(names = "--threads", description = "libtorch intra-op threads on the CPU (default: libtorch's; 1 is bit-reproducible)")
    Integer threads;

    @Option(names = "--model", paramLabel = "DIR", description = "Starting model (HF folder)") String model;
    @Option(names = "--data", paramLabel = "PATH", description = "Training data (file or folder)") String data;
    @Option(names = "--eval-data", paramLabel = "PATH", description = "Held-out data") String evalData;
    @Option(names = "--eval-fraction", description = "Hold out this share of --data when no --eval-data") Double evalFraction;
    @Option(names = "--output", paramLabel = "DIR", description = "Run folder (checkpoints, metrics.jsonl, train.log, final/)") String output;
    @Option(names = "--loss", description = "dpo, cdpo, robust, hinge, ipo, ipo-sum, ipo-soft, simpo") String loss;
    @Option(names = "--beta", description = "Inverse temperature beta (default 0.1)") Double beta;
    @Option(names = "--label-smoothing", description = "Label noise epsilon for cdpo and robust") Double labelSmoothing;
    @Option(names = "--preference", description = "Default preference probability for ipo-soft") Double preference;
    @Option(names = "--gamma", description = "Target margin gamma for simpo") Double gamma;
    @Option(names = {"--lr", "--learning-rate"}, description = "Peak learning rate") Double learningRate;
    @Option(names = "--weight-decay", description = "Decoupled weight decay") Double weightDecay;
    @Option(names = "--batch-size", description = "Pairs (or SFT examples) per micro-batch") Integer batchSize;
    @Option(names = "--grad-accum", description = "Micro-batches per optimizer step") Integer gradAccum;
    @Option(names = "--max-steps", description = "Optimizer steps (overrides --epochs)") Integer maxSteps;
    @Option(names = "--epochs", description = "Passes over the data") Integer epochs;
    @Option(names = "--warmup-steps", description = "Linear warm-up steps") Integer warmupSteps;
    @Option(names = "--schedule", description = "constant, linear or cosine") String schedule;
    @Option(names = "--max-grad-norm", description = "Global gradient-norm clip (0 = off)") Double maxGradNorm;
    @Option(names = "--save-every", description = "Checkpoint every N steps (0 = at the end)") Integer saveEvery;
    @Option(names = "--keep-last", description = "Checkpoints to keep") Integer keepLast;
    @Option(names = "--eval-every", description = "Evaluate every N steps (0 = at the end)") Integer evalEvery;
    @Option(names = "--log-every", description = "Write metrics every N steps") Integer logEvery;
    @Option(names = "--seed", description = "Seed of the data order") Long seed;
    @Option(names = "--reference", description = "copy (frozen model) or precomputed (cached log-probs)") String reference;
    @Option(names = "--reference-model", paramLabel = "DIR", description = "Reference model (default: --model)") String referenceModel;
    @Option(names = "--reference-dtype", description = "fp32 or fp16 for the frozen copy") String referenceDtype;
    @Option(names = "--cache-dir", paramLabel = "DIR", description = "Cache of precomputed reference log-probs") String cacheDir;
    @Option(names = "--device", description = "cpu or gpu") String device;
    @Option(names = "--no-tf32", description = "Keep fp32 matmuls exact on a GPU") Boolean noTf32;
    @Option(names = "--max-length", description = "Longest prompt + completion in tokens") Integer maxLength;
    @Option(names = "--max-prompt-length", description = "Longest prompt in tokens") Integer maxPromptLength;
    @Option(names = "--truncation", description = "keep_end or keep_start") String truncation;
    @Option(names = "--format", description = "auto, standard, conversational, implicit_prompt") String format;
    @Option(names = "--skip-invalid", description = "Skip bad records") Boolean skipInvalid;
    @Option(names = "--chat-template", description = "Render plain prompts through the chat template") Boolean chatTemplate;
    @Option(names = "--group-by-length", description = "Batch examples of similar length") Boolean groupByLength;
    @Option(names = "--eval-batch-size", description = "Pairs per evaluation forward pass") Integer evalBatchSize;
    @Option(names = "--eval-kl", negatable = true, description = "Log eval_kl, the KL to the reference along held-out chosen answers (default: on)")
    Boolean evalKl;
    @Option(names = "--attention", description = "eager (DJL ops) or sdpa (fused attention kernel; default)") String attention;
    @Option(names = "--precision", description = "fp32 (default) or bf16 (mixed precision inside kernels, fp32 master weights)") String precision;

    TrainConfig resolve(String forcedLoss) {
        Map<String, Object> o = new LinkedHashMap<>();
        put(o, "model", model);
        put(o, "data", data);
        put(o, "eval_data", evalData);
        put(o, "eval_fraction", evalFraction);
        put(o, "output", output);
        put(o, "loss", forcedLoss != null ? forcedLoss : loss);
        put(o, "beta", beta);
        put(o, "label_smoothing", labelSmoothing);
        put(o, "preference", preference);
        put(o, "gamma", gamma);
        put(o, "learning_rate", learningRate);
        put(o, "weight_decay", weightDecay);
        put(o, "batch_size", batchSize);
        put(o, "grad_accum", gradAccum);
        put(o, "max_steps", maxSteps);
        put(o, "epochs", epochs);
        put(o, "warmup_steps", warmupSteps);
        put(o, "schedule", schedule);
        put(o, "max_grad_norm", maxGradNorm);
        put(o, "save_every", saveEvery);
        put(o, "keep_last", keepLast);
        put(o, "eval_every", evalEvery);
        put(o, "log_every", logEvery);
        put(o, "seed", seed);
        put(o, "reference", reference);
        put(o, "reference_model", referenceModel);
        put(o, "reference_dtype", referenceDtype);
        put(o, "cache_dir", cacheDir);
        put(o, "device", device);
        put(o, "tf32", noTf32 == null ? null : !noTf32);
        put(o, "max_length", maxLength);
        put(o, "max_prompt_length", maxPromptLength);
        put(o, "truncation", truncation);
        put(o, "format", format);
        put(o, "skip_invalid", skipInvalid);
        put(o, "chat_template", chatTemplate);
        put(o, "group_by_length", groupByLength);
        put(o, "eval_batch_size", evalBatchSize);
        put(o, "eval_kl", evalKl);
        put(o, "attention", attention);
        put(o, "precision", precision);
        return TrainConfig.resolve(config, o);
    }

    private static void put(Map<String, Object> o, String key, Object value) {
        if (value != null) {
            o.put(key, value);
        }
    }
}
