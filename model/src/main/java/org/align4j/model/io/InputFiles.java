package org.align4j.model.io;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectReader;
import java.io.IOException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;

/**
 * The one place that says whether a path may be read, and the one strict JSON reader for input files.
 *
 * <p>Only regular files are read: a FIFO, socket or device would block a read forever or never end, a
 * folder is not a file, and a symbolic link loop or a link to nothing is named as such. The check costs a
 * {@code stat} and runs before any byte is read.
 */
public final class InputFiles {
    /**
     * JSON as input files must be: a key given twice is an error (not "the last one wins"), and content
     * after the value is an error (not silently ignored); strings of any length are read.
     */
    private static final ObjectMapper STRICT = strictMapper();

    private InputFiles() {}

    /**
     * A new strict mapper: duplicate keys and trailing content refused, no limit on a string's length.
     *
     * @return the mapper
     */
    public static ObjectMapper strictMapper() {
        ObjectMapper m = new ObjectMapper()
                .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
                .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
        m.getFactory()
                .setStreamReadConstraints(StreamReadConstraints.builder()
                        .maxStringLength(Integer.MAX_VALUE)
                        .build());
        return m;
    }

    /**
     * Reads one value from a parser inside a larger document (an element of an array, a member of an
     * object): strict about duplicate keys, with the rest of the document still to come.
     *
     * @param mapper a mapper from {@link #strictMapper()}
     * @return a reader of one tree at the parser's position
     */
    public static ObjectReader treeReader(ObjectMapper mapper) {
        return mapper.readerFor(JsonNode.class).without(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
    }

    /** @return the shared strict mapper (see {@link #strictMapper()}); do not reconfigure it */
    public static ObjectMapper strictJson() {
        return STRICT;
    }

    /**
     * Why a path cannot be read as a file, without opening it.
     *
     * @param file the path
     * @return the problem in words ("file not found", "a FIFO, not a regular file", ...), or null when it is
     *     a regular file (possibly through symbolic links)
     */
    public static String problem(Path file) {
        if (file.toString().isEmpty()) {
            return "an empty path";
        }
        BasicFileAttributes a;
        try {
            a = Files.readAttributes(file, BasicFileAttributes.class);
        } catch (NoSuchFileException e) {
            if (Files.isSymbolicLink(file)) {
                return "a symbolic link to nothing (" + linkTarget(file) + ")";
            }
            return "file not found";
        } catch (FileSystemException e) {
            if (Files.isSymbolicLink(file)) {
                return "a symbolic link that cannot be followed (a loop?): "
                        + (e.getReason() == null ? e.getClass().getSimpleName() : e.getReason());
            }
            return "cannot read: " + (e.getReason() == null ? e.getClass().getSimpleName() : e.getReason());
        } catch (IOException e) {
            return "cannot read: " + e.getMessage();
        }
        if (a.isRegularFile()) {
            return null;
        }
        if (a.isDirectory()) {
            return "a folder, not a file";
        }
        return "not a regular file (a FIFO, socket or device): align4j reads only regular files";
    }

    /**
     * Checks that a file may be read.
     *
     * @param file the file
     * @return the file
     * @throws CheckpointException naming the file and the problem
     */
    public static Path requireRegular(Path file) {
        String problem = problem(file);
        if (problem != null) {
            throw new CheckpointException(file, problem);
        }
        return file;
    }

    /**
     * Why a path cannot be an output folder or file, without touching it: empty, or a symbolic link
     * (dangling or not: writing through a link would put the output somewhere else than named).
     *
     * @param path the output path
     * @return the problem in words, or null
     */
    public static String outputProblem(Path path) {
        if (path.toString().isBlank()) {
            return "an empty path";
        }
        if (Files.isSymbolicLink(path)) {
            return Files.exists(path)
                    ? null
                    : "a symbolic link to nothing (" + linkTarget(path) + "); remove it or name a real folder";
        }
        if (Files.exists(path, LinkOption.NOFOLLOW_LINKS) && !Files.isDirectory(path) && !Files.isRegularFile(path)) {
            return "not a folder or a regular file (a FIFO, socket or device)";
        }
        return null;
    }

    private static String linkTarget(Path link) {
        try {
            return "-> " + Files.readSymbolicLink(link);
        } catch (IOException e) {
            return "unreadable link";
        }
    }
}
