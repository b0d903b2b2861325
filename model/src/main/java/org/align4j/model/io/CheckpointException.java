package org.align4j.model.io;

import java.nio.file.Path;

/** A checkpoint file that cannot be read or written, with the file (and tensor) at fault. */
public class CheckpointException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /**
     * @param file the file at fault
     * @param message what is wrong (name the tensor or key)
     */
    public CheckpointException(Path file, String message) {
        super(file + ": " + message);
    }

    /**
     * @param file the file at fault
     * @param message what is wrong
     * @param cause the underlying error
     */
    public CheckpointException(Path file, String message, Throwable cause) {
        super(file + ": " + message, cause);
    }
}
