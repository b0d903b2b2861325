package org.align4j.data;

import java.nio.file.Path;

/** A record that cannot be used, with the file, line (or row) and field at fault. */
public class DataException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final transient Path file;
    private final long line;
    private final String field;

    /**
     * @param file the file
     * @param line 1-based line (JSONL), element (JSON array) or row (Parquet); 0 for the whole file
     * @param field the field at fault, or null
     * @param message what is wrong
     */
    public DataException(Path file, long line, String field, String message) {
        super(file + (line > 0 ? ":" + line : "") + (field != null ? ": field '" + field + "'" : "") + ": " + message);
        this.file = file;
        this.line = line;
        this.field = field;
    }

    /** @return the file */
    public Path file() {
        return file;
    }

    /** @return the line, element or row (1-based), 0 for the whole file */
    public long line() {
        return line;
    }

    /** @return the field, or null */
    public String field() {
        return field;
    }
}
