package org.align4j.trainer;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
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
import org.align4j.data.EncodedPair;
import org.align4j.data.PreferenceBatch;
import org.align4j.data.PreferenceEncoder;
import org.align4j.losses.BradleyTerryLoss;
import org.align4j.losses.LossType;
import org.align4j.model.CausalLm;
import org.align4j.model.Devices;
import org.align4j.model.ScalarOps;
import org.align4j.model.config.ModelConfig;
import org.align4j.model.io.ModelFolder;
import org.align4j.model.nn.Compute;
import org.align4j.model.tokenizer.TextTokenizer;

/**
 * Trains a reward model, the first stage of RLHF (Ouyang et al., 2022): a sequence classifier with one
 * label whose score of prompt + response is the reward, fitted to preference pairs with the
 * Bradley–Terry loss ({@link BradleyTerryLoss}), as TRL 1.13's {@code RewardTrainer}.
 *
 * <pre>{@code
 * try (RewardTrainer trainer = RewardTrainer.builder()
 *         .model(Path.of("runs/sft/final")).data(Path.of("prefs.jsonl")).output(Path.of("runs/rm"))
 *         .maxSteps(200).build()) {
 *     TrainResult result = trainer.train();   // result.finalModel(): an HF LlamaForSequenceClassification, ...
 * }
 * }</pre>
 *
 * <p>The model starts from {@code model}: a sequence classifier's folder as it is, or a causal LM's with a
 * new score head ({@link CausalLm#loadRewardModel}, {@code pad_token_id} the tokenizer's). Each pair is
 * two whole sequences (prompt + response, {@link PreferenceEncoder#encodeSequences}); a step scores the
 * chosen and the rejected rows in one forward pass, reads each row's reward at its last non-pad token,
 * and back-propagates −log σ(r_c − r_r − margin) (+ c·(r_c + r_r)²). It logs TRL's {@code accuracy},
 * {@code margin}, {@code min_reward}, {@code mean_reward}, {@code max_reward} and align4j's {@code
 * rewards/chosen} and {@code rewards/rejected}; checkpoints and {@code final/} are HF sequence-classifier
 * folders that {@code AutoModelForSequenceClassification} loads. Defaults as TRL's RewardConfig: learning
 * rate 1e-4, dropout off.
 *
 * <p>With LoRA ({@code lora_r}, or {@code adapter} to continue one) the decoder gets adapters and the
 * score head trains in full beside them, as TRL with a PEFT config of task_type SEQ_CLS; checkpoints and
 * {@code final/} are then PEFT adapter folders (the score head in them, as PEFT saves {@code
 * modules_to_save}) that {@code PeftModel.from_pretrained} and {@link CausalLm#load} read.
 */
public final class RewardTrainer extends TrainingLoop implements AutoCloseable {
    private final TextTokenizer tokenizer;
    private final RunData data;
    private final BradleyTerryLoss objective;
    private final int padId;

    private RewardTrainer(
            TrainConfig config,
            RunFolder folder,
            CausalLm model,
            TextTokenizer tokenizer,
            RunData data,
            BradleyTerryLoss objective) {
        super(config, model, ModelFolder.resolve(Path.of(config.model())), folder);
        this.tokenizer = tokenizer;
        this.data = data;
        this.objective = objective;
        // batches are padded with the pad id the model locates its rewards by (TRL sets the tokenizer's into the
        // config)
        this.padId = model.config().padTokenId() >= 0 ? model.config().padTokenId() : tokenizer.padId();
    }

    /**
     * @param config the resolved config, with {@code loss: reward}
     * @param mode how the run uses its folder: fresh, overwrite or resume ({@link RunFolder.Mode})
     * @return the trainer; close it to free the model and the run folder
     * @throws IllegalArgumentException naming the key when the config is not a reward run or the folder cannot be used that way
     * @throws IOException when the run folder cannot be written
     */
    public static RewardTrainer create(TrainConfig config, RunFolder.Mode mode) throws IOException {
        return create(config, RunFolder.claim(config, mode));
    }

    /**
     * As {@link #create(TrainConfig, RunFolder.Mode)}, in a run folder already claimed (the CLI claims it
     * first, to send the log there); the trainer owns the folder from here and releases it when closed.
     *
     * @param config the resolved config
     * @param folder the claimed run folder of {@code config.output()}
     * @return the trainer
     * @throws IOException when the run folder cannot be written
     */
    public static RewardTrainer create(TrainConfig config, RunFolder folder) throws IOException {
        TextTokenizer tokenizer = null;
        CausalLm model = null;
        try {
            if (config.loss() != LossType.REWARD) {
                throw new IllegalArgumentException(
                        "key 'loss': a reward model trains loss reward, got " + config.loss());
            }
            Device device = Devices.resolve(config.device());
            tokenizer = TextTokenizer.load(Path.of(config.model()));
            RunData data = RunData.load(config, tokenizer, RunData.PAIRS, PreferenceEncoder.Target.REWARD_MODEL);
            Path start = folder.resumeFrom().orElse(Path.of(config.model()));
            // a LoRA checkpoint is an adapter folder: its architecture is the base model's
            data.checkFits(ModelConfig.read((Files.isRegularFile(start.resolve("config.json"))
                            ? start
                            : ModelFolder.resolve(Path.of(config.model())))
                    .resolve("config.json")));
            model = folder.resumeFrom().isPresent()
                    ? CausalLm.load(start, device)
                    : CausalLm.loadRewardModel(start, device, tokenizer.padId(), config.seed());
            // LoRA (lora_r, or an adapter to continue): adapters on the decoder, the score head trained in full beside
            // them
            prepareAdapters(model, config);
            model.setCompute(Compute.of(config.attention(), config.precision(), device));
            return new RewardTrainer(
                    config, folder, model, tokenizer, data, new BradleyTerryLoss(config.centerRewardsCoefficient()));
        } catch (RuntimeException e) {
            if (model != null) {
                model.close();
            }
            if (tokenizer != null) {
                tokenizer.close();
            }
            folder.close();
            throw e;
        }
    }

    /**
     * A typed builder over {@link TrainConfig}'s keys with {@code loss: reward} and TRL RewardConfig's
     * learning rate (1e-4) as defaults; {@code build()} loads the trainer (a fresh run).
     *
     * @return the builder
     */
    public static TrainConfig.Builder<RewardTrainer> builder() {
        return new TrainConfig.Builder<>(Map.of("loss", LossType.REWARD), config -> {
            try {
                return create(config, RunFolder.Mode.fresh());
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
    }

    /** @return the reward model being trained */
    public CausalLm model() {
        return policy;
    }

    /** @return the objective */
    public BradleyTerryLoss objective() {
        return objective;
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
        return "reward model, Bradley-Terry -log sigmoid(r_c - r_r" + (hasMargins(data.train()) ? " - margin" : "")
                + ")"
                + (objective.centerCoefficient() > 0
                        ? " + " + TrainConfig.defaultFormat(objective.centerCoefficient()) + "*(r_c + r_r)^2"
                        : "")
                + "; reward at the last token that is not pad id " + padId;
    }

    @Override
    protected int[] trainLengths() {
        return data.train().stream().mapToInt(EncodedPair::maxLength).toArray();
    }

    @Override
    protected String describe(int i) {
        return data.trainSources().get(i);
    }

    /** A micro-batch weighs its pairs: the step's loss is the mean over all of its pairs. */
    @Override
    protected long weight(int[] indices) {
        return indices.length;
    }

    private static boolean hasMargins(List<EncodedPair> pairs) {
        return pairs.stream().anyMatch(p -> p.margin() != null);
    }

    /** The rewards of a batch: rows 0..B−1 chosen, B..2B−1 rejected, in one forward pass. */
    private BradleyTerryLoss.Output score(List<EncodedPair> pairs, NDManager scope, boolean training) {
        PreferenceBatch b = PreferenceBatch.of(scope, pairs, padId);
        NDArray r = policy.rewards(b.ids(), b.attentionMask(), training, true);
        int n = pairs.size();
        NDArray margin = null;
        if (hasMargins(pairs)) {
            float[] m = new float[n];
            for (int i = 0; i < n; i++) {
                m[i] = pairs.get(i).margin() == null
                        ? 0f
                        : pairs.get(i).margin().floatValue();
            }
            margin = scope.create(m);
        }
        return objective.compute(r.get("0:" + n), r.get(n + ":"), margin);
    }

    @Override
    protected MicroResult microStep(int[] indices, NDManager scope, GradientCollector collector, double scale) {
        List<EncodedPair> pairs = new ArrayList<>(indices.length);
        long tokens = 0;
        for (int i : indices) {
            pairs.add(data.train().get(i));
            tokens += data.train().get(i).tokens();
        }
        BradleyTerryLoss.Output out = score(pairs, scope, true);
        NDArray loss = out.meanLoss();
        collector.backward(ScalarOps.times(loss, scale));
        return MicroResult.of(
                loss,
                BradleyTerryLoss.metrics(out.chosenRewards(), out.rejectedRewards()),
                BradleyTerryLoss.METRIC_NAMES,
                tokens);
    }

    @Override
    protected Map<String, Double> evaluate() {
        if (data.eval().isEmpty()) {
            return Map.of();
        }
        int n = data.eval().size();
        double[] chosen = new double[n];
        double[] rejected = new double[n];
        double lossSum = 0;
        int bs = config.evalBatchSize();
        for (int from = 0; from < n; from += bs) {
            int to = Math.min(n, from + bs);
            try (NDManager scope = policy.manager().newSubManager()) {
                BradleyTerryLoss.Output out = score(data.eval().subList(from, to), scope, false);
                lossSum += out.loss().sum().toType(DataType.FLOAT64, false).getDouble();
                float[] c = out.chosenRewards().toFloatArray();
                float[] r = out.rejectedRewards().toFloatArray();
                for (int i = 0; i < c.length; i++) {
                    chosen[from + i] = c[i];
                    rejected[from + i] = r[i];
                }
            }
        }
        Map<String, Double> m = new LinkedHashMap<>();
        m.put("loss", lossSum / n);
        double[] metrics = BradleyTerryLoss.metrics(chosen, rejected);
        for (int k = 0; k < metrics.length; k++) {
            m.put(BradleyTerryLoss.METRIC_NAMES.get(k), metrics[k]);
        }
        return m;
    }

    @Override
    public void close() {
        policy.close();
        tokenizer.close();
        super.close();
    }
}
