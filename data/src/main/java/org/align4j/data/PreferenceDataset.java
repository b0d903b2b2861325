package org.align4j.data;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.dataset.RandomAccessDataset;
import ai.djl.training.dataset.Record;
import ai.djl.training.dataset.Sampler;
import ai.djl.translate.Batchifier;
import ai.djl.util.Progress;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

/**
 * Encoded preference pairs as a DJL {@link RandomAccessDataset}, for DJL's own training utilities.
 * A record's data is {@code [promptIds, chosenIds, rejectedIds, preference]} (int64 vectors and a
 * float32 scalar, NaN when the pair has none); {@link PreferenceBatchifier} pads a batch into the
 * {@code [ids, attentionMask, completionMask, preference]} of a {@link PreferenceBatch}.
 */
public final class PreferenceDataset extends RandomAccessDataset {
    private final List<EncodedPair> pairs;

    private PreferenceDataset(Builder builder) {
        super(builder);
        this.pairs = List.copyOf(builder.pairs);
    }

    /**
     * @param pairs the encoded pairs
     * @param padId the padding id
     * @return a builder; set the sampling (batch size, seed) on it
     */
    public static Builder builder(List<EncodedPair> pairs, int padId) {
        return new Builder(pairs, padId);
    }

    /** @return the pairs */
    public List<EncodedPair> pairs() {
        return pairs;
    }

    @Override
    public Record get(NDManager manager, long index) {
        EncodedPair p = pairs.get(Math.toIntExact(index));
        NDList data = new NDList(
                manager.create(toLong(p.prompt())),
                manager.create(toLong(p.chosen())),
                manager.create(toLong(p.rejected())),
                manager.create(
                        p.preference() == null ? Float.NaN : p.preference().floatValue()));
        return new Record(data, new NDList());
    }

    @Override
    protected long availableSize() {
        return pairs.size();
    }

    @Override
    public void prepare(Progress progress) {
        // pairs are encoded before the dataset is built
    }

    private static long[] toLong(int[] ids) {
        long[] out = new long[ids.length];
        for (int i = 0; i < ids.length; i++) {
            out[i] = ids[i];
        }
        return out;
    }

    /** Builds a {@link PreferenceDataset}. */
    public static final class Builder extends BaseBuilder<Builder> {
        private final List<EncodedPair> pairs;

        Builder(List<EncodedPair> pairs, int padId) {
            this.pairs = pairs;
            optDataBatchifier(new PreferenceBatchifier(padId));
            optLabelBatchifier(new EmptyBatchifier());
        }

        /**
         * Seeded order with optional length grouping (see {@link PairOrder}); epochs advance each time
         * the dataset is iterated.
         *
         * @param batchSize pairs per batch
         * @param seed run seed
         * @param groupByLength group similar lengths
         * @return this builder
         */
        public Builder setSeededSampling(int batchSize, long seed, boolean groupByLength) {
            int[] lengths = pairs.stream().mapToInt(EncodedPair::maxLength).toArray();
            return setSampling(new SeededSampler(lengths, batchSize, seed, groupByLength));
        }

        @Override
        protected Builder self() {
            return this;
        }

        /** @return the dataset */
        public PreferenceDataset build() {
            if (getSampler() == null) {
                setSeededSampling(8, 0, false);
            }
            return new PreferenceDataset(this);
        }
    }

    /** Pads a batch of pair records. */
    public static final class PreferenceBatchifier implements Batchifier {
        private static final long serialVersionUID = 1L;
        private final int padId;

        /** @param padId the padding id */
        public PreferenceBatchifier(int padId) {
            this.padId = padId;
        }

        @Override
        public NDList batchify(NDList[] inputs) {
            List<EncodedPair> batch = new ArrayList<>();
            for (NDList r : inputs) {
                float p = r.get(3).getFloat();
                batch.add(new EncodedPair(
                        ints(r.get(0)), ints(r.get(1)), ints(r.get(2)), Float.isNaN(p) ? null : (double) p));
            }
            NDManager manager = inputs[0].get(0).getManager();
            PreferenceBatch b = PreferenceBatch.of(manager, batch, padId);
            NDArray preference = b.preference() != null ? b.preference() : manager.ones(new Shape(b.pairs()));
            return new NDList(b.ids(), b.attentionMask(), b.completionMask(), preference);
        }

        private static int[] ints(NDArray a) {
            long[] l = a.toLongArray();
            int[] out = new int[l.length];
            for (int i = 0; i < l.length; i++) {
                out[i] = (int) l[i];
            }
            return out;
        }

        @Override
        public NDList[] unbatchify(NDList inputs) {
            throw new UnsupportedOperationException("a padded preference batch is not split back into pairs");
        }
    }

    /** Labels are empty: the objective reads its targets from the pairs themselves. */
    static final class EmptyBatchifier implements Batchifier {
        private static final long serialVersionUID = 1L;

        @Override
        public NDList batchify(NDList[] inputs) {
            return new NDList();
        }

        @Override
        public NDList[] unbatchify(NDList inputs) {
            return new NDList[0];
        }
    }

    /** {@link PairOrder} as a DJL sampler. */
    static final class SeededSampler implements Sampler {
        private final int[] lengths;
        private final int batchSize;
        private final long seed;
        private final boolean groupByLength;
        private int epoch;

        SeededSampler(int[] lengths, int batchSize, long seed, boolean groupByLength) {
            this.lengths = lengths;
            this.batchSize = batchSize;
            this.seed = seed;
            this.groupByLength = groupByLength;
        }

        @Override
        public Iterator<List<Long>> sample(RandomAccessDataset dataset) {
            List<List<Long>> batches = new ArrayList<>();
            for (int[] b : PairOrder.epoch(lengths, batchSize, seed, epoch++, true, groupByLength, false)) {
                List<Long> l = new ArrayList<>();
                for (int i : b) {
                    l.add((long) i);
                }
                batches.add(l);
            }
            return batches.iterator();
        }

        @Override
        public int getBatchSize() {
            return batchSize;
        }
    }
}
