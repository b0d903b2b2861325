package org.align4j.trainer;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Reads a method's own keys as the user gave them ({@link TrainConfig.Given}: from the YAML file or a
 * flag), with their types, naming where each came from in errors: the shared reader of {@link KtoConfig}
 * and {@link CpoConfig}.
 *
 * @param given key → value and where it came from
 */
record GivenKeys(Map<String, TrainConfig.Given> given) {
    String where(String key) {
        TrainConfig.Given g = given.get(key);
        return g == null ? "key '" + key + "'" : g.where();
    }

    boolean has(String key) {
        return given.containsKey(key);
    }

    void require(boolean ok, String key, String message) {
        if (!ok) {
            throw new IllegalArgumentException(where(key) + ": " + message);
        }
    }

    void refuse(String key, String why) {
        if (given.containsKey(key)) {
            throw new IllegalArgumentException(where(key) + ": has no effect here: " + why);
        }
    }

    private Object raw(String key) {
        TrainConfig.Given g = given.get(key);
        return g == null ? null : g.value();
    }

    double number(String key, double dflt) {
        Object v = raw(key);
        if (v == null) {
            return dflt;
        }
        try {
            double d = v instanceof Number n
                    ? n.doubleValue()
                    : Double.parseDouble(v.toString().trim());
            if (!Double.isFinite(d)) {
                throw new NumberFormatException();
            }
            return d;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(where(key) + ": expected a finite number, got '" + v + "'");
        }
    }

    boolean bool(String key, boolean dflt) {
        Object v = raw(key);
        if (v == null) {
            return dflt;
        }
        if (v instanceof Boolean b) {
            return b;
        }
        String s = v.toString().trim().toLowerCase(Locale.ROOT);
        if (s.equals("true") || s.equals("false")) {
            return Boolean.parseBoolean(s);
        }
        throw new IllegalArgumentException(where(key) + ": expected true or false, got '" + v + "'");
    }

    /** One of {@code choices} (TRL's spelling; case, '-' and '_' do not matter), or {@code dflt} when not given. */
    String choice(String key, List<String> choices, String dflt) {
        Object v = raw(key);
        if (v == null) {
            return dflt;
        }
        if (v instanceof List<?> || v instanceof Map<?, ?>) {
            throw new IllegalArgumentException(
                    where(key) + ": expected one of " + String.join(", ", choices) + ", got a " + kind(v));
        }
        String s = v.toString().trim().toLowerCase(Locale.ROOT).replace('-', '_');
        for (String c : choices) {
            if (c.equals(s)) {
                return c;
            }
        }
        throw new IllegalArgumentException(where(key) + ": one of " + String.join(", ", choices) + ", got '" + v + "'");
    }

    private static String kind(Object v) {
        return v instanceof List<?> ? "list" : "mapping";
    }

    /** @return the given keys, in order */
    List<String> keys() {
        return new ArrayList<>(given.keySet());
    }
}
