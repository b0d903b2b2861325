package org.align4j.model.hub;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Map;
import java.util.Optional;

/**
 * The cache folder as {@code huggingface_hub} lays it out, so that either side reads what the other
 * wrote: {@code <root>/models--owner--name/refs/<revision>} holds a commit hash, {@code
 * snapshots/<commit>/<file>} is a relative symbolic link to {@code blobs/<etag>} (a copy where links are
 * not allowed), {@code blobs/<etag>.incomplete} is a download in progress, and {@code
 * <root>/.locks/models--owner--name/<etag>.lock} guards a blob while it is written.
 *
 * @param root the cache's root folder
 */
public record HubCache(Path root) {
    /**
     * The cache {@code huggingface_hub} uses for an environment: {@code HF_HUB_CACHE}, else {@code
     * HF_HOME/hub}, else {@code ~/.cache/huggingface/hub} ({@code XDG_CACHE_HOME} replacing {@code ~/.cache}).
     *
     * @param env the environment
     * @param home the user's home folder
     * @return the cache
     */
    public static HubCache fromEnvironment(Map<String, String> env, Path home) {
        String hubCache = env.get("HF_HUB_CACHE");
        if (hubCache != null && !hubCache.isBlank()) {
            return new HubCache(expand(hubCache, home));
        }
        return new HubCache(hfHome(env, home).resolve("hub"));
    }

    /**
     * @param env the environment
     * @param home the user's home folder
     * @return {@code HF_HOME}, else {@code $XDG_CACHE_HOME/huggingface}, else {@code ~/.cache/huggingface}
     */
    static Path hfHome(Map<String, String> env, Path home) {
        String hfHome = env.get("HF_HOME");
        if (hfHome != null && !hfHome.isBlank()) {
            return expand(hfHome, home);
        }
        String xdg = env.get("XDG_CACHE_HOME");
        Path cache = xdg != null && !xdg.isBlank() ? expand(xdg, home) : home.resolve(".cache");
        return cache.resolve("huggingface");
    }

    private static Path expand(String p, Path home) {
        return p.equals("~") ? home : p.startsWith("~/") ? home.resolve(p.substring(2)) : Path.of(p);
    }

    /** @param id a repository @return its folder ({@code models--owner--name}) */
    public Path repoDir(HubId id) {
        return root.resolve(id.cacheFolderName());
    }

    /** @param id a repository @param commit a commit hash @return its snapshot folder */
    public Path snapshotDir(HubId id, String commit) {
        return repoDir(id).resolve("snapshots").resolve(commit);
    }

    /** @param id a repository @param etag a blob's etag @return the blob */
    public Path blob(HubId id, String etag) {
        return repoDir(id).resolve("blobs").resolve(etag);
    }

    /** @param id a repository @param etag a blob's etag @return the lock file guarding it, as huggingface_hub names it */
    public Path lockFile(HubId id, String etag) {
        return root.resolve(".locks").resolve(id.cacheFolderName()).resolve(etag + ".lock");
    }

    /**
     * The commit a revision pointed to when it was last resolved online.
     *
     * @param id a repository at a revision
     * @return the commit: the revision itself when it is one, else what {@code refs/<revision>} holds
     */
    public Optional<String> commitOf(HubId id) {
        if (id.revisionIsCommit()) {
            return Optional.of(id.revision());
        }
        Path ref = repoDir(id).resolve("refs").resolve(id.revision());
        try {
            return Files.isRegularFile(ref)
                    ? Optional.of(Files.readString(ref, StandardCharsets.UTF_8).trim())
                    : Optional.empty();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Records that a revision points at a commit (a no-op for a commit).
     *
     * @param id a repository at a revision
     * @param commit the commit it resolved to
     */
    public void writeRef(HubId id, String commit) {
        if (id.revisionIsCommit()) {
            return;
        }
        Path ref = repoDir(id).resolve("refs").resolve(id.revision());
        try {
            if (Files.isRegularFile(ref)
                    && Files.readString(ref, StandardCharsets.UTF_8).equals(commit)) {
                return;
            }
            Files.createDirectories(ref.getParent());
            Path tmp = Files.createTempFile(ref.getParent(), ".ref", ".tmp");
            Files.writeString(tmp, commit, StandardCharsets.UTF_8);
            Files.move(tmp, ref, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Points {@code snapshots/<commit>/<file>} at a blob: a relative symbolic link as huggingface_hub makes
     * it, or a copy where the file system refuses links.
     *
     * @param id the repository
     * @param commit the commit
     * @param file the file's path in the repository
     * @param blob the blob
     * @return the snapshot's file
     * @throws IOException if it cannot be written
     */
    public Path link(HubId id, String commit, String file, Path blob) throws IOException {
        Path pointer = snapshotDir(id, commit).resolve(file);
        if (pointer.equals(blob) || Files.isRegularFile(pointer)) {
            return pointer; // another process linked it meanwhile
        }
        Files.createDirectories(pointer.getParent());
        Files.deleteIfExists(pointer); // a dangling link
        try {
            Files.createSymbolicLink(pointer, pointer.getParent().relativize(blob));
        } catch (FileAlreadyExistsException e) {
            return pointer;
        } catch (UnsupportedOperationException | IOException e) {
            Path tmp = Files.createTempFile(pointer.getParent(), ".copy", ".tmp");
            Files.copy(blob, tmp, StandardCopyOption.REPLACE_EXISTING);
            Files.move(tmp, pointer, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        }
        return pointer;
    }
}
