/**
 * LoRA (Hu et al., 2021) as PEFT has it: {@link org.align4j.model.lora.LoraConfig} (rank, α, dropout,
 * PEFT's target-module rules and {@code all-linear}, rsLoRA) and {@link org.align4j.model.lora.PeftAdapter}
 * (PEFT's initialisation, and adapter folders in PEFT's format in and out). The adapters themselves
 * live on the projections of {@code org.align4j.model.nn}.
 */
package org.align4j.model.lora;
