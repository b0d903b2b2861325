package org.align4j.data;

/**
 * One chat message.
 *
 * @param role system, user, assistant, ...
 * @param content its text
 */
public record Message(String role, String content) {}
