/**
 * Generation from a causal LM: greedy or sampled (temperature, top-k, top-p, seeded), with or without a
 * KV cache, from left-padded prompts, stopping at the eos ids of the tokenizer or of
 * {@code generation_config.json}.
 */
package org.align4j.model.generate;
