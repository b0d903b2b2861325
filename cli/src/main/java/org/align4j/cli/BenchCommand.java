package org.align4j.cli;

import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import org.align4j.cli.bench.GenerateBench;
import org.align4j.cli.bench.StepBench;
import org.align4j.model.Devices;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** The training-step benchmark. */
@Command(
        name = "bench",
        mixinStandardHelpOptions = true,
        header = "Time training steps: tokens/s, step time, peak memory, MFU.",
        description = {
            "Times DPO/IPO training steps on synthetic ids: tokens/s, step time (median, p90), peak memory, and",
            "model-FLOPs utilisation against a matmul ceiling measured in the same run through the same engine.",
            "Warm-up steps are not counted."
        })
final class BenchCommand implements Callable<Integer> {
    @Option(names = "--model", paramLabel = "DIR", description = "A model folder (or use --preset)")
    Path model;

    @Option(
            names = "--preset",
            defaultValue = "tiny-10m",
            description = "tiny-10m, gpt2-124m or qwen2-0.5b (default: ${DEFAULT-VALUE})")
    String preset;

    @Option(
            names = "--batch-pairs",
            defaultValue = "8",
            description = "Preference pairs per step (default: ${DEFAULT-VALUE})")
    int pairs;

    @Option(names = "--seq-len", defaultValue = "512", description = "Tokens per sequence (default: ${DEFAULT-VALUE})")
    int seqLen;

    @Option(
            names = "--device",
            defaultValue = "cpu",
            paramLabel = "cpu|gpu",
            description = "Where to run (default: ${DEFAULT-VALUE})")
    String device;

    @Option(names = "--steps", defaultValue = "10", description = "Timed steps (default: ${DEFAULT-VALUE})")
    int steps;

    @Option(names = "--warmup", defaultValue = "2", description = "Untimed steps first (default: ${DEFAULT-VALUE})")
    int warmup;

    @Option(
            names = "--precision",
            defaultValue = "fp32",
            paramLabel = "fp32|tf32|bf16",
            description =
                    "fp32; tf32 (fp32 with TF32 tensor-core matmuls on a GPU: the launcher's default there); bf16 (default: ${DEFAULT-VALUE})")
    String precision;

    @Option(
            names = "--attention",
            defaultValue = "sdpa",
            paramLabel = "eager|sdpa",
            description = "Attention implementation (default: ${DEFAULT-VALUE})")
    String attention;

    @Option(
            names = "--reference",
            defaultValue = "copy",
            paramLabel = "copy|precomputed",
            description =
                    "A frozen copy's forward pass each step, or precomputed log-probs (default: ${DEFAULT-VALUE})")
    String reference;

    @Option(names = "--loss", defaultValue = "dpo", description = "Objective (default: ${DEFAULT-VALUE})")
    String loss;

    @Option(
            names = "--memory-every",
            defaultValue = "0",
            description = "Record the resident set size every N steps and report first/last/max (0 = off)")
    int memoryEvery;

    @Option(
            names = {"--lora-r", "--lora"},
            paramLabel = "R",
            defaultValue = "0",
            description =
                    "Train LoRA adapters of rank R on every linear map (alpha 2R) instead of every weight; the reference is then the "
                            + "same model with adapters off (0 = full fine-tuning, the default)")
    int lora;

    @Option(
            names = "--logits-chunk-mib",
            paramLabel = "MIB",
            defaultValue = "64",
            description =
                    "Log-probs make at most this many MiB of float32 logits at once (0 = all positions at once; default: ${DEFAULT-VALUE})")
    long logitsChunkMib;

    @Option(
            names = "--data",
            paramLabel = "PATH",
            description =
                    "Real preference data (any format training reads): each step takes the next batch of an epoch's order, packed "
                            + "as the trainer packs it by default (or padded with --no-padding-free); tokens/s counts real tokens only, and the padding share is reported")
    Path data;

    @Option(
            names = "--tokenizer",
            paramLabel = "DIR",
            description = "With --data and --preset: the tokenizer folder (the preset takes its vocabulary)")
    Path tokenizer;

    @Option(
            names = "--padding-free",
            negatable = true,
            defaultValue = "true",
            fallbackValue = "true",
            description =
                    "With --data: pack each batch's sequences into one row without padding, as training does by default"
                            + " (TRL's padding_free; default: ${DEFAULT-VALUE}; --no-padding-free pads)")
    boolean paddingFree;

    @Option(
            names = "--group-by-length",
            negatable = true,
            defaultValue = "false",
            fallbackValue = "true",
            description =
                    "With --data: batch pairs of similar length, as the trainer's group_by_length (default: ${DEFAULT-VALUE})")
    boolean groupByLength;

    @Option(
            names = "--max-length",
            defaultValue = "0",
            description = "With --data: longest prompt + completion in tokens (0 = no limit)")
    int maxLength;

    @Option(
            names = "--shuffle",
            negatable = true,
            defaultValue = "true",
            fallbackValue = "true",
            description =
                    "With --data: shuffle the batch order as training does (--no-shuffle: the file's order, to time "
                            + "the same batches as another framework with a sequential sampler; default: true)")
    boolean shuffle;

    @Option(
            names = "--seed",
            defaultValue = "42",
            description = "With --data: the seed of the batch order (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(
            names = "--generate",
            description = "Time the sampler instead of a training step: --batch-pairs rows of --seq-len random prompt "
                    + "tokens each, --new-tokens sampled per row (temperature 1, KV cache), with --model")
    boolean generate;

    @Option(
            names = "--new-tokens",
            defaultValue = "64",
            description = "With --generate: tokens sampled per row (default: ${DEFAULT-VALUE})")
    int newTokens;

    @Option(
            names = "--profile",
            paramLabel = "STEPS",
            defaultValue = "0",
            description = "After the timed steps, profile this many more (libtorch's autograd profiler, CPU only) and "
                    + "print where a step's time goes: data, reference forward, policy forward and backward, "
                    + "optimizer, split into embedding, attention, MLP, norms, LM head matmul, log-softmax, other "
                    + "operators and host time (default: 0, no profile)")
    int profile;

    @Option(names = "--threads", description = "CPU threads for libtorch (default: all cores)")
    Integer threads;

    @Option(
            names = "--json",
            description =
                    "Print one JSON object: tokens_per_s, step_ms_median, peak_bytes, mfu, matmul_ceiling_flops, ...")
    boolean json;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    private Integer generate() throws Exception {
        if (model == null) {
            throw new IllegalArgumentException("--generate: give --model (a model folder)");
        }
        Flags.refuseUnless(
                spec,
                false,
                "with --generate",
                "--data",
                "--tokenizer",
                "--reference",
                "--loss",
                "--lora-r",
                "--precision",
                "--memory-every",
                "--padding-free",
                "--group-by-length",
                "--max-length",
                "--profile");
        Threads.apply(threads, null);
        Map<String, Object> v =
                GenerateBench.run(model, Devices.resolve(device), pairs, seqLen, newTokens, steps, warmup, seed);
        var w = spec.commandLine().getOut();
        if (json) {
            w.println(Json.write(v));
        } else {
            w.println(String.format(
                    Locale.ROOT,
                    "%s on %s, %d rows x %d prompt tokens, %d new tokens each (temperature 1, KV cache):%n"
                            + "  %.1f new tokens/s (median of %d runs: %.0f ms; min %.0f, max %.0f), peak RSS %.2f GiB",
                    model,
                    v.get("device"),
                    pairs,
                    seqLen,
                    newTokens,
                    (double) v.get("new_tokens_per_s"),
                    steps,
                    (double) v.get("run_ms_median"),
                    (double) v.get("run_ms_min"),
                    (double) v.get("run_ms_max"),
                    (long) v.get("peak_rss_bytes") / (double) (1L << 30)));
        }
        w.flush();
        return 0;
    }

    @Override
    public Integer call() throws Exception {
        Flags.refuseUnless(spec, generate, "without --generate", "--new-tokens");
        if (generate) {
            return generate();
        }
        Flags.refuseUnless(spec, model == null, "with --model, which gives the shape", "--preset");
        Flags.refuseUnless(
                spec,
                data != null,
                "without --data",
                "--tokenizer",
                "--padding-free",
                "--group-by-length",
                "--max-length",
                "--seed",
                "--shuffle");
        Flags.refuseUnless(spec, data == null, "with --data, whose rows give the lengths", "--seq-len");
        if (profile > 0 && device.startsWith("gpu")) {
            throw new IllegalArgumentException(
                    "--profile: CPU only (a GPU's kernels run asynchronously; phases would need CUDA events)");
        }
        Threads.apply(threads, null);
        if ("tf32".equals(precision)
                && "gpu".equals(device)
                && !"1".equals(System.getenv("TORCH_ALLOW_TF32_CUBLAS_OVERRIDE"))) {
            throw new IllegalArgumentException(
                    "--precision tf32: needs TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1 in the environment (the ./align4j launcher sets it on GPU runs)");
        }
        StepBench.Result r = StepBench.run(
                new StepBench.Settings(
                        model,
                        model != null ? null : preset,
                        pairs,
                        seqLen,
                        Devices.resolve(device),
                        steps,
                        warmup,
                        precision,
                        attention,
                        reference,
                        loss,
                        memoryEvery,
                        lora,
                        logitsChunkMib * (1L << 20) / 4),
                data == null
                        ? null
                        : new StepBench.Data(data, tokenizer, groupByLength, paddingFree, maxLength, seed, shuffle),
                profile);
        var w = spec.commandLine().getOut();
        if (json) {
            w.println(Json.write(r.values()));
        } else if (data != null) {
            var v = r.values();
            w.println(v.get("model") + " on " + v.get("device") + ", " + data + ", " + pairs + " pairs a step, "
                    + precision + ", " + attention
                    + ", reference " + v.get("reference") + (paddingFree ? ", padding-free" : ", padded")
                    + (groupByLength ? ", grouped by length" : "")
                    + ":");
            w.println("  " + StepBench.describe(v) + " (real tokens only)");
            w.println(String.format(
                    Locale.ROOT,
                    "  padding: %.1f%% of the positions computed (a padded layout of these batches: %.1f%%; "
                            + "of a whole epoch: %.1f%%)",
                    100 * (double) v.get("padding_share"),
                    100 * (double) v.get("padded_layout_share"),
                    100 * (double) v.get("epoch_padded_layout_share")));
        } else {
            w.println(r.values().get("model") + " on " + r.values().get("device") + ", " + pairs + " pairs x " + seqLen
                    + " tokens, " + precision + ", " + attention + ", reference "
                    + r.values().get("reference") + (lora > 0 ? ", LoRA r=" + lora : "") + ":");
            w.println("  " + StepBench.describe(r.values()));
        }
        if (!json && !r.profile().isEmpty()) {
            w.println(String.format(
                    Locale.ROOT,
                    "Profile of %d more step(s) (autograd profiler; operators' own times by part, host = wall time outside"
                            + " operators; profiled steps run slower than timed ones):",
                    profile));
            r.profile().forEach(w::println);
        }
        w.flush();
        return 0;
    }
}
