/**
 * Checkpoint files in and out: a memory-mapped safetensors reader that checks what a file claims
 * before believing it (offsets tile the data, shapes and dtypes fit, shards stay in the folder), the
 * writer in HF's layout (sharded with an index above a size), and atomic writes (temp folder, then
 * rename) for everything a run saves.
 */
package org.align4j.model.io;
