package org.align4j.model.config;

import java.nio.file.Path;

/** A model config or checkpoint that cannot be used, with the file and key at fault. */
public class ConfigException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final transient Path file;
    private final String key;

    /**
     * @param file the file at fault (may be null for configs built in code)
     * @param key the key at fault (may be null when the whole file is at fault)
     * @param message what is wrong
     */
    public ConfigException(Path file, String key, String message) {
        super(format(file, key, message));
        this.file = file;
        this.key = key;
    }

    private static String format(Path file, String key, String message) {
        StringBuilder sb = new StringBuilder();
        sb.append(file == null ? "config" : file.toString());
        if (key != null) {
            sb.append(": key '").append(key).append('\'');
        }
        return sb.append(": ").append(message).toString();
    }

    /** @return the file at fault, or null */
    public Path file() {
        return file;
    }

    /** @return the key at fault, or null */
    public String key() {
        return key;
    }
}
