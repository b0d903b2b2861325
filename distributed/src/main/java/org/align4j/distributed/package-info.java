/**
 * Collectives for data-parallel training: {@link org.align4j.distributed.Collectives} (sum all-reduce,
 * broadcast from rank 0, barrier), with {@link org.align4j.distributed.LocalCollectives} for one process and
 * {@link org.align4j.distributed.MpiCollectives}, Open MPI's C API called through JNA, for processes started
 * by {@code mpirun} or {@code srun}; {@link org.align4j.distributed.Launch} reads which one a process is from
 * its environment, and {@link org.align4j.distributed.Watchdog} ends a process whose training stopped making
 * progress (MPI has no timeout).
 */
package org.align4j.distributed;
