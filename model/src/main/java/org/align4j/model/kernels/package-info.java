/**
 * TorchScript kernels written from source text at run time and loaded as DJL blocks: the way to
 * libtorch's fused attention, bf16 arithmetic and fused optimizers that DJL's API does not expose.
 */
package org.align4j.model.kernels;
