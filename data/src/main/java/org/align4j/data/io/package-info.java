/**
 * Raw records from JSONL (plain or gzipped, decoded strictly as UTF-8), JSON arrays and Parquet, each
 * with its file and line for error messages.
 */
package org.align4j.data.io;
