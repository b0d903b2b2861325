package org.align4j.data.template;

import com.hubspot.jinjava.util.ForLoop;
import java.beans.FeatureDescriptor;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

/**
 * Python's str, list and dict methods and indexing, as jinja2 templates call them on the values of a
 * chat ({@code content.startswith('<tool_response>')}, {@code content.split('</think>')[-1]}, {@code
 * messages[::-1]}, {@code message.get('x', y)}), resolved before Jinjava's Java-bean methods. Strings
 * are indexed and sliced by code point, as Python does. Semantics follow the Python 3 documentation of
 * {@code str} and sequence slicing; an argument Python would reject is rejected with {@link
 * IllegalArgumentException}.
 */
final class PythonResolver extends ELResolver {

    @Override
    public Object getValue(ELContext context, Object base, Object property) {
        if (base instanceof String s && property instanceof Number n) {
            int[] cps = s.codePoints().toArray();
            int i = index(n.intValue(), cps.length);
            context.setPropertyResolved(true);
            return new String(cps, i, 1);
        }
        return null;
    }

    @Override
    public Object invoke(ELContext context, Object base, Object method, Class<?>[] paramTypes, Object[] params) {
        if (base == null || !(method instanceof String name)) {
            return null;
        }
        Object[] p = params == null ? new Object[0] : params;
        Object result;
        if ("py_slice".equals(name)) {
            result = slice(base, p);
        } else if ("py_getitem".equals(name) && p.length == 1) {
            result = getItem(base, p[0]);
        } else if (base instanceof String s) {
            result = stringMethod(s, name, p);
        } else if (base instanceof Map<?, ?> m) {
            result = mapMethod(m, name, p);
        } else {
            return null;
        }
        if (result == NOT_MINE) {
            return null;
        }
        context.setPropertyResolved(true);
        return result;
    }

    private static final Object NOT_MINE = new Object();

    /**
     * jinja2's {@code x[k]}: a dict's value, a sequence's item (negative counts from the end) or a
     * string's code point; a missing key or an index out of range is undefined (null), as jinja2's
     * {@code Environment.getitem} makes it.
     */
    static Object getItem(Object base, Object key) {
        if (base instanceof Map<?, ?> m) {
            Object v = m.get(key);
            if (v == null
                    && key instanceof Number k
                    && !m.containsKey(key)) { // JSON keys are strings; ints from templates are longs
                for (Map.Entry<?, ?> e : m.entrySet()) {
                    if (e.getKey() instanceof Number ek && ek.longValue() == k.longValue()) {
                        return e.getValue();
                    }
                }
            }
            return v;
        }
        if (base instanceof String s && key instanceof Number n) {
            int[] cps = s.codePoints().toArray();
            int i = n.intValue() < 0 ? n.intValue() + cps.length : n.intValue();
            return i < 0 || i >= cps.length ? null : new String(cps, i, 1);
        }
        List<Object> items = asList(base);
        if (items != null && key instanceof Number n) {
            int i = n.intValue() < 0 ? n.intValue() + items.size() : n.intValue();
            return i < 0 || i >= items.size() ? null : items.get(i);
        }
        if (base instanceof ForLoop loop && key instanceof String k) {
            return switch (k) {
                case "index" -> loop.getIndex();
                case "index0" -> loop.getIndex0();
                case "first" -> loop.isFirst();
                case "last" -> loop.isLast();
                case "length" -> loop.getLength();
                case "revindex" -> loop.getRevindex();
                case "revindex0" -> loop.getRevindex0();
                default -> null;
            };
        }
        return NOT_MINE;
    }

    private static int index(int i, int length) {
        int k = i < 0 ? i + length : i;
        if (k < 0 || k >= length) {
            throw new IllegalArgumentException("index out of range: " + i);
        }
        return k;
    }

    /** {@code seq[start:stop:step]} with Python's bounds rules. */
    static Object slice(Object base, Object[] p) {
        Integer start = p.length > 0 && p[0] != null ? ((Number) p[0]).intValue() : null;
        Integer stop = p.length > 1 && p[1] != null ? ((Number) p[1]).intValue() : null;
        int step = p.length > 2 && p[2] != null ? ((Number) p[2]).intValue() : 1;
        if (step == 0) {
            throw new IllegalArgumentException("slice step cannot be zero");
        }
        if (base instanceof String s) {
            int[] cps = s.codePoints().toArray();
            int[] idx = sliceIndices(cps.length, start, stop, step);
            StringBuilder sb = new StringBuilder();
            for (int i : idx) {
                sb.appendCodePoint(cps[i]);
            }
            return sb.toString();
        }
        List<Object> items = asList(base);
        if (items == null) {
            throw new IllegalArgumentException(
                    "cannot slice a " + base.getClass().getSimpleName());
        }
        List<Object> out = new ArrayList<>();
        for (int i : sliceIndices(items.size(), start, stop, step)) {
            out.add(items.get(i));
        }
        return out;
    }

    private static int[] sliceIndices(int length, Integer start, Integer stop, int step) {
        int lo;
        int hi;
        if (step > 0) {
            lo = start == null ? 0 : clamp(start < 0 ? start + length : start, 0, length);
            hi = stop == null ? length : clamp(stop < 0 ? stop + length : stop, 0, length);
        } else {
            lo = start == null ? length - 1 : clamp(start < 0 ? start + length : start, -1, length - 1);
            hi = stop == null ? -1 : clamp(stop < 0 ? stop + length : stop, -1, length - 1);
        }
        List<Integer> idx = new ArrayList<>();
        for (int i = lo; step > 0 ? i < hi : i > hi; i += step) {
            idx.add(i);
        }
        return idx.stream().mapToInt(Integer::intValue).toArray();
    }

    private static int clamp(int v, int lo, int hi) {
        return Math.max(lo, Math.min(hi, v));
    }

    @SuppressWarnings("unchecked")
    static List<Object> asList(Object o) {
        if (o instanceof List<?> l) {
            return (List<Object>) l;
        }
        if (o instanceof Collection<?> c) {
            return new ArrayList<>(c);
        }
        if (o instanceof Object[] a) {
            return List.of(a);
        }
        return null;
    }

    private static Object mapMethod(Map<?, ?> m, String name, Object[] p) {
        switch (name) {
            case "get":
                if (p.length == 1 || p.length == 2) {
                    Object v = m.get(p[0]);
                    return v != null || m.containsKey(p[0]) ? v : (p.length == 2 ? p[1] : null);
                }
                return NOT_MINE;
            case "keys":
                return p.length == 0 ? new ArrayList<>(m.keySet()) : NOT_MINE;
            case "values":
                return p.length == 0 ? new ArrayList<>(m.values()) : NOT_MINE;
            default:
                return NOT_MINE;
        }
    }

    private static Object stringMethod(String s, String name, Object[] p) {
        switch (name) {
            case "startswith":
            case "endswith":
                return affix(s, name.equals("startswith"), p);
            case "strip":
                return strip(s, chars(p), true, true);
            case "lstrip":
                return strip(s, chars(p), true, false);
            case "rstrip":
                return strip(s, chars(p), false, true);
            case "split":
                return split(s, p.length > 0 ? (String) p[0] : null, p.length > 1 ? ((Number) p[1]).intValue() : -1);
            case "splitlines":
                return s.isEmpty()
                        ? List.of()
                        : List.of(s.split("\r\n|[\n\r\u000b\u000c\u001c\u001d\u001e\u0085\u2028\u2029]", -1))
                                .subList(0, countLines(s));
            case "replace":
                if (p.length == 2) {
                    return s.replace(String.valueOf(p[0]), String.valueOf(p[1]));
                }
                return NOT_MINE;
            case "lower":
                return s.toLowerCase(Locale.ROOT);
            case "upper":
                return s.toUpperCase(Locale.ROOT);
            case "title":
                return title(s);
            case "capitalize":
                return s.isEmpty()
                        ? s
                        : s.substring(0, s.offsetByCodePoints(0, 1)).toUpperCase(Locale.ROOT)
                                + s.substring(s.offsetByCodePoints(0, 1)).toLowerCase(Locale.ROOT);
            case "find":
                return p.length == 1 ? (Object) codePointIndex(s, s.indexOf(String.valueOf(p[0]))) : NOT_MINE;
            case "rfind":
                return p.length == 1 ? (Object) codePointIndex(s, s.lastIndexOf(String.valueOf(p[0]))) : NOT_MINE;
            case "count":
                return p.length == 1 ? (Object) count(s, String.valueOf(p[0])) : NOT_MINE;
            case "join":
                if (p.length == 1) {
                    List<Object> items = asList(p[0]);
                    StringBuilder sb = new StringBuilder();
                    for (int i = 0; items != null && i < items.size(); i++) {
                        sb.append(i > 0 ? s : "").append(items.get(i));
                    }
                    return sb.toString();
                }
                return NOT_MINE;
            case "isdigit":
                return !s.isEmpty() && s.codePoints().allMatch(Character::isDigit);
            case "isalpha":
                return !s.isEmpty() && s.codePoints().allMatch(Character::isLetter);
            case "isspace":
                return !s.isEmpty() && s.codePoints().allMatch(PythonResolver::isSpace);
            default:
                return NOT_MINE;
        }
    }

    private static int countLines(String s) {
        String[] parts = s.split("\r\n|[\n\r\u000b\u000c\u001c\u001d\u001e\u0085\u2028\u2029]", -1);
        // a trailing line break ends the last line, it does not open a new one
        return parts[parts.length - 1].isEmpty() ? parts.length - 1 : parts.length;
    }

    private static int codePointIndex(String s, int charIndex) {
        return charIndex < 0 ? -1 : s.codePointCount(0, charIndex);
    }

    private static long count(String s, String sub) {
        if (sub.isEmpty()) {
            return s.codePointCount(0, s.length()) + 1L;
        }
        long n = 0;
        for (int i = s.indexOf(sub); i >= 0; i = s.indexOf(sub, i + sub.length())) {
            n++;
        }
        return n;
    }

    private static Object affix(String s, boolean start, Object[] p) {
        if (p.length != 1) {
            return NOT_MINE;
        }
        List<Object> options = p[0] instanceof String ? null : asList(p[0]);
        for (Object o : options == null ? List.of(p[0]) : options) {
            String a = String.valueOf(o);
            if (start ? s.startsWith(a) : s.endsWith(a)) {
                return true;
            }
        }
        return false;
    }

    private static String chars(Object[] p) {
        return p.length == 0 || p[0] == null ? null : String.valueOf(p[0]);
    }

    /** Python's {@code str.strip}: whitespace, or any of {@code chars}, from either end. */
    static String strip(String s, String chars, boolean left, boolean right) {
        int lo = 0;
        int hi = s.length();
        while (left && lo < hi) {
            int cp = s.codePointAt(lo);
            if (!(chars == null ? isSpace(cp) : chars.indexOf(cp) >= 0)) {
                break;
            }
            lo += Character.charCount(cp);
        }
        while (right && hi > lo) {
            int cp = s.codePointBefore(hi);
            if (!(chars == null ? isSpace(cp) : chars.indexOf(cp) >= 0)) {
                break;
            }
            hi -= Character.charCount(cp);
        }
        return s.substring(lo, hi);
    }

    /** Python's {@code str.isspace} for one code point. */
    static boolean isSpace(int cp) {
        return Character.isWhitespace(cp) || Character.isSpaceChar(cp) || cp == 0x85 || (cp >= 0x1c && cp <= 0x1f);
    }

    /** Python's {@code str.split}: on a separator (keeping empty parts), or on runs of whitespace. */
    static List<String> split(String s, String sep, int maxSplit) {
        List<String> out = new ArrayList<>();
        if (sep == null) {
            int i = 0;
            int n = s.length();
            while (true) {
                while (i < n && isSpace(s.codePointAt(i))) {
                    i += Character.charCount(s.codePointAt(i));
                }
                if (i >= n) {
                    break;
                }
                if (maxSplit >= 0 && out.size() == maxSplit) {
                    out.add(strip(s.substring(i), null, false, true));
                    break;
                }
                int j = i;
                while (j < n && !isSpace(s.codePointAt(j))) {
                    j += Character.charCount(s.codePointAt(j));
                }
                out.add(s.substring(i, j));
                i = j;
            }
            return out;
        }
        if (sep.isEmpty()) {
            throw new IllegalArgumentException("empty separator");
        }
        int from = 0;
        int at;
        while ((maxSplit < 0 || out.size() < maxSplit) && (at = s.indexOf(sep, from)) >= 0) {
            out.add(s.substring(from, at));
            from = at + sep.length();
        }
        out.add(s.substring(from));
        return out;
    }

    private static String title(String s) {
        StringBuilder sb = new StringBuilder(s.length());
        boolean prevCased = false;
        for (int i = 0; i < s.length(); ) {
            int cp = s.codePointAt(i);
            sb.appendCodePoint(prevCased ? Character.toLowerCase(cp) : Character.toTitleCase(cp));
            prevCased = Character.isLetter(cp);
            i += Character.charCount(cp);
        }
        return sb.toString();
    }

    @Override
    public Class<?> getType(ELContext context, Object base, Object property) {
        return null;
    }

    @Override
    public void setValue(ELContext context, Object base, Object property, Object value) {
        // read-only: templates cannot change the chat (jinja2's immutable sandbox)
    }

    @Override
    public boolean isReadOnly(ELContext context, Object base, Object property) {
        return true;
    }

    @Override
    public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext context, Object base) {
        return null;
    }

    @Override
    public Class<?> getCommonPropertyType(ELContext context, Object base) {
        return null;
    }
}
