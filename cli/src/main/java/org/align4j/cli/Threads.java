package org.align4j.cli;

/**
 * libtorch's intra-op thread count, which must be set before the engine starts. One thread makes runs
 * bit-identical across machines with different core counts (reductions split the same way); the
 * default is libtorch's (all cores).
 */
final class Threads {
    static final String PROPERTY = "ai.djl.pytorch.num_threads";

    private Threads() {}

    /**
     * @param threads the count asked for on the command line, or null
     * @param fallback the count to use when none was asked for and none is set (null: libtorch's default)
     */
    static void apply(Integer threads, Integer fallback) {
        if (threads != null) {
            if (threads < 1) {
                throw new IllegalArgumentException("--threads: must be >= 1, got " + threads);
            }
            System.setProperty(PROPERTY, threads.toString());
        } else if (fallback != null && System.getProperty(PROPERTY) == null) {
            System.setProperty(PROPERTY, fallback.toString());
        }
    }
}
