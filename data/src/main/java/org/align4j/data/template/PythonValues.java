package org.align4j.data.template;

import com.hubspot.jinjava.objects.SafeString;
import java.util.List;
import java.util.Map;

/** Python's {@code str} and {@code repr} of template values (Python 3 data model). */
final class PythonValues {
    private PythonValues() {}

    /**
     * @param v a value
     * @return {@code str(v)}
     */
    static String str(Object v) {
        if (v instanceof String s) {
            return s;
        }
        return repr(v);
    }

    /**
     * @param v a value
     * @return {@code repr(v)}
     */
    static String repr(Object v) {
        if (v == null) {
            return "None";
        }
        if (v instanceof Boolean b) {
            return b ? "True" : "False";
        }
        if (v instanceof String s) {
            return quote(s);
        }
        if (v instanceof Double || v instanceof Float) {
            return PythonJson.floatRepr(((Number) v).doubleValue());
        }
        if (v instanceof Map<?, ?> m) {
            StringBuilder sb = new StringBuilder("{");
            for (Map.Entry<?, ?> e : m.entrySet()) {
                sb.append(sb.length() > 1 ? ", " : "")
                        .append(repr(e.getKey()))
                        .append(": ")
                        .append(repr(e.getValue()));
            }
            return sb.append('}').toString();
        }
        List<Object> l = v instanceof SafeString ? null : PythonResolver.asList(v);
        if (l != null) {
            StringBuilder sb = new StringBuilder("[");
            for (int i = 0; i < l.size(); i++) {
                sb.append(i > 0 ? ", " : "").append(repr(l.get(i)));
            }
            return sb.append(']').toString();
        }
        return v.toString();
    }

    private static String quote(String s) {
        char q = s.indexOf('\'') >= 0 && s.indexOf('"') < 0 ? '"' : '\'';
        StringBuilder sb = new StringBuilder().append(q);
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == q || c == '\\') {
                sb.append('\\').append(c);
            } else if (c == '\n') {
                sb.append("\\n");
            } else if (c == '\r') {
                sb.append("\\r");
            } else if (c == '\t') {
                sb.append("\\t");
            } else if (c < 0x20 || c == 0x7f) {
                sb.append(String.format("\\x%02x", (int) c));
            } else {
                sb.append(c);
            }
        }
        return sb.append(q).toString();
    }
}
