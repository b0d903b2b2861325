package org.align4j.model.io;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Optional;
import java.util.stream.Stream;
import org.align4j.model.hub.HubClient;
import org.align4j.model.hub.HubException;
import org.align4j.model.hub.HubId;

/**
 * The checks every model load starts with, so that a wrong path gets a message that guesses the
 * mistake instead of "config.json: file not found": a run folder (did you mean its {@code final/}?),
 * a file where a folder belongs; and the one place where a Hugging Face Hub id becomes a local folder.
 */
public final class ModelFolder {
    private ModelFolder() {}

    /**
     * A model path as the user gave it, made local: a path that exists is itself (a local folder always
     * wins); {@code owner/name[@revision]} is the snapshot folder in the Hub's cache, downloaded by the
     * {@linkplain HubClient#shared() shared client} when missing; anything else is returned as it is, for
     * {@link #check} to name the mistake.
     *
     * @param dir a model or adapter folder, or a Hub id
     * @return a local folder
     * @throws HubException for a malformed id, or one the Hub refuses
     */
    public static Path resolve(Path dir) {
        if (dir == null || Files.exists(dir)) {
            return dir;
        }
        return HubId.ifId(dir.toString().replace('\\', '/'), HubId.Type.MODEL)
                .map(id -> HubClient.shared().model(id))
                .orElse(dir);
    }

    /**
     * @param dir what the user named as a model folder
     * @param needed the file the caller is about to read ({@code config.json}, {@code tokenizer.json})
     * @throws CheckpointException naming the path and the likely mistake, when {@code dir/needed} does not exist
     */
    public static void check(Path dir, String needed) {
        Path file = dir.resolve(needed);
        if (Files.exists(file)) {
            return;
        }
        if (!Files.exists(dir)) {
            throw new CheckpointException(
                    dir,
                    "no such folder" + HubId.ownerlessNameHint(dir.toString()).orElse(""));
        }
        if (!Files.isDirectory(dir)) {
            throw new CheckpointException(
                    dir,
                    "a file, not a model folder (HF folder with config.json"
                            + (dir.toString().endsWith(".pt")
                                    ? "; a TorchScript .pt file is loaded with --tokenizer DIR beside it)"
                                    : ")"));
        }
        Optional<Path> inside = runFolderModel(dir);
        if (inside.isPresent()) {
            throw new CheckpointException(
                    file, "file not found: " + dir + " is a run folder; did you mean " + inside.get() + "?");
        }
        throw new CheckpointException(
                file,
                "file not found"
                        + (needed.equals("tokenizer.json")
                                ? " (align4j needs a fast tokenizer's tokenizer.json)"
                                : ""));
    }

    /** A model folder, or a LoRA run's PEFT adapter folder (which loads as its base plus the adapter). */
    private static boolean isModel(Path dir) {
        return Files.isRegularFile(dir.resolve("config.json"))
                || Files.isRegularFile(dir.resolve("adapter_config.json"));
    }

    /** @return the run folder's final/ model, or its newest checkpoint, if {@code dir} is an align4j run folder */
    private static Optional<Path> runFolderModel(Path dir) {
        if (isModel(dir.resolve("final"))) {
            return Optional.of(dir.resolve("final"));
        }
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> p.getFileName().toString().matches("checkpoint-\\d+") && isModel(p))
                    .max(Comparator.comparingLong(
                            p -> Long.parseLong(p.getFileName().toString().substring("checkpoint-".length()))));
        } catch (IOException e) {
            return Optional.empty();
        }
    }
}
