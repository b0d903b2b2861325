package org.align4j.trainer.cli;

/**
 * libtorch's intra-op thread count, which must be set before the engine starts.
 *
 * <p>Why it is a flag: on the 2-core AMD EPYC (Zen 4) machines align4j is developed on, runs with two
 * intra-op threads were occasionally not bit-identical and, about once in five quickstart runs, produced
 * a NaN gradient with a finite loss; pinned to one thread, every run was bit-identical. The quickstart
 * therefore defaults to one thread; training commands use libtorch's default unless told otherwise.
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
