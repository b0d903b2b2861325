package org.align4j.model.generate;

/**
 * The random numbers of one generated row: a pure function of a key (the run's seed and what identifies
 * the row, such as the generation step, the prompt and the sample's index) and the token position. A row
 * therefore draws the same tokens whatever batch it is in and whenever it is generated again (a resumed
 * run). The mixing is SplitMix64's finaliser (Steele, Lea and Flood, "Fast splittable pseudorandom number
 * generators", OOPSLA 2014), as {@link java.util.SplittableRandom} uses it.
 *
 * @param key the row's key ({@link #key})
 */
public record RowStream(long key) {
    private static final long GOLDEN = 0x9E3779B97F4A7C15L;

    /**
     * @param parts the run's seed, then what identifies the row (e.g. step, prompt index, sample index)
     * @return a key mixing them all (their order matters)
     */
    public static long key(long... parts) {
        long h = 0x243F6A8885A308D3L;
        for (long p : parts) {
            h = mix(h + GOLDEN + mix(p));
        }
        return h;
    }

    /**
     * @param position the index of the new token in the row's completion (0 for the first)
     * @return a uniform number in (0, 1), never 0 or 1
     */
    public double uniform(int position) {
        long bits = mix(key + GOLDEN * (position + 1L)) >>> 11;
        return (bits + 0.5) * 0x1.0p-53;
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
