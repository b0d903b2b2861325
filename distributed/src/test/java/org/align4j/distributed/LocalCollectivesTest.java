package org.align4j.distributed;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** One process: every collective is the identity; the launcher's environment is read without MPI. */
class LocalCollectivesTest {
    @Test
    void everyOperationLeavesItsArgumentsAsTheyAre() {
        try (NDManager m = NDManager.newBaseManager();
                LocalCollectives c = new LocalCollectives()) {
            NDArray a = m.create(new float[] {1.5f, -2f, 3f});
            NDArray b = m.create(new float[] {4f}).reshape(1, 1);
            c.allReduceSum(List.of(a, b));
            c.broadcast(List.of(a, b));
            c.barrier();
            assertThat(a.toFloatArray()).containsExactly(1.5f, -2f, 3f);
            assertThat(b.toFloatArray()).containsExactly(4f);
            double[] v = {1, 2.5};
            double[] sum = c.allReduceSum(v);
            assertThat(sum).containsExactly(1, 2.5).isNotSameAs(v);
            assertThat(c.rank()).isZero();
            assertThat(c.worldSize()).isOne();
            assertThat(c.isRoot()).isTrue();
        }
    }

    @Test
    void refusesArraysThatAreNotFloat32() {
        try (NDManager m = NDManager.newBaseManager();
                LocalCollectives c = new LocalCollectives()) {
            NDArray d = m.create(new double[] {1});
            assertThatThrownBy(() -> c.allReduceSum(List.of(d)))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("float32")
                    .hasMessageContaining(DataType.FLOAT64.toString());
        }
    }

    @Test
    void launchIsReadFromOpenMpiSlurmAndPmiVariables() {
        assertThat(Launch.fromEnvironment(Map.of())).isEqualTo(Launch.SINGLE);
        assertThat(Launch.fromEnvironment(Map.of(
                        "OMPI_COMM_WORLD_RANK", "1", "OMPI_COMM_WORLD_SIZE", "2", "OMPI_COMM_WORLD_LOCAL_RANK", "1")))
                .isEqualTo(new Launch(1, 2, 1, "mpirun"));
        assertThat(Launch.fromEnvironment(
                        Map.of("PMIX_RANK", "3", "SLURM_NTASKS", "8", "SLURM_LOCALID", "3", "SLURM_PROCID", "3")))
                .isEqualTo(new Launch(3, 8, 3, "srun"));
        assertThat(Launch.fromEnvironment(Map.of("PMI_RANK", "0", "PMI_SIZE", "4")))
                .isEqualTo(new Launch(0, 4, 0, "pmi"));
        // a batch job's single task is not distributed
        assertThat(Launch.fromEnvironment(Map.of("SLURM_PROCID", "0", "SLURM_NTASKS", "1")))
                .isEqualTo(Launch.SINGLE);
        assertThatThrownBy(() -> Launch.fromEnvironment(Map.of("OMPI_COMM_WORLD_SIZE", "two")))
                .hasMessageContaining("OMPI_COMM_WORLD_SIZE");
        assertThatThrownBy(
                        () -> Launch.fromEnvironment(Map.of("OMPI_COMM_WORLD_RANK", "2", "OMPI_COMM_WORLD_SIZE", "2")))
                .hasMessageContaining("rank 2 of world size 2");
    }

    @Test
    void onlyOpenMpiIsAccepted() {
        assertThat(MpiCollectives.isOpenMpi("Open MPI v4.1.4, package: Debian OpenMPI"))
                .isTrue();
        assertThat(MpiCollectives.isOpenMpi("MPICH Version:\t4.0.2")).isFalse();
        assertThat(MpiCollectives.isOpenMpi("Intel(R) MPI Library 2021.6")).isFalse();
    }

    @Test
    void watchdogLimitIsTheMinimumOrTenMedianStepsAndLongPhasesGetMore() throws Exception {
        try (Watchdog w = new Watchdog(0, Duration.ofMillis(200), Duration.ofSeconds(7), () -> "checkpoint-0")) {
            assertThat(w.limit()).isEqualTo(Duration.ofMillis(200));
            Thread.sleep(60);
            w.progress(1);
            Thread.sleep(60);
            w.progress(2);
            Thread.sleep(60);
            w.progress(3);
            // median ~60 ms: 10x is above the 200 ms minimum
            assertThat(w.limit()).isGreaterThanOrEqualTo(Duration.ofMillis(550));
            w.longPhase("evaluation");
            assertThat(w.limit()).isEqualTo(Duration.ofSeconds(7));
            w.progress(3);
            // the long phase's duration does not count as a step
            assertThat(w.limit()).isLessThan(Duration.ofSeconds(5));
        }
    }

    @Test
    void watchdogMinimumComesFromThePropertyAndIsChecked() {
        String before = System.getProperty("align4j.watchdog.seconds");
        try {
            System.setProperty("align4j.watchdog.seconds", "2.5");
            assertThat(Watchdog.configuredMinimum()).isEqualTo(Duration.ofMillis(2500));
            System.setProperty("align4j.watchdog.seconds", "-1");
            assertThatThrownBy(Watchdog::configuredMinimum).hasMessageContaining("align4j.watchdog.seconds");
        } finally {
            if (before == null) {
                System.clearProperty("align4j.watchdog.seconds");
            } else {
                System.setProperty("align4j.watchdog.seconds", before);
            }
        }
    }
}
