package org.align4j.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Checks an output file flag before any work is done: not the input it reads, not a folder, its folder
 * made when missing. Otherwise a long scoring run would end by overwriting its own data, or fail only at
 * its last write (with its journal beside a folder, {@code /tmp.partial} for {@code --output /tmp}).
 */
final class OutputFile {
    private OutputFile() {}

    /**
     * @param flag the output flag ("--output")
     * @param output the output file
     * @param inputFlag the input flag ("--data")
     * @param input the input file or folder, or null
     * @throws IllegalArgumentException naming the flag when the output is the input or inside an input
     *     folder, an existing folder, or its folder cannot be made
     */
    static void check(String flag, Path output, String inputFlag, Path input) {
        Path out = output.toAbsolutePath().normalize();
        if (input != null) {
            Path in = input.toAbsolutePath().normalize();
            if (out.equals(in) || sameFile(out, in)) {
                throw new IllegalArgumentException(
                        flag + ": " + output + " is the " + inputFlag + " file; write the output elsewhere");
            }
            if (Files.isDirectory(in) && (out.startsWith(in) || real(out).startsWith(real(in)))) {
                throw new IllegalArgumentException(flag + ": " + output + " is inside the " + inputFlag + " folder "
                        + input + " (it would be read as data next time); write the output elsewhere");
            }
        }
        if (Files.isDirectory(out)) {
            throw new IllegalArgumentException(flag + ": " + output + " is a folder; give a file name");
        }
        Path parent = out.getParent();
        if (parent != null && !Files.isDirectory(parent)) {
            try {
                Files.createDirectories(parent);
            } catch (IOException e) {
                throw new IllegalArgumentException(
                        flag + ": cannot make the folder " + parent + " for " + output + " (" + e + ")", e);
            }
        }
    }

    /** Whether both name one existing file (a link to the input, say). */
    private static boolean sameFile(Path a, Path b) {
        try {
            return Files.exists(a) && Files.exists(b) && Files.isSameFile(a, b);
        } catch (IOException e) {
            return false;
        }
    }

    /** The path with links resolved as far as it exists. */
    private static Path real(Path p) {
        Path existing = p;
        while (existing != null && !Files.exists(existing)) {
            existing = existing.getParent();
        }
        if (existing == null) {
            return p;
        }
        try {
            return existing.toRealPath().resolve(existing.relativize(p));
        } catch (IOException e) {
            return p;
        }
    }
}
