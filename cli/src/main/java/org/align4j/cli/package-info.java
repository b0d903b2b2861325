/**
 * The {@code align4j} command line, a thin recipe layer over the library modules: picocli commands
 * ({@code train}, {@code sft}, {@code logprobs}, {@code generate}, {@code data}, {@code evaluate},
 * {@code bench}, {@code env}, {@code quickstart}), the console (progress bar, run header, one-line
 * errors with exit 2 for bad input and 1 for faults) and the Log4j2 binding, which only this module
 * carries. The {@code train} and {@code sft} flags are generated from
 * {@link org.align4j.trainer.TrainConfig}'s table.
 */
package org.align4j.cli;
