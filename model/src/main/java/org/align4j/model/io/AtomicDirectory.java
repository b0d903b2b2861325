package org.align4j.model.io;

import java.io.IOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;

/**
 * Writes a folder so that readers see either the old one or the complete new one: the content is
 * written into a hidden sibling temp folder, which is then renamed into place.
 */
public final class AtomicDirectory {
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
        String stamp = Long.toString(System.nanoTime(), 36);
        Path tmp = parent.resolve("." + abs.getFileName() + ".tmp-" + stamp);
        Files.createDirectory(tmp);
        try {
            writer.write(tmp);
        } catch (IOException | RuntimeException e) {
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
