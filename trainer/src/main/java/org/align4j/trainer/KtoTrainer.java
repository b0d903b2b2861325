package org.align4j.trainer;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
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
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.IntStream;
import org.align4j.data.DataException;
import org.align4j.data.EncodedPair;
import org.align4j.data.EncodingOptions;
import org.align4j.data.PreferenceBatch;
import org.align4j.data.PreferenceEncoder;
import org.align4j.data.UnpairedData;
import org.align4j.data.UnpairedExample;
import org.align4j.losses.KtoLoss;
import org.align4j.losses.LossType;
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
 * Kahneman–Tversky Optimization ({@link KtoLoss}) on unpaired feedback, as TRL 1.13's {@code KTOTrainer}:
 * records {@code {prompt, completion, label}} (or preference pairs unpaired on request, {@link
 * UnpairedData}), a reference policy (a frozen copy, its log-probs precomputed, or the policy with its
 * LoRA adapters off), and TRL's metrics.
 *
 * <p>The data are taken in order (TRL's {@code train_sampling_strategy: sequential}), in batches of {@code
 * batch_size}. The KL reference point of a batch is estimated from mismatched pairs made as TRL makes them:
 * each example's prompt with the completion of the previous example of its batch (the first with the
 * last's), where the batches are consecutive runs of {@code batch_size} examples of the dataset, held-out
 * data included; the policy scores them without gradient, the reference as it scores the completions. A
 * step logs {@code loss}, {@code kl}, {@code entropy}, {@code logits/chosen}, {@code logits/rejected},
 * {@code rewards/chosen}, {@code logps/chosen}, {@code rewards/rejected}, {@code logps/rejected} and {@code
 * rewards/margins} under TRL's names and meanings ("chosen" being the desirable examples); a micro-batch
 * without a desirable (undesirable) example adds nothing to the chosen (rejected) ones, and margins need
 * both, as in TRL.
 *
 * <pre>{@code
 * try (KtoTrainer t = KtoTrainer.builder().model(base).data(feedback).output(run)
 *         .set("desirable_weight", 1.0).set("undesirable_weight", 1.33).maxSteps(1000).build()) {
 *     t.train();
 * }
 * }</pre>
 */
public final class KtoTrainer extends TrainingLoop implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(KtoTrainer.class);
    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory()
            .disable(YAMLGenerator.Feature.WRITE_DOC_START_MARKER)
            .enable(YAMLGenerator.Feature.MINIMIZE_QUOTES));

    /** The metrics of a micro-batch, in TRL's order; those after {@code entropy} come with their presence. */
    static final List<String> METRICS = List.of(
            "kl",
            "entropy",
            "logits/chosen",
            "logits/rejected",
            "rewards/chosen",
            "logps/chosen",
            "rewards/rejected",
            "logps/rejected",
            "rewards/margins");

    private static final List<String> NAMES = names();

    private static List<String> names() {
        List<String> n = new ArrayList<>(METRICS);
        for (String m : METRICS.subList(2, METRICS.size())) {
            n.add(m + PRESENT);
        }
        return List.copyOf(n);
    }

    private final KtoConfig kto;
    private final KtoLoss objective;
    private final TextTokenizer tokenizer;
    private final Examples train;
    private final Examples eval;
    private final ReferencePolicy reference;

    /**
     * A dataset's examples as training reads them.
     *
     * @param pairs per example: its prompt, its completion, and the completion of its mismatched pair (the
     *     previous example's in its batch; empty for apo_zero_unpaired), so that {@link PreferenceBatch#of}
     *     lays out the completions in rows 0..B−1 and the mismatched pairs in rows B..2B−1
     * @param desirable each example's label
     * @param sources file:line of each
     */
    public record Examples(List<EncodedPair> pairs, boolean[] desirable, List<String> sources) {
        /** @return the number of examples */
        public int size() {
            return pairs.size();
        }

        /** @return how many are desirable */
        public long desirableCount() {
            return IntStream.range(0, desirable.length)
                    .filter(i -> desirable[i])
                    .count();
        }
    }

    private KtoTrainer(
            KtoConfig.Run run,
            RunFolder folder,
            CausalLm policy,
            TextTokenizer tokenizer,
            Examples train,
            Examples eval,
            ReferencePolicy reference) {
        super(run.train(), policy, ModelFolder.resolve(Path.of(run.train().model())), folder);
        this.kto = run.kto();
        this.objective = run.kto().loss(run.train());
        this.tokenizer = tokenizer;
        this.train = train;
        this.eval = eval;
        this.reference = reference;
    }

    /**
     * Loads everything a run names: tokenizer and data, the policy (from the newest checkpoint when
     * resuming), the reference policy.
     *
     * @param run the resolved shared and KTO options
     * @param mode how the run uses its folder: fresh, overwrite or resume
     * @return the trainer; close it to free the models and the run folder
     * @throws IllegalArgumentException naming the key at fault
     * @throws IOException when the run folder or the reference cache cannot be written
     */
    public static KtoTrainer create(KtoConfig.Run run, RunFolder.Mode mode) throws IOException {
        check(run);
        return create(run, RunFolder.claim(run.train(), mode));
    }

    /**
     * As {@link #create(KtoConfig.Run, RunFolder.Mode)}, in a run folder already claimed (the CLI claims it
     * first, to send the log there); the trainer owns the folder from here and releases it when closed.
     *
     * @param run the resolved options
     * @param folder the claimed run folder
     * @return the trainer
     * @throws IOException when the run folder or a cache cannot be written
     */
    public static KtoTrainer create(KtoConfig.Run run, RunFolder folder) throws IOException {
        return create(run, folder, null);
    }

    /**
     * As {@link #create(KtoConfig.Run, RunFolder)}, with a listener that hears the run from its start: the
     * precomputed reference's progress while the trainer is made ({@link TrainingListener#onPrepare}), then
     * every step.
     *
     * @param run the resolved options
     * @param folder the claimed run folder
     * @param listener the listener, or null
     * @return the trainer
     * @throws IOException when the run folder or a cache cannot be written
     */
    public static KtoTrainer create(KtoConfig.Run run, RunFolder folder, TrainingListener listener) throws IOException {
        TrainConfig config = run.train();
        TextTokenizer tokenizer = null;
        CausalLm policy = null;
        ReferencePolicy reference = null;
        try {
            check(run);
            Device device = Devices.resolve(config.device());
            tokenizer = TextTokenizer.load(Path.of(config.model()));
            Examples[] data = load(run, tokenizer);
            ModelConfig architecture = ModelConfig.read(folder.resumeFrom()
                    .filter(p -> Files.isRegularFile(p.resolve("config.json")))
                    .orElseGet(() -> ModelFolder.resolve(Path.of(config.model())))
                    .resolve("config.json"));
            EncodedPair.checkFits(architecture, data[0].pairs(), data[0].sources());
            EncodedPair.checkFits(architecture, data[1].pairs(), data[1].sources());
            policy = config.loadModel(folder.resumeFrom().orElse(Path.of(config.model())), device, DataType.FLOAT32);
            prepareAdapters(policy, config);
            Path referenceDir = Path.of(config.referenceModelOrModel());
            if (config.reference() == TrainConfig.Reference.PRECOMPUTED) {
                reference = PrecomputedReference.load(
                        referenceDir,
                        device,
                        data[0].pairs(),
                        data[1].pairs(),
                        config.referenceCacheDir(),
                        tokenizer.padId(),
                        config.evalBatchSize(),
                        "examples",
                        listener);
            } else if (policy.hasAdapters() && config.referenceModel() == null) {
                reference = new FrozenReference(policy.withoutAdapters());
                LOG.info("Reference policy: {} with the adapters off (no copy)", config.model());
            } else {
                DataType dtype = config.referenceDtype() == TrainConfig.ReferenceDtype.FP16
                        ? DataType.FLOAT16
                        : DataType.FLOAT32;
                reference = new FrozenReference(config.loadModel(referenceDir, device, dtype));
            }
            KtoTrainer trainer = new KtoTrainer(run, folder, policy, tokenizer, data[0], data[1], reference);
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
     * The checks a run makes before it loads anything (also {@code --dry-run}'s).
     *
     * @param run the resolved options
     * @throws IllegalArgumentException naming the key at fault
     */
    public static void check(KtoConfig.Run run) {
        TrainConfig c = run.train();
        if (c.loss() != LossType.KTO) {
            throw new IllegalArgumentException("key 'loss': the kto trainer trains kto, got " + c.loss());
        }
        if (run.kto().lossType().usesReferencePoint() && c.batchSize() < 2) {
            throw new IllegalArgumentException("key 'batch_size': kto needs at least 2 examples per micro-batch, got "
                    + c.batchSize() + ": its KL estimate pairs each prompt with another example's completion in the"
                    + " batch (TRL refuses 1 too; loss_type apo_zero_unpaired has no KL estimate)");
        }
    }

    /**
     * A typed builder over the shared keys, with KTO's own by name ({@code set("desirable_weight", 1.33)});
     * {@code build()} loads the trainer (a fresh run).
     *
     * @return the builder
     * @throws UncheckedIOException from {@code build()} when the run folder cannot be written
     */
    public static TrainConfig.Builder<KtoTrainer> builder() {
        return new TrainConfig.Builder<>(Map.of("loss", LossType.KTO), KtoConfig.ownedKeys(), (config, own) -> {
            try {
                return create(new KtoConfig.Run(config, KtoConfig.of(own)), RunFolder.Mode.fresh());
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
    }

    /**
     * Reads, unpairs (when asked), splits and encodes a run's data, as training reads it.
     *
     * @param run the resolved options
     * @param tokenizer the model's tokenizer
     * @return the training and the held-out examples
     * @throws DataException naming the record at fault
     */
    public static Examples[] load(KtoConfig.Run run, TextTokenizer tokenizer) {
        TrainConfig c = run.train();
        boolean unpair = run.kto().unpairPreferenceDataset();
        List<UnpairedData.Item> trainItems = UnpairedData.read(Path.of(c.data()), c.format(), c.skipInvalid(), unpair);
        List<UnpairedData.Item> evalItems = List.of();
        if (c.evalData() != null) {
            evalItems = UnpairedData.read(Path.of(c.evalData()), c.format(), c.skipInvalid(), unpair);
        } else if (c.evalFraction() > 0) {
            UnpairedData.Split split = UnpairedData.split(trainItems, c.evalFraction(), c.seed());
            trainItems = split.train();
            evalItems = split.eval();
        }
        // completions are cut to max_length with their own prompt, and each mismatched pair with its prompt,
        // as TRL's collator cuts every sequence: so the encoder keeps them whole
        EncodingOptions whole =
                new EncodingOptions(0, c.maxPromptLength(), c.truncation(), c.chatTemplate(), c.chatTemplateKwargs());
        PreferenceEncoder encoder = new PreferenceEncoder(tokenizer, whole);
        int[] dropped = {0};
        Examples trainSet = encode(run, encoder, UnpairedData.examples(trainItems), dropped);
        Examples evalSet = encode(run, encoder, UnpairedData.examples(evalItems), dropped);
        if (dropped[0] > 0) {
            LOG.warn("{} example(s) dropped: their prompt fills max_length {}", dropped[0], c.maxLength());
        }
        if (trainSet.size() == 0) {
            throw new IllegalArgumentException(
                    "key 'data': no training examples left after truncation (max_length " + c.maxLength() + ")");
        }
        long desirable = trainSet.desirableCount();
        LOG.info(
                "{} training examples ({} desirable, {} undesirable) and {} held out",
                trainSet.size(),
                desirable,
                trainSet.size() - desirable,
                evalSet.size());
        warnWeights(run.kto(), desirable, trainSet.size() - desirable);
        return new Examples[] {trainSet, evalSet};
    }

    /** TRL's advice (the KTO paper's eq. 8) when the weights do not balance unequal counts. */
    private static void warnWeights(KtoConfig kto, long nd, long nu) {
        long d = Math.max(nd, 1);
        long u = Math.max(nu, 1);
        if (d == u) {
            return;
        }
        double dLow = round2(u * kto.undesirableWeight() / d);
        double dHigh = round2(u * kto.undesirableWeight() / d * 1.33);
        double uLow = round2(d * kto.desirableWeight() / u / 1.33);
        double uHigh = round2(d * kto.desirableWeight() / u);
        boolean dOk = dLow <= kto.desirableWeight() && kto.desirableWeight() <= dHigh;
        boolean uOk = uLow <= kto.undesirableWeight() && kto.undesirableWeight() <= uHigh;
        if (!dOk && !uOk) {
            LOG.warn(
                    "{} desirable and {} undesirable examples: the KTO paper (eq. 8) suggests desirable_weight in"
                            + " [{}, {}] or undesirable_weight in [{}, {}] (not both)",
                    nd,
                    nu,
                    dLow,
                    dHigh,
                    uLow,
                    uHigh);
        }
    }

    private static double round2(double x) {
        return Math.round(x * 100) / 100.0;
    }

    private static Examples encode(
            KtoConfig.Run run, PreferenceEncoder encoder, List<UnpairedExample> examples, int[] dropped) {
        TrainConfig c = run.train();
        List<int[]> prompts = new ArrayList<>();
        List<int[]> completions = new ArrayList<>();
        List<Boolean> labels = new ArrayList<>();
        List<String> sources = new ArrayList<>();
        List<DataException> invalid = new ArrayList<>();
        for (UnpairedExample e : examples) {
            Optional<EncodedPair> p;
            try {
                p = encoder.encode(e.example());
            } catch (DataException ex) {
                if (!c.skipInvalid()) {
                    throw ex;
                }
                invalid.add(ex);
                continue;
            }
            int[] prompt = p.orElseThrow().prompt();
            int[] completion = p.get().chosen();
            if (c.maxLength() > 0) {
                if (prompt.length >= c.maxLength()) {
                    dropped[0]++;
                    continue;
                }
                completion = Arrays.copyOf(completion, Math.min(completion.length, c.maxLength() - prompt.length));
            }
            prompts.add(prompt);
            completions.add(completion);
            labels.add(e.desirable());
            sources.add(e.source());
        }
        if (!invalid.isEmpty()) {
            LOG.warn(
                    "Skipped {} record(s) the chat template or tokenizer refused; first: {}",
                    invalid.size(),
                    invalid.get(0).getMessage());
        }
        boolean withKl = run.kto().lossType().usesReferencePoint();
        int bs = c.batchSize();
        List<EncodedPair> pairs = new ArrayList<>();
        boolean[] desirable = new boolean[prompts.size()];
        for (int i = 0; i < prompts.size(); i++) {
            int start = i - i % bs;
            int end = Math.min(prompts.size(), start + bs);
            int partner = i == start ? end - 1 : i - 1;
            int[] kl = new int[0];
            if (withKl) {
                kl = completions.get(partner);
                if (c.maxLength() > 0) {
                    kl = Arrays.copyOf(kl, Math.min(kl.length, c.maxLength() - prompts.get(i).length));
                }
            }
            pairs.add(new EncodedPair(prompts.get(i), completions.get(i), kl, null));
            desirable[i] = labels.get(i);
        }
        return new Examples(List.copyOf(pairs), desirable, List.copyOf(sources));
    }

    /** @return the objective */
    public KtoLoss objective() {
        return objective;
    }

    /** @return the model being trained */
    public CausalLm policy() {
        return policy;
    }

    @Override
    protected int trainSize() {
        return train.size();
    }

    @Override
    protected int evalSize() {
        return eval.size();
    }

    /** The examples are taken in order: each one's mismatched pair is its predecessor's in the batch. */
    @Override
    protected boolean shuffle() {
        return false;
    }

    @Override
    protected String objectiveSummary() {
        String ref = config.reference() == TrainConfig.Reference.PRECOMPUTED
                ? "reference log-probs precomputed from " + config.referenceModelOrModel()
                : policy.hasAdapters() && config.referenceModel() == null
                        ? "the policy with its adapters off (no copy)"
                        : "a frozen copy of " + config.referenceModelOrModel() + " ("
                                + TrainConfig.configName(config.referenceDtype()) + ")";
        return kto.lossType() + ", beta " + TrainConfig.defaultFormat(config.beta()) + ", desirable_weight "
                + TrainConfig.defaultFormat(kto.desirableWeight()) + ", undesirable_weight "
                + TrainConfig.defaultFormat(kto.undesirableWeight()) + "; " + train.desirableCount()
                + " desirable and " + (train.size() - train.desirableCount()) + " undesirable examples; " + ref;
    }

    @Override
    protected TextTokenizer tokenizer() {
        return tokenizer;
    }

    @Override
    protected int[] trainLengths() {
        return train.pairs().stream().mapToInt(EncodedPair::maxLength).toArray();
    }

    @Override
    protected String describe(int i) {
        return train.sources().get(i);
    }

    @Override
    protected String configYaml() {
        try {
            @SuppressWarnings("unchecked")
            Map<String, Object> all = YAML.readValue(config.toYaml(), LinkedHashMap.class);
            all.putAll(kto.toMap());
            return YAML.writeValueAsString(all);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A micro-batch weighs its examples: the step's loss is the mean over all of them. */
    @Override
    protected long weight(int[] indices) {
        return indices.length;
    }

    /**
     * A batch scored: the loss, and {@link #NAMES}' values as one float64 device array.
     *
     * @param loss the mean loss over the batch's examples
     * @param metrics the metrics and their presences
     * @param tokens the real tokens of the batch's completion rows (TRL's num_tokens)
     */
    private record Scored(NDArray loss, NDArray metrics, long tokens) {}

    private Scored score(Examples set, ReferencePolicy.Split split, int[] indices, NDManager scope, boolean training) {
        List<EncodedPair> pairs = new ArrayList<>(indices.length);
        List<EncodedPair> mismatched = new ArrayList<>(indices.length);
        boolean[] labels = new boolean[indices.length];
        int desirable = 0;
        for (int k = 0; k < indices.length; k++) {
            EncodedPair p = set.pairs().get(indices[k]);
            pairs.add(p);
            mismatched.add(new EncodedPair(p.prompt(), p.rejected(), new int[0], null));
            labels[k] = set.desirable()[indices[k]];
            desirable += labels[k] ? 1 : 0;
        }
        int undesirable = indices.length - desirable;
        int padId = tokenizer.padId();
        // the mismatched pairs first, as TRL: the policy's without gradient, in the step's mode
        NDArray policyKl = null;
        if (objective.type().usesReferencePoint()) {
            PreferenceBatch kl = PreferenceBatch.completions(scope, mismatched, padId);
            policyKl = CausalLm.withoutGradients(
                    () -> policy.completionLogProbs(kl.ids(), kl.attentionMask(), kl.completionMask(), training)
                            .sum());
        }
        // rows 0..B-1 the completions, B..2B-1 the mismatched pairs: one reference pass (or cache lookup)
        ReferencePolicy.LogProbs ref =
                reference.logProbs(PreferenceBatch.of(scope, pairs, padId), split, indices, scope);
        PreferenceBatch main = PreferenceBatch.completions(scope, pairs, padId);
        LogProbs lp =
                policy.completionLogProbs(main.ids(), main.attentionMask(), main.completionMask(), training, true);
        NDArray z = policyKl == null ? null : KtoLoss.referencePoint(policyKl, ref.rejectedSum());
        NDArray label = scope.create(labels);
        KtoLoss.Output out = objective.compute(lp.sum(), ref.chosenSum(), label, z);
        NDArray d = label.toType(DataType.FLOAT64, false);
        NDArray u = d.neg().add(1);
        NDArray s = lp.statistics().toType(DataType.FLOAT64, false);
        NDArray tokens = lp.tokens().toType(DataType.FLOAT64, false);
        NDArray rewards = out.rewards().toType(DataType.FLOAT64, false);
        NDArray logps = lp.sum().stopGradient().toType(DataType.FLOAT64, false);
        NDArray chosenTokens = tokens.mul(d).sum().maximum(1);
        NDArray rejectedTokens = tokens.mul(u).sum().maximum(1);
        NDArray logitsChosen = s.get(":, 1").mul(d).sum().div(chosenTokens);
        NDArray logitsRejected = s.get(":, 1").mul(u).sum().div(rejectedTokens);
        NDArray rewardsChosen = rewards.mul(d).sum().div(Math.max(desirable, 1));
        NDArray rewardsRejected = rewards.mul(u).sum().div(Math.max(undesirable, 1));
        double hasChosen = desirable > 0 ? 1 : 0;
        double hasRejected = undesirable > 0 ? 1 : 0;
        double hasBoth = hasChosen * hasRejected;
        NDManager m = scope;
        NDArray metrics = NDArrays.stack(new NDList(
                z == null ? m.create(0.0) : z.toType(DataType.FLOAT64, false).reshape(),
                s.get(":, 0").sum().div(tokens.sum().maximum(1)),
                logitsChosen.mul(hasChosen),
                logitsRejected.mul(hasRejected),
                rewardsChosen.mul(hasChosen),
                logps.mul(d).sum().div(Math.max(desirable, 1)).mul(hasChosen),
                rewardsRejected.mul(hasRejected),
                logps.mul(u).sum().div(Math.max(undesirable, 1)).mul(hasRejected),
                rewardsChosen.sub(rewardsRejected).mul(hasBoth),
                m.create(hasChosen),
                m.create(hasRejected),
                m.create(hasChosen),
                m.create(hasChosen),
                m.create(hasRejected),
                m.create(hasRejected),
                m.create(hasBoth)));
        return new Scored(out.meanLoss(), metrics, main.tokens());
    }

    @Override
    protected MicroResult microStep(int[] indices, NDManager scope, GradientCollector collector, double scale) {
        Scored s = score(train, ReferencePolicy.Split.TRAIN, indices, scope, true);
        collector.backward(ScalarOps.times(s.loss(), scale));
        return MicroResult.of(s.loss(), s.metrics(), NAMES, s.tokens());
    }

    @Override
    protected Map<String, Double> evaluate() {
        if (eval.size() == 0) {
            return Map.of();
        }
        Map<String, Double> sums = new LinkedHashMap<>();
        int bs = config.evalBatchSize();
        for (int from = 0; from < eval.size(); from += bs) {
            int to = Math.min(eval.size(), from + bs);
            int[] indices = IntStream.range(from, to).toArray();
            try (NDManager scope = policy.manager().newSubManager()) {
                Scored s = score(eval, ReferencePolicy.Split.EVAL, indices, scope, false);
                int n = to - from;
                sums.merge("loss", s.loss().toType(DataType.FLOAT64, false).getDouble() * n, Double::sum);
                double[] v = s.metrics().toDoubleArray();
                for (int k = 0; k < v.length; k++) {
                    sums.merge(NAMES.get(k), v[k] * n, Double::sum);
                }
            }
        }
        Map<String, Double> out = new LinkedHashMap<>();
        sums.forEach((k, v) -> out.put(k, v / eval.size()));
        onlyWherePresent(out);
        return out;
    }

    @Override
    public void close() {
        reference.close();
        policy.close();
        tokenizer.close();
        super.close();
    }
}
