/**
 * HF fast tokenizers ({@code tokenizer.json}) through DJL's tokenizers, with the special tokens,
 * eos ids and chat template of {@code tokenizer_config.json}.
 */
package org.align4j.model.tokenizer;
