package org.align4j.trainer;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.training.GradientCollector;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.align4j.data.EncodedPair;
import org.align4j.data.PreferenceBatch;
import org.align4j.data.PreferenceData;
import org.align4j.evaluation.Divergence;
import org.align4j.losses.PreferenceLoss;
import org.align4j.losses.RewardMetrics;
import org.align4j.model.CausalLm;
import org.align4j.model.Devices;
import org.align4j.model.LogProbs;
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
 *     TrainResult result = trainer.train(false);
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

    private PreferenceTrainer(TrainConfig config, CausalLm policy, TextTokenizer tokenizer, RunData data, ReferencePolicy reference,
            PreferenceLoss objective) {
        super(config, policy, Path.of(config.model()), Path.of(config.output()));
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
     * @param resume start the policy from the newest checkpoint in the run folder, if any
     * @return the trainer; close it to free the models
     * @throws IOException when the reference cache cannot be written
     */
    public static PreferenceTrainer create(TrainConfig config, boolean resume) throws IOException {
        if (!config.loss().isPreference()) {
            throw new IllegalArgumentException("key 'loss': " + config.loss() + " is not a preference objective; SftTrainer (align4j sft) trains it");
        }
        Device device = Devices.resolve(config.device());
        PreferenceLoss objective = config.loss().create(config.beta(), config.labelSmoothing(), config.preference(), config.gamma());
        TextTokenizer tokenizer = TextTokenizer.load(Path.of(config.model()));
        CausalLm policy = null;
        ReferencePolicy reference = null;
        try {
            RunData data = RunData.load(config, tokenizer, (path, format, skip) -> PreferenceData.load(path, format, skip).examples());
            Path start = Path.of(config.model());
            if (resume) {
                start = Checkpoints.latest(Path.of(config.output())).orElse(start);
            }
            policy = config.loadModel(start, device, DataType.FLOAT32);
            prepareAdapters(policy, config);
            Path referenceDir = Path.of(config.referenceModelOrModel());
            if (!objective.usesReference()) {
                reference = null;
            } else if (config.reference() == TrainConfig.Reference.PRECOMPUTED) {
                Path cache = config.cacheDir() != null ? Path.of(config.cacheDir()) : Path.of(config.output(), "cache");
                reference = PrecomputedReference.load(referenceDir, device, data.train(), data.eval(), cache, tokenizer.padId(),
                        config.evalBatchSize());
            } else if (policy.hasAdapters() && config.referenceModel() == null) {
                // LoRA: the reference is the policy with its adapters off, sharing its weights (TRL with a new PEFT adapter)
                reference = new FrozenReference(policy.withoutAdapters());
                LOG.info("Reference policy: {} with the adapters off (no copy)", config.model());
            } else {
                DataType dtype = config.referenceDtype() == TrainConfig.ReferenceDtype.FP16 ? DataType.FLOAT16 : DataType.FLOAT32;
                reference = new FrozenReference(config.loadModel(referenceDir, device, dtype));
            }
            return new PreferenceTrainer(config, policy, tokenizer, data, reference, objective);
        } catch (RuntimeException | IOException e) {
            if (policy != null) {
                policy.close();
            }
            tokenizer.close();
            throw e;
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
    protected int[] trainLengths() {
        return data.train().stream().mapToInt(EncodedPair::maxLength).toArray();
    }

    @Override
    protected String describe(int i) {
        return data.trainSources().get(i);
    }

    /** Policy and reference log-probs of a batch, the objective, and its metrics. */
    private record Scored(PreferenceLoss.Output out, NDArray policyChosen, NDArray policyRejected) {}

    private Scored score(PreferenceBatch b, ReferencePolicy.Split split, int[] indices, NDManager scope, boolean training) {
        ReferencePolicy.LogProbs ref = reference == null ? null : reference.logProbs(b, split, indices, scope);
        LogProbs lp = policy.completionLogProbs(b.ids(), b.attentionMask(), b.completionMask(), training);
        boolean mean = objective.reduction() == PreferenceLoss.Reduction.MEAN;
        NDArray perRow = mean ? lp.mean() : lp.sum();
        int n = b.pairs();
        NDArray pc = perRow.get("0:" + n);
        NDArray pr = perRow.get(n + ":");
        NDArray rc = ref == null ? null : mean ? ref.chosenMean() : ref.chosenSum();
        NDArray rr = ref == null ? null : mean ? ref.rejectedMean() : ref.rejectedSum();
        return new Scored(objective.compute(pc, pr, rc, rr, b.preference()), pc, pr);
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
        collector.backward(org.align4j.model.ScalarOps.times(loss, scale));
        return MicroResult.of(loss, RewardMetrics.tensor(s.out(), s.policyChosen(), s.policyRejected()), RewardMetrics.NAMES, b.pairs(),
                b.tokens());
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
            int[] indices = java.util.stream.IntStream.range(from, to).toArray();
            try (NDManager scope = policy.manager().newSubManager()) {
                PreferenceBatch b = PreferenceBatch.of(scope, data.eval().subList(from, to), tokenizer.padId());
                Scored s = score(b, ReferencePolicy.Split.EVAL, indices, scope, false);
                Map<String, Double> m = new LinkedHashMap<>();
                m.put("loss", s.out().meanLoss().toType(DataType.FLOAT64, false).getDouble());
                m.putAll(RewardMetrics.of(s.out(), s.policyChosen(), s.policyRejected()));
                CausalLm klReference = config.evalKl() ? referenceModelForKl() : null;
                if (klReference != null) {
                    List<int[]> prompts = new ArrayList<>();
                    List<int[]> chosen = new ArrayList<>();
                    for (EncodedPair p : data.eval().subList(from, to)) {
                        prompts.add(p.prompt());
                        chosen.add(p.chosen());
                    }
                    m.put("kl", Divergence.mean(Divergence.perSequenceKl(policy, klReference, prompts, chosen, tokenizer.padId(), bs)));
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
            LOG.info("eval_kl: loading the reference model {} for evaluation (eval_kl: false skips this)", config.referenceModelOrModel());
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
    }
}
