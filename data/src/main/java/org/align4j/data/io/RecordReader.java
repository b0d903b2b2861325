package org.align4j.data.io;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.stream.Stream;
import java.util.zip.GZIPInputStream;
import org.align4j.data.DataException;
import org.align4j.model.hub.HubClient;
import org.align4j.model.hub.HubId;
import org.align4j.model.io.InputFiles;

/**
 * Reads records from JSONL ({@code .jsonl}, {@code .jsonl.gz}), JSON arrays ({@code .json}, {@code
 * .json.gz}) and Parquet ({@code .parquet}) files, or from every such file in a folder (shards, in name
 * order). A line that is not JSON is passed on as a {@link Malformed} record so the caller decides
 * whether to stop or skip.
 */
public final class RecordReader {
    /** Strict: a key given twice or content after a line's record is an error, never dropped. */
    private static final ObjectMapper JSON = InputFiles.strictMapper();

    /**
     * A line that could not be parsed.
     *
     * @param file the file
     * @param line the line
     * @param message the parser's complaint
     */
    public record Malformed(Path file, long line, String message) {}

    private RecordReader() {}

    /**
     * @param path a file, or a folder of data files; where no such path exists, a dataset on the Hugging
     *     Face Hub as {@code owner/name[@revision][:split]} (its split's files in the Hub's cache)
     * @return the data files it names, in order
     */
    public static List<Path> files(Path path) {
        if (Files.isRegularFile(path)) {
            return List.of(path);
        }
        if (!Files.isDirectory(path)) {
            // a missing "dir/file.jsonl" is a typo'd path, not a dataset id
            Optional<HubId> id = Files.exists(path) || isDataFile(path)
                    ? Optional.empty()
                    : HubId.ifId(path.toString().replace('\\', '/'), HubId.Type.DATASET);
            if (id.isPresent()) {
                return HubClient.shared().dataset(id.get());
            }
            String problem = InputFiles.problem(path);
            throw new DataException(
                    path,
                    0,
                    null,
                    problem == null || problem.equals("file not found") ? "no such file or folder" : problem);
        }
        try (Stream<Path> s = Files.list(path)) {
            List<Path> files = s.filter(p -> Files.isRegularFile(p) && isDataFile(p))
                    .sorted()
                    .toList();
            if (files.isEmpty()) {
                throw new DataException(
                        path, 0, null, "folder holds no .jsonl, .json or .parquet files (optionally .gz)");
            }
            return files;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static boolean isDataFile(Path p) {
        String n = p.getFileName().toString().toLowerCase(Locale.ROOT);
        return n.endsWith(".jsonl")
                || n.endsWith(".jsonl.gz")
                || n.endsWith(".json")
                || n.endsWith(".json.gz")
                || n.endsWith(".parquet");
    }

    /**
     * Reads every record of a file or folder.
     *
     * @param path file or folder
     * @param onRecord receives each parsed record
     * @param onMalformed receives each line that is not JSON
     */
    public static void read(Path path, Consumer<RawRecord> onRecord, Consumer<Malformed> onMalformed) {
        for (Path f : files(path)) {
            readFile(f, onRecord, onMalformed);
        }
    }

    private static void readFile(Path f, Consumer<RawRecord> onRecord, Consumer<Malformed> onMalformed) {
        String problem = InputFiles.problem(f);
        if (problem != null) {
            throw new DataException(f, 0, null, problem);
        }
        String n = f.getFileName().toString().toLowerCase(Locale.ROOT);
        try {
            if (n.endsWith(".parquet")) {
                ParquetRecords.read(f, onRecord);
            } else if (n.endsWith(".json") || n.endsWith(".json.gz")) {
                readJsonArray(f, onRecord);
            } else {
                readJsonLines(f, onRecord, onMalformed);
            }
        } catch (NoSuchFileException e) {
            throw new DataException(f, 0, null, "file not found");
        } catch (IOException e) {
            throw new DataException(f, 0, null, "cannot read: " + e.getMessage());
        }
    }

    private static InputStream open(Path f) throws IOException {
        InputStream in = Files.newInputStream(f);
        return f.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".gz")
                ? new GZIPInputStream(in, 1 << 16)
                : in;
    }

    /**
     * One record per line. Each line is decoded strictly: bytes that are not UTF-8 make that line
     * malformed (named, never replaced by U+FFFD and trained on); a UTF-8 byte-order mark at the start of
     * the file is skipped, as HF datasets does.
     */
    private static void readJsonLines(Path f, Consumer<RawRecord> onRecord, Consumer<Malformed> onMalformed)
            throws IOException {
        CharsetDecoder utf8 = StandardCharsets.UTF_8
                .newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        try (InputStream in = open(f)) {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream(4096);
            byte[] buf = new byte[1 << 16];
            int len = 0;
            int pos = 0;
            long no = 0;
            boolean more = true;
            while (more) {
                bytes.reset();
                boolean lineEnded = false;
                while (!lineEnded) {
                    if (pos == len) {
                        len = in.read(buf);
                        pos = 0;
                        if (len <= 0) {
                            len = 0;
                            more = false;
                            break;
                        }
                    }
                    int start = pos;
                    while (pos < len && buf[pos] != '\n') {
                        pos++;
                    }
                    bytes.write(buf, start, pos - start);
                    if (pos < len) {
                        pos++; // the newline
                        lineEnded = true;
                    }
                }
                if (!more && bytes.size() == 0) {
                    break;
                }
                no++;
                byte[] raw = bytes.toByteArray();
                int from = no == 1
                                && raw.length >= 3
                                && (raw[0] & 0xff) == 0xEF
                                && (raw[1] & 0xff) == 0xBB
                                && (raw[2] & 0xff) == 0xBF
                        ? 3
                        : 0;
                int to = raw.length > from && raw[raw.length - 1] == '\r' ? raw.length - 1 : raw.length;
                String line;
                try {
                    line = utf8.reset()
                            .decode(ByteBuffer.wrap(raw, from, to - from))
                            .toString();
                } catch (CharacterCodingException e) {
                    onMalformed.accept(new Malformed(
                            f, no, "not valid UTF-8 (the file's encoding is not UTF-8, or it is damaged)"));
                    continue;
                }
                if (line.isBlank()) {
                    continue;
                }
                try {
                    onRecord.accept(new RawRecord(JSON.readTree(line), f, no));
                } catch (JsonProcessingException e) {
                    onMalformed.accept(new Malformed(
                            f,
                            no,
                            "not valid JSON: " + brief(e)
                                    + (line.indexOf('\r') >= 0
                                            ? " (the line holds a carriage return: a file with old-Mac '\\r' line ends"
                                                    + " is one line to JSON Lines; convert them to '\\n')"
                                            : "")));
                }
            }
        }
    }

    private static void readJsonArray(Path f, Consumer<RawRecord> onRecord) throws IOException {
        try (InputStream in = open(f);
                JsonParser p = JSON.getFactory().createParser(in)) {
            if (p.nextToken() != JsonToken.START_ARRAY) {
                throw new DataException(
                        f,
                        0,
                        null,
                        "a .json file must hold one JSON array of records (use .jsonl for one record per line)");
            }
            long element = 0;
            while (p.nextToken() != JsonToken.END_ARRAY) {
                element++;
                JsonNode node;
                try {
                    node = InputFiles.treeReader(JSON).readValue(p);
                } catch (JsonProcessingException e) {
                    throw new DataException(f, element, null, "not valid JSON: " + brief(e));
                }
                onRecord.accept(new RawRecord(node, f, element));
            }
            if (p.nextToken() != null) {
                throw new DataException(
                        f,
                        0,
                        null,
                        "content after the array's closing ']' at line "
                                + p.currentTokenLocation().getLineNr() + ": a .json file holds one array");
            }
        } catch (JsonProcessingException e) {
            throw new DataException(f, 0, null, "not valid JSON: " + brief(e));
        }
    }

    /** Jackson's message without its source-location tail. */
    private static String brief(JsonProcessingException e) {
        String m = String.valueOf(e.getOriginalMessage());
        int cut = m.indexOf(" (start marker at");
        if (cut < 0) {
            cut = m.indexOf(" at [Source");
        }
        return (cut < 0 ? m : m.substring(0, cut)).replace('\n', ' ');
    }

    /**
     * Reads every record into memory.
     *
     * @param path file or folder
     * @return the records and the malformed lines
     */
    public static Result readAll(Path path) {
        List<RawRecord> records = new ArrayList<>();
        List<Malformed> malformed = new ArrayList<>();
        read(path, records::add, malformed::add);
        return new Result(records, malformed);
    }

    /**
     * Everything a path holds.
     *
     * @param records parsed records
     * @param malformed lines that are not JSON
     */
    public record Result(List<RawRecord> records, List<Malformed> malformed) {}
}
