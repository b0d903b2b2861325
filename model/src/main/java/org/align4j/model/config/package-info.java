/**
 * HF {@code config.json} read into a typed {@link org.align4j.model.config.ModelConfig} (both
 * transformers 4 and 5 styles, rotary scaling in {@link org.align4j.model.config.RopeConfig}); anything
 * the native blocks do not implement is refused by key.
 */
package org.align4j.model.config;
