/**
 * JMH microbenchmarks of the hot pieces of a preference-training step on the CPU: attention (DJL
 * ops against the SDPA kernel, fp32 and bf16), sequence log-probs (LM head everywhere against only at
 * completion positions), and the losses. Forward and backward together, as a training step runs them.
 * Whole steps are measured by {@code align4j bench}.
 */
package org.align4j.benchmarks;
