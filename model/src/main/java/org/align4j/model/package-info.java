/**
 * Causal language models on DJL: {@link org.align4j.model.CausalLm} loads HF checkpoint folders (and
 * TorchScript traces) into native GPT-2 and Llama-family blocks with HF parameter names (or, with a score
 * head, sequence classifiers: reward models, {@link org.align4j.model.CausalLm#rewards}), computes
 * completion log-probs ({@link org.align4j.model.LogProbs}, in chunks of positions), saves HF folders,
 * carries LoRA adapters (PEFT folders in and out, merging; see {@code org.align4j.model.lora}), and chooses the device
 * ({@link org.align4j.model.Devices}); {@link org.align4j.model.ScalarOps} works around DJL's
 * scalar-freeing {@code mul(Number)}.
 */
package org.align4j.model;
