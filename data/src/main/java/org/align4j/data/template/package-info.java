/**
 * Chat templates: a model's Jinja template rendered exactly as transformers' {@code apply_chat_template}
 * renders it with jinja2 ({@link org.align4j.data.template.ChatTemplate}), on Jinjava, with the syntax
 * and library differences bridged (Python string methods, slicing, {@code tojson}, whitespace control).
 */
package org.align4j.data.template;
