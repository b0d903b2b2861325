package org.align4j.cli.quickstart;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.OptionalLong;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The peak resident memory of this process over a stretch of work (one method's training in the
 * quickstart), with its wall time. On Linux the kernel's peak ({@code VmHWM} of {@code /proc/self/status})
 * is reset to the current resident set size at the start by writing {@code 5} to {@code
 * /proc/self/clear_refs} (Linux 4.0+, {@code Documentation/admin-guide/mm/soft-dirty.rst}) and read at the
 * end: every page the JVM, the Java heap and libtorch held at any moment of the stretch counts, the
 * memory resident when it started included (what earlier work left behind counts too: the JVM seldom
 * returns its heap). Where the reset is refused but {@code /proc/self/status} is readable, a daemon
 * thread samples {@code VmRSS} every 50 ms instead (a lower bound: a peak between two samples is
 * missed). Elsewhere (macOS, Windows) there is no peak: {@link Stretch#peakBytes()} is empty.
 */
public final class PeakMemory {
    private static final Logger LOG = LoggerFactory.getLogger(PeakMemory.class);
    private static final Path STATUS = Path.of("/proc/self/status");
    private static final Path CLEAR_REFS = Path.of("/proc/self/clear_refs");
    private static final long SAMPLE_MS = 50;

    private PeakMemory() {}

    /** How a stretch measures its peak. */
    public enum Source {
        /** the kernel's VmHWM after a reset: exact */
        KERNEL_PEAK,
        /** VmRSS sampled every 50 ms: a lower bound */
        SAMPLED,
        /** nothing to read (not Linux) */
        NONE
    }

    /**
     * Starts a stretch now.
     *
     * @return the stretch; call {@link Stretch#stop()} when the work is done
     */
    public static Stretch start() {
        return new Stretch();
    }

    /** One stretch of work: its wall time and peak resident memory. */
    public static final class Stretch {
        private final long startNanos = System.nanoTime();
        private final Source source;
        private final AtomicLong sampledPeak = new AtomicLong(-1);
        private final Thread sampler;
        private volatile boolean running = true;
        private double seconds = Double.NaN;
        private OptionalLong peak = OptionalLong.empty();

        private Stretch() {
            if (resetPeak()) {
                source = Source.KERNEL_PEAK;
                sampler = null;
            } else if (statusField("VmRSS:") >= 0) {
                source = Source.SAMPLED;
                sampledPeak.set(statusField("VmRSS:"));
                sampler = new Thread(this::sample, "peak-memory-sampler");
                sampler.setDaemon(true);
                sampler.start();
            } else {
                source = Source.NONE;
                sampler = null;
            }
        }

        private void sample() {
            while (running) {
                sampledPeak.accumulateAndGet(statusField("VmRSS:"), Math::max);
                try {
                    Thread.sleep(SAMPLE_MS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }

        /**
         * Ends the stretch (once; later calls change nothing).
         *
         * @return this
         */
        public Stretch stop() {
            if (!Double.isNaN(seconds)) {
                return this;
            }
            seconds = (System.nanoTime() - startNanos) / 1e9;
            running = false;
            if (source == Source.KERNEL_PEAK) {
                long hwm = statusField("VmHWM:");
                peak = hwm >= 0 ? OptionalLong.of(hwm) : OptionalLong.empty();
            } else if (source == Source.SAMPLED) {
                sampler.interrupt();
                sampledPeak.accumulateAndGet(statusField("VmRSS:"), Math::max);
                peak = OptionalLong.of(sampledPeak.get());
            }
            return this;
        }

        /** @return wall seconds from start to {@link #stop()} (NaN before it) */
        public double seconds() {
            return seconds;
        }

        /** @return the peak resident set size in bytes during the stretch, empty where it cannot be read */
        public OptionalLong peakBytes() {
            return peak;
        }

        /** @return how the peak was measured */
        public Source source() {
            return source;
        }
    }

    /** Resets VmHWM to the current RSS; false where the kernel refuses (not Linux, or before 4.0). */
    static boolean resetPeak() {
        if (!Files.isWritable(CLEAR_REFS)) {
            return false;
        }
        try {
            Files.writeString(CLEAR_REFS, "5");
            return true;
        } catch (IOException e) {
            LOG.debug("Cannot reset the peak resident set size through {}: {}", CLEAR_REFS, e.getMessage());
            return false;
        }
    }

    /**
     * @param field {@code VmRSS:} or {@code VmHWM:}
     * @return its value in bytes, or -1 when {@code /proc/self/status} cannot be read
     */
    static long statusField(String field) {
        if (!Files.isReadable(STATUS)) {
            return -1;
        }
        try {
            for (String line : Files.readAllLines(STATUS)) {
                if (line.startsWith(field)) {
                    return Long.parseLong(line.substring(field.length()).trim().split("\\s+")[0]) * 1024L;
                }
            }
        } catch (IOException | NumberFormatException e) {
            LOG.debug("Cannot read {} from {}: {}", field, STATUS, e.getMessage());
        }
        return -1;
    }
}
