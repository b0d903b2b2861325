package org.align4j.trainer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.Path;
import org.align4j.data.DataException;
import org.align4j.model.config.ConfigException;
import org.align4j.model.hub.HubException;
import org.align4j.model.io.AtomicDirectory;
import org.align4j.model.io.CheckpointException;

/**
 * How a command failed, as every align4j entry point reports it (the CLI, Spark's {@code ReferenceScoring}):
 * bad input (a file, key, flag or record at fault, named in the message) exits with 2; a run that failed
 * (divergence) or a fault of the machine (disk full, permissions) exits with 1, as does anything unexpected.
 * The console gets {@link #message}, one line; the stack trace belongs in the log.
 *
 * @param code the exit status, 1 or 2
 * @param message one line
 */
public record Failure(int code, String message) {
    /**
     * @param ex what was thrown
     * @return its exit status and one-line message
     */
    public static Failure of(Throwable ex) {
        if (ex instanceof ConfigException
                || ex instanceof CheckpointException
                || ex instanceof DataException
                || ex instanceof HubException
                || ex instanceof IllegalArgumentException) {
            return new Failure(2, firstLine(ex.getMessage()));
        }
        if (ex instanceof TrainingDivergedException) {
            return new Failure(1, firstLine(ex.getMessage()));
        }
        Throwable io = ex instanceof UncheckedIOException u ? u.getCause() : ex;
        if (io instanceof FileSystemException fs) {
            String reason = fs instanceof AccessDeniedException
                    ? "permission denied"
                    : fs.getReason() != null ? fs.getReason() : fs.getClass().getSimpleName();
            if (reason.contains("No space left") && !reason.contains("free on that disk") && fs.getFile() != null) {
                reason += AtomicDirectory.freeSpace(Path.of(fs.getFile()));
            }
            return new Failure(1, "cannot write or read " + fs.getFile() + ": " + reason);
        }
        if (io instanceof IOException) {
            return new Failure(1, "input/output failed: " + firstLine(io.getMessage()));
        }
        return new Failure(
                1, "internal error: " + ex.getClass().getName() + ": " + firstLine(String.valueOf(ex.getMessage())));
    }

    /**
     * @param s a message, possibly null or of several lines
     * @return its first line, or empty
     */
    public static String firstLine(String s) {
        return s == null ? "" : s.lines().findFirst().orElse("");
    }
}
