/**
 * The decoder blocks of the GPT-2 and Llama families as DJL blocks, the attention implementations
 * (DJL ops or SDPA kernels), precision settings ({@link org.align4j.model.nn.Compute}) and the KV cache.
 */
package org.align4j.model.nn;
