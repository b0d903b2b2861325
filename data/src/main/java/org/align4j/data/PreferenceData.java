package org.align4j.data;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.function.Function;
import org.align4j.data.io.RawRecord;
import org.align4j.data.io.RecordReader;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Loads preference pairs from a file or folder, stopping at the first bad record or skipping them. */
public final class PreferenceData {
    private static final Logger LOG = LoggerFactory.getLogger(PreferenceData.class);

    /**
     * What a path held.
     *
     * @param examples the valid pairs, in file order
     * @param invalid the records that were skipped (empty unless skipping)
     */
    public record Loaded(List<PreferenceExample> examples, List<DataException> invalid) {}

    /**
     * Two disjoint parts of a dataset.
     *
     * @param train the training pairs
     * @param eval the held-out pairs
     */
    public record Split(List<PreferenceExample> train, List<PreferenceExample> eval) {}

    private PreferenceData() {}

    /**
     * Reads and validates every record.
     *
     * @param path a data file or a folder of shards
     * @param format the record format (AUTO detects it per record)
     * @param skipInvalid skip and count bad records instead of stopping at the first
     * @return the pairs and the skipped records
     * @throws DataException at the first bad record unless skipping
     */
    public static Loaded load(Path path, DataFormat format, boolean skipInvalid) {
        return load(path, new PreferenceParser(format)::parse, skipInvalid, "preference pairs");
    }

    /**
     * Reads every record through a parser, stopping at the first bad record or skipping them: the one
     * stop-or-skip loop behind every dataset align4j reads.
     *
     * @param path a data file or a folder of shards
     * @param parser turns a record into an example, throwing {@link DataException} for a bad one
     * @param skipInvalid skip and count bad records instead of stopping at the first
     * @param what what the examples are, for the error when none is valid
     * @return the examples and the skipped records
     */
    public static Loaded load(
            Path path, Function<RawRecord, PreferenceExample> parser, boolean skipInvalid, String what) {
        Read<PreferenceExample> r = read(path, parser, skipInvalid, what);
        return new Loaded(r.items(), r.invalid());
    }

    /**
     * What {@link #read} read.
     *
     * @param items the valid records, parsed, in file order
     * @param invalid the skipped records (empty unless skipping)
     * @param <T> what a record parses to
     */
    public record Read<T>(List<T> items, List<DataException> invalid) {}

    /**
     * The one stop-or-skip loop behind every dataset align4j reads (pairs, SFT examples, prompts).
     *
     * @param path a data file or a folder of shards
     * @param parser turns a record into an item, throwing {@link DataException} for a bad one
     * @param skipInvalid skip and count bad records instead of stopping at the first
     * @param what what the items are, for the error when none is valid
     * @param <T> what a record parses to
     * @return the items and the skipped records
     * @throws DataException at the first bad record unless skipping, or when no record is valid
     */
    public static <T> Read<T> read(Path path, Function<RawRecord, T> parser, boolean skipInvalid, String what) {
        List<T> examples = new ArrayList<>();
        List<DataException> invalid = new ArrayList<>();
        RecordReader.read(
                path,
                r -> {
                    try {
                        examples.add(parser.apply(r));
                    } catch (DataException e) {
                        if (!skipInvalid) {
                            throw e;
                        }
                        invalid.add(e);
                    }
                },
                m -> {
                    DataException e = new DataException(m.file(), m.line(), null, m.message());
                    if (!skipInvalid) {
                        throw e;
                    }
                    invalid.add(e);
                });
        if (!invalid.isEmpty()) {
            LOG.warn(
                    "Skipped {} invalid record(s) in {}; first: {}",
                    invalid.size(),
                    path,
                    invalid.get(0).getMessage());
        }
        if (examples.isEmpty()) {
            throw new DataException(path, 0, null, "no valid " + what);
        }
        return new Read<>(Collections.unmodifiableList(examples), Collections.unmodifiableList(invalid));
    }

    /**
     * A seeded random split (the same seed gives the same split).
     *
     * @param examples the pairs
     * @param evalFraction the share held out, in [0, 1)
     * @param seed the seed
     * @return train and eval parts (eval has at least one pair when the fraction is positive)
     */
    public static Split split(List<PreferenceExample> examples, double evalFraction, long seed) {
        if (!(evalFraction >= 0 && evalFraction < 1)) {
            throw new IllegalArgumentException("evalFraction: must lie in [0, 1), got " + evalFraction);
        }
        List<PreferenceExample> shuffled = new ArrayList<>(examples);
        Collections.shuffle(shuffled, new Random(seed));
        int nEval = evalFraction == 0 ? 0 : Math.max(1, (int) Math.round(evalFraction * examples.size()));
        if (nEval >= examples.size()) {
            throw new IllegalArgumentException(
                    "evalFraction: " + evalFraction + " of " + examples.size() + " pairs leaves none to train on");
        }
        return new Split(
                List.copyOf(shuffled.subList(nEval, shuffled.size())), List.copyOf(shuffled.subList(0, nEval)));
    }
}
