package org.align4j.model.io;

import java.io.IOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileStore;
import java.nio.file.FileSystemException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Writes a folder so that readers see either the old one or the complete new one: the content is
 * written into a hidden sibling temp folder, which is then renamed into place.
 */
public final class AtomicDirectory {
    private static final Logger LOG = LoggerFactory.getLogger(AtomicDirectory.class);

    /** Writes the content of a folder. */
    @FunctionalInterface
    public interface Writer {
        /**
         * @param dir the (temporary) folder to write into
         * @throws IOException on failure; the temp folder is then removed and the target untouched
         */
        void write(Path dir) throws IOException;
    }

    private AtomicDirectory() {}

    /**
     * Writes {@code target} atomically, replacing it if it exists.
     *
     * @param target the folder to create or replace
     * @param writer fills the folder
     * @throws IOException on failure (the old folder, if any, is kept)
     */
    public static void write(Path target, Writer writer) throws IOException {
        Path abs = target.toAbsolutePath().normalize();
        Path parent = abs.getParent();
        Files.createDirectories(parent);
        recoverInterrupted(abs);
        String stamp = Long.toString(System.nanoTime(), 36);
        Path tmp = parent.resolve("." + abs.getFileName() + ".tmp-" + stamp);
        Files.createDirectory(tmp);
        try {
            writer.write(tmp);
        } catch (IOException e) {
            deleteRecursively(tmp);
            throw withPath(abs, e);
        } catch (RuntimeException e) {
            deleteRecursively(tmp);
            throw e;
        }
        Path old = null;
        if (Files.exists(abs)) {
            old = parent.resolve("." + abs.getFileName() + ".old-" + stamp);
            Files.move(abs, old);
        }
        try {
            move(tmp, abs);
        } catch (IOException e) {
            if (old != null) {
                Files.move(old, abs);
            }
            deleteRecursively(tmp);
            throw e;
        }
        if (old != null) {
            deleteRecursively(old);
        }
    }

    /**
     * What a write of {@code target} killed mid-way left: its temp folders ({@code .NAME.tmp-*}) are
     * removed, and an old copy moved aside ({@code .NAME.old-*}) whose replacement never arrived is put
     * back, so a killed merge or save leaves nothing behind at the next write.
     */
    private static void recoverInterrupted(Path abs) throws IOException {
        String name = abs.getFileName().toString();
        List<Path> leftovers;
        try (Stream<Path> s = Files.list(abs.getParent())) {
            leftovers = s.filter(p -> {
                        String n = p.getFileName().toString();
                        return n.startsWith("." + name + ".tmp-") || n.startsWith("." + name + ".old-");
                    })
                    .sorted()
                    .toList();
        }
        for (Path p : leftovers) {
            if (p.getFileName().toString().startsWith("." + name + ".old-") && !Files.exists(abs)) {
                LOG.warn("{}: restored from {}, which an interrupted write had moved aside", abs, p);
                Files.move(p, abs);
            } else {
                LOG.warn("{}: removing {}, left by an interrupted write", abs, p);
                deleteRecursively(p);
            }
        }
    }

    /**
     * An I/O error without a path (a full disk reports only "No space left on device") gets the target
     * and the free space, so its one line says where and how much.
     */
    private static IOException withPath(Path target, IOException e) {
        if (!(e instanceof FileSystemException)) {
            FileSystemException named =
                    new FileSystemException(target.toString(), null, e.getMessage() + freeSpace(target));
            named.initCause(e);
            return named;
        }
        return e;
    }

    /**
     * @param path a path whose disk is meant (it need not exist)
     * @return " (N MiB free on that disk)", or "" when it cannot be told
     */
    public static String freeSpace(Path path) {
        Path p = path.toAbsolutePath();
        while (p != null && !Files.exists(p)) {
            p = p.getParent();
        }
        if (p == null) {
            return "";
        }
        try {
            FileStore store = Files.getFileStore(p);
            return String.format(Locale.ROOT, " (%d MiB free on that disk)", store.getUsableSpace() >> 20);
        } catch (IOException e) {
            return "";
        }
    }

    /**
     * Writes a file atomically (temp file in the same folder, then rename).
     *
     * @param target the file
     * @param bytes its content
     * @throws IOException on failure
     */
    public static void writeFile(Path target, byte[] bytes) throws IOException {
        Path abs = target.toAbsolutePath().normalize();
        Files.createDirectories(abs.getParent());
        Path tmp = abs.resolveSibling("." + abs.getFileName() + ".tmp-" + Long.toString(System.nanoTime(), 36));
        try {
            Files.write(tmp, bytes);
            move(tmp, abs);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    private static void move(Path from, Path to) throws IOException {
        try {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(from, to);
        }
    }

    /**
     * Deletes a file tree; a missing path is fine.
     *
     * @param root the tree
     * @throws IOException on failure
     */
    public static void deleteRecursively(Path root) throws IOException {
        if (!Files.exists(root)) {
            return;
        }
        Files.walkFileTree(root, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
                Files.delete(file);
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult postVisitDirectory(Path dir, IOException exc) throws IOException {
                Files.delete(dir);
                return FileVisitResult.CONTINUE;
            }
        });
    }
}
