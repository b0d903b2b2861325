package org.align4j.data.template;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Rewrites the three pieces of jinja2 expression syntax that Jinjava's parser reads differently into
 * forms it reads as jinja2 means them, before the template is parsed once:
 *
 * <ul>
 *   <li>slices, {@code x[::-1]}, {@code x[1:]}, {@code x[:-1]}, become the method call {@code
 *       x.py_slice(start, stop, step)}, and subscripts {@code x[k]} become {@code x.py_getitem(k)}
 *       (Python semantics, strings by code point, in {@link PythonResolver});
 *   <li>keyword arguments take their whole expression as value: {@code namespace(last=messages|length - 1)}
 *       becomes {@code namespace(last=(messages|length - 1))} (Jinjava binds {@code =} tighter than
 *       {@code -});
 *   <li>loop filters, {@code {% for m in messages if m.role != 'system' %}}, become a filter over the
 *       iterable ({@code py_loop_filter}) so that {@code loop.index}, {@code loop.last} count the kept
 *       items, as in jinja2 (Jinjava ignores the condition).
 * </ul>
 *
 * <p>It also applies jinja2's {@code trim_blocks} itself (see {@link #trimBlock}). Only tag and expression
 * text is rewritten; template text, comments, {@code raw} blocks and string
 * literals are left as they are, and no line break is added or removed, so error line numbers stay
 * those of the original template.
 */
final class PythonSyntax {
    private PythonSyntax() {}

    /**
     * @param source a jinja2 template
     * @return the same template in the syntax Jinjava reads as jinja2 does
     */
    static String rewrite(String source) {
        StringBuilder out = new StringBuilder(source.length() + 64);
        int i = 0;
        int n = source.length();
        while (i < n) {
            int open = source.indexOf('{', i);
            if (open < 0 || open + 1 >= n) {
                out.append(source, i, n);
                break;
            }
            char kind = source.charAt(open + 1);
            if (kind != '{' && kind != '%' && kind != '#') {
                out.append(source, i, open + 1);
                i = open + 1;
                continue;
            }
            out.append(source, i, open);
            String close = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
            int end = kind == '#' ? source.indexOf(close, open + 2) : findClose(source, open + 2, close);
            if (end < 0) { // unterminated: leave it for the parser to report
                out.append(source, open, n);
                break;
            }
            String body = source.substring(open + 2, end);
            if (kind == '#') {
                String note = source.substring(open + 2, end);
                boolean trimBefore = note.startsWith("-");
                boolean trimAfter = note.endsWith("-") && note.length() > (trimBefore ? 1 : 0);
                if (trimBefore || trimAfter) {
                    // Jinjava trims more than jinja2 around "{#-" and "-#}" (the text on the far side of the
                    // comment too), so the trimming is done here: the whitespace jinja2 removes moves into a
                    // plain comment, which keeps line numbers.
                    StringBuilder inside = new StringBuilder();
                    if (trimBefore) {
                        int k = out.length();
                        while (k > 0 && Character.isWhitespace(out.charAt(k - 1))) {
                            k--;
                        }
                        inside.append(out.substring(k));
                        out.setLength(k);
                    }
                    inside.append(note, trimBefore ? 1 : 0, trimAfter ? note.length() - 1 : note.length());
                    int after = end + 2;
                    if (trimAfter) {
                        while (after < n && Character.isWhitespace(source.charAt(after))) {
                            after++;
                        }
                        inside.append(source, end + 2, after);
                    } else if (trimBlock(source, end, n)) {
                        inside.append('\n');
                        after++;
                    }
                    out.append("{#")
                            .append(inside.toString().replace("#}", "# }"))
                            .append("#}");
                    i = after;
                    continue;
                }
                out.append(source, open, end)
                        .append(trimBlock(source, end, n) ? "\n" : "")
                        .append("#}");
                i = end + 2 + (trimBlock(source, end, n) ? 1 : 0);
                continue;
            } else if (kind == '%' && isTag(body, "raw")) {
                int endRaw = findEndRaw(source, end + 2);
                int stop = endRaw < 0 ? n : endRaw;
                out.append(source, open, stop);
                i = stop;
                continue;
            } else if (kind == '%') {
                boolean trim = trimBlock(source, end, n);
                out.append("{%")
                        .append(
                                isTag(body, "for")
                                        ? rewriteFor(notIs(body))
                                        : isTag(body, "macro") ? body : rewriteExpression(notIs(body)))
                        .append(trim ? "\n" : "")
                        .append("%}");
                i = end + 2 + (trim ? 1 : 0);
                continue;
            } else {
                out.append(source, open, open + 2)
                        .append(rewriteExpression(notIs(body)))
                        .append(close);
            }
            i = end + 2;
        }
        return out.toString();
    }

    /**
     * jinja2's {@code trim_blocks}: the first newline after a block tag or comment is removed. It is moved
     * inside the tag ({@code {% if x %}\n} becomes {@code {% if x \n%}}), where it renders nothing and
     * still counts as a line; Jinjava's own trim_blocks loses the line from its error line numbers.
     */
    private static boolean trimBlock(String s, int closeAt, int n) {
        char before = s.charAt(closeAt - 1);
        return closeAt + 2 < n && s.charAt(closeAt + 2) == '\n' && before != '-' && before != '+';
    }

    /** The end of a tag or expression: the first closing delimiter outside string literals. */
    private static int findClose(String s, int from, String close) {
        for (int i = from; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\'' || c == '"') {
                i = skipString(s, i);
            } else if (s.startsWith(close, i)) {
                return i;
            }
        }
        return -1;
    }

    private static int findEndRaw(String s, int from) {
        int i = from;
        while ((i = s.indexOf("{%", i)) >= 0) {
            int end = s.indexOf("%}", i + 2);
            if (end < 0) {
                return -1;
            }
            if (isTag(s.substring(i + 2, end), "endraw")) {
                return i;
            }
            i = end + 2;
        }
        return -1;
    }

    private static boolean isTag(String body, String name) {
        String t = body.strip();
        if (t.startsWith("-") || t.startsWith("+")) {
            t = t.substring(1).strip();
        }
        return t.equals(name)
                || t.startsWith(name + " ")
                || t.startsWith(name + "\t")
                || t.startsWith(name + "\n")
                || t.startsWith(name + "-")
                || (t.startsWith(name)
                        && t.length() > name.length()
                        && (t.charAt(name.length()) == '-' || t.charAt(name.length()) == '+'));
    }

    /** Index of the closing quote of the string literal opening at {@code start}. */
    private static int skipString(String s, int start) {
        char q = s.charAt(start);
        for (int i = start + 1; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\') {
                i++;
            } else if (c == q) {
                return i;
            }
        }
        return s.length() - 1;
    }

    /** {@code for TARGET in ITER if COND} becomes {@code for TARGET in (ITER)|py_loop_filter('TARGET', 'COND')}. */
    private static String rewriteFor(String body) {
        int in = topLevelKeyword(body, "in", 0);
        int cond = in < 0 ? -1 : topLevelKeyword(body, "if", in + 2);
        if (cond < 0) {
            return rewriteExpression(body);
        }
        int forAt = body.indexOf("for");
        String target = body.substring(forAt + 3, in).strip();
        // a trailing "-" (whitespace control) or "recursive" stays after the condition
        String rest = body.substring(cond + 2);
        String trail = "";
        String trimmed = rest.stripTrailing();
        if (trimmed.endsWith("-") || trimmed.endsWith("+")) {
            trail = rest.substring(trimmed.length() - 1);
            rest = trimmed.substring(0, trimmed.length() - 1);
        }
        String iter = body.substring(in + 2, cond);
        return body.substring(0, in + 2) + " (" + rewriteExpression(iter) + ")|py_loop_filter(" + literal(target) + ", "
                + literal(rewriteExpression(rest).strip()) + ") " + trail;
    }

    private static String literal(String s) {
        return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'";
    }

    /** Index of {@code word} as a whole word at bracket depth 0 and outside strings, from {@code from}. */
    private static int topLevelKeyword(String s, String word, int from) {
        int depth = 0;
        for (int i = from; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\'' || c == '"') {
                i = skipString(s, i);
            } else if (c == '(' || c == '[' || c == '{') {
                depth++;
            } else if (c == ')' || c == ']' || c == '}') {
                depth--;
            } else if (depth == 0
                    && s.startsWith(word, i)
                    && (i == 0 || !isIdent(s.charAt(i - 1)))
                    && (i + word.length() >= s.length() || !isIdent(s.charAt(i + word.length())))) {
                return i;
            }
        }
        return -1;
    }

    private static boolean isIdent(char c) {
        return Character.isLetterOrDigit(c) || c == '_';
    }

    /**
     * {@code not x is defined} means {@code not (x is defined)} in jinja2 (a test binds tighter than
     * {@code not}); Jinjava reads {@code (not x) is defined}. The operand is a name with attribute and
     * subscript accesses, as templates write it.
     */
    private static final Pattern NOT_IS = Pattern.compile(
            "\\bnot\\s+([A-Za-z_]\\w*(?:\\s*(?:\\.\\s*[A-Za-z_]\\w*|\\[[^\\[\\]]*\\]))*)\\s+is\\s+(not\\s+)?([A-Za-z_]\\w*)\\b");

    static String notIs(String e) {
        if (!e.contains("not") || !e.contains("is")) {
            return e;
        }
        // string literals masked so that the pattern never matches inside one
        List<String> literals = new ArrayList<>();
        StringBuilder masked = new StringBuilder();
        for (int i = 0; i < e.length(); i++) {
            char c = e.charAt(i);
            if (c == '\'' || c == '"') {
                int end = skipString(e, i);
                masked.append('\u0001').append(literals.size()).append('\u0001');
                literals.add(e.substring(i, end + 1));
                i = end;
            } else {
                masked.append(c);
            }
        }
        String r = NOT_IS.matcher(masked)
                .replaceAll(m -> Matcher.quoteReplacement(
                        "not (" + m.group(1) + " is " + (m.group(2) == null ? "" : "not ") + m.group(3) + ")"));
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < r.length(); i++) {
            char c = r.charAt(i);
            if (c == '\u0001') {
                int end = r.indexOf('\u0001', i + 1);
                out.append(literals.get(Integer.parseInt(r.substring(i + 1, end))));
                i = end;
            } else {
                out.append(c);
            }
        }
        return out.toString();
    }

    /** Rewrites slices and keyword arguments throughout an expression. */
    static String rewriteExpression(String e) {
        StringBuilder out = new StringBuilder(e.length() + 16);
        int i = 0;
        while (i < e.length()) {
            char c = e.charAt(i);
            if (c == '\'' || c == '"') {
                int end = skipString(e, i);
                out.append(e, i, end + 1);
                i = end + 1;
            } else if (c == '[' || c == '(') {
                int close = matching(e, i);
                if (close < 0) {
                    out.append(e.substring(i));
                    break;
                }
                String inner = e.substring(i + 1, close);
                boolean postfix = followsOperand(out);
                if (c == '[' && postfix && !topLevelColons(inner).isEmpty()) {
                    out.append(".py_slice(").append(sliceArgs(inner)).append(')');
                } else if (c == '[' && postfix) {
                    out.append(".py_getitem(").append(rewriteExpression(inner)).append(')');
                } else if (c == '(' && postfix) {
                    out.append('(').append(keywordArgs(inner)).append(')');
                } else {
                    out.append(c).append(rewriteExpression(inner)).append(c == '[' ? ']' : ')');
                }
                i = close + 1;
            } else {
                out.append(c);
                i++;
            }
        }
        return out.toString();
    }

    /** Whether the text so far ends in an operand (a subscript or call then applies to it). */
    private static boolean followsOperand(StringBuilder out) {
        int k = out.length() - 1;
        while (k >= 0 && Character.isWhitespace(out.charAt(k))) {
            k--;
        }
        if (k < 0) {
            return false;
        }
        char c = out.charAt(k);
        if (c == ')' || c == ']' || c == '\'' || c == '"' || c == '}') {
            return true;
        }
        if (!isIdent(c)) {
            return false;
        }
        int start = k;
        while (start > 0 && isIdent(out.charAt(start - 1))) {
            start--;
        }
        String word = out.substring(start, k + 1);
        // "in [..]", "not (..)", "and (..)": an operator keyword, not an operand
        return !(word.equals("in")
                || word.equals("not")
                || word.equals("and")
                || word.equals("or")
                || word.equals("if")
                || word.equals("else")
                || word.equals("is"));
    }

    private static int matching(String s, int open) {
        int depth = 0;
        for (int i = open; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\'' || c == '"') {
                i = skipString(s, i);
            } else if (c == '(' || c == '[' || c == '{') {
                depth++;
            } else if (c == ')' || c == ']' || c == '}') {
                depth--;
                if (depth == 0) {
                    return i;
                }
            }
        }
        return -1;
    }

    private static List<Integer> topLevelColons(String s) {
        List<Integer> at = new ArrayList<>();
        int depth = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\'' || c == '"') {
                i = skipString(s, i);
            } else if (c == '(' || c == '[' || c == '{') {
                depth++;
            } else if (c == ')' || c == ']' || c == '}') {
                depth--;
            } else if (c == ':' && depth == 0) {
                at.add(i);
            }
        }
        return at;
    }

    private static String sliceArgs(String inner) {
        List<Integer> colons = topLevelColons(inner);
        List<String> parts = new ArrayList<>();
        int from = 0;
        for (int c : colons) {
            parts.add(inner.substring(from, c));
            from = c + 1;
        }
        parts.add(inner.substring(from));
        while (parts.size() < 3) {
            parts.add("");
        }
        StringBuilder sb = new StringBuilder();
        for (int k = 0; k < 3; k++) {
            String p = parts.get(k).strip();
            sb.append(k > 0 ? ", " : "").append(p.isEmpty() ? "null" : "(" + rewriteExpression(p) + ")");
        }
        return sb.toString();
    }

    /** {@code name=value} arguments get their value in parentheses. */
    private static String keywordArgs(String inner) {
        StringBuilder sb = new StringBuilder();
        int depth = 0;
        int from = 0;
        for (int i = 0; i <= inner.length(); i++) {
            char c = i < inner.length() ? inner.charAt(i) : ',';
            if (i < inner.length() && (c == '\'' || c == '"')) {
                i = skipString(inner, i);
                continue;
            }
            if (c == '(' || c == '[' || c == '{') {
                depth++;
            } else if (c == ')' || c == ']' || c == '}') {
                depth--;
            } else if (c == ',' && depth == 0) {
                sb.append(keywordArg(inner.substring(from, i)));
                if (i < inner.length()) {
                    sb.append(',');
                }
                from = i + 1;
            }
        }
        return sb.toString();
    }

    private static String keywordArg(String arg) {
        Matcher m = KEYWORD.matcher(arg);
        if (m.lookingAt()) {
            String value = arg.substring(m.end());
            String lead =
                    value.substring(0, value.length() - value.stripLeading().length());
            String trail = value.substring(value.stripTrailing().length());
            return arg.substring(0, m.end()) + lead + "(" + rewriteExpression(value.strip()) + ")" + trail;
        }
        return rewriteExpression(arg);
    }

    private static final Pattern KEYWORD = Pattern.compile("\\s*[A-Za-z_][A-Za-z0-9_]*\\s*=(?!=)");
}
