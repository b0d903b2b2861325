package org.align4j.cli.quickstart;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** Each stretch's peak is its own: a 256 MiB array held in one stretch shows there and not in the next. */
class PeakMemoryTest {
    private static final long MIB = 1L << 20;

    @Test
    void aStretchSeesWhatItAllocatedAndTheNextOneStartsFromWhatIsLeft() {
        assumeTrue(Files.isReadable(Path.of("/proc/self/status")), "Linux only: /proc/self/status");
        try (NDManager m = NDManager.newBaseManager(Device.cpu(), "PyTorch")) {
            m.zeros(new Shape(1)).close(); // the engine loaded before the first stretch
            PeakMemory.Stretch big = PeakMemory.start();
            long during;
            try (NDArray a = m.ones(new Shape(64, MIB), DataType.FLOAT32)) { // 256 MiB, every page written
                assertThat(a.getFloat(63, MIB - 1)).isEqualTo(1f);
                // read while the array is held: what else the process holds may move (a collection, pages the
                // kernel reclaims under memory pressure), so the peak is compared with this, not a reading before
                during = PeakMemory.statusField("VmRSS:");
            }
            big.stop();
            assertThat(big.seconds()).isPositive();
            assertThat(big.peakBytes()).isPresent();
            // the kernel's resident counters are per-thread caches, synced in batches: a few hundred KiB of slack
            assertThat(big.peakBytes().getAsLong()).isGreaterThanOrEqualTo(during - 8 * MIB);
            assertThat(during).as("the array is resident").isGreaterThan(256 * MIB);

            PeakMemory.Stretch small = PeakMemory.start();
            try (NDArray a = m.ones(new Shape(4, MIB), DataType.FLOAT32)) { // 16 MiB
                assertThat(a.getFloat(3, MIB - 1)).isEqualTo(1f);
            }
            small.stop();
            assertThat(small.peakBytes()).isPresent();
            if (small.source() == PeakMemory.Source.KERNEL_PEAK) {
                // the kernel's peak was reset: the 256 MiB of the first stretch (freed to the system) are not in it
                assertThat(small.peakBytes().getAsLong()).isLessThan(during - 128 * MIB);
            }
            // stopping twice changes nothing
            double seconds = small.seconds();
            assertThat(small.stop().seconds()).isEqualTo(seconds);
        }
    }

    @Test
    void theKernelPeakIsResetWhereLinuxAllowsIt() {
        assumeTrue(Files.isWritable(Path.of("/proc/self/clear_refs")), "Linux 4.0+: /proc/self/clear_refs");
        assertThat(PeakMemory.start().stop().source()).isEqualTo(PeakMemory.Source.KERNEL_PEAK);
    }
}
