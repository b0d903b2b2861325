package org.align4j.model.hub;

/**
 * A Hub id, revision, split or repository that cannot be used as given, with what to do about it: a
 * malformed id, a repository or revision that does not exist, a gated or private repository without a
 * token that may read it, a repository with pickle weights only, an offline cache without the files. It
 * is bad input (the CLI exits with 2); a network or disk fault is an {@link java.io.UncheckedIOException}.
 */
public class HubException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** @param message one line naming the id (and the flag, file or key where the caller knows it) */
    public HubException(String message) {
        super(message);
    }
}
