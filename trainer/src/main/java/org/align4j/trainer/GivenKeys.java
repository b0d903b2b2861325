package org.align4j.trainer;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Reads a method's own keys as the user gave them ({@link TrainConfig.Given}: from the YAML file or a
 * flag), with their types, naming where each came from in errors: the shared reader of {@link KtoConfig},
 * {@link CpoConfig} and the online RL methods' {@code RlConfig}.
 *
 * @param given key → value and where it came from
 */
public record GivenKeys(Map<String, TrainConfig.Given> given) {
    /**
     * @param key a key
     * @return how it was given (the flag, or {@code FILE:LINE: key 'name'}), or {@code key 'name'}
     */
    public String where(String key) {
        TrainConfig.Given g = given.get(key);
        return g == null ? "key '" + key + "'" : g.where();
    }

    /**
     * @param key a key
     * @return whether it was given
     */
    public boolean has(String key) {
        return given.containsKey(key);
    }

    /**
     * @param ok the condition
     * @param key the key it is about
     * @param message what is wrong when it does not hold
     * @throws IllegalArgumentException naming where the key was given
     */
    public void require(boolean ok, String key, String message) {
        if (!ok) {
            throw new IllegalArgumentException(where(key) + ": " + message);
        }
    }

    /**
     * @param key a key that does not apply
     * @param why what to give instead
     * @throws IllegalArgumentException naming where it was given, when it was
     */
    public void refuse(String key, String why) {
        if (given.containsKey(key)) {
            throw new IllegalArgumentException(where(key) + ": has no effect here: " + why);
        }
    }

    /**
     * @param key a key
     * @return its value as given, or null
     */
    public Object raw(String key) {
        TrainConfig.Given g = given.get(key);
        return g == null ? null : g.value();
    }

    /**
     * A finite number; a one-element list is read as its element (TRL's {@code beta: [0.1]}, one value per
     * epoch).
     *
     * @param key a key
     * @param dflt the value when not given
     * @return the number
     */
    public double number(String key, double dflt) {
        Object v = raw(key);
        if (v == null) {
            return dflt;
        }
        if (v instanceof List<?> list) {
            if (list.size() != 1) {
                throw new IllegalArgumentException(where(key) + ": one value expected, got a list of " + list.size()
                        + " (a value per epoch is not built)");
            }
            v = list.get(0);
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

    /**
     * @param key a key
     * @param dflt the value when not given
     * @return true or false
     */
    public boolean bool(String key, boolean dflt) {
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
    public String choice(String key, List<String> choices, String dflt) {
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
    public List<String> keys() {
        return new ArrayList<>(given.keySet());
    }

    /**
     * @param key a key
     * @param dflt the value when not given
     * @return a whole number
     */
    public int integer(String key, int dflt) {
        Object v = raw(key);
        if (v == null) {
            return dflt;
        }
        try {
            double d = v instanceof Number n
                    ? n.doubleValue()
                    : Double.parseDouble(v.toString().trim());
            if (d != Math.rint(d) || Math.abs(d) > Integer.MAX_VALUE) {
                throw new NumberFormatException();
            }
            return (int) d;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(where(key) + ": expected a whole number, got '" + v + "'");
        }
    }

    /**
     * @param key a key
     * @param type the enum whose constant names (case, '-' and '_' aside) are the choices
     * @param dflt the value when not given
     * @param <E> the enum
     * @return the constant
     */
    public <E extends Enum<E>> E choice(String key, Class<E> type, E dflt) {
        Object v = raw(key);
        if (v == null) {
            return dflt;
        }
        String s = v.toString().trim().toUpperCase(Locale.ROOT).replace('-', '_');
        for (E e : type.getEnumConstants()) {
            if (e.name().equals(s)) {
                return e;
            }
        }
        List<String> names = new ArrayList<>();
        for (E e : type.getEnumConstants()) {
            names.add(e.name().toLowerCase(Locale.ROOT));
        }
        throw new IllegalArgumentException(where(key) + ": one of " + String.join(", ", names) + ", got '" + v + "'");
    }

    /**
     * A list of strings: a YAML list, or one comma-separated string (a comma after a backslash stays inside
     * its entry, as in {@code regex:^[0-9]{1\\,2}$}).
     *
     * @param key a key
     * @return the entries, empty when not given
     */
    public List<String> strings(String key) {
        Object v = raw(key);
        List<String> out = new ArrayList<>();
        if (v == null) {
            return out;
        }
        if (v instanceof List<?> list) {
            for (Object o : list) {
                out.add(String.valueOf(o).trim());
            }
        } else {
            for (String s : v.toString().split("(?<!\\\\),")) {
                if (!s.isBlank()) {
                    out.add(s.trim().replace("\\,", ","));
                }
            }
        }
        for (String s : out) {
            if (s.isEmpty()) {
                throw new IllegalArgumentException(where(key) + ": an empty entry");
            }
        }
        return out;
    }
}
