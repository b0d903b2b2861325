/**
 * {@code align4j bench}: times the DPO/IPO training step the trainer runs on synthetic ids and reports
 * tokens per second, step time, peak memory and MFU against a matmul timed in the same run.
 */
package org.align4j.cli.bench;
