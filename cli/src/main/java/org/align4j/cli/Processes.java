package org.align4j.cli;

import java.io.File;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.align4j.distributed.Launch;
import org.align4j.trainer.TrainingLoop;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Several training processes on one machine: {@code --nproc N} starts this same command under {@code mpirun -np
 * N} (Open MPI), each process taking its share of every global batch; under {@code mpirun} or {@code srun}
 * started by the user, the command runs as it is. Processes of rank &gt; 0 keep the console and the run folder
 * to rank 0.
 */
final class Processes {
    private static final Logger LOG = LoggerFactory.getLogger(Processes.class);

    private Processes() {}

    /** @return whether this process is one of several but not rank 0 (it prints and writes nothing of the run) */
    static boolean follower() {
        return Launch.fromEnvironment().rank() > 0;
    }

    /**
     * Runs the command line again under {@code mpirun -np N} when {@code --nproc N} asks for more than one
     * process.
     *
     * @param nproc {@code --nproc}, or null
     * @param threads {@code --threads}, or null (then each process gets an equal share of the cores)
     * @param originalArgs the whole command line
     * @param command the command, for messages
     * @return mpirun's exit status, or null when this process trains by itself
     * @throws IllegalArgumentException naming {@code --nproc} when it cannot be done
     */
    static Integer relaunch(Integer nproc, Integer threads, List<String> originalArgs, String command)
            throws Exception {
        if (nproc == null || nproc == 1) {
            return null;
        }
        if (nproc < 1) {
            throw new IllegalArgumentException("--nproc: must be >= 1, got " + nproc);
        }
        Launch launch = Launch.fromEnvironment();
        if (launch.distributed()) {
            throw new IllegalArgumentException(
                    "--nproc: this process is already rank " + launch.rank() + " of " + launch.worldSize()
                            + " started by " + launch.launcher() + "; leave --nproc out under mpirun or srun");
        }
        Path mpirun = findMpirun();
        List<String> cmd = new ArrayList<>(List.of(mpirun.toString(), "-np", nproc.toString()));
        int cores = Runtime.getRuntime().availableProcessors();
        if (nproc > cores) {
            cmd.add("--oversubscribe");
        }
        String java = ProcessHandle.current()
                .info()
                .command()
                .orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add(java);
        cmd.addAll(ManagementFactory.getRuntimeMXBean().getInputArguments());
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), Align4j.class.getName()));
        for (int i = 0; i < originalArgs.size(); i++) {
            String a = originalArgs.get(i);
            if (a.equals("--nproc")) {
                i++;
            } else if (!a.startsWith("--nproc=")) {
                cmd.add(a);
            }
        }
        if (threads == null) {
            // libtorch's default is every core in every process: share them instead
            cmd.addAll(List.of("--threads", String.valueOf(Math.max(1, cores / nproc))));
        }
        ProcessBuilder pb = new ProcessBuilder(cmd).inheritIO();
        // one machine: Open MPI's traffic stays on the loopback interface
        pb.environment().putIfAbsent("OMPI_MCA_oob_tcp_if_include", "lo");
        pb.environment().putIfAbsent("OMPI_MCA_btl_tcp_if_include", "lo");
        if ("root".equals(System.getProperty("user.name"))) {
            // mpirun refuses root unless told; the user asked for these processes by --nproc
            pb.environment().putIfAbsent("OMPI_ALLOW_RUN_AS_ROOT", "1");
            pb.environment().putIfAbsent("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
        }
        LOG.info("{}: starting {} processes: {}", command, nproc, String.join(" ", cmd));
        Process p = pb.start();
        return p.waitFor();
    }

    /**
     * Refuses {@code --nproc} above 1 for a command that runs as one process only.
     *
     * @param nproc {@code --nproc}, or null
     * @param command the command, named in the message
     */
    static void refuse(Integer nproc, String command) {
        if (nproc != null && nproc != 1) {
            throw new IllegalArgumentException("--nproc: " + command + " runs as one process only");
        }
        TrainingLoop.requireSingleProcess(command);
    }

    private static Path findMpirun() {
        String given = System.getenv("ALIGN4J_MPIRUN");
        if (given != null && !given.isBlank()) {
            return Path.of(given);
        }
        for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            Path p = Path.of(dir, "mpirun");
            if (Files.isExecutable(p)) {
                return p;
            }
        }
        throw new IllegalArgumentException("--nproc: mpirun is not on the PATH: install Open MPI (Debian: apt-get"
                + " install openmpi-bin) or set ALIGN4J_MPIRUN to it");
    }
}
