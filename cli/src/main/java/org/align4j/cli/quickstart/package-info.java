/**
 * {@code align4j quickstart}: SFT, then DPO and IPO, on a tiny GPT-2 learning two-digit sums from a
 * teacher with a habit, offline on the CPU, with held-out evaluation and an HTML report.
 */
package org.align4j.cli.quickstart;
