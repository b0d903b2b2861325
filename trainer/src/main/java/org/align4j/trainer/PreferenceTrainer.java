package org.align4j.trainer;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.training.GradientCollector;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.align4j.data.EncodedPair;
import org.align4j.data.PreferenceBatch;
import org.align4j.evaluation.Divergence;
import org.align4j.losses.CombinedLoss;
import org.align4j.losses.FDivergence;
import org.align4j.losses.LossType;
import org.align4j.losses.PreferenceLoss;
import org.align4j.losses.RewardMetrics;
import org.align4j.model.CausalLm;
import org.align4j.model.Devices;
import org.align4j.model.LogProbs;
import org.align4j.model.ScalarOps;
import org.align4j.model.config.ModelConfig;
import org.align4j.model.io.ModelFolder;
import org.align4j.model.tokenizer.TextTokenizer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Preference fine-tuning (DPO, IPO and their relatives) of a causal LM against a reference policy.
 *
 * <pre>{@code
 * try (PreferenceTrainer trainer = PreferenceTrainer.builder()
 *         .model(Path.of("models/base")).data(Path.of("prefs.jsonl")).output(Path.of("runs/dpo"))
 *         .loss(LossType.DPO).beta(0.1).maxSteps(100)
 *         .build()) {
 *     TrainResult result = trainer.train();
 * }
 * }</pre>
 *
 * Each step: policy log-probs of chosen and rejected completions (2B rows, one forward pass),
 * reference log-probs (frozen model or cache), the objective on summed or mean log-probs as the
 * objective asks, backward, and TRL's metrics.
 */
public final class PreferenceTrainer extends TrainingLoop implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(PreferenceTrainer.class);
    private final TextTokenizer tokenizer;
    private final RunData data;
    private final ReferencePolicy reference;
    private final PreferenceLoss objective;
    private CausalLm klReference;

    private PreferenceTrainer(
            TrainConfig config,
            RunFolder folder,
            CausalLm policy,
            TextTokenizer tokenizer,
            RunData data,
            ReferencePolicy reference,
            PreferenceLoss objective) {
        super(config, policy, ModelFolder.resolve(Path.of(config.model())), folder);
        this.tokenizer = tokenizer;
        this.data = data;
        this.reference = reference;
        this.objective = objective;
    }

    /**
     * Loads everything a config names: tokenizer and data, the policy (from the newest checkpoint
     * when resuming), the reference policy and the objective.
     *
     * @param config the resolved config
     * @param resume continue from the newest checkpoint in the run folder (which must exist), or start a fresh run
     *     (in a folder that holds no run)
     * @return the trainer; close it to free the models and the run folder
     * @throws IOException when the run folder or the reference cache cannot be written
     */
    public static PreferenceTrainer create(TrainConfig config, boolean resume) throws IOException {
        return create(config, RunFolder.Mode.of(resume));
    }

    /**
     * As {@link #create(TrainConfig, boolean)}, with every way to start: fresh, overwrite, resume the
     * newest checkpoint, or resume a given one ({@link RunFolder.Mode}).
     *
     * @param config the resolved config
     * @param mode how the run uses its folder
     * @return the trainer; close it to free the models and the run folder
     * @throws IllegalArgumentException naming the key or flag when the folder cannot be used that way
     * @throws IOException when the run folder or the reference cache cannot be written
     */
    public static PreferenceTrainer create(TrainConfig config, RunFolder.Mode mode) throws IOException {
        requirePreference(config); // before the run folder is claimed (and created)
        return create(config, RunFolder.claim(config, mode));
    }

    /**
     * As {@link #create(TrainConfig, RunFolder.Mode)}, in a run folder already claimed (the CLI claims it
     * first, to send the log there); the trainer owns the folder from here and releases it when closed.
     *
     * @param config the resolved config
     * @param folder the claimed run folder of {@code config.output()}
     * @return the trainer
     * @throws IOException when the run folder or a cache cannot be written
     */
    public static PreferenceTrainer create(TrainConfig config, RunFolder folder) throws IOException {
        return create(config, folder, null);
    }

    /**
     * As {@link #create(TrainConfig, RunFolder)}, with a listener that hears the run from its start: the
     * precomputed reference's progress while the trainer is made ({@link TrainingListener#onPrepare}), then
     * every step (it is added as by {@link #addListener}).
     *
     * @param config the resolved config
     * @param folder the claimed run folder of {@code config.output()}
     * @param listener the listener, or null
     * @return the trainer
     * @throws IOException when the run folder or a cache cannot be written
     */
    public static PreferenceTrainer create(TrainConfig config, RunFolder folder, TrainingListener listener)
            throws IOException {
        TextTokenizer tokenizer = null;
        CausalLm policy = null;
        ReferencePolicy reference = null;
        try {
            requirePreference(config);
            Device device = Devices.resolve(config.device());
            PreferenceLoss objective = objective(config);
            tokenizer = TextTokenizer.load(Path.of(config.model()));
            RunData data = RunData.load(config, tokenizer, RunData.PAIRS);
            long withPreference =
                    data.train().stream().filter(p -> p.preference() != null).count();
            if (withPreference > 0 && config.objectives().stream().noneMatch(LossType::readsPairPreference)) {
                LOG.warn(
                        "{} of {} training pairs carry a preference probability; loss {} does not read it ({} do)",
                        withPreference,
                        data.train().size(),
                        config.lossName(),
                        String.join(
                                ", ",
                                LossType.preferenceTypes().stream()
                                        .filter(LossType::readsPairPreference)
                                        .map(LossType::toString)
                                        .toList()));
            }
            // a LoRA checkpoint is an adapter folder: its architecture is the base model's
            data.checkFits(ModelConfig.read(folder.resumeFrom()
                    .filter(p -> Files.isRegularFile(p.resolve("config.json")))
                    .orElseGet(() -> ModelFolder.resolve(Path.of(config.model())))
                    .resolve("config.json")));
            policy = config.loadModel(folder.resumeFrom().orElse(Path.of(config.model())), device, DataType.FLOAT32);
            prepareAdapters(policy, config);
            Path referenceDir = Path.of(config.referenceModelOrModel());
            if (!objective.usesReference()) {
                reference = null;
            } else if (config.reference() == TrainConfig.Reference.PRECOMPUTED) {
                Path cache = config.referenceCacheDir();
                reference = PrecomputedReference.load(
                        referenceDir,
                        device,
                        data.train(),
                        data.eval(),
                        cache,
                        tokenizer.padId(),
                        config.evalBatchSize(),
                        "pairs",
                        listener);
            } else if (policy.hasAdapters() && config.referenceModel() == null) {
                // LoRA: the reference is the policy with its adapters off, sharing its weights (TRL with a new PEFT
                // adapter)
                reference = new FrozenReference(policy.withoutAdapters());
                LOG.info("Reference policy: {} with the adapters off (no copy)", config.model());
            } else {
                DataType dtype = config.referenceDtype() == TrainConfig.ReferenceDtype.FP16
                        ? DataType.FLOAT16
                        : DataType.FLOAT32;
                reference = new FrozenReference(config.loadModel(referenceDir, device, dtype));
            }
            PreferenceTrainer trainer =
                    new PreferenceTrainer(config, folder, policy, tokenizer, data, reference, objective);
            if (listener != null) {
                trainer.addListener(listener);
            }
            return trainer;
        } catch (RuntimeException | IOException e) {
            if (reference != null) {
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
     * The run's objective: one {@link LossType} alone, or a {@link CombinedLoss} for a mix, weights, an
     * f-divergence or WPO weights.
     *
     * @param config the resolved config
     * @return the objective
     * @throws IllegalArgumentException naming what cannot be built
     */
    public static PreferenceLoss objective(TrainConfig config) {
        if (!config.combinedObjective()) {
            return create(config, config.loss());
        }
        List<CombinedLoss.Term> terms = new ArrayList<>();
        for (int i = 0; i < config.objectives().size(); i++) {
            LossType t = config.objectives().get(i);
            terms.add(new CombinedLoss.Term(
                    t,
                    t == LossType.SFT ? null : create(config, t),
                    config.objectiveWeights().get(i)));
        }
        return new CombinedLoss(config.beta(), terms, config.fDivergenceType(), config.fAlphaDivergenceCoef());
    }

    private static PreferenceLoss create(TrainConfig config, LossType t) {
        return t.create(
                config.beta(), config.labelSmoothing(), config.preference(), config.gamma(), config.discopopTau());
    }

    private static void requirePreference(TrainConfig config) {
        if (!config.loss().isPreference()) {
            throw new IllegalArgumentException("key 'loss': " + config.loss()
                    + " is not a preference objective; SftTrainer (align4j sft) trains it");
        }
    }

    /**
     * A typed builder over {@link TrainConfig}'s keys whose {@code build()} loads the trainer (not resuming).
     *
     * @return the builder
     * @throws java.io.UncheckedIOException from {@code build()} when the reference cache cannot be written
     */
    public static TrainConfig.Builder<PreferenceTrainer> builder() {
        return new TrainConfig.Builder<>(Map.of(), config -> {
            try {
                return create(config, false);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
    }

    /** @return the objective */
    public PreferenceLoss objective() {
        return objective;
    }

    /** @return the model being trained */
    public CausalLm policy() {
        return policy;
    }

    @Override
    protected int trainSize() {
        return data.train().size();
    }

    @Override
    protected int evalSize() {
        return data.eval().size();
    }

    @Override
    protected String objectiveSummary() {
        String ref = reference == null
                ? "no reference (reference-free)"
                : config.reference() == TrainConfig.Reference.PRECOMPUTED
                        ? "reference log-probs precomputed from " + config.referenceModelOrModel()
                        : policy.hasAdapters() && config.referenceModel() == null
                                ? "the policy with its adapters off (no copy)"
                                : "a frozen copy of " + config.referenceModelOrModel() + " ("
                                        + TrainConfig.configName(config.referenceDtype()) + ")";
        String modifiers = (config.fDivergenceType() != FDivergence.REVERSE_KL ? ", " + config.fDivergenceType() : "")
                + (config.ldAlpha() != 1 ? ", ld_alpha " + TrainConfig.defaultFormat(config.ldAlpha()) : "")
                + (config.useWeighting() ? ", WPO weights" : "")
                + (config.lossWeights().isEmpty() ? "" : ", weights " + config.lossWeights());
        return config.lossName() + ", beta " + TrainConfig.defaultFormat(config.beta()) + modifiers + "; " + ref;
    }

    @Override
    protected List<EncodedPair> heldOutPairs() {
        return data.eval();
    }

    @Override
    protected TextTokenizer tokenizer() {
        return tokenizer;
    }

    @Override
    protected int[] trainLengths() {
        return data.train().stream().mapToInt(EncodedPair::maxLength).toArray();
    }

    @Override
    protected String describe(int i) {
        return data.trainSources().get(i);
    }

    /** The names of {@link Scored#metrics}: TRL's reward metrics, then its token metrics. */
    private static final List<String> METRICS = Stream.concat(
                    RewardMetrics.NAMES.stream(),
                    Stream.of("entropy", "logits/chosen", "logits/rejected", "mean_token_accuracy"))
            .toList();

    /**
     * A batch scored: the objective's output and TRL's metrics as one device array.
     *
     * @param out the objective on the log-probs it reads (summed, or length-averaged for IPO and SimPO)
     * @param metrics {@link #METRICS}: rewards on summed log-probs for every objective with a reference, as TRL
     *     logs them, then the token metrics of the policy's pass
     */
    private record Scored(PreferenceLoss.Output out, NDArray metrics) {}

    private Scored score(
            PreferenceBatch batch, ReferencePolicy.Split split, int[] indices, NDManager scope, boolean training) {
        PreferenceBatch b = config.ldAlpha() == 1 ? batch : ldWeighted(batch, config.ldAlpha());
        ReferencePolicy.LogProbs ref = reference == null ? null : reference.logProbs(b, split, indices, scope);
        LogProbs lp = policy.completionLogProbs(b.ids(), b.attentionMask(), b.completionMask(), training, true);
        boolean mean = objective.reduction() == PreferenceLoss.Reduction.MEAN;
        int n = b.pairs();
        String chosen = "0:" + n;
        String rejected = n + ":";
        NDArray sum = lp.sum();
        NDArray perRow = mean ? lp.mean() : sum;
        NDArray rc = ref == null ? null : mean ? ref.chosenMean() : ref.chosenSum();
        NDArray rr = ref == null ? null : mean ? ref.rejectedMean() : ref.rejectedSum();
        PreferenceLoss.Output out;
        if (objective instanceof CombinedLoss mix) {
            NDArray weights = config.useWeighting() ? wpoWeights(lp, n) : null;
            out = mix.compute(
                    sum.get(chosen),
                    sum.get(rejected),
                    rc,
                    rr,
                    b.preference(),
                    lp.tokens().get(chosen),
                    lp.tokens().get(rejected),
                    weights);
        } else {
            out = objective.compute(perRow.get(chosen), perRow.get(rejected), rc, rr, b.preference());
        }
        // TRL reports log-probs and rewards on summed log-probs for every loss; a reference-free objective reports its
        // own
        NDArray reported = objective.usesReference() ? sum : perRow;
        NDArray pc = reported.get(chosen);
        NDArray pr = reported.get(rejected);
        NDList rewards = RewardMetrics.rewards(
                objective, out, pc, pr, ref == null ? null : ref.chosenSum(), ref == null ? null : ref.rejectedSum());
        NDArray metrics = NDArrays.concat(
                new NDList(RewardMetrics.tensor(rewards.get(0), rewards.get(1), pc, pr), tokenMetrics(lp, n)));
        return new Scored(out, metrics);
    }

    /**
     * TRL's token metrics of the policy's pass, from the statistics made with its log-probs: {@code
     * entropy} (mean over the completion tokens of both halves), {@code logits/chosen} and {@code
     * logits/rejected} (the mean logit over the vocabulary, averaged over each half's completion tokens) and
     * {@code mean_token_accuracy} (the share of the chosen completions' tokens that are the argmax).
     *
     * @return [4] float64
     */
    private static NDArray tokenMetrics(LogProbs lp, int n) {
        NDArray s = lp.statistics().toType(DataType.FLOAT64, false);
        NDArray t = lp.tokens().toType(DataType.FLOAT64, false);
        NDArray chosenTokens = t.get("0:" + n).sum().maximum(1);
        NDArray rejectedTokens = t.get(n + ":").sum().maximum(1);
        return NDArrays.stack(new NDList(
                s.get(":, 0").sum().div(t.sum().maximum(1)),
                s.get("0:" + n + ", 1").sum().div(chosenTokens),
                s.get(n + ":, 1").sum().div(rejectedTokens),
                s.get("0:" + n + ", 2").sum().div(chosenTokens)));
    }

    /**
     * WPO's weight of each pair (Zhou et al., 2024, Eq. 2, as TRL 1.13): for each completion, the exponential
     * of its mean over tokens of log p(y_t) − log Σ_v p(v)², without gradient; a pair's weight is the product
     * of its two completions'.
     *
     * @return [B]
     */
    private static NDArray wpoWeights(LogProbs lp, int n) {
        NDArray s = lp.statistics();
        NDArray aligned = s.get(":, 4").sub(s.get(":, 3")).div(lp.tokens().maximum(1));
        NDArray w = aligned.exp().stopGradient();
        return w.get("0:" + n).mul(w.get(n + ":"));
    }

    /**
     * LD-DPO's weights (Liu et al., 2024, "Length Desensitization in Directed Preference Optimization", as
     * TRL 1.13's ld_alpha): in each pair, the tokens of both completions up to the shorter one's length
     * weigh 1 and those past it α, carried by a floating-point completion mask.
     */
    private static PreferenceBatch ldWeighted(PreferenceBatch b, double alpha) {
        int n = b.pairs();
        NDArray mask = b.completionMask().toType(DataType.FLOAT32, false);
        NDArray position = mask.cumSum(1); // 1, 2, ... along each completion
        NDArray lengths = mask.sum(new int[] {1});
        NDArray shared = lengths.get("0:" + n).minimum(lengths.get(n + ":"));
        NDArray sharedPerRow = NDArrays.concat(new NDList(shared, shared)).reshape(-1, 1);
        NDArray tail = position.gt(sharedPerRow).toType(DataType.FLOAT32, false);
        NDArray weights = mask.mul(tail.mul((float) (alpha - 1)).add(1));
        return new PreferenceBatch(b.ids(), b.attentionMask(), weights, b.preference(), b.pairs(), b.tokens());
    }

    /** A micro-batch weighs its pairs: the step's loss is the mean over all of its pairs. */
    @Override
    protected long weight(int[] indices) {
        return indices.length;
    }

    @Override
    protected MicroResult microStep(int[] indices, NDManager scope, GradientCollector collector, double scale) {
        List<EncodedPair> pairs = new ArrayList<>(indices.length);
        for (int i : indices) {
            pairs.add(data.train().get(i));
        }
        PreferenceBatch b = PreferenceBatch.of(scope, pairs, tokenizer.padId());
        Scored s = score(b, ReferencePolicy.Split.TRAIN, indices, scope, true);
        NDArray loss = s.out().meanLoss();
        collector.backward(ScalarOps.times(loss, scale));
        return MicroResult.of(loss, s.metrics(), METRICS, b.tokens());
    }

    @Override
    protected Map<String, Double> evaluate() {
        if (data.eval().isEmpty()) {
            return Map.of();
        }
        Map<String, Double> sums = new LinkedHashMap<>();
        int total = 0;
        int bs = config.evalBatchSize();
        for (int from = 0; from < data.eval().size(); from += bs) {
            int to = Math.min(data.eval().size(), from + bs);
            int[] indices = IntStream.range(from, to).toArray();
            try (NDManager scope = policy.manager().newSubManager()) {
                PreferenceBatch b = PreferenceBatch.of(scope, data.eval().subList(from, to), tokenizer.padId());
                Scored s = score(b, ReferencePolicy.Split.EVAL, indices, scope, false);
                Map<String, Double> m = new LinkedHashMap<>();
                m.put("loss", s.out().meanLoss().toType(DataType.FLOAT64, false).getDouble());
                double[] metrics = s.metrics().toDoubleArray();
                for (int k = 0; k < metrics.length; k++) {
                    m.put(METRICS.get(k), metrics[k]);
                }
                CausalLm klReference = config.evalKl() ? referenceModelForKl() : null;
                if (klReference != null) {
                    List<int[]> prompts = new ArrayList<>();
                    List<int[]> chosen = new ArrayList<>();
                    for (EncodedPair p : data.eval().subList(from, to)) {
                        prompts.add(p.prompt());
                        chosen.add(p.chosen());
                    }
                    m.put(
                            "kl",
                            Divergence.mean(Divergence.perSequenceKl(
                                    policy, klReference, prompts, chosen, tokenizer.padId(), bs)));
                }
                int n = to - from;
                m.forEach((k, v) -> sums.merge(k, v * n, Double::sum));
                total += n;
            }
        }
        Map<String, Double> out = new LinkedHashMap<>();
        final int count = total;
        sums.forEach((k, v) -> out.put(k, v / count));
        return out;
    }

    /**
     * The reference model for {@code eval_kl}: the frozen copy, or (with precomputed log-probs) the
     * reference loaded once, for evaluation only.
     */
    private CausalLm referenceModelForKl() {
        if (reference instanceof FrozenReference f) {
            return f.model();
        }
        if (reference == null) {
            return null;
        }
        if (policy.hasAdapters() && config.referenceModel() == null) {
            return policy.withoutAdapters();
        }
        if (klReference == null) {
            LOG.info(
                    "eval_kl: loading the reference model {} for evaluation (eval_kl: false skips this)",
                    config.referenceModelOrModel());
            klReference = config.loadModel(Path.of(config.referenceModelOrModel()), policy.device(), DataType.FLOAT32);
            klReference.setTrainable(false);
        }
        return klReference;
    }

    @Override
    public void close() {
        if (klReference != null) {
            klReference.close();
        }
        if (reference != null) {
            reference.close();
        }
        policy.close();
        tokenizer.close();
        super.close();
    }
}
