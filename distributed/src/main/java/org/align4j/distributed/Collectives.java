package org.align4j.distributed;

import ai.djl.ndarray.NDArray;
import java.util.List;

/**
 * The collective operations data-parallel training needs, over every process of a job (MPI's {@code
 * MPI_COMM_WORLD}). Every process must call the same operations in the same order with arrays of the same
 * shapes, or the job hangs ({@link Watchdog} ends it) or fails; all of them block until every process has
 * called. They are called from one thread at a time (the training thread).
 *
 * <p>Implementations: {@link LocalCollectives} for a process on its own (every operation is the identity,
 * no native library is loaded) and {@link MpiCollectives} (Open MPI through JNA). {@link #fromEnvironment}
 * picks one for this process.
 */
public interface Collectives extends AutoCloseable {
    /** @return this process's rank, 0 to {@code worldSize() - 1}; rank 0 writes the run's files */
    int rank();

    /** @return the number of processes, &ge; 1 */
    int worldSize();

    /**
     * Sums arrays element-wise over all processes, in place: afterwards every process holds the same sums.
     * The arrays are packed into a few flat buckets that are kept between calls with the same shapes, so one
     * call costs one collective per bucket.
     *
     * @param arrays float32 arrays, any shapes (the same shapes, in the same order, on every process); on the
     *     CPU they are read and written through their own memory, elsewhere through a host copy
     * @throws IllegalArgumentException when an array is not float32
     * @throws MpiException when the MPI library reports an error
     */
    void allReduceSum(List<NDArray> arrays);

    /**
     * Sums numbers over all processes (metrics, counts); exact for integers below 2<sup>53</sup>.
     *
     * @param values this process's values (the same length on every process); not modified
     * @return the sums, a new array of the same length
     */
    double[] allReduceSum(double[] values);

    /**
     * Overwrites every process's arrays with rank 0's, in place.
     *
     * @param arrays float32 arrays (the same shapes, in the same order, on every process)
     * @throws IllegalArgumentException when an array is not float32
     */
    default void broadcast(List<NDArray> arrays) {
        broadcast(arrays, 0);
    }

    /**
     * Overwrites every process's arrays with those of process {@code root}, in place.
     *
     * @param arrays float32 arrays (the same shapes, in the same order, on every process)
     * @param root the rank whose arrays are sent
     * @throws IllegalArgumentException when an array is not float32
     */
    void broadcast(List<NDArray> arrays, int root);

    /** Returns when every process has called it. */
    void barrier();

    /**
     * Ends this process's part in the job ({@code MPI_Finalize}) after a normal end; the instance cannot be
     * used afterwards. A failing process must not call it: it exits with a non-zero status and the launcher
     * ends the others.
     */
    @Override
    void close();

    /** @return whether this process is rank 0 */
    default boolean isRoot() {
        return rank() == 0;
    }

    /**
     * The process-wide collectives: {@link MpiCollectives} when the environment says a launcher started
     * several processes ({@link Launch#fromEnvironment}), else {@link LocalCollectives}. MPI is initialised
     * on the first call, once per process; later calls return the same instance until it is closed.
     *
     * @return this process's collectives
     * @throws MpiException when MPI is required but its library cannot be loaded or is not Open MPI
     */
    static Collectives fromEnvironment() {
        return Shared.get();
    }

    /** The process-wide instance of {@link #fromEnvironment}. */
    final class Shared {
        private static Collectives instance;

        private Shared() {}

        static synchronized Collectives get() {
            if (instance == null) {
                Launch launch = Launch.fromEnvironment();
                instance = launch.distributed() ? MpiCollectives.start(launch) : new LocalCollectives();
            }
            return instance;
        }

        /**
         * Finalises the process-wide instance, if one was made: what a command does when it ends normally.
         */
        public static synchronized void closeIfOpen() {
            if (instance != null) {
                instance.close();
            }
        }
    }
}
