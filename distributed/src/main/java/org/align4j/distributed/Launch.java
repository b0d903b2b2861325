package org.align4j.distributed;

import java.util.Map;

/**
 * Where this process stands in a job, as its launcher's environment says, read without loading any native
 * library: {@code mpirun} (Open MPI) sets {@code OMPI_COMM_WORLD_RANK}, {@code OMPI_COMM_WORLD_SIZE} and
 * {@code OMPI_COMM_WORLD_LOCAL_RANK}; Slurm's {@code srun --mpi=pmix} sets {@code PMIX_RANK} with {@code
 * SLURM_PROCID}, {@code SLURM_NTASKS} and {@code SLURM_LOCALID}; PMI-1/PMI-2 launchers (MPICH's Hydra, {@code
 * srun --mpi=pmi2}) set {@code PMI_RANK} and {@code PMI_SIZE} (an MPICH library is then refused by name when
 * MPI starts).
 *
 * @param rank this process's rank, 0 to {@code worldSize - 1}
 * @param worldSize the number of processes of the job, &ge; 1
 * @param localRank the rank among the processes of this machine
 * @param launcher which environment said so ("mpirun", "srun", "pmi"), or "none" for a lone process
 */
public record Launch(int rank, int worldSize, int localRank, String launcher) {
    /** A process started on its own: rank 0 of 1. */
    public static final Launch SINGLE = new Launch(0, 1, 0, "none");

    /**
     * @param rank rank
     * @param worldSize world size
     * @param localRank local rank
     * @param launcher launcher
     * @throws IllegalArgumentException when the rank is not in [0, worldSize)
     */
    public Launch {
        if (worldSize < 1 || rank < 0 || rank >= worldSize) {
            throw new IllegalArgumentException(
                    "launcher environment: rank " + rank + " of world size " + worldSize + " (from " + launcher + ")");
        }
    }

    /** @return this process's launch, from {@link System#getenv()} */
    public static Launch fromEnvironment() {
        return fromEnvironment(System.getenv());
    }

    /**
     * @param env environment variables
     * @return the launch they describe; {@link #SINGLE} when no launcher variable is set
     * @throws IllegalArgumentException naming the variable when one is not a number
     */
    public static Launch fromEnvironment(Map<String, String> env) {
        if (env.containsKey("OMPI_COMM_WORLD_SIZE")) {
            return new Launch(
                    number(env, "OMPI_COMM_WORLD_RANK", 0),
                    number(env, "OMPI_COMM_WORLD_SIZE", 1),
                    number(env, "OMPI_COMM_WORLD_LOCAL_RANK", 0),
                    "mpirun");
        }
        if (env.containsKey("PMIX_RANK") && env.containsKey("SLURM_NTASKS")) {
            return new Launch(
                    number(env, "PMIX_RANK", 0),
                    number(env, "SLURM_NTASKS", 1),
                    number(env, "SLURM_LOCALID", 0),
                    "srun");
        }
        if (env.containsKey("PMI_SIZE") && env.containsKey("PMI_RANK")) {
            return new Launch(
                    number(env, "PMI_RANK", 0),
                    number(env, "PMI_SIZE", 1),
                    number(env, "MPI_LOCALRANKID", number(env, "SLURM_LOCALID", 0)),
                    "pmi");
        }
        return SINGLE;
    }

    /** @return whether the job has more than one process */
    public boolean distributed() {
        return worldSize > 1;
    }

    private static int number(Map<String, String> env, String name, int absent) {
        String v = env.get(name);
        if (v == null || v.isBlank()) {
            return absent;
        }
        try {
            return Integer.parseInt(v.strip());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("environment variable " + name + ": '" + v + "' is not a number");
        }
    }
}
