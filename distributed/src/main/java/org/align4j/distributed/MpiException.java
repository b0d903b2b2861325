package org.align4j.distributed;

/** MPI could not be used: its library is missing or not Open MPI, or a call returned an error. */
public class MpiException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** @param message what failed, naming the library or the call */
    public MpiException(String message) {
        super(message);
    }

    /**
     * @param message what failed
     * @param cause the underlying error
     */
    public MpiException(String message, Throwable cause) {
        super(message, cause);
    }
}
