package org.align4j.distributed;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two processes under {@code mpirun} on this machine, through Open MPI's C API: sums, broadcast and barrier
 * give every rank the same, exact values. Skipped, saying how to enable it, without {@code mpirun}.
 */
class MpiCollectivesTest {
    @TempDir
    Path tmp;

    @Test
    void twoRanksSumBroadcastAndMeet() throws Exception {
        Path log = tmp.resolve("mpi.log");
        int code = MpiRunner.run(2, log, MpiSmokeMain.class.getName());
        String out = Files.readString(log, StandardCharsets.UTF_8);
        assertThat(code).as(out).isZero();
        // twice: a = 2 * (2 * arange(6) + 10) = 4i + 20; b = 2 * (0.5 + 1.5) = 4
        String same = "a [20.0, 24.0, 28.0, 32.0, 36.0, 40.0] b [4.0] w [1.0, 2.0] x [3.0, 4.0][5.0] z [8.0, 9.0, 10.0]"
                + " s [1.0, 2.0]";
        assertThat(out).contains("rank 0 of 2: " + same).contains("rank 1 of 2: " + same);
    }
}
