package org.align4j.model.hub;

/**
 * Receives the progress of each file a {@link HubClient} downloads, a few times a second and once at the
 * end, so that an application can draw it (the CLI renders bytes, rate and ETA on the console; the library
 * itself only logs one line per file).
 */
@FunctionalInterface
public interface DownloadProgress {
    /** Draws nothing. */
    DownloadProgress NONE = t -> {};

    /** @param transfer where one file's download stands */
    void update(Transfer transfer);

    /**
     * Where one file's download stands.
     *
     * @param repo the repository id
     * @param file the file's path in the repository
     * @param bytes bytes on disk so far (a resumed download starts above 0)
     * @param total the file's size, or -1 when the server did not say
     * @param resumedFrom bytes that were already on disk when this download started
     * @param elapsedNanos time since this download started
     * @param done whether the file is complete and verified
     */
    record Transfer(
            String repo, String file, long bytes, long total, long resumedFrom, long elapsedNanos, boolean done) {
        /** @return bytes per second fetched by this download (not counting what was resumed), 0 at the start */
        public double bytesPerSecond() {
            return elapsedNanos <= 0 ? 0 : (bytes - resumedFrom) * 1e9 / elapsedNanos;
        }

        /** @return seconds left at the current rate, or -1 when unknown */
        public double etaSeconds() {
            double rate = bytesPerSecond();
            return total < 0 || rate <= 0 ? -1 : (total - bytes) / rate;
        }
    }
}
