package org.align4j.trainer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;
import org.align4j.model.io.AtomicDirectory;
import org.align4j.model.io.CheckpointException;

/**
 * The checkpoints of a run folder: {@code checkpoint-STEP/} holding the policy as an HF folder,
 * {@code optimizer.safetensors}, {@code trainer_state.json} and the resolved {@code config.yaml}.
 */
public final class Checkpoints {
    static final ObjectMapper JSON = new ObjectMapper();
    static final String PREFIX = "checkpoint-";
    static final String STATE = "trainer_state.json";
    static final String OPTIMIZER = "optimizer.safetensors";

    /**
     * What a checkpoint says about where the run was.
     *
     * @param step optimizer steps taken
     * @param epoch the epoch of the next micro-batch
     * @param batchInEpoch the index of the next micro-batch within that epoch
     */
    public record State(long step, int epoch, int batchInEpoch) {}

    private Checkpoints() {}

    /**
     * @param output the run folder
     * @return complete checkpoints, oldest first
     */
    public static List<Path> list(Path output) {
        if (!Files.isDirectory(output)) {
            return List.of();
        }
        try (Stream<Path> s = Files.list(output)) {
            return s.filter(p -> p.getFileName().toString().matches(PREFIX + "\\d+")
                            && Files.isRegularFile(p.resolve(STATE)))
                    .sorted(Comparator.comparingLong(Checkpoints::stepOf))
                    .toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * @param output the run folder
     * @return the newest complete checkpoint
     */
    public static Optional<Path> latest(Path output) {
        List<Path> all = list(output);
        return all.isEmpty() ? Optional.empty() : Optional.of(all.get(all.size() - 1));
    }

    static long stepOf(Path checkpoint) {
        return Long.parseLong(checkpoint.getFileName().toString().substring(PREFIX.length()));
    }

    /**
     * @param checkpoint a checkpoint folder
     * @return its state
     */
    public static State readState(Path checkpoint) {
        Path f = checkpoint.resolve(STATE);
        try {
            JsonNode n = JSON.readTree(f.toFile());
            return new State(
                    n.get("step").asLong(),
                    n.get("epoch").asInt(),
                    n.get("batch_in_epoch").asInt());
        } catch (IOException | NullPointerException e) {
            throw new CheckpointException(f, "unreadable trainer state (" + e.getMessage() + ")", e);
        }
    }

    static String stateJson(State s, long seed, int worldSize, int globalBatch) {
        var o = JSON.createObjectNode();
        o.put("step", s.step());
        o.put("epoch", s.epoch());
        o.put("batch_in_epoch", s.batchInEpoch());
        o.put("seed", seed);
        o.put("world_size", worldSize);
        o.put("global_batch_size", globalBatch);
        o.put(
                "note",
                "data order is a function of (seed, epoch); batch_in_epoch counts global batches (batch_size x"
                        + " world_size examples); no other random state is used by training");
        try {
            return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(o) + "\n";
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * @param checkpoint a checkpoint folder
     * @return the examples of one of its global batches (batch_size × processes), or 0 when it does not say
     *     (a checkpoint saved before data-parallel training)
     */
    static int globalBatchOf(Path checkpoint) {
        try {
            JsonNode n = JSON.readTree(checkpoint.resolve(STATE).toFile()).get("global_batch_size");
            return n == null ? 0 : n.asInt();
        } catch (IOException e) {
            return 0;
        }
    }

    /**
     * Deletes all but the newest {@code keep} checkpoints, and never one of {@code never}.
     *
     * @param output the run folder
     * @param keep how many to keep
     * @param never absolute paths never to delete (the run's inputs, the checkpoint it resumed from, the last verified one)
     * @throws IOException on failure
     */
    public static void prune(Path output, int keep, List<Path> never) throws IOException {
        List<Path> all = new ArrayList<>(list(output));
        for (int i = 0; i < all.size() - keep; i++) {
            Path p = all.get(i).toAbsolutePath().normalize();
            if (never.stream().noneMatch(n -> n.startsWith(p))) {
                AtomicDirectory.deleteRecursively(p);
            }
        }
    }
}
