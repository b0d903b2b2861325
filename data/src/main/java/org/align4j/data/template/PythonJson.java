package org.align4j.data.template;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Python's {@code json.dumps} as transformers' {@code tojson} filter calls it: {@code
 * ensure_ascii=False} (non-ASCII text stays as it is), separators {@code ", "} and {@code ": "} (or
 * {@code ","} and {@code ": "} with an indent), keys in insertion order unless sorted.
 */
final class PythonJson {
    private PythonJson() {}

    /**
     * @param value maps, lists, strings, numbers, booleans and nulls
     * @param indent spaces per level, or null for one line
     * @param separators item and key separators, or null for Python's defaults
     * @param sortKeys sort object keys
     * @return the JSON text exactly as Python writes it
     */
    static String dumps(Object value, Integer indent, List<String> separators, boolean sortKeys) {
        String item = separators != null ? separators.get(0) : indent == null ? ", " : ",";
        String key = separators != null ? separators.get(1) : ": ";
        StringBuilder sb = new StringBuilder();
        write(sb, value, indent, item, key, sortKeys, 0);
        return sb.toString();
    }

    private static void write(
            StringBuilder sb, Object v, Integer indent, String item, String key, boolean sort, int level) {
        if (v == null) {
            sb.append("null");
        } else if (v instanceof String s) {
            string(sb, s);
        } else if (v instanceof Boolean b) {
            sb.append(b ? "true" : "false");
        } else if (v instanceof Double || v instanceof Float) {
            sb.append(floatRepr(((Number) v).doubleValue()));
        } else if (v instanceof BigDecimal d) {
            sb.append(floatRepr(d.doubleValue()));
        } else if (v instanceof Number n) {
            sb.append(n.longValue());
        } else if (v instanceof Map<?, ?> m) {
            if (m.isEmpty()) {
                sb.append("{}");
                return;
            }
            List<Map.Entry<?, ?>> entries = new ArrayList<>(m.entrySet());
            if (sort) {
                entries.sort((a, b) -> String.valueOf(a.getKey()).compareTo(String.valueOf(b.getKey())));
            }
            sb.append('{');
            for (int i = 0; i < entries.size(); i++) {
                sb.append(i > 0 ? item : "");
                newline(sb, indent, level + 1);
                string(sb, String.valueOf(entries.get(i).getKey()));
                sb.append(key);
                write(sb, entries.get(i).getValue(), indent, item, key, sort, level + 1);
            }
            newline(sb, indent, level);
            sb.append('}');
        } else if (PythonResolver.asList(v) != null) {
            List<Object> l = PythonResolver.asList(v);
            if (l.isEmpty()) {
                sb.append("[]");
                return;
            }
            sb.append('[');
            for (int i = 0; i < l.size(); i++) {
                sb.append(i > 0 ? item : "");
                newline(sb, indent, level + 1);
                write(sb, l.get(i), indent, item, key, sort, level + 1);
            }
            newline(sb, indent, level);
            sb.append(']');
        } else {
            throw new IllegalArgumentException(
                    "Object of type " + v.getClass().getSimpleName() + " is not JSON serializable");
        }
    }

    private static void newline(StringBuilder sb, Integer indent, int level) {
        if (indent != null) {
            sb.append('\n').append(" ".repeat(indent * level));
        }
    }

    private static void string(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                case '\b' -> sb.append("\\b");
                case '\f' -> sb.append("\\f");
                default -> {
                    if (c < 0x20) {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        sb.append('"');
    }

    /** Python's {@code repr(float)}: shortest round-trip digits, exponent form below 1e-4 and from 1e16. */
    static String floatRepr(double d) {
        if (Double.isNaN(d)) {
            return "NaN";
        }
        if (Double.isInfinite(d)) {
            return d > 0 ? "Infinity" : "-Infinity";
        }
        if (d == 0) {
            return (1 / d < 0) ? "-0.0" : "0.0";
        }
        BigDecimal b = new BigDecimal(Double.toString(d)).stripTrailingZeros();
        int exp = b.precision() - b.scale() - 1;
        if (exp < -4 || exp >= 16) {
            String digits = b.unscaledValue().abs().toString();
            String mant = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
            return (d < 0 ? "-" : "") + mant + "e" + (exp < 0 ? "-" : "+") + String.format("%02d", Math.abs(exp));
        }
        String plain = b.toPlainString();
        return plain.contains(".") ? plain : plain + ".0";
    }
}
