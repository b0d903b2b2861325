package org.align4j.evaluation.report;

import java.util.Base64;
import java.util.Locale;

/** Building blocks of the self-contained report pages: escaping, the page frame, embedded images. */
public final class Html {
    private static final String STYLE =
            "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;margin:2em auto;"
                    + "padding:0 1em;color:#222;line-height:1.45}h1{font-size:1.6em}h2{margin-top:1.8em;border-bottom:1px solid #ddd}"
                    + "table{border-collapse:collapse;margin:.8em 0}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;"
                    + "vertical-align:top}td.num{text-align:right;font-variant-numeric:tabular-nums}th{background:#f4f4f4}"
                    + "figure{margin:1em 0}img{max-width:100%;border:1px solid #eee}pre{background:#f7f7f7;padding:.8em;overflow:auto}"
                    + "code,pre,td.text{font-family:ui-monospace,Menlo,Consolas,monospace}.right{color:#0a7a2f}.wrong{color:#b00020}";

    private Html() {}

    /**
     * @param text any text
     * @return the text with &amp;, &lt;, &gt; and quotes escaped
     */
    public static String escape(String text) {
        if (text == null) {
            return "";
        }
        StringBuilder sb = new StringBuilder(text.length());
        for (char c : text.toCharArray()) {
            switch (c) {
                case '&' -> sb.append("&amp;");
                case '<' -> sb.append("&lt;");
                case '>' -> sb.append("&gt;");
                case '"' -> sb.append("&quot;");
                case '\'' -> sb.append("&#39;");
                default -> sb.append(c);
            }
        }
        return sb.toString();
    }

    /**
     * @param title page title
     * @param body HTML of the body
     * @return a whole page with its style inline (no external resources)
     */
    public static String page(String title, String body) {
        return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" + escape(title)
                + "</title>\n<style>" + STYLE + "</style>\n</head>\n<body>\n<h1>" + escape(title) + "</h1>\n" + body
                + "</body>\n</html>\n";
    }

    /**
     * @param png PNG bytes
     * @param alt alternative text
     * @param caption caption text (may be empty)
     * @return a figure with the image embedded as a data URI
     */
    public static String figure(byte[] png, String alt, String caption) {
        return "<figure><img alt=\"" + escape(alt) + "\" src=\"data:image/png;base64,"
                + Base64.getEncoder().encodeToString(png) + "\">"
                + (caption.isEmpty() ? "" : "<figcaption>" + escape(caption) + "</figcaption>") + "</figure>\n";
    }

    /**
     * @param value a number
     * @return it with four significant decimals, or an en dash when missing
     */
    public static String number(Double value) {
        if (value == null || value.isNaN()) {
            return "–";
        }
        double a = Math.abs(value);
        if (a != 0 && (a >= 1e5 || a < 1e-3)) {
            return String.format(Locale.ROOT, "%.3e", value);
        }
        return String.format(Locale.ROOT, "%.4f", value);
    }
}
