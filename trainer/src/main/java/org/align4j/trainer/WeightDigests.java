package org.align4j.trainer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import org.align4j.distributed.Launch;
import org.align4j.model.io.AtomicDirectory;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * SHA-256 digests of whole files, remembered in a JSON file under each file's real path, size and
 * modification time, so that a checkpoint of many gigabytes is read in full once, not at every run.
 * A file whose size or time changed is hashed again; an unreadable memo is started afresh.
 */
final class WeightDigests {
    private static final Logger LOG = LoggerFactory.getLogger(WeightDigests.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path memo;
    private final ObjectNode entries;
    private boolean changed;

    private WeightDigests(Path memo, ObjectNode entries) {
        this.memo = memo;
        this.entries = entries;
    }

    static WeightDigests open(Path memo) {
        ObjectNode entries = JSON.createObjectNode();
        if (Files.isRegularFile(memo)) {
            try {
                JsonNode n = JSON.readTree(memo.toFile());
                if (n != null && n.isObject()) {
                    entries = (ObjectNode) n;
                }
            } catch (IOException e) {
                LOG.warn("{}: unreadable ({}); digests are computed again", memo, e.getMessage());
            }
        }
        return new WeightDigests(memo, entries);
    }

    /**
     * @param file a file
     * @return its SHA-256, hex
     * @throws IOException when it cannot be read
     */
    String of(Path file) throws IOException {
        Path real = file.toRealPath();
        long size = Files.size(real);
        long modified = Files.getLastModifiedTime(real).toMillis();
        JsonNode e = entries.get(real.toString());
        if (e != null
                && e.path("size").asLong(-1) == size
                && e.path("modified").asLong(-1) == modified
                && e.hasNonNull("sha256")) {
            return e.get("sha256").asText();
        }
        long t0 = System.nanoTime();
        MessageDigest d = sha256();
        try (InputStream in = new DigestInputStream(Files.newInputStream(real), d)) {
            in.transferTo(OutputStream.nullOutputStream());
        }
        String hex = HexFormat.of().formatHex(d.digest());
        entries.putObject(real.toString())
                .put("size", size)
                .put("modified", modified)
                .put("sha256", hex);
        changed = true;
        LOG.info(
                "SHA-256 of {} ({} MB) in {} s",
                real,
                size >> 20,
                String.format("%.1f", (System.nanoTime() - t0) / 1e9));
        return hex;
    }

    /** Writes the memo if a digest was added (atomically; a failure only costs a later re-hash). */
    void save() {
        if (!changed || Launch.fromEnvironment().rank() > 0) { // of several processes, rank 0 alone writes
            return;
        }
        try {
            Files.createDirectories(memo.getParent());
            AtomicDirectory.writeFile(
                    memo,
                    JSON.writerWithDefaultPrettyPrinter()
                            .writeValueAsString(entries)
                            .getBytes(StandardCharsets.UTF_8));
            changed = false;
        } catch (IOException e) {
            LOG.warn("{}: cannot remember the digests ({})", memo, e.getMessage());
        }
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
