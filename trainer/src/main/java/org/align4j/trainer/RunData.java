package org.align4j.trainer;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.align4j.data.DataFormat;
import org.align4j.data.EncodedPair;
import org.align4j.data.PreferenceData;
import org.align4j.data.PreferenceEncoder;
import org.align4j.data.PreferenceExample;
import org.align4j.model.config.ModelConfig;
import org.align4j.model.tokenizer.TextTokenizer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The encoded training and held-out examples of a run, with where each came from.
 *
 * @param train encoded training examples
 * @param trainSources file:line of each
 * @param eval encoded held-out examples
 * @param evalSources file:line of each
 */
record RunData(List<EncodedPair> train, List<String> trainSources, List<EncodedPair> eval, List<String> evalSources) {
    private static final Logger LOG = LoggerFactory.getLogger(RunData.class);

    /** Loader of a path's examples (preference pairs, or SFT prompt/completion examples). */
    interface Loader {
        List<PreferenceExample> load(Path path, DataFormat format, boolean skipInvalid);
    }

    /** Preference pairs, in any format PreferenceData reads. */
    static final Loader PAIRS =
            (path, format, skip) -> PreferenceData.load(path, format, skip).examples();

    static RunData load(TrainConfig c, TextTokenizer tokenizer, Loader loader) {
        return load(c, tokenizer, loader, PreferenceEncoder.Target.POLICY);
    }

    /**
     * @param c the run's config
     * @param tokenizer the model's tokenizer
     * @param loader reads a path's examples
     * @param target what the ids are for: a policy's log-probs, or a reward model's whole sequences
     * @return the encoded data
     */
    static RunData load(TrainConfig c, TextTokenizer tokenizer, Loader loader, PreferenceEncoder.Target target) {
        DataFormat format = c.format();
        List<PreferenceExample> train = loader.load(Path.of(c.data()), format, c.skipInvalid());
        List<PreferenceExample> eval = List.of();
        if (c.evalData() != null) {
            eval = loader.load(Path.of(c.evalData()), format, c.skipInvalid());
        } else if (c.evalFraction() > 0) {
            PreferenceData.Split split = PreferenceData.split(train, c.evalFraction(), c.seed());
            train = split.train();
            eval = split.eval();
        }
        PreferenceEncoder encoder = new PreferenceEncoder(tokenizer, c.encodingOptions());
        List<EncodedPair> trainPairs = new ArrayList<>();
        List<String> trainSources = new ArrayList<>();
        List<EncodedPair> evalPairs = new ArrayList<>();
        List<String> evalSources = new ArrayList<>();
        int dropped = encode(encoder, train, trainPairs, trainSources, c.skipInvalid(), target)
                + encode(encoder, eval, evalPairs, evalSources, c.skipInvalid(), target);
        if (dropped > 0) {
            LOG.warn(
                    target == PreferenceEncoder.Target.REWARD_MODEL
                            ? "{} pair(s) dropped: a sequence is longer than max_length {}"
                            : "{} example(s) dropped: they cannot fit max_length {} with at least one completion token",
                    dropped,
                    c.maxLength());
        }
        if (trainPairs.isEmpty()) {
            throw new IllegalArgumentException(
                    "key 'data': no training examples left after truncation (max_length " + c.maxLength() + ")");
        }
        LOG.info("{} training and {} held-out examples", trainPairs.size(), evalPairs.size());
        return new RunData(trainPairs, trainSources, evalPairs, evalSources);
    }

    /**
     * Checks every encoded sequence against the model it will run through, before any step: a pair
     * longer than learned position embeddings, or an id outside the vocabulary, is named by its record.
     *
     * @param model the model's config
     * @throws IllegalArgumentException naming the record (file:line), the length or id, and the limit
     */
    void checkFits(ModelConfig model) {
        EncodedPair.checkFits(model, train, trainSources);
        EncodedPair.checkFits(model, eval, evalSources);
    }

    private static int encode(
            PreferenceEncoder encoder,
            List<PreferenceExample> in,
            List<EncodedPair> out,
            List<String> sources,
            boolean skipInvalid,
            PreferenceEncoder.Target target) {
        PreferenceEncoder.Encoded encoded = encoder.encodeAll(in, skipInvalid, target);
        out.addAll(encoded.pairs());
        for (PreferenceExample e : encoded.kept()) {
            sources.add(e.file().getFileName() + ":" + e.line());
        }
        return encoded.dropped();
    }
}
