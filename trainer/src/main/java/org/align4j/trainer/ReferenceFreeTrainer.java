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
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.align4j.data.EncodedPair;
import org.align4j.data.ExperimentalPairEncoder;
import org.align4j.data.PreferenceBatch;
import org.align4j.data.PreferenceData;
import org.align4j.data.PreferenceEncoder;
import org.align4j.data.PreferenceExample;
import org.align4j.losses.CpoLoss;
import org.align4j.losses.LossType;
import org.align4j.losses.OrpoLoss;
import org.align4j.losses.PreferenceLoss;
import org.align4j.model.CausalLm;
import org.align4j.model.Devices;
import org.align4j.model.ScalarOps;
import org.align4j.model.TokenLogProbs;
import org.align4j.model.config.ModelConfig;
import org.align4j.model.io.ModelFolder;
import org.align4j.model.tokenizer.TextTokenizer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The reference-free odds-ratio and contrastive objectives as TRL 1.13's experimental trainers define
 * them: ORPO ({@link OrpoLoss}, {@code ORPOTrainer}) and CPO with its loss types, SimPO and AlphaPO among
 * them ({@link CpoLoss}, {@code CPOTrainer}). One model is in memory: the policy.
 *
 * <p>Pairs are tokenized as those trainers tokenize them ({@link ExperimentalPairEncoder}: the prompt with
 * a bos, each response with an eos), and each micro-batch runs as they run it: chosen rows then rejected
 * rows, right-padded to the longest, in one pass as HF runs a padded batch ({@link
 * CausalLm#paddedTokenLogProbs}). A step logs TRL's metrics under its names: {@code rewards/chosen}, {@code
 * rewards/rejected}, {@code rewards/accuracies}, {@code rewards/margins} (β times the log-probs each loss
 * reads), {@code logps/chosen}, {@code logps/rejected}, {@code logits/chosen}, {@code logits/rejected} (the
 * mean logit over every position of those rows, padding included: ORPO's without the last position, CPO's
 * with it, as each trainer averages them), {@code nll_loss}, and ORPO's {@code log_odds_ratio} and {@code
 * log_odds_chosen}.
 */
public final class ReferenceFreeTrainer extends TrainingLoop implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(ReferenceFreeTrainer.class);
    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory()
            .disable(YAMLGenerator.Feature.WRITE_DOC_START_MARKER)
            .enable(YAMLGenerator.Feature.MINIMIZE_QUOTES));

    private static final List<String> CPO_METRICS = List.of(
            "rewards/chosen",
            "rewards/rejected",
            "rewards/accuracies",
            "rewards/margins",
            "logps/rejected",
            "logps/chosen",
            "logits/rejected",
            "logits/chosen",
            "nll_loss");

    private static final List<String> ORPO_METRICS = List.of(
            "rewards/chosen",
            "rewards/rejected",
            "rewards/accuracies",
            "rewards/margins",
            "logps/rejected",
            "logps/chosen",
            "logits/rejected",
            "logits/chosen",
            "nll_loss",
            "log_odds_ratio",
            "log_odds_chosen");

    private final CpoConfig cpo;
    private final OrpoLoss orpo;
    private final CpoLoss cpoLoss;
    private final TextTokenizer tokenizer;
    private final RunData data;

    private ReferenceFreeTrainer(
            TrainConfig config,
            CpoConfig cpo,
            RunFolder folder,
            CausalLm policy,
            TextTokenizer tokenizer,
            RunData data) {
        super(config, policy, ModelFolder.resolve(Path.of(config.model())), folder);
        this.cpo = cpo;
        this.orpo = cpo == null ? new OrpoLoss(config.beta()) : null;
        this.cpoLoss = cpo == null ? null : cpo.loss(config);
        this.tokenizer = tokenizer;
        this.data = data;
    }

    /**
     * Loads everything a run names: tokenizer, data and the policy (from the newest checkpoint when resuming).
     *
     * @param config the resolved shared options, with {@code loss} orpo or cpo
     * @param cpo CPO's options (null for ORPO)
     * @param mode how the run uses its folder
     * @return the trainer; close it to free the model and the run folder
     * @throws IllegalArgumentException naming the key at fault
     * @throws IOException when the run folder cannot be written
     */
    public static ReferenceFreeTrainer create(TrainConfig config, CpoConfig cpo, RunFolder.Mode mode)
            throws IOException {
        check(config, cpo);
        return create(config, cpo, RunFolder.claim(config, mode));
    }

    /**
     * As {@link #create(TrainConfig, CpoConfig, RunFolder.Mode)}, in a run folder already claimed.
     *
     * @param config the resolved shared options
     * @param cpo CPO's options (null for ORPO)
     * @param folder the claimed run folder
     * @return the trainer
     * @throws IOException when the run folder cannot be written
     */
    public static ReferenceFreeTrainer create(TrainConfig config, CpoConfig cpo, RunFolder folder) throws IOException {
        TextTokenizer tokenizer = null;
        CausalLm policy = null;
        try {
            check(config, cpo);
            Device device = Devices.resolve(config.device());
            tokenizer = TextTokenizer.load(Path.of(config.model()));
            RunData data = load(config, tokenizer);
            data.checkFits(ModelConfig.read(folder.resumeFrom()
                    .filter(p -> Files.isRegularFile(p.resolve("config.json")))
                    .orElseGet(() -> ModelFolder.resolve(Path.of(config.model())))
                    .resolve("config.json")));
            policy = config.loadModel(folder.resumeFrom().orElse(Path.of(config.model())), device, DataType.FLOAT32);
            if (!policy.isNative()) {
                throw new IllegalArgumentException("key 'model': " + config.loss()
                        + " scores HF's padded batches, which a TorchScript model cannot run (give an HF folder)");
            }
            prepareAdapters(policy, config);
            return new ReferenceFreeTrainer(config, cpo, folder, policy, tokenizer, data);
        } catch (RuntimeException e) {
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
     * The checks a run makes before it loads anything.
     *
     * @param config the shared options
     * @param cpo CPO's options, or null for ORPO
     * @throws IllegalArgumentException naming the key at fault
     */
    public static void check(TrainConfig config, CpoConfig cpo) {
        LossType want = cpo == null ? LossType.ORPO : LossType.CPO;
        if (config.loss() != want) {
            throw new IllegalArgumentException(
                    "key 'loss': the " + want + " trainer trains " + want + ", got " + config.loss());
        }
    }

    /**
     * A typed builder for ORPO ({@code build()} loads the trainer, a fresh run).
     *
     * @return the builder
     */
    public static TrainConfig.Builder<ReferenceFreeTrainer> orpoBuilder() {
        return new TrainConfig.Builder<>(Map.of("loss", LossType.ORPO), config -> {
            try {
                return create(config, null, RunFolder.Mode.fresh());
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
    }

    /**
     * A typed builder for CPO, with CPO's own keys by name ({@code set("loss_type", "simpo")}).
     *
     * @return the builder
     */
    public static TrainConfig.Builder<ReferenceFreeTrainer> cpoBuilder() {
        return new TrainConfig.Builder<>(Map.of("loss", LossType.CPO), CpoConfig.ownedKeys(), (config, own) -> {
            try {
                return create(config, CpoConfig.of(own, config), RunFolder.Mode.fresh());
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
    }

    /**
     * Reads, splits and encodes a run's pairs as the experimental trainers tokenize them.
     *
     * @param config the shared options
     * @param tokenizer the model's tokenizer
     * @return the encoded pairs
     */
    static RunData load(TrainConfig config, TextTokenizer tokenizer) {
        List<PreferenceExample> train = PreferenceData.load(
                        Path.of(config.data()), config.format(), config.skipInvalid())
                .examples();
        List<PreferenceExample> eval = List.of();
        if (config.evalData() != null) {
            eval = PreferenceData.load(Path.of(config.evalData()), config.format(), config.skipInvalid())
                    .examples();
        } else if (config.evalFraction() > 0) {
            PreferenceData.Split split = PreferenceData.split(train, config.evalFraction(), config.seed());
            train = split.train();
            eval = split.eval();
        }
        ExperimentalPairEncoder encoder = new ExperimentalPairEncoder(tokenizer, config.encodingOptions());
        PreferenceEncoder.Encoded t = encoder.encodeAll(train, config.skipInvalid());
        PreferenceEncoder.Encoded e = encoder.encodeAll(eval, config.skipInvalid());
        int dropped = t.dropped() + e.dropped();
        if (dropped > 0) {
            LOG.warn("{} pair(s) dropped: max_length {} leaves a response no token", dropped, config.maxLength());
        }
        if (t.pairs().isEmpty()) {
            throw new IllegalArgumentException(
                    "key 'data': no training pairs left after truncation (max_length " + config.maxLength() + ")");
        }
        LOG.info(
                "{} training and {} held-out pairs", t.pairs().size(), e.pairs().size());
        return new RunData(t.pairs(), sources(t), e.pairs(), sources(e));
    }

    /**
     * A run's pairs as training reads them ({@code --dry-run}).
     *
     * @param train the training pairs (prompt with its bos, responses with their eos)
     * @param trainSources file:line of each
     * @param eval the held-out pairs
     */
    public record Pairs(List<EncodedPair> train, List<String> trainSources, List<EncodedPair> eval) {}

    /**
     * Reads, splits and encodes a run's pairs as training does, without loading a model.
     *
     * @param config the shared options
     * @param tokenizer the model's tokenizer
     * @return the pairs
     */
    public static Pairs pairs(TrainConfig config, TextTokenizer tokenizer) {
        RunData d = load(config, tokenizer);
        return new Pairs(d.train(), d.trainSources(), d.eval());
    }

    private static List<String> sources(PreferenceEncoder.Encoded e) {
        List<String> s = new ArrayList<>();
        for (PreferenceExample x : e.kept()) {
            s.add(x.file().getFileName() + ":" + x.line());
        }
        return s;
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
        if (cpo == null) {
            return "orpo, beta (lambda) " + TrainConfig.defaultFormat(config.beta()) + "; reference-free";
        }
        String type = cpo.alphapo() ? "alphapo (simpo)" : cpo.lossType().toString();
        return "cpo " + type + ", beta " + TrainConfig.defaultFormat(config.beta()) + ", cpo_alpha "
                + TrainConfig.defaultFormat(cpo.cpoAlpha())
                + (cpo.lossType() == CpoLoss.Type.SIMPO
                        ? ", simpo_gamma " + TrainConfig.defaultFormat(config.gamma())
                        : "")
                + (config.labelSmoothing() != 0
                        ? ", label_smoothing " + TrainConfig.defaultFormat(config.labelSmoothing())
                        : "")
                + (cpo.alpha() != 0 ? ", alpha " + TrainConfig.defaultFormat(cpo.alpha()) : "")
                + "; reference-free";
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

    @Override
    protected String configYaml() {
        if (cpo == null) {
            return config.toYaml();
        }
        try {
            @SuppressWarnings("unchecked")
            Map<String, Object> all = YAML.readValue(config.toYaml(), LinkedHashMap.class);
            all.putAll(cpo.toMap());
            return YAML.writeValueAsString(all);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A micro-batch weighs its pairs. */
    @Override
    protected long weight(int[] indices) {
        return indices.length;
    }

    private List<String> metricNames() {
        return cpo == null ? ORPO_METRICS : CPO_METRICS;
    }

    /**
     * A batch scored: its loss and the metrics of {@link #metricNames()} as one float64 device array.
     *
     * @param loss the batch's loss
     * @param metrics the metrics
     */
    private record Scored(NDArray loss, NDArray metrics) {}

    private Scored score(PreferenceBatch b, boolean training) {
        int n = b.pairs();
        String chosen = "0:" + n;
        String rejected = n + ":";
        long t = b.length();
        // ORPO's NLL reads every token of the chosen rows; CPO's only the completions'
        NDArray scoreMask = cpo == null ? b.attentionMask() : b.completionMask();
        CausalLm.PaddedScores scores = policy.paddedTokenLogProbs(b.ids(), b.attentionMask(), scoreMask, training);
        TokenLogProbs tk = scores.tokens();
        NDArray perToken = tk.logProbs();
        NDArray completionSum;
        NDArray completionTokens;
        NDArray nll = null;
        if (cpo == null) {
            // which scored tokens are completion tokens, in the flat order of the scored ones
            long rows = b.ids().getShape().get(0);
            NDArray scored = b.attentionMask()
                    .get(":, 1:")
                    .reshape(rows * (t - 1))
                    .toType(DataType.BOOLEAN, false)
                    .nonzero()
                    .reshape(-1);
            NDArray isCompletion = b.completionMask()
                    .get(":, 1:")
                    .reshape(rows * (t - 1))
                    .get(scored)
                    .toType(perToken.getDataType(), false);
            completionSum = tk.sumPerRow(perToken.mul(isCompletion));
            completionTokens = tk.sumPerRow(isCompletion);
            NDArray all = tk.sumPerRow(perToken);
            nll = all.get(chosen).sum().neg().div(tk.tokens().get(chosen).sum());
        } else {
            completionSum = tk.sumPerRow(perToken);
            completionTokens = tk.tokens();
            if (cpoLoss.cpoAlpha() != 0) {
                nll = completionSum
                        .get(chosen)
                        .sum()
                        .neg()
                        .div(completionTokens.get(chosen).sum());
            }
        }
        NDArray mean = completionSum.div(completionTokens);
        NDArray logps = cpo == null || cpoLoss.reduction() == PreferenceLoss.Reduction.MEAN ? mean : completionSum;
        NDArray pc = logps.get(chosen);
        NDArray pr = logps.get(rejected);
        NDArray loss;
        NDArray rc;
        NDArray rr;
        NDList extra = new NDList();
        if (cpo == null) {
            OrpoLoss.Output out = orpo.compute(pc, pr, nll);
            loss = out.loss();
            rc = out.chosenRewards();
            rr = out.rejectedRewards();
            extra.add(out.logSigmoidOdds().stopGradient().mean().toType(DataType.FLOAT64, false));
            extra.add(out.logOdds().mean().toType(DataType.FLOAT64, false));
        } else {
            CpoLoss.Output out = cpoLoss.compute(pc, pr, nll);
            loss = out.loss();
            rc = out.chosenRewards();
            rr = out.rejectedRewards();
        }
        NDArray meanLogits = scores.meanLogits().toType(DataType.FLOAT64, false);
        // ORPO averages the logits of every position but the last; CPO of every position
        String positions = cpo == null ? ":, 0:" + (t - 1) : ":, :";
        NDArray logitsChosen = meanLogits.get(chosen).get(positions).mean();
        NDArray logitsRejected = meanLogits.get(rejected).get(positions).mean();
        NDArray rcd = rc.toType(DataType.FLOAT64, false);
        NDArray rrd = rr.toType(DataType.FLOAT64, false);
        NDList values = new NDList(
                rcd.mean(),
                rrd.mean(),
                rcd.gt(rrd).toType(DataType.FLOAT64, false).mean(),
                rcd.sub(rrd).mean(),
                pr.stopGradient().toType(DataType.FLOAT64, false).mean(),
                pc.stopGradient().toType(DataType.FLOAT64, false).mean(),
                logitsRejected,
                logitsChosen,
                nll == null
                        ? b.ids().getManager().create(0.0)
                        : nll.stopGradient().toType(DataType.FLOAT64, false));
        values.addAll(extra);
        return new Scored(loss, NDArrays.stack(values));
    }

    @Override
    protected MicroResult microStep(int[] indices, NDManager scope, GradientCollector collector, double scale) {
        List<EncodedPair> pairs = new ArrayList<>(indices.length);
        for (int i : indices) {
            pairs.add(data.train().get(i));
        }
        PreferenceBatch b = PreferenceBatch.of(scope, pairs, tokenizer.padId());
        Scored s = score(b, true);
        collector.backward(ScalarOps.times(s.loss(), scale));
        return MicroResult.of(s.loss(), s.metrics(), metricNames(), b.tokens());
    }

    @Override
    protected Map<String, Double> evaluate() {
        if (data.eval().isEmpty()) {
            return Map.of();
        }
        Map<String, Double> sums = new LinkedHashMap<>();
        int bs = config.evalBatchSize();
        for (int from = 0; from < data.eval().size(); from += bs) {
            int to = Math.min(data.eval().size(), from + bs);
            try (NDManager scope = policy.manager().newSubManager()) {
                PreferenceBatch b = PreferenceBatch.of(scope, data.eval().subList(from, to), tokenizer.padId());
                Scored s = score(b, false);
                int n = to - from;
                sums.merge("loss", s.loss().toType(DataType.FLOAT64, false).getDouble() * n, Double::sum);
                double[] v = s.metrics().toDoubleArray();
                for (int k = 0; k < v.length; k++) {
                    sums.merge(metricNames().get(k), v[k] * n, Double::sum);
                }
            }
        }
        Map<String, Double> out = new LinkedHashMap<>();
        int total = data.eval().size();
        sums.forEach((k, v) -> out.put(k, v / total));
        return out;
    }

    @Override
    public void close() {
        policy.close();
        tokenizer.close();
        super.close();
    }
}
