package org.align4j.trainer;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.align4j.data.DataException;
import org.align4j.data.DataFormat;
import org.align4j.data.EncodedPair;
import org.align4j.data.Message;
import org.align4j.data.PreferenceBatch;
import org.align4j.data.PreferenceData;
import org.align4j.data.PreferenceExample;
import org.align4j.data.PreferenceParser;
import org.align4j.data.io.RawRecord;
import org.align4j.losses.LossType;
import org.align4j.model.CausalLm;
import org.align4j.model.Devices;
import org.align4j.model.LogProbs;
import org.align4j.model.ScalarOps;
import org.align4j.model.config.ModelConfig;
import org.align4j.model.io.ModelFolder;
import org.align4j.model.tokenizer.TextTokenizer;

/**
 * Supervised fine-tuning, the usual first stage before DPO/IPO: the next-token loss on completion
 * tokens only, averaged over all completion tokens of a batch (as TRL's SFTTrainer with {@code
 * completion_only_loss}); a language-modeling record's completion is its whole sequence.
 *
 * <p>Data: TRL's prompt-completion records ({@code prompt} and {@code completion} strings, or
 * message lists); TRL's language-modeling records ({@code {"text": ...}}, or {@code {"messages": [...]}}
 * through the chat template), trained on every token as TRL's SFTTrainer trains them (its {@code
 * assistant_only_loss}, a loss on the assistant turns only, is not offered: give prompt-completion
 * records for that); or preference records, whose chosen response is the target.
 */
public final class SftTrainer extends TrainingLoop implements AutoCloseable {
    private final TextTokenizer tokenizer;
    private final RunData data;

    private SftTrainer(TrainConfig config, RunFolder folder, CausalLm policy, TextTokenizer tokenizer, RunData data) {
        super(config, policy, ModelFolder.resolve(Path.of(config.model())), folder);
        this.tokenizer = tokenizer;
        this.data = data;
    }

    /**
     * @param config the resolved config, with {@code loss: sft}
     * @param resume continue from the newest checkpoint (which must exist), or start a fresh run
     * @return the trainer; close it to free the model and the run folder
     * @throws IllegalArgumentException when the config names a preference objective, or the folder cannot be used
     * @throws IOException when the run folder cannot be written
     */
    public static SftTrainer create(TrainConfig config, boolean resume) throws IOException {
        return create(config, RunFolder.Mode.of(resume));
    }

    /**
     * @param config the resolved config, with {@code loss: sft}
     * @param mode how the run uses its folder: fresh, overwrite or resume ({@link RunFolder.Mode})
     * @return the trainer; close it to free the model and the run folder
     * @throws IllegalArgumentException when the config names a preference objective, or the folder cannot be used that way
     * @throws IOException when the run folder cannot be written
     */
    public static SftTrainer create(TrainConfig config, RunFolder.Mode mode) throws IOException {
        requireSft(config); // before the run folder is claimed (and created)
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
    public static SftTrainer create(TrainConfig config, RunFolder folder) throws IOException {
        TextTokenizer tokenizer = null;
        try {
            requireSft(config);
            Device device = Devices.resolve(config.device());
            tokenizer = TextTokenizer.load(Path.of(config.model()));
            RunData data = RunData.load(config, tokenizer, SftTrainer::load);
            // a LoRA checkpoint is an adapter folder: its architecture is the base model's
            data.checkFits(ModelConfig.read(folder.resumeFrom()
                    .filter(p -> Files.isRegularFile(p.resolve("config.json")))
                    .orElseGet(() -> ModelFolder.resolve(Path.of(config.model())))
                    .resolve("config.json")));
            CausalLm policy =
                    config.loadModel(folder.resumeFrom().orElse(Path.of(config.model())), device, DataType.FLOAT32);
            try {
                prepareAdapters(policy, config);
            } catch (RuntimeException e) {
                policy.close();
                throw e;
            }
            return new SftTrainer(config, folder, policy, tokenizer, data);
        } catch (RuntimeException e) {
            if (tokenizer != null) {
                tokenizer.close();
            }
            folder.close();
            throw e;
        }
    }

    private static void requireSft(TrainConfig config) {
        if (config.loss() != LossType.SFT) {
            throw new IllegalArgumentException("key 'loss': SFT trains loss sft, got " + config.loss()
                    + " (align4j train / PreferenceTrainer trains it)");
        }
    }

    /**
     * A typed builder over {@link TrainConfig}'s keys with {@code loss: sft} and TRL SFT's learning rate (2e-5) as
     * defaults; {@code build()} loads the trainer (not resuming).
     *
     * @return the builder
     */
    public static TrainConfig.Builder<SftTrainer> builder() {
        return new TrainConfig.Builder<>(Map.of("loss", LossType.SFT), config -> {
            try {
                return create(config, false);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
    }

    /**
     * Reads SFT examples: prompt/completion records (strings or message lists), language-modeling records
     * ({@code text} or {@code messages}, {@link PreferenceExample#languageModeling}), or the chosen side of
     * preference pairs, as examples without a rejected side.
     *
     * @param path file or folder
     * @param format the record format
     * @param skipInvalid skip and count bad records instead of stopping
     * @return the examples
     */
    public static List<PreferenceExample> load(Path path, DataFormat format, boolean skipInvalid) {
        PreferenceParser preferences = new PreferenceParser(format);
        return PreferenceData.load(path, r -> parse(r, preferences), skipInvalid, "examples")
                .examples();
    }

    private static PreferenceExample parse(RawRecord r, PreferenceParser preferences) {
        JsonNode v = r.value();
        if (v != null && v.isObject() && v.has("completion")) {
            JsonNode prompt = v.get("prompt");
            JsonNode completion = v.get("completion");
            if (prompt == null || prompt.isNull()) {
                throw new DataException(r.file(), r.line(), "prompt", "missing");
            }
            if (completion.isTextual() && prompt.isTextual()) {
                if (completion.asText().isEmpty()) {
                    throw new DataException(r.file(), r.line(), "completion", "empty");
                }
                return new PreferenceExample(
                        prompt.asText(), completion.asText(), null, null, null, null, null, r.file(), r.line());
            }
            if (completion.isArray() && prompt.isArray()) {
                return new PreferenceExample(
                        null,
                        null,
                        null,
                        messages(r, "prompt", prompt),
                        messages(r, "completion", completion),
                        null,
                        null,
                        r.file(),
                        r.line());
            }
            throw new DataException(
                    r.file(),
                    r.line(),
                    "completion",
                    "expected prompt and completion both strings or both message lists");
        }
        if (v != null && v.isObject() && (v.has("messages") || v.has("text")) && !v.has("prompt") && !v.has("chosen")) {
            // TRL's language-modeling forms: the whole sequence, a loss on every token
            return PreferenceParser.languageModeling(r);
        }
        PreferenceExample p = preferences.parse(r);
        return p.conversational()
                ? new PreferenceExample(
                        null, null, null, p.promptMessages(), p.chosenMessages(), null, null, p.file(), p.line())
                : new PreferenceExample(p.prompt(), p.chosen(), null, null, null, null, null, p.file(), p.line());
    }

    private static List<Message> messages(RawRecord r, String field, JsonNode n) {
        List<Message> out = new ArrayList<>();
        for (int i = 0; i < n.size(); i++) {
            JsonNode m = n.get(i);
            if (!m.path("role").isTextual() || !m.path("content").isTextual()) {
                throw new DataException(r.file(), r.line(), field + "[" + i + "]", "expected {role, content} strings");
            }
            out.add(new Message(m.get("role").asText(), m.get("content").asText()));
        }
        if (out.isEmpty()) {
            throw new DataException(r.file(), r.line(), field, "empty");
        }
        return out;
    }

    /** @return the model being trained */
    public CausalLm policy() {
        return policy;
    }

    @Override
    protected int evalSize() {
        return data.eval().size();
    }

    @Override
    protected String objectiveSummary() {
        return "sft: next-token loss on completion tokens";
    }

    @Override
    protected int trainSize() {
        return data.train().size();
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
        return data.train().stream()
                .mapToInt(p -> p.prompt().length + p.chosen().length)
                .toArray();
    }

    @Override
    protected String describe(int i) {
        return data.trainSources().get(i);
    }

    /** Σ −log p over completion tokens, and their count. */
    private NDArray[] nll(PreferenceBatch b, boolean training) {
        LogProbs lp = policy.completionLogProbs(b.ids(), b.attentionMask(), b.completionMask(), training);
        return new NDArray[] {lp.sum().sum().neg(), lp.tokens().sum()};
    }

    /**
     * A micro-batch weighs the completion tokens it scores, so the step's loss is the mean over all of
     * its tokens, as transformers computes it with {@code num_items_in_batch}.
     */
    @Override
    protected long weight(int[] indices) {
        long tokens = 0;
        for (int i : indices) {
            EncodedPair e = data.train().get(i);
            // the first token of a sequence has no logits before it (LogProbs never scores position 0)
            tokens += e.chosen().length - (e.prompt().length == 0 ? 1 : 0);
        }
        return Math.max(1, tokens);
    }

    @Override
    protected MicroResult microStep(int[] indices, NDManager scope, GradientCollector collector, double scale) {
        List<EncodedPair> examples = new ArrayList<>();
        for (int i : indices) {
            examples.add(data.train().get(i));
        }
        PreferenceBatch b = PreferenceBatch.completions(scope, examples, tokenizer.padId());
        NDArray[] nll = nll(b, true);
        NDArray loss = nll[0].div(nll[1]);
        collector.backward(ScalarOps.times(loss, scale));
        return MicroResult.of(loss, null, List.of(), b.tokens());
    }

    @Override
    protected Map<String, Double> evaluate() {
        if (data.eval().isEmpty()) {
            return Map.of();
        }
        double nll = 0;
        double tokens = 0;
        int bs = config.evalBatchSize();
        for (int from = 0; from < data.eval().size(); from += bs) {
            try (NDManager scope = policy.manager().newSubManager()) {
                NDArray[] r = nll(
                        PreferenceBatch.completions(
                                scope,
                                data.eval().subList(from, Math.min(data.eval().size(), from + bs)),
                                tokenizer.padId()),
                        false);
                nll += r[0].toType(DataType.FLOAT64, false).getDouble();
                tokens += r[1].toType(DataType.FLOAT64, false).getDouble();
            }
        }
        return Map.of("loss", nll / tokens);
    }

    @Override
    public void close() {
        policy.close();
        tokenizer.close();
        super.close();
    }
}
