package org.align4j.trainer;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;
import org.align4j.distributed.Launch;
import org.align4j.model.io.AtomicDirectory;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A run folder owned by one run at a time. Claiming it takes an OS lock on {@code OUTPUT/.align4j.lock}
 * (released when the process ends, however it ends) and writes who holds it there; refuses a folder
 * that already holds a run unless the run resumes it or overwrites it; removes what an interrupted save
 * left behind ({@code .checkpoint-N.tmp-*}); and says which folders pruning must never delete: the
 * run's inputs (its model, reference or adapter may be checkpoints of this folder) and the checkpoint
 * it resumes from.
 *
 * <p>Guarantees: a second run on the same folder, at the same time, stops with the holder's pid, host
 * and start; a fresh run never mixes its files with an earlier run's; {@code --resume} continues a
 * checkpoint that exists (never silently starts afresh), and warns by name about every setting that
 * differs from the checkpoint's {@code config.yaml}; nothing outside the run's own files is deleted.
 *
 * <p>In a data-parallel job ({@link Launch}), rank 0 claims the folder as above; the other processes only
 * read it: they take no lock, write and delete nothing, and resume from the checkpoint rank 0 resumes from
 * (the newest complete one, or the one named).
 */
public final class RunFolder implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(RunFolder.class);

    /** The lock file's name. */
    public static final String LOCK = ".align4j.lock";

    /**
     * Where {@code --overwrite} moves the earlier run's files until this run starts training: deleted then
     * ({@link #started}), moved back when the run ends before its first step (a bad setting or data file),
     * so that a failed start loses nothing.
     */
    static final String ASIDE = ".align4j-overwritten";

    /** What a run may do with a folder that already holds a run. */
    public sealed interface Mode {
        /** @return a fresh run: the folder must not hold a run */
        static Mode fresh() {
            return new Fresh();
        }

        /** @return a fresh run that first deletes an earlier run's files (TRL's overwrite_output_dir) */
        static Mode overwrite() {
            return new Overwrite();
        }

        /** @return continue from the folder's newest checkpoint, which must exist */
        static Mode resumeLatest() {
            return new Resume(null);
        }

        /**
         * @param checkpoint a checkpoint folder (with {@code trainer_state.json}) to continue from
         * @return continue from that checkpoint
         */
        static Mode resumeFrom(Path checkpoint) {
            return new Resume(checkpoint);
        }

        /**
         * @param resume whether to resume
         * @return {@link #resumeLatest} or {@link #fresh}
         */
        static Mode of(boolean resume) {
            return resume ? resumeLatest() : fresh();
        }
    }

    /** A fresh run. */
    record Fresh() implements Mode {}

    /** A fresh run over an earlier one. */
    record Overwrite() implements Mode {}

    /**
     * A resumed run.
     *
     * @param checkpoint the checkpoint to continue from, or null for the newest
     */
    record Resume(Path checkpoint) implements Mode {}

    private final Path output;
    private final FileChannel channel;
    private final FileLock lock;
    private final Path resumeFrom;
    private final List<Path> protectedPaths;
    private final List<String> changes;

    private RunFolder(
            Path output,
            FileChannel channel,
            FileLock lock,
            Path resumeFrom,
            List<Path> protectedPaths,
            List<String> changes) {
        this.output = output;
        this.channel = channel;
        this.lock = lock;
        this.resumeFrom = resumeFrom;
        this.protectedPaths = protectedPaths;
        this.changes = changes;
    }

    /**
     * Claims the run folder of a config.
     *
     * @param config the run's config (its output, and the inputs that must never be pruned)
     * @param mode fresh, overwrite or resume
     * @return the claimed folder; close it to release the lock
     * @throws IllegalArgumentException naming the key or the folder when the folder cannot be used this way
     * @throws IOException when the folder cannot be created or written
     */
    public static RunFolder claim(TrainConfig config, Mode mode) throws IOException {
        Path output = Path.of(config.output()).toAbsolutePath().normalize();
        if (Launch.fromEnvironment().rank() > 0) {
            return follow(config, mode, output);
        }
        if (Files.exists(output) && !Files.isDirectory(output)) {
            throw new IllegalArgumentException("key 'output': " + output + " is a file, not a folder");
        }
        try {
            Files.createDirectories(output);
        } catch (FileSystemException e) {
            throw new IllegalArgumentException("key 'output': cannot create " + output + " (" + reason(e) + ")");
        }
        if (!Files.isWritable(output)) {
            throw new IllegalArgumentException("key 'output': " + output + " is not writable");
        }
        List<Path> inputs = new ArrayList<>();
        for (String p : new String[] {config.model(), config.referenceModel(), config.cacheDir()}) {
            if (p != null) {
                inputs.add(Path.of(p).toAbsolutePath().normalize());
            }
        }
        FileChannel channel = FileChannel.open(
                output.resolve(LOCK), StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
        FileLock lock = null;
        try {
            try {
                lock = channel.tryLock();
            } catch (OverlappingFileLockException e) {
                lock = null; // held by this very process
            }
            if (lock == null) {
                String holder = Files.readString(output.resolve(LOCK), StandardCharsets.UTF_8)
                        .strip();
                throw new IllegalArgumentException("key 'output': " + output + " is in use by another run ("
                        + (holder.isEmpty() ? "a process" : holder) + "); wait for it to end or choose another output");
            }
            channel.truncate(0);
            channel.write(ByteBuffer.wrap(holder().getBytes(StandardCharsets.UTF_8)), 0);
            channel.force(true);
            removeLeftovers(output);
            restoreAside(output); // what a run killed before its first step had moved aside
            Path resumeFrom = prepare(output, mode, inputs);
            List<Path> keep = new ArrayList<>(inputs);
            List<String> changes = List.of();
            if (resumeFrom != null) {
                keep.add(resumeFrom.toAbsolutePath().normalize());
                changes = changes(resumeFrom, config); // the trainer logs them, into the run's own log
            }
            return new RunFolder(output, channel, lock, resumeFrom, List.copyOf(keep), changes);
        } catch (IOException | RuntimeException e) {
            if (lock != null) {
                lock.release();
            }
            channel.close();
            throw e;
        }
    }

    /** A process of rank &gt; 0: reads what rank 0 claims, writes nothing, takes no lock. */
    private static RunFolder follow(TrainConfig config, Mode mode, Path output) {
        List<Path> keep = new ArrayList<>();
        for (String p : new String[] {config.model(), config.referenceModel(), config.cacheDir()}) {
            if (p != null) {
                keep.add(Path.of(p).toAbsolutePath().normalize());
            }
        }
        Path resumeFrom = null;
        List<String> changes = List.of();
        if (mode instanceof Resume r) {
            resumeFrom = r.checkpoint() != null
                    ? r.checkpoint()
                    : Checkpoints.latest(output)
                            .orElseThrow(() -> new IllegalArgumentException("--resume: " + output
                                    + " has no checkpoint to resume" + " from; run without --resume to start afresh"));
            if (!Files.isRegularFile(resumeFrom.resolve(Checkpoints.STATE))) {
                throw new IllegalArgumentException(
                        "--resume: " + resumeFrom + " is not a checkpoint (no " + Checkpoints.STATE + ")");
            }
            keep.add(resumeFrom.toAbsolutePath().normalize());
            changes = changes(resumeFrom, config);
        }
        return new RunFolder(output, null, null, resumeFrom, List.copyOf(keep), changes);
    }

    private static String holder() {
        String host;
        try {
            host = InetAddress.getLocalHost().getHostName();
        } catch (IOException e) {
            host = "unknown host";
        }
        return "pid " + ProcessHandle.current().pid() + " on " + host + " since " + Instant.now() + " ("
                + ManagementFactory.getRuntimeMXBean().getName() + ")\n";
    }

    private static String reason(FileSystemException e) {
        return e instanceof AccessDeniedException
                ? "permission denied"
                : e.getReason() != null ? e.getReason() : e.getClass().getSimpleName();
    }

    /** What an interrupted save leaves: {@code .checkpoint-N.tmp-*}, {@code .final.tmp-*} and temp files of atomic writes. */
    private static void removeLeftovers(Path output) throws IOException {
        try (Stream<Path> s = Files.list(output)) {
            for (Path p : s.filter(p -> p.getFileName().toString().matches("\\..+\\.tmp-[0-9a-z]+"))
                    .toList()) {
                LOG.warn("Removing {}, left by a save that was interrupted", p);
                AtomicDirectory.deleteRecursively(p);
            }
        }
    }

    /** The files of a run in a folder: what makes it "used". */
    private static List<Path> runFiles(Path output) throws IOException {
        try (Stream<Path> s = Files.list(output)) {
            return s.filter(p -> {
                        String n = p.getFileName().toString();
                        return n.equals("metrics.jsonl")
                                || n.equals("config.yaml")
                                || n.equals("train.log")
                                || n.equals("final")
                                || n.equals("samples.jsonl")
                                || n.matches(Checkpoints.PREFIX + "\\d+(\\.diverged)?");
                    })
                    .sorted()
                    .toList();
        }
    }

    private static Path prepare(Path output, Mode mode, List<Path> inputs) throws IOException {
        List<Path> used = runFiles(output);
        if (mode instanceof Fresh) {
            // a log alone is what a run that failed before its first step leaves (bad data, a wrong
            // model path): nothing of it is lost by starting again, and the new run appends to it
            if (used.stream().anyMatch(p -> !p.getFileName().toString().equals("train.log"))) {
                throw new IllegalArgumentException("key 'output': " + output + " already holds a run ("
                        + String.join(
                                ", ",
                                used.stream()
                                        .map(p -> p.getFileName().toString())
                                        .limit(4)
                                        .toList()) + (used.size() > 4 ? ", ..." : "")
                        + "); continue it with --resume, or start over with --overwrite");
            }
            return null;
        }
        if (mode instanceof Overwrite) {
            for (Path p : used) {
                for (Path in : inputs) {
                    if (in.startsWith(p.toAbsolutePath().normalize())) {
                        throw new IllegalArgumentException(
                                "--overwrite: would delete " + p + ", which this run reads (" + in + ")");
                    }
                }
            }
            if (!used.isEmpty()) {
                Path aside = Files.createDirectories(output.resolve(ASIDE));
                for (Path p : used) {
                    Files.move(p, aside.resolve(p.getFileName()));
                }
                LOG.info(
                        "Moved the earlier run in {} aside ({}): deleted when this run starts training, put back if"
                                + " it ends before",
                        output,
                        used.stream().map(p -> p.getFileName().toString()).toList());
            }
            return null;
        }
        Path requested = ((Resume) mode).checkpoint();
        if (requested == null) {
            return Checkpoints.latest(output)
                    .orElseThrow(() -> new IllegalArgumentException("--resume: " + output
                            + " has no checkpoint to resume from"
                            + (used.isEmpty()
                                    ? ""
                                    : " (it holds "
                                            + used.stream()
                                                    .map(p -> p.getFileName().toString())
                                                    .toList() + ")")
                            + "; run without --resume to start afresh"));
        }
        if (!Files.isRegularFile(requested.resolve(Checkpoints.STATE))) {
            throw new IllegalArgumentException(
                    "--resume: " + requested + " is not a checkpoint (no " + Checkpoints.STATE + ")");
        }
        return requested;
    }

    /**
     * Settings a checkpoint cannot continue under another value: the objective (and with it the trainer:
     * a reward model's checkpoint is not a policy's) and the adapters' shape. They are refused by name;
     * the others are continued and warned about.
     */
    private static final List<String> CONTINUED_AS_SAVED = List.of("loss", "lora_r", "lora_alpha", "lora_target");

    /** What a resumed run is told that the checkpoint's run was not, by name: "batch_size = 2 where checkpoint-4 ran with 8". */
    private static List<String> changes(Path checkpoint, TrainConfig config) {
        Path saved = checkpoint.resolve("config.yaml");
        if (!Files.isRegularFile(saved)) {
            return List.of();
        }
        TrainConfig before;
        try {
            before = TrainConfig.resolveSaved(saved); // an online RL run's method keys read as its
        } catch (IllegalArgumentException e) {
            LOG.warn("Cannot compare with {}: {}", saved, e.getMessage());
            return List.of();
        }
        Map<String, List<Object>> differences = before.differences(config);
        for (String key : CONTINUED_AS_SAVED) {
            List<Object> values = differences.get(key);
            if (values != null) {
                throw new IllegalArgumentException("--resume: " + key + " = " + values.get(1) + " where "
                        + checkpoint.getFileName() + " ran with " + values.get(0) + "; a checkpoint continues only"
                        + " the run that saved it ("
                        + (key.equals("loss") ? "its trainer and objective" : "its adapters")
                        + "): start a new run (another --output, or --overwrite)");
            }
        }
        List<String> out = new ArrayList<>();
        differences.forEach((key, values) -> {
            if (!key.equals("output")) {
                out.add(key + " = " + values.get(1) + " where " + checkpoint.getFileName() + " ran with "
                        + values.get(0));
            }
        });
        return List.copyOf(out);
    }

    /** @return the settings a resumed run changed, each as "key = new where checkpoint-N ran with old" (also logged) */
    public List<String> changes() {
        return changes;
    }

    /** @return the checkpoint to resume from, if the run resumes */
    public Optional<Path> resumeFrom() {
        return Optional.ofNullable(resumeFrom);
    }

    /** @return folders pruning must never delete: the run's inputs and the checkpoint it resumes from */
    public List<Path> protectedPaths() {
        return protectedPaths;
    }

    /** @return the folder */
    public Path output() {
        return output;
    }

    /**
     * Training begins: an earlier run that {@code --overwrite} moved aside is deleted now.
     *
     * @throws IOException when it cannot be deleted
     */
    public void started() throws IOException {
        Path aside = output.resolve(ASIDE);
        if (channel == null || !Files.isDirectory(aside)) {
            return;
        }
        List<String> names;
        try (Stream<Path> s = Files.list(aside)) {
            names = s.map(p -> p.getFileName().toString()).sorted().toList();
        }
        AtomicDirectory.deleteRecursively(aside);
        LOG.warn("Overwrote the earlier run in {}: deleted {}", output, names);
    }

    /**
     * Moves an earlier run set aside by {@code --overwrite} back into its folder: this run ended (or was
     * killed) before training began. Its own train.log is appended to the earlier one's; anything else it
     * wrote under an earlier file's name gives way to the earlier file.
     */
    private static void restoreAside(Path output) throws IOException {
        Path aside = output.resolve(ASIDE);
        if (!Files.isDirectory(aside)) {
            return;
        }
        List<Path> earlier;
        try (Stream<Path> s = Files.list(aside)) {
            earlier = s.toList();
        }
        for (Path p : earlier) {
            Path target = output.resolve(p.getFileName());
            if (p.getFileName().toString().equals("train.log") && Files.isRegularFile(target)) {
                // rewritten in place, not replaced: the CLI's log appender still holds this file open
                byte[] added = Files.readAllBytes(target);
                Files.write(target, Files.readAllBytes(p));
                Files.write(target, added, StandardOpenOption.APPEND);
                Files.delete(p);
                continue;
            }
            if (Files.exists(target)) {
                AtomicDirectory.deleteRecursively(target);
            }
            Files.move(p, target);
        }
        Files.delete(aside);
        LOG.warn(
                "The run in {} ended before its first step: the earlier run is back ({})",
                output,
                earlier.stream().map(p -> p.getFileName().toString()).sorted().toList());
    }

    /** Releases the lock; an earlier run still set aside (this run never trained) is put back first. */
    @Override
    public void close() {
        if (channel == null) {
            return; // a process of rank > 0 holds no lock
        }
        try {
            restoreAside(output);
        } catch (IOException e) {
            LOG.warn("Cannot put the earlier run back from {}: {}", output.resolve(ASIDE), e.getMessage());
        }
        try {
            if (lock.isValid()) {
                lock.release();
            }
            channel.close();
        } catch (IOException e) {
            LOG.warn("Cannot release {}: {}", output.resolve(LOCK), e.getMessage());
        }
    }
}
