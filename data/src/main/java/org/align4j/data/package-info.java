/**
 * Preference datasets: read (JSONL, JSON, Parquet; plain or gzip; a file or a folder of shards),
 * validate (every bad record reported with file, line and field), template (the model's chat
 * template), tokenize and truncate ({@link org.align4j.data.PreferenceEncoder}), and batch ({@link
 * org.align4j.data.PreferenceBatch}: 2B rows, chosen first, padded to the longest).
 */
package org.align4j.data;
