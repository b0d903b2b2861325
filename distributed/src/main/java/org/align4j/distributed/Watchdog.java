package org.align4j.distributed;

import java.time.Duration;
import java.util.Arrays;
import java.util.Locale;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Ends this process when training stops making progress: a peer that hangs (stopped, swapping, deadlocked)
 * blocks every other process in its next collective forever, since MPI has no timeout. A daemon thread,
 * which never calls MPI, checks the time since the last {@link #progress}; past the limit it logs the rank,
 * the step and the checkpoint to resume from, then halts the JVM with {@link #EXIT_CODE}, and the launcher
 * ({@code mpirun}, {@code srun --kill-on-bad-exit=1}) ends the others.
 *
 * <p>The limit is max({@code minimum}, 10 × the median of the last steps' durations); {@code minimum} is 60 s
 * unless the system property {@code align4j.watchdog.seconds} or the environment variable {@code
 * ALIGN4J_WATCHDOG_SECONDS} says otherwise. During a long phase (the first step, evaluation, a checkpoint)
 * the limit is {@link #LONG_PHASE} unless {@code align4j.watchdog.longSeconds} or {@code
 * ALIGN4J_WATCHDOG_LONG_SECONDS} says otherwise.
 */
public final class Watchdog implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Watchdog.class);

    /** The exit status of a halted process (EX_TEMPFAIL: resume from the named checkpoint). */
    public static final int EXIT_CODE = 75;

    /** The default limit during {@link #longPhase}: evaluation and checkpoints of large models take minutes. */
    public static final Duration LONG_PHASE = Duration.ofMinutes(30);

    private static final int WINDOW = 64;

    private final int rank;
    private final long minimumNanos;
    private final long longNanos;
    private final Supplier<String> resumeHint;
    private final long[] durations = new long[WINDOW];
    private final Thread thread;
    private int count;
    private volatile long last = System.nanoTime();
    private volatile long limitNanos;
    private volatile long step;
    private volatile String phase;
    private volatile boolean stopped;

    /**
     * Starts watching.
     *
     * @param rank this process's rank (named in the message)
     * @param minimum the smallest limit
     * @param longPhase the limit during a {@link #longPhase}
     * @param resumeHint says which checkpoint to resume from (read when it fires; it must not block)
     */
    public Watchdog(int rank, Duration minimum, Duration longPhase, Supplier<String> resumeHint) {
        this.rank = rank;
        this.minimumNanos = minimum.toNanos();
        this.longNanos = longPhase.toNanos();
        this.limitNanos = minimumNanos;
        this.resumeHint = resumeHint;
        this.thread = new Thread(this::watch, "align4j-watchdog");
        thread.setDaemon(true);
        thread.start();
    }

    /**
     * @return the smallest limit: {@code align4j.watchdog.seconds}, else {@code ALIGN4J_WATCHDOG_SECONDS},
     *     else 60 s
     * @throws IllegalArgumentException naming the property or variable when it is not a positive number
     */
    public static Duration configuredMinimum() {
        return configured("align4j.watchdog.seconds", "ALIGN4J_WATCHDOG_SECONDS", Duration.ofSeconds(60));
    }

    /**
     * @return the limit of a long phase: {@code align4j.watchdog.longSeconds}, else {@code
     *     ALIGN4J_WATCHDOG_LONG_SECONDS}, else {@link #LONG_PHASE}
     * @throws IllegalArgumentException naming the property or variable when it is not a positive number
     */
    public static Duration configuredLongPhase() {
        return configured("align4j.watchdog.longSeconds", "ALIGN4J_WATCHDOG_LONG_SECONDS", LONG_PHASE);
    }

    private static Duration configured(String property, String variable, Duration absent) {
        String p = System.getProperty(property);
        String name = "system property " + property;
        if (p == null) {
            p = System.getenv(variable);
            name = "environment variable " + variable;
        }
        if (p == null || p.isBlank()) {
            return absent;
        }
        try {
            double s = Double.parseDouble(p.strip());
            if (!(s > 0)) {
                throw new NumberFormatException();
            }
            return Duration.ofMillis((long) (s * 1000));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(name + ": '" + p + "' is not a positive number of seconds");
        }
    }

    /**
     * A step ended: the clock restarts, and its duration joins the median.
     *
     * @param step the step reached (named if the next one hangs)
     */
    public synchronized void progress(long step) {
        long now = System.nanoTime();
        if (phase == null) {
            durations[count++ % WINDOW] = now - last;
        }
        this.step = step;
        this.phase = null;
        last = now;
        limitNanos = Math.max(minimumNanos, 10 * median());
    }

    /**
     * Something longer than a step starts (evaluation, a checkpoint); the next {@link #progress} ends it.
     *
     * @param what named if it hangs
     */
    public synchronized void longPhase(String what) {
        phase = what;
        last = System.nanoTime();
        limitNanos = longNanos;
    }

    /** @return the current limit */
    public Duration limit() {
        return Duration.ofNanos(limitNanos);
    }

    private long median() {
        int n = Math.min(count, WINDOW);
        if (n == 0) {
            return 0;
        }
        long[] d = Arrays.copyOf(durations, n);
        Arrays.sort(d);
        return d[n / 2];
    }

    private void watch() {
        while (!stopped) {
            try {
                Thread.sleep(Math.max(50, Math.min(1000, limitNanos / 20_000_000)));
            } catch (InterruptedException e) {
                return;
            }
            long idle = System.nanoTime() - last;
            if (!stopped && idle > limitNanos) {
                String where = phase != null ? phase + " after step " + step : "step " + (step + 1);
                LOG.error(
                        "Rank {} made no progress for {} s in {} (limit {} s): another process hangs or died; ending"
                                + " this one (exit {}). Resume with --resume from {}",
                        rank,
                        idle / 1_000_000_000,
                        where,
                        String.format(Locale.ROOT, "%.1f", limitNanos / 1e9),
                        EXIT_CODE,
                        resumeHint.get());
                Runtime.getRuntime().halt(EXIT_CODE);
            }
        }
    }

    /** Stops watching (the run ended). */
    @Override
    public void close() {
        stopped = true;
        thread.interrupt();
    }
}
