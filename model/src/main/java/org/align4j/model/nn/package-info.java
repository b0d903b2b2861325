/**
 * The decoder blocks of the GPT-2 and Llama families as DJL blocks, the attention implementations
 * (DJL ops or SDPA kernels), precision settings ({@link org.align4j.model.nn.Compute}) and the KV cache.
 * Every linear map of a layer is a {@link org.align4j.model.nn.Projection} that owns its weight and
 * bias under their HF names and may carry a LoRA adapter ({@link org.align4j.model.nn.LoraAdapter}).
 */
package org.align4j.model.nn;
