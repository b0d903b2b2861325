package org.align4j.trainer.rl;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.nn.Activation;
import ai.djl.nn.Parameter;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLGenerator;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.function.Supplier;
import org.align4j.data.EncodedPair;
import org.align4j.data.PreferenceBatch;
import org.align4j.data.PreferenceEncoder;
import org.align4j.data.PromptData;
import org.align4j.data.PromptData.PromptExample;
import org.align4j.data.TokenBudget;
import org.align4j.evaluation.report.RunReport;
import org.align4j.evaluation.rewards.RewardFunction;
import org.align4j.evaluation.rewards.RewardModelFunction;
import org.align4j.evaluation.rewards.Rewards;
import org.align4j.losses.LossType;
import org.align4j.losses.PreferenceLoss;
import org.align4j.losses.rl.Advantages;
import org.align4j.losses.rl.GrpoLoss;
import org.align4j.losses.rl.Ppo;
import org.align4j.losses.rl.PpoLoss;
import org.align4j.losses.rl.RlooLoss;
import org.align4j.model.CausalLm;
import org.align4j.model.Devices;
import org.align4j.model.ScalarOps;
import org.align4j.model.TokenLogProbs;
import org.align4j.model.config.ModelConfig;
import org.align4j.model.generate.GenerationConfig;
import org.align4j.model.generate.Generator;
import org.align4j.model.generate.RowStream;
import org.align4j.model.io.ModelFolder;
import org.align4j.model.lora.PeftAdapter;
import org.align4j.model.tokenizer.TextTokenizer;
import org.align4j.trainer.RunFolder;
import org.align4j.trainer.TrainConfig;
import org.align4j.trainer.TrainingLoop;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Online RL, RLHF's second stage: sample completions from the policy, score them with rewards (functions
 * or reward models), and optimise reward − β·KL(π‖π_ref) with GRPO or RLOO, with TRL 1.13's semantics and
 * metric names ({@code GRPOTrainer}, {@code RLOOTrainer}).
 *
 * <p>A step: when the step opens a generation (every {@code num_iterations} steps), the next {@code
 * batch_size × grad_accum / num_generations} prompts are each sampled {@code num_generations} times (row
 * streams of (seed, generation, prompt, sample): the same completions whatever the batch and after a
 * resume), rewarded, turned into advantages, and scored by the old policy (when the samples will be
 * reused) and the reference (when β &gt; 0); then the step's {@code grad_accum} micro-batches of {@code
 * batch_size} completions each run the policy loss ({@link GrpoLoss} or {@link RlooLoss}) and its backward
 * pass. Everything else (accumulation, clipping, AdamW, checkpoints, exact resume, signals) is the shared
 * loop's.
 *
 * <p>Log-probs are scored at the sampling temperature (logits ÷ τ), as TRL's. Unlike TRL with its default
 * {@code disable_dropout: false}, old-policy and reference log-probs are scored without dropout (TRL scores
 * them in training mode, so they carry dropout noise).
 */
public final class OnlineRlTrainer extends TrainingLoop implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(OnlineRlTrainer.class);
    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory()
            .disable(YAMLGenerator.Feature.WRITE_DOC_START_MARKER)
            .enable(YAMLGenerator.Feature.MINIMIZE_QUOTES));

    /** Draws the completions of a generation: the policy's own sampler, or a replay in tests. */
    @FunctionalInterface
    public interface Sampler {
        /**
         * One row to sample: a prompt and the stream its tokens are drawn from.
         *
         * @param promptIds the prompt's ids
         * @param key the row's {@link RowStream} key
         * @param prompt the record
         * @param sample which of the prompt's samples this is (0 .. G − 1)
         */
        record Row(int[] promptIds, long key, PromptExample prompt, int sample) {}

        /**
         * @param rows the rows of a generation
         * @param cfg decoding settings
         * @return the new tokens per row
         */
        List<int[]> sample(List<Row> rows, GenerationConfig cfg);
    }

    private final RlConfig rl;
    private final TextTokenizer tokenizer;
    private final PreferenceEncoder encoder;
    private final List<PromptExample> train;
    private final List<PromptExample> eval;
    private final List<int[]> trainIds;
    private final List<int[]> evalIds;
    private final Rewards rewards;
    private final CausalLm reference;
    private final boolean ownsReference;
    private final Set<Integer> eosIds;
    private Sampler sampler;
    private Rollout rollout;
    private boolean warnedEqualRewards;
    private int flatGenerations;
    private long tokensSeen;
    private final GrpoLoss grpoLoss;
    private final RlooLoss rlooLoss;
    /** PPO's critic (null otherwise), trained by the same optimizer as the policy. */
    private final CausalLm valueModel;

    private final PpoLoss ppoLoss;
    private final Path tokenizerDir;

    private OnlineRlTrainer(
            TrainConfig config,
            RlConfig rl,
            RunFolder folder,
            CausalLm policy,
            CausalLm reference,
            boolean ownsReference,
            TextTokenizer tokenizer,
            PreferenceEncoder encoder,
            List<PromptExample> train,
            List<PromptExample> eval,
            List<int[]> trainIds,
            List<int[]> evalIds,
            Rewards rewards,
            CausalLm valueModel) {
        super(config, policy, ModelFolder.resolve(Path.of(config.model())), folder);
        this.tokenizerDir = ModelFolder.resolve(Path.of(config.model()));
        this.valueModel = valueModel;
        this.ppoLoss = rl.ppo() == null
                ? null
                : new PpoLoss(
                        rl.ppo().cliprange(),
                        rl.ppo().cliprangeValue(),
                        rl.ppo().vfCoef());
        this.rl = rl;
        this.tokenizer = tokenizer;
        this.encoder = encoder;
        this.train = train;
        this.eval = eval;
        this.trainIds = trainIds;
        this.evalIds = evalIds;
        this.rewards = rewards;
        this.reference = reference;
        this.ownsReference = ownsReference;
        this.eosIds = new LinkedHashSet<>(tokenizer.eosIds());
        Generator generator = new Generator(policy, tokenizer.padId(), tokenizer.eosIds());
        this.sampler = (rows, cfg) -> {
            List<int[]> prompts = new ArrayList<>();
            long[] keys = new long[rows.size()];
            for (int i = 0; i < rows.size(); i++) {
                prompts.add(rows.get(i).promptIds());
                keys[i] = rows.get(i).key();
            }
            return generator.generate(prompts, keys, cfg).tokens();
        };
        this.grpoLoss = rl.method() == LossType.GRPO
                ? new GrpoLoss(rl.lossType(), rl.epsilon(), rl.epsilonHigh(), rl.beta())
                : null;
        this.rlooLoss = rl.method() == LossType.RLOO ? new RlooLoss(rl.epsilon(), rl.epsilonHigh()) : null;
    }

    /**
     * Loads the policy, the reference (when β &gt; 0), the rewards and the prompts.
     *
     * @param run the resolved shared and RL options ({@link RlConfig#resolve})
     * @param mode fresh, overwrite or resume
     * @return the trainer; close it to free the models and the run folder
     * @throws IOException when the run folder cannot be written
     * @throws IllegalArgumentException naming the key, file or record at fault
     */
    public static OnlineRlTrainer create(RlConfig.Run run, RunFolder.Mode mode) throws IOException {
        check(run);
        return create(run, RunFolder.claim(run.train(), mode));
    }

    /**
     * As {@link #create(RlConfig.Run, RunFolder.Mode)} in a run folder already claimed (the CLI claims it
     * first, to send the log there); the trainer owns the folder from here.
     *
     * @param run the resolved options
     * @param folder the claimed run folder
     * @return the trainer
     */
    public static OnlineRlTrainer create(RlConfig.Run run, RunFolder folder) {
        TrainConfig config = run.train();
        RlConfig rl = run.rl();
        TextTokenizer tokenizer = null;
        CausalLm policy = null;
        CausalLm reference = null;
        boolean ownsReference = false;
        Rewards rewards = null;
        CausalLm valueModel = null;
        try {
            check(run);
            Device device = Devices.resolve(config.device());
            tokenizer = TextTokenizer.load(Path.of(config.model()));
            PreferenceEncoder encoder = new PreferenceEncoder(tokenizer, config.encodingOptions());
            List<PromptExample> all = PromptData.load(Path.of(config.data()), config.skipInvalid());
            List<PromptExample> train;
            List<PromptExample> eval;
            if (config.evalData() != null) {
                train = all;
                eval = PromptData.load(Path.of(config.evalData()), config.skipInvalid());
            } else {
                List<PromptExample> shuffled = new ArrayList<>(all);
                int nEval = config.evalFraction() == 0
                        ? 0
                        : Math.max(1, (int) Math.round(config.evalFraction() * all.size()));
                if (nEval > 0) {
                    Collections.shuffle(shuffled, new Random(config.seed()));
                }
                if (nEval >= all.size()) {
                    throw new IllegalArgumentException("key 'eval_fraction': " + config.evalFraction() + " of "
                            + all.size() + " prompts leaves none to train on");
                }
                train = nEval > 0 ? List.copyOf(shuffled.subList(nEval, shuffled.size())) : all;
                eval = List.copyOf(shuffled.subList(0, nEval));
            }
            int perGeneration = completionsPerGeneration(config, rl) / rl.numGenerations();
            if (train.size() < perGeneration) {
                throw new IllegalArgumentException("key 'batch_size': one generation takes " + perGeneration
                        + " prompts (batch_size x grad_accum / num_generations), but " + config.data() + " has "
                        + train.size() + " for training");
            }
            List<int[]> trainIds = encodeAll(encoder, train);
            List<int[]> evalIds = encodeAll(encoder, eval);
            List<RewardFunction> funcs = new ArrayList<>();
            try {
                for (String spec : rl.rewardFuncs()) {
                    funcs.add(Rewards.parse(spec, device, rl.rewardModelEos(), config.evalBatchSize()));
                }
            } catch (IllegalArgumentException e) {
                closeAll(funcs);
                throw new IllegalArgumentException(rl.where("reward_funcs") + ": " + e.getMessage(), e);
            }
            rewards = new Rewards(funcs, rl.rewardWeights());
            requireFields(funcs, concat(train, eval));
            folder.resumeFrom().ifPresent(checkpoint -> warnChanges(checkpoint, rl));
            policy = config.loadModel(folder.resumeFrom().orElse(Path.of(config.model())), device, DataType.FLOAT32);
            checkFits(policy.config(), train, trainIds, rl.maxCompletionLength());
            checkFits(policy.config(), eval, evalIds, rl.maxCompletionLength());
            prepareAdapters(policy, config);
            if (needsReference(rl)) {
                if (policy.hasAdapters() && config.referenceModel() == null) {
                    reference = policy.withoutAdapters();
                } else {
                    DataType dtype = config.referenceDtype() == TrainConfig.ReferenceDtype.FP16
                            ? DataType.FLOAT16
                            : DataType.FLOAT32;
                    reference = config.loadModel(Path.of(config.referenceModelOrModel()), device, dtype);
                    reference.setTrainable(false);
                    ownsReference = true;
                }
            }
            if (rl.ppo() != null) {
                valueModel = loadValueModel(config, rl, folder, policy, funcs, device, tokenizer.padId());
            }
            return new OnlineRlTrainer(
                    config,
                    rl,
                    folder,
                    policy,
                    reference,
                    ownsReference,
                    tokenizer,
                    encoder,
                    train,
                    eval,
                    trainIds,
                    evalIds,
                    rewards,
                    valueModel);
        } catch (RuntimeException e) {
            if (valueModel != null) {
                valueModel.close();
            }
            if (rewards != null) {
                rewards.close();
            }
            if (ownsReference) {
                reference.close();
            }
            if (policy != null) {
                policy.close();
            }
            if (tokenizer != null) {
                tokenizer.close();
            }
            folder.close();
            throw e;
        }
    }

    /**
     * A typed builder over the shared keys, with the method's own keys by name ({@code
     * set("num_generations", 8)}, {@code set("reward_funcs", List.of("exact"))}); {@code build()} loads the
     * trainer (a fresh run).
     *
     * @param method {@link LossType#GRPO} or {@link LossType#RLOO}
     * @return the builder
     * @throws java.io.UncheckedIOException from {@code build()} when the run folder cannot be written
     */
    public static TrainConfig.Builder<OnlineRlTrainer> builder(LossType method) {
        return new TrainConfig.Builder<>(Map.of("loss", method), RlConfig.ownedKeys(), (config, own) -> {
            try {
                return create(new RlConfig.Run(config, RlConfig.of(method, own)), RunFolder.Mode.fresh());
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
    }

    /**
     * Every record has the fields the rewards read ({@code exact:FIELD}), checked before anything samples.
     *
     * @param funcs the rewards
     * @param prompts the records
     * @throws IllegalArgumentException naming the first record and field missing
     */
    public static void requireFields(List<RewardFunction> funcs, List<PromptExample> prompts) {
        for (RewardFunction f : funcs) {
            for (String field : f.requiredFields()) {
                for (PromptExample p : prompts) {
                    if (!p.fields().containsKey(field)) {
                        throw new IllegalArgumentException(
                                p.source() + ": field '" + field + "': missing (reward '" + f.name() + "' reads it)");
                    }
                }
            }
        }
    }

    /** PPO's reference is loaded when the KL penalty can be nonzero; GRPO's and RLOO's when β &gt; 0. */
    private static boolean needsReference(RlConfig rl) {
        return rl.ppo() != null ? rl.ppo().klCoef() > 0 : rl.beta() > 0;
    }

    /** The folder in a checkpoint that holds PPO's value model. */
    static final String VALUE_MODEL_DIR = "value_model";

    /**
     * PPO's value model: from the checkpoint being resumed, else {@code value_model}, else the one reward
     * model among the rewards, else the policy's folder with a new one-label head (as TRL's {@code
     * value_model} is made with {@code AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)}).
     * It reads the policy's token ids, so it must be the policy's architecture and width.
     */
    private static CausalLm loadValueModel(
            TrainConfig config,
            RlConfig rl,
            RunFolder folder,
            CausalLm policy,
            List<RewardFunction> funcs,
            Device device,
            int padId) {
        Optional<Path> saved = folder.resumeFrom().map(c -> c.resolve(VALUE_MODEL_DIR));
        if (saved.isPresent() && !Files.isDirectory(saved.get())) {
            // its optimizer state holds the value model's moments: a new value model would not continue the run
            throw new IllegalArgumentException(saved.get() + ": missing; a PPO checkpoint holds its value model there,"
                    + " and the run cannot continue exactly without it (resume from another checkpoint, or start"
                    + " afresh)");
        }
        String key;
        Path dir;
        if (saved.isPresent()) {
            key = "checkpoint";
            dir = saved.get();
        } else if (rl.ppo().valueModel() != null) {
            key = rl.where("value_model");
            dir = Path.of(rl.ppo().valueModel());
        } else {
            // the folder as given (funcs are parsed one per reward_funcs entry): a LoRA reward model's adapter folder,
            // whose loaded model names its base as its source
            List<Path> models = new ArrayList<>();
            for (int i = 0; i < funcs.size(); i++) {
                if (funcs.get(i) instanceof RewardModelFunction) {
                    models.add(Path.of(rl.rewardFuncs().get(i)));
                }
            }
            key = models.size() == 1 ? rl.where("reward_funcs") : "key 'model'";
            dir = models.size() == 1 ? models.get(0) : Path.of(config.model());
        }
        CausalLm v;
        try {
            v = policy.hasAdapters() ? onPolicyBase(config, dir, policy) : null;
            if (v != null) {
                LOG.info(
                        "Value model from {} ({}): adapter set '{}' and its score head on the policy's base (no copy)",
                        dir,
                        key,
                        VALUE_ADAPTER);
                return v;
            }
            Path resolved = ModelFolder.resolve(dir);
            if (PeftAdapter.isAdapterFolder(resolved)
                    && !Files.isRegularFile(resolved.resolve("config.json"))
                    && PeftAdapter.isSequenceClassifier(resolved)) {
                // a LoRA reward model as a value model of its own: merged, so that it trains in full as TRL's
                v = CausalLm.load(resolved, device);
                v.mergeAdapters();
            } else {
                v = CausalLm.loadRewardModel(dir, device, padId, config.seed());
            }
        } catch (RuntimeException e) {
            throw new IllegalArgumentException(key + ": the value model: " + e.getMessage(), e);
        }
        try {
            requireSameShape(key, dir, v.config(), policy.config());
            v.setCompute(policy.compute());
            v.setTrainable(true);
            v.setDropout(!config.disableDropout());
            LOG.info("Value model from {} ({})", dir, key);
            return v;
        } catch (RuntimeException e) {
            v.close();
            throw e;
        }
    }

    /** The name of the value model's adapter set on a LoRA policy's base (PEFT's adapter_name). */
    static final String VALUE_ADAPTER = "value";

    /**
     * With LoRA, the value model on the policy's frozen base when its decoder is that base: policy,
     * reference (adapters off) and value model then hold one copy of the base weights in memory, where
     * TRL 0.x and OpenRLHF keep the critic as a model of its own. The value model is an adapter set of
     * its own ({@value #VALUE_ADAPTER}, PEFT's named adapter) with its own one-label score head, trained
     * in full beside it as PEFT's SEQ_CLS {@code modules_to_save}:
     *
     * <ul>
     *   <li>from the policy's base folder (no {@code value_model} and no reward model, or {@code
     *       value_model} naming that folder): new adapters of the policy's r, α, targets and dropout (A
     *       seeded by {@code seed + 1}, B = 0) and a new head drawn as TRL's {@code
     *       AutoModelForSequenceClassification.from_pretrained(policy, num_labels=1)} draws it (seeded by
     *       {@code seed}, as the full value model's): at step 0 it is the full value model;
     *   <li>from a sequence classifier's adapter folder on the policy's base (a LoRA reward model trained
     *       from it, as OpenRLHF initialises its critic from the reward model; or the {@code value_model}
     *       folder of a checkpoint of such a run): its adapters, with its r, α and targets, and its score
     *       head, so the value model starts as that reward model.
     * </ul>
     *
     * <p>A value model whose decoder is not the policy's base (a reward model trained in full, another
     * model) stays a second full model, as before: reading its head on the policy's base would be another
     * model. Checkpoints hold the set as a sequence classifier's PEFT adapter folder ({@code value_model/}:
     * {@code adapter_config.json} with task_type SEQ_CLS naming the base, the adapters and {@code
     * score.weight}), not merged: merged it would be a full copy of the base, the memory this avoids, and
     * the folder loads as it is in align4j ({@code CausalLm.load}) and PEFT ({@code
     * PeftModel.from_pretrained(AutoModelForSequenceClassification.from_pretrained(base, num_labels=1),
     * dir)}).
     *
     * @return the value model as a view of the policy, or null when it cannot share the policy's base
     */
    private static CausalLm onPolicyBase(TrainConfig config, Path dir, CausalLm policy) {
        Path resolved = ModelFolder.resolve(dir);
        boolean adapterFolder =
                PeftAdapter.isAdapterFolder(resolved) && !Files.isRegularFile(resolved.resolve("config.json"));
        Path base = adapterFolder ? CausalLm.adapterBase(resolved) : resolved;
        if (!sameFolder(base, policy.source())) {
            LOG.info(
                    "Value model from {}: its decoder is not the policy's base {}, so it is a second full model"
                            + " (to share the base, give value_model the policy's folder or a LoRA reward model"
                            + " made on it)",
                    dir,
                    policy.source());
            return null;
        }
        CausalLm v;
        if (adapterFolder && PeftAdapter.isSequenceClassifier(resolved)) {
            v = policy.loadSequenceClassifierAdapter(VALUE_ADAPTER, resolved);
        } else {
            v = policy.addSequenceClassifierAdapter(VALUE_ADAPTER, policy.lora(), config.seed() + 1, config.seed());
        }
        if (config.disableDropout()) {
            v.setAdapterDropout(0);
        }
        return v;
    }

    private static boolean sameFolder(Path a, Path b) {
        if (a == null || b == null) {
            return false;
        }
        try {
            return Files.isSameFile(a, b);
        } catch (IOException e) {
            return false;
        }
    }

    /**
     * PPO's value model reads the policy's token ids: it must be the policy's architecture, width and
     * vocabulary.
     *
     * @param key how to name where the value model was given
     * @param dir its folder
     * @param got its config
     * @param want the policy's config
     * @throws IllegalArgumentException naming both when they differ
     */
    public static void requireSameShape(String key, Path dir, ModelConfig got, ModelConfig want) {
        if (!got.modelType().equals(want.modelType())
                || got.hiddenSize() != want.hiddenSize()
                || got.vocabSize() != want.vocabSize()) {
            throw new IllegalArgumentException(String.format(
                    Locale.ROOT,
                    "%s: the value model %s is a %s of hidden_size %d and vocab_size %d, the policy a %s of"
                            + " hidden_size %d and vocab_size %d; the value model reads the policy's token ids, so"
                            + " give one of the policy's architecture (a reward model trained from it, or the"
                            + " policy itself)",
                    key,
                    dir,
                    got.modelType(),
                    got.hiddenSize(),
                    got.vocabSize(),
                    want.modelType(),
                    want.hiddenSize(),
                    want.vocabSize()));
        }
    }

    private static void closeAll(List<RewardFunction> funcs) {
        for (RewardFunction f : funcs) {
            if (f instanceof AutoCloseable c) {
                try {
                    c.close();
                } catch (Exception ignored) {
                    // freeing a model that failed to join the run; nothing to report
                }
            }
        }
    }

    /**
     * The checks a run makes before it loads anything (also {@code --dry-run}'s).
     *
     * @param run the resolved options
     * @throws IllegalArgumentException naming the key at fault
     */
    public static void check(RlConfig.Run run) {
        TrainConfig c = run.train();
        RlConfig rl = run.rl();
        // generation, rewards and the rollout buffer are not split across processes yet
        requireSingleProcess("align4j " + rl.method() + " (online RL)");
        if (c.loss() != rl.method()) {
            throw new IllegalArgumentException("key 'loss': an online run trains " + rl.method() + ", got " + c.loss());
        }
        if (rl.rewardFuncs().isEmpty()) {
            throw new IllegalArgumentException(
                    "key 'reward_funcs': give at least one reward (exact, regex:P, think_format, soft_overlong:MAX:CACHE,"
                            + " class:NAME or a reward model folder)");
        }
        int completions = completionsPerGeneration(c, rl);
        if (completions % rl.numGenerations() != 0) {
            throw new IllegalArgumentException("key 'batch_size': batch_size x grad_accum"
                    + (rl.ppo() != null ? " x num_mini_batches" : "") + " (" + completions
                    + " completions per generation) must be a multiple of num_generations (" + rl.numGenerations()
                    + ")");
        }
    }

    /** The method's settings that differ from the checkpoint's, by name (the shared ones are the run folder's). */
    private static void warnChanges(Path checkpoint, RlConfig rl) {
        Path saved = checkpoint.resolve("config.yaml");
        if (!Files.isRegularFile(saved)) {
            return;
        }
        Map<String, TrainConfig.Given> own = new LinkedHashMap<>();
        try {
            TrainConfig.resolve(Map.of(), saved, Map.of(), k -> "key '" + k + "'", RlConfig.ownedKeys(), own);
            Map<String, Object> before = RlConfig.of(rl.method(), own).toMap();
            rl.toMap().forEach((k, v) -> {
                if (k.equals("value_model")) {
                    return; // a resumed PPO run always continues with the checkpoint's value model
                }
                if (!String.valueOf(v).equals(String.valueOf(before.get(k)))) {
                    LOG.warn(
                            "Resuming with {} = {} where {} ran with {}",
                            k,
                            v,
                            checkpoint.getFileName(),
                            before.get(k));
                }
            });
        } catch (IllegalArgumentException e) {
            LOG.warn("Cannot compare with {}: {}", saved, e.getMessage());
        }
    }

    private static List<PromptExample> concat(List<PromptExample> a, List<PromptExample> b) {
        List<PromptExample> all = new ArrayList<>(a);
        all.addAll(b);
        return all;
    }

    /**
     * Every prompt, followed by max_completion_length tokens, within the model's vocabulary and positions.
     *
     * @param model the policy's architecture
     * @param prompts the records
     * @param ids their prompt ids
     * @param maxCompletion max_completion_length
     * @throws IllegalArgumentException naming the record and what to lower
     */
    public static void checkFits(ModelConfig model, List<PromptExample> prompts, List<int[]> ids, int maxCompletion) {
        for (int i = 0; i < ids.size(); i++) {
            Optional<String> problem = model.problemWith(ids.get(i));
            if (problem.isPresent()) {
                throw new IllegalArgumentException(prompts.get(i).source() + ": " + problem.get());
            }
            int[] row = Arrays.copyOf(ids.get(i), ids.get(i).length + maxCompletion);
            if (model.problemWith(row).isPresent()) {
                int positions = model.maxPositions();
                throw new IllegalArgumentException(prompts.get(i).source() + ": the prompt's " + ids.get(i).length
                        + " tokens + max_completion_length " + maxCompletion + " exceed the model's " + positions
                        + " positions; lower max_completion_length, or cut prompts with max_prompt_length");
            }
        }
    }

    private static List<int[]> encodeAll(PreferenceEncoder encoder, List<PromptExample> prompts) {
        List<int[]> ids = new ArrayList<>(prompts.size());
        for (PromptExample p : prompts) {
            ids.add(encoder.encodePrompt(p.example()));
        }
        return ids;
    }

    /**
     * Replaces the sampler (tests replay fixed completions through it).
     *
     * @param sampler draws a generation's completions
     */
    public void setSampler(Sampler sampler) {
        this.sampler = sampler;
    }

    /** @return the model being trained */
    public CausalLm policy() {
        return policy;
    }

    /** @return the options of the method */
    public RlConfig rlConfig() {
        return rl;
    }

    /** @return the rollout in use (null before the first step) */
    public Rollout rollout() {
        return rollout;
    }

    /**
     * Completions a generation makes: batch_size × grad_accum (× num_mini_batches for PPO; × 2 for Online DPO,
     * whose batch_size counts prompts, as TRL's).
     */
    private static int completionsPerGeneration(TrainConfig c, RlConfig rl) {
        int n = c.batchSize() * c.gradAccum() * (rl.ppo() != null ? rl.ppo().numMiniBatches() : 1);
        return rl.method() == LossType.ONLINE_DPO ? 2 * n : n;
    }

    /** Rows of one micro-batch: batch_size, or both samples of batch_size prompts for Online DPO. */
    private int rowsPerMicroBatch() {
        return rl.method() == LossType.ONLINE_DPO ? 2 * config.batchSize() : config.batchSize();
    }

    /** Log-probs are scored at the sampling temperature (TRL's GRPO, RLOO, PPO), at 1 for Online DPO (as TRL's). */
    private double scoringTemperature() {
        return rl.method() == LossType.ONLINE_DPO ? 1.0 : rl.temperature();
    }

    private int promptsPerGeneration() {
        return completionsPerGeneration(config, rl) / rl.numGenerations();
    }

    /** Optimizer steps one generation serves: num_iterations, or PPO's num_ppo_epochs × num_mini_batches. */
    private int stepsPerGeneration() {
        return rl.ppo() != null ? rl.ppo().stepsPerRollout() : rl.numIterations();
    }

    @Override
    protected int examplesPerBatch() {
        return promptsPerGeneration();
    }

    @Override
    protected boolean shuffle() {
        return rl.shuffleDataset();
    }

    /** TRL's RepeatSampler drops an epoch's last, incomplete batch of prompts too. */
    @Override
    protected boolean dropLast() {
        return true;
    }

    @Override
    protected long totalSteps() {
        if (config.maxSteps() > 0) {
            return config.maxSteps();
        }
        long generations = train.size() / promptsPerGeneration(); // an incomplete last batch is dropped
        return Math.max(1, (long) Math.ceil(config.epochs() * generations)) * stepsPerGeneration();
    }

    @Override
    protected int trainSize() {
        return train.size();
    }

    @Override
    protected int evalSize() {
        return eval.size();
    }

    @Override
    protected int[] trainLengths() {
        return trainIds.stream().mapToInt(p -> p.length).toArray();
    }

    @Override
    protected String describe(int i) {
        int prompt = rollout != null && i < rollout.size() ? rollout.promptIndex()[i] : i;
        return prompt < train.size() ? train.get(prompt).source() : "sample " + i;
    }

    @Override
    protected long weight(int[] indices) {
        return 1;
    }

    @Override
    protected String objectiveSummary() {
        StringBuilder s = new StringBuilder(rl.method().toString());
        RlConfig.PpoOptions o = rl.ppo();
        if (o != null) {
            s.append(String.format(
                    Locale.ROOT,
                    ": value model and GAE (gamma %s, lam %s), cliprange %s, cliprange_value %s, vf_coef %s, %d"
                            + " sample(s) per prompt, %d PPO epoch(s) x %d mini-batch(es) per rollout; ",
                    TrainConfig.defaultFormat(o.gamma()),
                    TrainConfig.defaultFormat(o.lam()),
                    TrainConfig.defaultFormat(o.cliprange()),
                    TrainConfig.defaultFormat(o.cliprangeValue()),
                    TrainConfig.defaultFormat(o.vfCoef()),
                    rl.numGenerations(),
                    o.numPpoEpochs(),
                    o.numMiniBatches()));
            s.append(
                    o.klCoef() == 0
                            ? "kl_coef 0 (no reference model)"
                            : (o.adaptiveKl() ? "adaptive " : "") + "kl_coef "
                                    + TrainConfig.defaultFormat(o.klCoef()) + " (" + o.klEstimator() + ")"
                                    + (o.adaptiveKl() ? " toward KL " + TrainConfig.defaultFormat(o.klTarget()) : "")
                                    + " against " + referenceName());
        } else if (rl.method() == LossType.ONLINE_DPO) {
            s.append(String.format(
                    Locale.ROOT,
                    ": 2 samples per prompt, the higher score chosen, %s loss, beta %s against %s",
                    rl.pairLoss() == LossType.IPO ? "IPO" : "DPO (sigmoid)",
                    TrainConfig.defaultFormat(rl.beta()),
                    referenceName()));
        } else {
            if (rl.method() == LossType.GRPO) {
                s.append(": loss_type ")
                        .append(rl.lossType())
                        .append(", scale_rewards ")
                        .append(rl.scaleRewards().name().toLowerCase(Locale.ROOT));
            } else {
                s.append(": leave-one-out baseline").append(rl.normalizeAdvantages() ? ", advantages whitened" : "");
            }
            s.append(String.format(
                    Locale.ROOT,
                    ", %d samples per prompt, epsilon %s/%s, %d iteration(s) per generation; ",
                    rl.numGenerations(),
                    TrainConfig.defaultFormat(rl.epsilon()),
                    TrainConfig.defaultFormat(rl.epsilonHigh()),
                    rl.numIterations()));
            s.append(
                    rl.beta() == 0
                            ? "beta 0 (no reference model)"
                            : "beta " + TrainConfig.defaultFormat(rl.beta()) + " against " + referenceName());
        }
        s.append("; rewards: ");
        List<String> names = new ArrayList<>();
        double[] w = rewards.weights();
        for (int i = 0; i < w.length; i++) {
            names.add(rewards.functions().get(i).name() + (w[i] == 1 ? "" : " x" + TrainConfig.defaultFormat(w[i])));
        }
        s.append(String.join(", ", names));
        return s.toString();
    }

    private String referenceName() {
        return ownsReference
                ? "a frozen copy of " + config.referenceModelOrModel()
                : "the policy with its adapters off";
    }

    @Override
    public List<String> header() {
        List<String> lines = new ArrayList<>(super.header());
        lines.set(2, String.format(Locale.ROOT, "data: %,d training prompts, %,d held out", train.size(), eval.size()));
        lines.set(
                3,
                String.format(
                        Locale.ROOT,
                        "steps: %,d; each generation %d prompts x %d samples (max %d new tokens, temperature %s) serves"
                                + " %d step(s) of %d micro-batch(es) of %d completions; lr %s",
                        totalSteps(),
                        promptsPerGeneration(),
                        rl.numGenerations(),
                        rl.maxCompletionLength(),
                        TrainConfig.defaultFormat(rl.temperature()),
                        stepsPerGeneration(),
                        config.gradAccum(),
                        rowsPerMicroBatch(),
                        TrainConfig.defaultFormat(config.learningRate())));
        if (sharesPrompts() && rl.numGenerations() > 1) {
            List<String> passes = new ArrayList<>(List.of("sampling"));
            if (rl.numIterations() > 1) {
                passes.add("old policy");
            }
            if (needsReference(rl)) {
                passes.add("reference");
            }
            boolean training = policy.canSharePrompts(true);
            if (training) {
                passes.add("training");
            }
            lines.add(String.format(
                    Locale.ROOT,
                    "passes: each prompt's tokens are computed once and shared by its %d samples (%s)%s",
                    rl.numGenerations(),
                    String.join(", ", passes),
                    training
                            ? ""
                            : "; the training pass computes every row (dropout is on: each row draws its own mask)"));
        }
        if (valueModel != null) {
            long n = 0;
            for (Parameter p : valueModel.trainableParameters().values()) {
                n += p.getArray().size();
            }
            lines.add(
                    valueModel.isView()
                            ? String.format(
                                    Locale.ROOT,
                                    "value model: adapter set '%s' and score head on the policy's base, %,d parameters"
                                            + " trained beside the policy (one optimizer)",
                                    VALUE_ADAPTER,
                                    n)
                            : String.format(
                                    Locale.ROOT,
                                    "value model: %s, %,d parameters trained in full beside the policy (one optimizer)",
                                    valueModel.source(),
                                    n));
        }
        return lines;
    }

    @Override
    protected String configYaml() {
        return configYaml(new RlConfig.Run(config, rl));
    }

    /**
     * The run's {@code config.yaml}: the shared keys, then the method's (which replace any shared key of the
     * same name: the method's beta, PPO's gamma rather than SimPO's).
     *
     * @param run the resolved options
     * @return YAML
     */
    public static String configYaml(RlConfig.Run run) {
        try {
            @SuppressWarnings("unchecked")
            Map<String, Object> shared = YAML.readValue(run.train().toYaml(), LinkedHashMap.class);
            shared.keySet().removeAll(RlConfig.ownedKeys());
            Map<String, Object> all = new LinkedHashMap<>(shared);
            all.putAll(run.rl().toMap());
            return YAML.writeValueAsString(all);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private GenerationConfig sampling() {
        return new GenerationConfig(
                rl.maxCompletionLength(),
                false,
                rl.temperature(),
                rl.topK(),
                rl.topP(),
                rl.minP(),
                config.seed(),
                true,
                true);
    }

    // ---------------------------------------------------------------------------------------------
    // generation

    @Override
    protected List<int[]> stepBatches(long step, Supplier<int[]> nextBatch) {
        int per = stepsPerGeneration();
        if (step % per == 0 || rollout == null || rollout.generation() != step / per) {
            rollout = generate(nextBatch.get(), step / per, step % per == 0);
        }
        List<int[]> batches = new ArrayList<>();
        int b = rl.ppo() != null ? config.batchSize() : rowsPerMicroBatch();
        if (rl.ppo() != null) {
            int within = (int) (step % per);
            int[] order = miniBatchOrder(
                    rollout.size(),
                    config.seed(),
                    rollout.generation(),
                    within / rl.ppo().numMiniBatches());
            int from = (within % rl.ppo().numMiniBatches()) * b * config.gradAccum();
            for (int a = 0; a < config.gradAccum(); a++) {
                batches.add(Arrays.copyOfRange(order, from + a * b, from + a * b + b));
            }
            return batches;
        }
        for (int a = 0; a < config.gradAccum(); a++) {
            int[] rows = new int[b];
            for (int i = 0; i < b; i++) {
                rows[i] = a * b + i;
            }
            batches.add(rows);
        }
        return batches;
    }

    @Override
    protected Map<String, Double> stepExtras(long step) {
        // the generation's metrics are logged once, with the step that made it (as TRL logs them)
        if (rollout == null) {
            return Map.of();
        }
        if ((step - 1) % stepsPerGeneration() == 0) {
            return rollout.metrics();
        }
        // PPO: num_tokens counts what the rollouts sampled (prompts and completions) on every step, not only on
        // the step that made the rollout
        return rl.ppo() != null && rollout.metrics().containsKey("num_tokens")
                ? Map.of("num_tokens", rollout.metrics().get("num_tokens"))
                : Map.of();
    }

    /**
     * The order in which one PPO epoch visits a rollout's samples (TRL draws {@code np.random.permutation}
     * per epoch): the samples sorted by a uniform number each, {@link RowStream} of key (seed, −1,
     * generation, epoch) at the sample's index; a pure function, so a resumed run visits the same order.
     *
     * @param n samples in the rollout
     * @param seed the run's seed
     * @param generation the rollout's generation
     * @param epoch the PPO epoch (0-based)
     * @return a permutation of 0 .. n − 1
     */
    static int[] miniBatchOrder(int n, long seed, long generation, int epoch) {
        RowStream stream = new RowStream(RowStream.key(seed, -1, generation, epoch));
        double[] u = new double[n];
        Integer[] idx = new Integer[n];
        for (int i = 0; i < n; i++) {
            u[i] = stream.uniform(i);
            idx[i] = i;
        }
        Arrays.sort(idx, (x, y) -> Double.compare(u[x], u[y]));
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            out[i] = idx[i];
        }
        return out;
    }

    private Rollout generate(int[] prompts, long generation, boolean fresh) {
        if (!fresh) {
            throw new IllegalStateException("generation " + generation + " is needed mid-way but was not saved");
        }
        int g = rl.numGenerations();
        List<Sampler.Row> rows = new ArrayList<>();
        int[] promptIndex = new int[prompts.length * g];
        for (int p = 0; p < prompts.length; p++) {
            for (int k = 0; k < g; k++) {
                int i = prompts[p];
                promptIndex[p * g + k] = i;
                rows.add(new Sampler.Row(
                        trainIds.get(i), RowStream.key(config.seed(), generation, i, k), train.get(i), k));
            }
        }
        long t0 = System.nanoTime();
        List<int[]> completions = sampler.sample(rows, sampling());
        long t1 = System.nanoTime();
        int n = rows.size();
        boolean[] truncated = new boolean[n];
        boolean[] scored = new boolean[n];
        long scoredTokens = 0;
        long promptTokens = 0;
        List<int[]> promptIds = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int[] c = completions.get(i);
            truncated[i] = c.length == 0 || !eosIds.contains(c[c.length - 1]);
            scored[i] = !(rl.maskTruncatedCompletions() && truncated[i]);
            scoredTokens += scored[i] ? c.length : 0;
            promptIds.add(rows.get(i).promptIds());
            promptTokens += rows.get(i).promptIds().length;
        }
        double[][] perFunction = rewards.score(samples(rows, completions, truncated));
        double[] reward = rewards.combine(perFunction);
        if (rl.ppo() != null) {
            for (int i = 0; i < n; i++) {
                if (Double.isNaN(reward[i]) && scored[i]) {
                    scored[i] = false; // every reward abstained: the sample has no score to learn from
                    scoredTokens -= completions.get(i).length;
                }
            }
        }
        long t2 = System.nanoTime();
        List<float[]> old = null;
        List<float[]> ref = null;
        List<float[]> values = null;
        boolean needOld = rl.method() == LossType.RLOO || rl.method() == LossType.PPO || rl.numIterations() > 1;
        if (needOld) {
            old = scorePerToken(policy, promptIndex, promptIds, completions, scored);
        }
        if (needsReference(rl)) {
            ref = scorePerToken(reference, promptIndex, promptIds, completions, scored);
        }
        if (valueModel != null) {
            values = scoreValues(promptIds, completions, scored);
        }
        long t3 = System.nanoTime();
        LOG.info(
                "generation {}: {} samples in {} s, rewards {} s, old policy and reference log-probs {} s",
                generation,
                n,
                String.format(Locale.ROOT, "%.2f", (t1 - t0) / 1e9),
                String.format(Locale.ROOT, "%.2f", (t2 - t1) / 1e9),
                String.format(Locale.ROOT, "%.2f", (t3 - t2) / 1e9));
        Map<String, Double> m = new LinkedHashMap<>();
        tokensSeen += promptTokens;
        for (int[] c : completions) {
            tokensSeen += c.length;
        }
        m.put("num_tokens", (double) tokensSeen);
        lengthMetrics(m, completions, truncated);
        double[] perSample;
        Rollout.PerToken perToken = null;
        if (rl.method() == LossType.ONLINE_DPO) {
            m.putAll(rewardMeans(perFunction));
            perSample = pairScores(perFunction, truncated);
        } else if (rl.ppo() != null) {
            perToken = ppoAdvantages(m, reward, perFunction, truncated, scored, old, ref, values);
            perSample = new double[n];
        } else {
            perSample = groupAdvantages(m, reward, perFunction, old, ref);
            flatGenerations = Double.valueOf(1.0).equals(m.get("frac_reward_zero_std")) ? flatGenerations + 1 : 0;
            // once a run, after 5 flat generations in a row (or all of a shorter run's): one flat batch is common
            long patience = Math.min(5, Math.max(1, totalSteps() / stepsPerGeneration()));
            if (!warnedEqualRewards && flatGenerations >= patience) {
                warnedEqualRewards = true;
                LOG.warn(
                        "generation {}: for {} generation(s) in a row every prompt's {} samples got equal rewards"
                                + " (frac_reward_zero_std 1): their"
                                + " advantages are 0, so only the KL term moves the policy{}; if this lasts, check"
                                + " that the rewards tell a prompt's samples apart",
                        generation,
                        flatGenerations,
                        rl.numGenerations(),
                        rl.beta() > 0 ? "" : " (beta 0: nothing does)");
            }
        }
        LOG.debug("generation {}: {} samples, reward {}", generation, n, m.get("reward"));
        return new Rollout(
                generation,
                promptIndex,
                promptIds,
                completions,
                truncated,
                scored,
                perSample,
                old,
                ref,
                scoredTokens,
                m,
                perToken);
    }

    /** GRPO's and RLOO's per-sample advantages, with TRL's reward metrics (and RLOO's {@code kl}). */
    private double[] groupAdvantages(
            Map<String, Double> m, double[] reward, double[][] perFunction, List<float[]> old, List<float[]> ref) {
        int n = reward.length;
        int g = rl.numGenerations();
        double[] advantages;
        double zeroStd;
        if (rl.method() == LossType.GRPO) {
            double[][] as = Advantages.grpo(reward, g, rl.scaleRewards());
            advantages = as[0];
            zeroStd = Advantages.zeroShare(as[1]);
        } else {
            double[] penalised = reward.clone();
            if (rl.beta() > 0) {
                double klTokens = 0;
                double klSum = 0;
                for (int i = 0; i < n; i++) {
                    double kl = 0;
                    float[] o = old.get(i);
                    float[] r = ref.get(i);
                    for (int t = 0; t < o.length; t++) {
                        kl += o[t] - r[t];
                    }
                    klSum += kl;
                    klTokens += o.length;
                    penalised[i] -= rl.beta() * kl;
                }
                m.put("kl", klSum / Math.max(1, klTokens));
            }
            advantages = Advantages.rloo(penalised, g, rl.normalizeAdvantages());
            double[] std = new double[n / g];
            for (int p = 0; p < std.length; p++) {
                std[p] = Advantages.nanStd(penalised, p * g, p * g + g);
            }
            zeroStd = Advantages.zeroShare(std);
        }
        for (int k = 0; k < perFunction.length; k++) {
            String name = rewards.functions().get(k).name();
            m.put("rewards/" + name + "/mean", Advantages.nanMean(perFunction[k]));
            m.put("rewards/" + name + "/std", Advantages.nanStd(perFunction[k], 0, n));
        }
        m.put("reward", Advantages.nanMean(reward));
        m.put("reward_std", Advantages.nanStd(reward, 0, n));
        m.put("frac_reward_zero_std", zeroStd);
        return advantages;
    }

    /**
     * PPO's per-token rewards, GAE advantages and returns of a rollout, and TRL's rollout metrics
     * ({@code objective/*}, {@code val/num_eos_tokens}). The KL coefficient is the previous rollout's,
     * adapted by its KL when {@code kl_target} is set.
     */
    private Rollout.PerToken ppoAdvantages(
            Map<String, Double> m,
            double[] score,
            double[][] perFunction,
            boolean[] truncated,
            boolean[] scored,
            List<float[]> old,
            List<float[]> ref,
            List<float[]> values) {
        RlConfig.PpoOptions o = rl.ppo();
        double coef = o.klCoef();
        if (rollout != null && rollout.ppo() != null) {
            coef = rollout.ppo().klCoef();
            if (o.adaptiveKl()) {
                coef = Ppo.adaptKlCoef(coef, rollout.ppo().kl(), o.klTarget(), o.klHorizon(), rollout.size());
            }
        }
        int n = score.length;
        double penalty = Double.isNaN(rl.missingEosPenalty()) ? 0 : rl.missingEosPenalty();
        double[][] rewardRows = new double[n][];
        double klSum = 0;
        double klMeanSum = 0;
        double entropySum = 0;
        double scoreSum = 0;
        int counted = 0;
        int eos = 0;
        for (int i = 0; i < n; i++) {
            eos += truncated[i] ? 0 : 1;
            float[] lp = old.get(i);
            if (!scored[i]) {
                rewardRows[i] = new double[0];
                continue;
            }
            double[] kl = new double[lp.length];
            double rowKl = 0;
            for (int t = 0; t < lp.length; t++) {
                kl[t] = ref == null ? 0 : Ppo.kl(lp[t], ref.get(i)[t], o.klEstimator(), 10);
                rowKl += kl[t];
                entropySum -= lp[t];
            }
            rewardRows[i] = Ppo.tokenRewards(kl, coef, score[i], truncated[i], penalty);
            klSum += rowKl;
            klMeanSum += lp.length == 0 ? 0 : rowKl / lp.length;
            scoreSum += score[i] - (truncated[i] ? penalty : 0);
            counted++;
        }
        if (o.whitenRewards()) {
            rewardRows = Ppo.whiten(rewardRows, false);
        }
        double[][] adv = new double[n][];
        List<float[]> returns = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            double[] v = new double[rewardRows[i].length];
            for (int t = 0; t < v.length; t++) {
                v[t] = values.get(i)[t];
            }
            double[][] gae = Ppo.gae(rewardRows[i], v, o.gamma(), o.lam());
            adv[i] = gae[0];
            returns.add(toFloats(gae[1]));
        }
        double[][] whitened = Ppo.whiten(adv, true);
        List<float[]> advantages = new ArrayList<>(n);
        for (double[] a : whitened) {
            advantages.add(toFloats(a));
        }
        double c = Math.max(1, counted);
        double nonScore = -coef * klSum / c;
        m.put("objective/kl", klSum / c);
        m.put("objective/entropy", entropySum / c);
        m.put("objective/non_score_reward", nonScore);
        m.put("objective/rlhf_reward", nonScore + scoreSum / c);
        m.put("objective/scores", scoreSum / c);
        m.put("objective/kl_coef", coef);
        m.put("val/num_eos_tokens", (double) eos);
        for (int k = 0; k < perFunction.length; k++) {
            m.put("rewards/" + rewards.functions().get(k).name() + "/mean", Advantages.nanMean(perFunction[k]));
        }
        m.put("reward", Advantages.nanMean(score));
        return new Rollout.PerToken(values, returns, advantages, coef, klMeanSum / c);
    }

    private Map<String, Double> rewardMeans(double[][] perFunction) {
        Map<String, Double> m = new LinkedHashMap<>();
        for (int k = 0; k < perFunction.length; k++) {
            m.put("rewards/" + rewards.functions().get(k).name() + "/mean", Advantages.nanMean(perFunction[k]));
        }
        return m;
    }

    /**
     * Online DPO's score of each sample, as TRL's {@code OnlineDPOTrainer}: the weighted sum of the rewards
     * with an abstaining one counted as 0 ({@code nansum}), minus {@code missing_eos_penalty} when the sample
     * has no eos.
     */
    private double[] pairScores(double[][] perFunction, boolean[] truncated) {
        double[] w = rewards.weights();
        double[] out = new double[truncated.length];
        for (int i = 0; i < out.length; i++) {
            double s = 0;
            for (int k = 0; k < perFunction.length; k++) {
                if (!Double.isNaN(perFunction[k][i])) {
                    s += w[k] * perFunction[k][i];
                }
            }
            out[i] = s - (truncated[i] && !Double.isNaN(rl.missingEosPenalty()) ? rl.missingEosPenalty() : 0);
        }
        return out;
    }

    /**
     * One Online DPO micro-batch of {@code batch_size} prompts, both samples of each: the one with the higher
     * score (the first on a tie) is chosen; the loss is DPO's −log σ(β·h) or IPO's (h − 1/(2β))², h = (log π(y_c) −
     * log π(y_r)) − (log π_ref(y_c) − log π_ref(y_r)) on sequence sums at temperature 1, averaged over the
     * pairs; TRL's metrics, with the KL and entropy summed over real tokens (TRL sums the padded matrix).
     */
    private MicroResult onlineDpoStep(
            int[] indices,
            NDManager scope,
            GradientCollector collector,
            double scale,
            Rollout r,
            Batch b,
            TokenLogProbs lp) {
        int rows = indices.length;
        int pairs = rows / 2;
        double beta = rl.beta();
        double[] score = r.advantages();
        long[] chosen = new long[pairs];
        long[] rejected = new long[pairs];
        float[] refSum = new float[rows];
        double scoreSum = 0;
        double marginSum = 0;
        double eos = 0;
        for (int j = 0; j < rows; j++) {
            double s = 0;
            for (float x : r.refLogProbs().get(indices[j])) {
                s += x;
            }
            refSum[j] = (float) s;
            scoreSum += score[indices[j]];
            eos += r.truncated()[indices[j]] ? 0 : 1;
        }
        for (int p = 0; p < pairs; p++) {
            // rows 2p and 2p + 1 are the prompt's samples 0 and 1
            boolean first = score[indices[2 * p]] >= score[indices[2 * p + 1]];
            chosen[p] = first ? 2 * p : 2 * p + 1;
            rejected[p] = first ? 2 * p + 1 : 2 * p;
            marginSum += score[indices[(int) chosen[p]]] - score[indices[(int) rejected[p]]];
        }
        NDArray seq = lp.sumPerRow(lp.logProbs());
        NDArray ref = scope.create(refSum);
        NDArray c = scope.create(chosen);
        NDArray rj = scope.create(rejected);
        NDArray chosenRatio = seq.get(c).sub(ref.get(c));
        NDArray rejectedRatio = seq.get(rj).sub(ref.get(rj));
        NDArray h = chosenRatio.sub(rejectedRatio);
        NDArray loss = rl.pairLoss() == LossType.IPO
                ? h.sub(1 / (2 * beta)).square().mean()
                : Activation.softPlus(PreferenceLoss.times(h, beta).neg()).mean();
        collector.backward(ScalarOps.times(loss, scale));
        NDArray s = seq.stopGradient();
        NDArray kl = s.sub(ref);
        NDArray rewardsChosen = chosenRatio.stopGradient().mul(beta);
        NDArray rewardsRejected = rejectedRatio.stopGradient().mul(beta);
        NDArray margins = rewardsChosen.sub(rewardsRejected);
        NDArray scores = scope.create(toFloats(score, indices));
        List<String> names = List.of(
                "objective/scores_margin",
                "objective/scores",
                "val/contain_eos_token",
                "logps/chosen",
                "logps/rejected",
                "objective/kl",
                "objective/non_score_reward",
                "objective/rlhf_reward",
                "objective/entropy",
                "rewards/chosen",
                "rewards/rejected",
                "rewards/margins",
                "rewards/accuracies",
                "beta");
        NDList metrics = new NDList();
        metrics.add(scope.create(new double[] {marginSum / pairs, scoreSum / rows, eos / rows}));
        for (NDArray x : List.of(
                s.get(c).mean(),
                s.get(rj).mean(),
                kl.mean(),
                kl.mul(-beta).mean(),
                scores.add(kl.mul(-beta)).mean(),
                s.neg().mean(),
                rewardsChosen.mean(),
                rewardsRejected.mean(),
                margins.mean(),
                margins.gt(0).toType(DataType.FLOAT32, false).mean())) {
            metrics.add(x.toType(DataType.FLOAT64, false).reshape(1));
        }
        metrics.add(scope.create(new double[] {beta}));
        return MicroResult.of(loss, NDArrays.concat(metrics), names, b.tokens());
    }

    private static float[] toFloats(double[] v) {
        float[] out = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            out[i] = (float) v[i];
        }
        return out;
    }

    /**
     * PPO's value estimates V_t for each completion token t, without gradients, in micro-batches: the value
     * model's output at the position that predicts the token (the prompt's last position for the first).
     */
    private List<float[]> scoreValues(List<int[]> prompts, List<int[]> completions, boolean[] scored) {
        return perToken(prompts, completions, scored, (scope, rows, batch) -> {
            Batch b = batch.get();
            return valueModel
                    .values(b.ids, b.attention, false, true)
                    .reshape(-1)
                    .get(valueIndex(
                            scope,
                            rows,
                            prompts,
                            completions,
                            scored,
                            b.ids.getShape().get(1)));
        });
    }

    /** Flat indices into [B·T] of the positions predicting each scored completion token, in token order. */
    private static NDArray valueIndex(
            NDManager scope, int[] rows, List<int[]> prompts, List<int[]> completions, boolean[] scored, long width) {
        int n = 0;
        for (int i : rows) {
            n += scored[i] ? completions.get(i).length : 0;
        }
        long[] idx = new long[n];
        int at = 0;
        for (int j = 0; j < rows.length; j++) {
            int i = rows[j];
            if (!scored[i]) {
                continue;
            }
            int p = prompts.get(i).length;
            for (int t = 0; t < completions.get(i).length; t++) {
                idx[at++] = j * width + p + t - 1;
            }
        }
        return scope.create(idx);
    }

    private static int[] range(int from, int to) {
        int[] r = new int[to - from];
        for (int i = from; i < to; i++) {
            r[i - from] = i;
        }
        return r;
    }

    private List<RewardFunction.Sample> samples(List<Sampler.Row> rows, List<int[]> completions, boolean[] truncated) {
        List<RewardFunction.Sample> out = new ArrayList<>(rows.size());
        for (int i = 0; i < rows.size(); i++) {
            PromptExample p = rows.get(i).prompt();
            out.add(new RewardFunction.Sample(
                    encoder.promptText(p.example()),
                    tokenizer.decode(completions.get(i), true),
                    completions.get(i),
                    truncated[i],
                    p.fields(),
                    p.source()));
        }
        return out;
    }

    /** TRL's completion-length metrics (before any masking). */
    private static void lengthMetrics(Map<String, Double> m, List<int[]> completions, boolean[] truncated) {
        double sum = 0;
        double min = Double.MAX_VALUE;
        double max = 0;
        double tSum = 0;
        double tMin = Double.MAX_VALUE;
        double tMax = 0;
        int terminated = 0;
        for (int i = 0; i < completions.size(); i++) {
            int len = completions.get(i).length;
            sum += len;
            min = Math.min(min, len);
            max = Math.max(max, len);
            if (!truncated[i]) {
                terminated++;
                tSum += len;
                tMin = Math.min(tMin, len);
                tMax = Math.max(tMax, len);
            }
        }
        int n = completions.size();
        m.put("completions/mean_length", sum / n);
        m.put("completions/min_length", min);
        m.put("completions/max_length", max);
        m.put("completions/clipped_ratio", (double) (n - terminated) / n);
        m.put("completions/mean_terminated_length", terminated == 0 ? 0 : tSum / terminated);
        m.put("completions/min_terminated_length", terminated == 0 ? 0 : tMin);
        m.put("completions/max_terminated_length", terminated == 0 ? 0 : tMax);
    }

    /** Per-token log-probs of each row's completion under a model, without gradients, in micro-batches. */
    private List<float[]> scorePerToken(
            CausalLm model, int[] promptIndex, List<int[]> prompts, List<int[]> completions, boolean[] scored) {
        return perToken(prompts, completions, scored, (scope, rows, batch) -> {
            SharedBatch shared = sharesPrompts()
                    ? SharedBatch.of(
                            model,
                            false,
                            scope,
                            rows,
                            promptIndex,
                            prompts,
                            completions,
                            scored,
                            tokenizer.padId(),
                            longest(prompts),
                            longest(completions))
                    : null;
            return shared != null
                    ? shared.tokenLogProbs(model, scoringTemperature(), false, false)
                            .logProbs()
                    : tokenLogProbs(model, batch.get());
        });
    }

    /**
     * Whether the method's passes compute each prompt once for all its samples ({@link SharedBatch}): GRPO,
     * whose every pass (old policy, reference, training) then shares. RLOO, PPO and Online DPO score their
     * rows as they are: RLOO's logged {@code kl} is a difference of two sequence sums some hundred times
     * larger than itself, and its loss a ratio of sequence sums made two ways (a float32 tensor sum and a
     * double one), so the shared pass's rounding (as exact as the rows', different from TRL's) moved them
     * past the parity test's 1e-4 relative / 1e-6 absolute on 2 of its 13 fixtures.
     */
    private boolean sharesPrompts() {
        return grpoLoss != null;
    }

    /** The per-token log-probs of a padded batch's scored tokens, without gradients. */
    private NDArray tokenLogProbs(CausalLm model, Batch b) {
        return model.completionTokenLogProbs(b.ids, b.attention, b.completionMask, scoringTemperature(), false, false)
                .logProbs();
    }

    private static int longest(List<int[]> rows) {
        int n = 0;
        for (int[] r : rows) {
            n = Math.max(n, r.length);
        }
        return n;
    }

    /** What a micro-batch of rows gives per scored completion token, flat in {@link TokenLogProbs}' order. */
    @FunctionalInterface
    private interface TokenScores {
        /**
         * @param scope owner of the micro-batch's arrays
         * @param rows the rollout's rows in it
         * @param batch makes the rows' right-padded batch (not made when a pass does not need it)
         * @return the flat values
         */
        NDArray of(NDManager scope, int[] rows, Supplier<Batch> batch);
    }

    /**
     * A per-token quantity of every row, without gradients, in micro-batches of at most batch_size rows and
     * {@link TokenBudget#DEFAULT_MAX_TOKENS} padded positions: one array per row, empty for a row left out of
     * the loss.
     */
    private List<float[]> perToken(List<int[]> prompts, List<int[]> completions, boolean[] scored, TokenScores scores) {
        List<float[]> out = new ArrayList<>(prompts.size());
        // at most batch_size rows, and at most TokenBudget's positions padded to the rollout's longest row
        // (long completions of a large batch otherwise make one pass as large as the whole rollout)
        int bs = (int) Math.max(
                1,
                Math.min(
                        config.batchSize(),
                        TokenBudget.DEFAULT_MAX_TOKENS / Math.max(1, longest(prompts) + longest(completions))));
        for (int from = 0; from < prompts.size(); from += bs) {
            int[] rows = range(from, Math.min(prompts.size(), from + bs));
            try (NDManager scope = policy.manager().newSubManager()) {
                float[] flat = scores.of(scope, rows, () -> batch(scope, rows, prompts, completions, scored))
                        .toType(DataType.FLOAT32, false)
                        .toFloatArray();
                int at = 0;
                for (int i : rows) {
                    int len = scored[i] ? completions.get(i).length : 0;
                    out.add(Arrays.copyOfRange(flat, at, at + len));
                    at += len;
                }
            }
        }
        return out;
    }

    /** A right-padded micro-batch of samples: prompt, completion, padding; completion mask off for masked rows. */
    private record Batch(NDArray ids, NDArray attention, NDArray completionMask, long tokens) {}

    private Batch batch(
            NDManager scope, int[] indices, List<int[]> prompts, List<int[]> completions, boolean[] scored) {
        List<EncodedPair> rows = new ArrayList<>();
        float[] keep = new float[indices.length];
        boolean all = true;
        for (int j = 0; j < indices.length; j++) {
            int i = indices[j];
            rows.add(new EncodedPair(prompts.get(i), completions.get(i), new int[0], null));
            keep[j] = scored[i] ? 1 : 0;
            all &= scored[i];
        }
        PreferenceBatch b = PreferenceBatch.completions(scope, rows, tokenizer.padId());
        NDArray mask = b.completionMask();
        if (!all) {
            NDArray rowKeep = scope.create(keep).reshape(-1, 1).toType(mask.getDataType(), false);
            mask = mask.mul(rowKeep);
        }
        return new Batch(b.ids(), b.attentionMask(), mask, b.tokens());
    }

    // ---------------------------------------------------------------------------------------------
    // the loss

    @Override
    protected MicroResult microStep(int[] indices, NDManager scope, GradientCollector collector, double scale) {
        Rollout r = rollout;
        // GRPO's samples of one prompt run it once (SharedBatch); the other methods use the rows
        SharedBatch shared = sharesPrompts()
                ? SharedBatch.of(
                        policy,
                        true,
                        scope,
                        indices,
                        r.promptIndex(),
                        r.promptIds(),
                        r.completionIds(),
                        r.scored(),
                        tokenizer.padId(),
                        longest(r.promptIds()),
                        longest(r.completionIds()))
                : null;
        Batch b = shared == null ? batch(scope, indices, r.promptIds(), r.completionIds(), r.scored()) : null;
        TokenLogProbs lp = shared != null
                ? shared.tokenLogProbs(policy, scoringTemperature(), true, true)
                : policy.completionTokenLogProbs(
                        b.ids, b.attention, b.completionMask, scoringTemperature(), true, true);
        if (ppoLoss != null) {
            return ppoStep(indices, scope, collector, scale, r, b, lp);
        }
        if (rl.method() == LossType.ONLINE_DPO) {
            return onlineDpoStep(indices, scope, collector, scale, r, b, lp);
        }
        NDArray adv = scope.create(toFloats(r.advantages(), indices));
        NDArray tokens = lp.tokens().sum();
        NDArray entropy = lp.entropy().sum().div(tokens.maximum(1f));
        List<String> names = new ArrayList<>();
        List<NDArray> values = new ArrayList<>();
        NDArray loss;
        if (grpoLoss != null) {
            NDArray old = r.oldLogProbs() == null ? null : flat(scope, r.oldLogProbs(), indices, r.scored());
            NDArray ref = r.refLogProbs() == null ? null : flat(scope, r.refLogProbs(), indices, r.scored());
            double normalizer = switch (rl.lossType()) {
                case DR_GRPO -> (double) indices.length * rl.maxCompletionLength();
                case DAPO -> r.scoredTokens();
                default -> 1;
            };
            GrpoLoss.Output out =
                    grpoLoss.forward(lp.logProbs(), old, ref, lp.perToken(adv), lp.owner(), lp.tokens(), normalizer);
            // TRL divides by the accumulation steps except for dapo, whose normalizer spans the generation
            loss = rl.lossType() == GrpoLoss.Aggregation.DAPO
                    ? ScalarOps.times(out.loss(), config.gradAccum())
                    : out.loss();
            NDArray denominator = tokens.maximum(1f);
            if (out.klSum() != null) {
                names.add("kl");
                values.add(out.klSum().div(denominator));
            }
            names.add("entropy");
            values.add(entropy);
            names.add("clip_ratio/low_mean");
            values.add(out.lowClipped().div(denominator));
            names.add("clip_ratio/high_mean");
            values.add(out.highClipped().div(denominator));
            names.add("clip_ratio/region_mean");
            values.add(out.lowClipped().add(out.highClipped()).div(denominator));
            names.add("clip_ratio/low_min");
            values.add(out.lowMin());
            names.add("clip_ratio/high_max");
            values.add(out.highMax());
        } else {
            NDArray seq = lp.sumPerRow(lp.logProbs());
            float[] oldSeq = new float[indices.length];
            for (int j = 0; j < indices.length; j++) {
                double s = 0;
                for (float x : r.oldLogProbs().get(indices[j])) {
                    s += x;
                }
                oldSeq[j] = (float) s;
            }
            RlooLoss.Output out = rlooLoss.forward(seq, scope.create(oldSeq), adv);
            loss = out.loss();
            names.add("entropy");
            values.add(entropy);
            names.add("clip_ratio/low_mean");
            values.add(out.lowClipped().mean());
            names.add("clip_ratio/low_min");
            values.add(out.lowClipped().min());
            names.add("clip_ratio/high_mean");
            values.add(out.highClipped().mean());
            names.add("clip_ratio/high_max");
            values.add(out.highClipped().max());
            names.add("clip_ratio/region_mean");
            values.add(out.lowClipped().add(out.highClipped()).mean());
        }
        collector.backward(ScalarOps.times(loss, scale));
        NDList metrics = new NDList();
        for (NDArray v : values) {
            metrics.add(v.stopGradient().toType(DataType.FLOAT64, false).reshape(1));
        }
        return MicroResult.of(loss, NDArrays.concat(metrics), names, shared != null ? shared.tokens() : b.tokens());
    }

    private static float[] toFloats(double[] v, int[] indices) {
        float[] out = new float[indices.length];
        for (int j = 0; j < indices.length; j++) {
            out[j] = (float) v[indices[j]];
        }
        return out;
    }

    /** The per-token values of the given rows laid out as {@link TokenLogProbs} orders them. */
    private static NDArray flat(NDManager scope, List<float[]> perRow, int[] indices, boolean[] scored) {
        int n = 0;
        for (int i : indices) {
            n += scored[i] ? perRow.get(i).length : 0;
        }
        float[] out = new float[n];
        int at = 0;
        for (int i : indices) {
            if (scored[i]) {
                float[] row = perRow.get(i);
                System.arraycopy(row, 0, out, at, row.length);
                at += row.length;
            }
        }
        return scope.create(out);
    }

    /**
     * One PPO micro-batch: the policy's log-probs and the value model's estimates at the completion tokens,
     * {@link PpoLoss} against the rollout's, and TRL's per-update statistics.
     */
    private MicroResult ppoStep(
            int[] indices,
            NDManager scope,
            GradientCollector collector,
            double scale,
            Rollout r,
            Batch b,
            TokenLogProbs lp) {
        Rollout.PerToken p = r.ppo();
        NDArray allValues = valueModel.values(b.ids, b.attention, true, true);
        NDArray v = allValues
                .reshape(-1)
                .get(valueIndex(
                        scope,
                        indices,
                        r.promptIds(),
                        r.completionIds(),
                        r.scored(),
                        b.ids.getShape().get(1)));
        PpoLoss.Output out = ppoLoss.forward(
                lp.logProbs(),
                flat(scope, r.oldLogProbs(), indices, r.scored()),
                flat(scope, p.advantages(), indices, r.scored()),
                v,
                flat(scope, p.values(), indices, r.scored()),
                flat(scope, p.returns(), indices, r.scored()));
        collector.backward(ScalarOps.times(out.loss(), scale));
        NDArray tokens = lp.tokens().sum().maximum(1f);
        List<String> names = List.of(
                "policy/approxkl_avg",
                "policy/clipfrac_avg",
                "loss/policy_avg",
                "loss/value_avg",
                "val/clipfrac_avg",
                "policy/entropy_avg",
                "val/ratio");
        NDList metrics = new NDList();
        for (NDArray x : List.of(
                out.approxKl(),
                out.clipFraction(),
                out.policyLoss(),
                out.valueLoss(),
                out.valueClipFraction(),
                lp.entropy().sum().div(tokens),
                out.ratio())) {
            metrics.add(x.stopGradient().toType(DataType.FLOAT64, false).reshape(1));
        }
        return MicroResult.of(out.loss(), NDArrays.concat(metrics), names, b.tokens());
    }

    @Override
    protected Map<String, Parameter> otherTrainedParameters() {
        if (valueModel == null) {
            return Map.of();
        }
        Map<String, Parameter> out = new LinkedHashMap<>();
        valueModel.trainableParameters().forEach((k, v) -> out.put(VALUE_MODEL_DIR + "." + k, v));
        return out;
    }

    // ---------------------------------------------------------------------------------------------
    // evaluation, state

    /**
     * Held-out prompts answered greedily ({@code max_completion_length} new tokens) and scored with the
     * run's rewards: {@code reward}, {@code rewards/NAME/mean}, {@code completions/mean_length}; the first
     * 16 answers go to {@code OUTPUT/samples.jsonl} (with the record's {@code answer} when it has one).
     */
    @Override
    protected Map<String, Double> evaluate() {
        if (eval.isEmpty()) {
            return Map.of();
        }
        Generator generator = new Generator(policy, tokenizer.padId(), tokenizer.eosIds());
        GenerationConfig greedy = GenerationConfig.greedy(rl.maxCompletionLength());
        List<int[]> completions = new ArrayList<>();
        for (int from = 0; from < evalIds.size(); from += config.evalBatchSize()) {
            completions.addAll(generator.generate(
                    evalIds.subList(from, Math.min(evalIds.size(), from + config.evalBatchSize())), greedy));
        }
        List<Sampler.Row> rows = new ArrayList<>();
        boolean[] truncated = new boolean[eval.size()];
        for (int i = 0; i < eval.size(); i++) {
            rows.add(new Sampler.Row(evalIds.get(i), 0, eval.get(i), 0));
            int[] c = completions.get(i);
            truncated[i] = c.length == 0 || !eosIds.contains(c[c.length - 1]);
        }
        List<RewardFunction.Sample> scored = samples(rows, completions, truncated);
        double[][] perFunction = rewards.score(scored);
        List<RunReport.Sample> shown = new ArrayList<>();
        for (int i = 0; i < Math.min(16, scored.size()); i++) {
            Object answer = eval.get(i).fields().get("answer");
            shown.add(new RunReport.Sample(
                    scored.get(i).prompt(),
                    answer == null ? null : String.valueOf(answer),
                    null,
                    "(not generated)", // an online run's evaluation answers with the policy only
                    scored.get(i).completion()));
        }
        try {
            RunReport.writeSamples(output().resolve("samples.jsonl"), shown);
        } catch (IOException e) {
            LOG.warn("Cannot write {}: {}", output().resolve("samples.jsonl"), e.getMessage());
        }
        Map<String, Double> m = new LinkedHashMap<>();
        m.put("reward", Advantages.nanMean(rewards.combine(perFunction)));
        for (int k = 0; k < perFunction.length; k++) {
            m.put("rewards/" + rewards.functions().get(k).name() + "/mean", Advantages.nanMean(perFunction[k]));
        }
        double len = 0;
        for (int[] c : completions) {
            len += c.length;
        }
        m.put("completions/mean_length", len / completions.size());
        return m;
    }

    @Override
    protected void saveState(Path checkpoint) throws IOException {
        if (rollout != null) {
            rollout.write(checkpoint.resolve(Rollout.FILE), tokensSeen);
        }
        if (valueModel != null) {
            Path dir = Files.createDirectories(checkpoint.resolve(VALUE_MODEL_DIR));
            valueModel.writeTo(dir, tokenizerDir, CausalLm.DEFAULT_SHARD_BYTES);
        }
    }

    @Override
    protected void restoreState(Path checkpoint) {
        Path f = checkpoint.resolve(Rollout.FILE);
        if (!Files.isRegularFile(f)) {
            return;
        }
        try {
            Rollout.Saved saved = Rollout.read(f);
            rollout = saved.rollout();
            tokensSeen = saved.tokensSeen();
        } catch (IOException e) {
            throw new IllegalArgumentException(f + ": cannot read: " + e.getMessage(), e);
        }
    }

    @Override
    public void close() {
        if (valueModel != null) {
            valueModel.close();
        }
        rewards.close();
        if (ownsReference) {
            reference.close();
        }
        policy.close();
        tokenizer.close();
        super.close();
    }
}
