package org.align4j.data.io;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;

/**
 * One record of a data file, as JSON, with where it came from.
 *
 * @param value the record (an object unless the file is malformed)
 * @param file the file
 * @param line its line (JSONL), element (JSON array) or row (Parquet), 1-based
 */
public record RawRecord(JsonNode value, Path file, long line) {}
