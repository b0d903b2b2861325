package org.align4j.distributed;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Starts a main class of the test classpath under {@code mpirun -np N} on this machine (loopback only). */
final class MpiRunner {
    private MpiRunner() {}

    /** Skips the calling test, saying how to enable it, when {@code mpirun} is not on the PATH. */
    static Path requireMpirun() {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            Path p = Path.of(dir, "mpirun");
            if (Files.isExecutable(p)) {
                return p;
            }
        }
        assumeTrue(
                false, "mpirun is not installed: the multi-process tests need Open MPI (apt-get install openmpi-bin)");
        return null;
    }

    /**
     * @param ranks processes
     * @param log where their output goes
     * @param mainClass the main class
     * @param args its arguments
     * @return mpirun's exit status
     */
    static int run(int ranks, Path log, String mainClass, String... args) throws IOException, InterruptedException {
        Path mpirun = requireMpirun();
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        List<String> cmd = new ArrayList<>(List.of(mpirun.toString(), "-np", String.valueOf(ranks)));
        cmd.addAll(
                List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx1g", "-cp", cp));
        cmd.add(mainClass);
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("OMPI_ALLOW_RUN_AS_ROOT", "1");
        pb.environment().put("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
        pb.environment().put("OMPI_MCA_oob_tcp_if_include", "lo");
        pb.environment().put("OMPI_MCA_btl_tcp_if_include", "lo");
        Process p = pb.start();
        if (!p.waitFor(3, TimeUnit.MINUTES)) {
            p.destroyForcibly();
            throw new AssertionError(
                    "mpirun did not end in 3 minutes: " + Files.readString(log, StandardCharsets.UTF_8));
        }
        return p.exitValue();
    }
}
