package org.align4j.evaluation.report;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.align4j.data.DataException;
import org.align4j.model.io.AtomicDirectory;

/**
 * A report on one training run or several overlaid (DPO against IPO, say): PNG charts of the logged
 * metrics, and one self-contained HTML page with the final numbers, the charts, sample generations of
 * reference and policy side by side, and each run's configuration.
 *
 * <p>A run folder is what the trainer writes: {@code metrics.jsonl} (one JSON object per logged step,
 * with {@code step}), {@code config.yaml}, and optionally {@code samples.jsonl} (objects with
 * {@code prompt}, {@code reference}, {@code policy} and optionally {@code expected} (a right answer) or {@code chosen} (the data's preferred answer)).
 */
public final class RunReport {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** The charts drawn when some run logged the metric: key, title, y-axis title. */
    private static final String[][] CHARTS = {
        {"loss", "Training loss", "loss"},
        {"rewards/accuracies", "Reward accuracy (training batches)", "share of pairs ranked right"},
        {"rewards/margins", "Reward margin (training batches)", "β·Δ log-ratio"},
        {"eval_loss", "Held-out loss", "loss"},
        {"eval_rewards/accuracies", "Reward accuracy (held out)", "share of pairs ranked right"},
        {"eval_rewards/margins", "Reward margin (held out)", "β·Δ log-ratio"},
        {"eval_kl", "KL(π ‖ π_ref) along held-out chosen answers", "nats per sequence"},
        {"eval_win_rate", "Win rate against the reference (held-out prompts, judged)", "wins + ties/2, share of prompts"
        },
        {"accuracy", "Reward-model accuracy (training batches)", "share of pairs with r_c > r_r"},
        {"margin", "Reward-model margin (training batches)", "mean r_c − r_r"},
        {"eval_accuracy", "Reward-model accuracy (held out)", "share of pairs with r_c > r_r"},
        {"eval_margin", "Reward-model margin (held out)", "mean r_c − r_r"},
        {"grad_norm", "Gradient norm (before clipping)", "L2 norm"},
        {"reward", "Reward of the samples (online RL, training)", "mean weighted reward"},
        {"eval_reward", "Reward of greedy answers (online RL, held out)", "mean weighted reward"},
        {"kl", "KL(π ‖ π_ref) per token (online RL)", "nats per token"},
        {"clip_ratio/region_mean", "Clipped share of tokens (online RL)", "share of tokens"},
        {"completions/mean_length", "Completion length (online RL samples)", "tokens"},
        {"frac_reward_zero_std", "Groups whose samples all scored alike (online RL)", "share of prompts"},
    };

    /**
     * One logged step.
     *
     * @param step the optimizer step
     * @param values metric values by name
     */
    public record Point(long step, Map<String, Double> values) {}

    /**
     * A sample generation.
     *
     * @param prompt the prompt text
     * @param expected the right answer, when the task has one (else null)
     * @param chosen the data's chosen answer, when the samples come from preference data (else null)
     * @param reference the reference model's answer
     * @param policy the trained policy's answer
     */
    public record Sample(String prompt, String expected, String chosen, String reference, String policy) {}

    /**
     * A run read from its folder.
     *
     * @param name the label in legends and tables
     * @param dir the folder
     * @param config the text of config.yaml ("" when absent)
     * @param points the logged steps, in order
     * @param samples sample generations (may be empty)
     */
    public record Run(String name, Path dir, String config, List<Point> points, List<Sample> samples) {
        /**
         * @param key a metric name
         * @return its last logged value, or null when never logged
         */
        public Double last(String key) {
            for (int i = points.size() - 1; i >= 0; i--) {
                Double v = points.get(i).values().get(key);
                if (v != null) {
                    return v;
                }
            }
            return null;
        }
    }

    private RunReport() {}

    /**
     * Reads a run folder.
     *
     * @param dir the folder
     * @return the run, named after the folder
     * @throws IOException when a file cannot be read
     * @throws DataException when metrics.jsonl or samples.jsonl is malformed (names file and line)
     */
    public static Run read(Path dir) throws IOException {
        Path metrics = dir.resolve("metrics.jsonl");
        if (!Files.isRegularFile(metrics)) {
            throw new DataException(
                    metrics,
                    0,
                    null,
                    "not found; a run folder is the 'output' of align4j train, with metrics.jsonl in it");
        }
        List<Point> points = new ArrayList<>();
        for (JsonNode o : jsonLines(metrics)) {
            Map<String, Double> values = new LinkedHashMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = o.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                Double v = metricValue(e.getValue());
                if (v != null && !"step".equals(e.getKey())) {
                    values.put(e.getKey(), v);
                }
            }
            points.add(new Point(o.path("step").asLong(), values));
        }
        List<Sample> samples = new ArrayList<>();
        Path sampleFile = dir.resolve("samples.jsonl");
        if (Files.isRegularFile(sampleFile)) {
            for (JsonNode o : jsonLines(sampleFile)) {
                samples.add(new Sample(
                        o.path("prompt").asText(),
                        o.hasNonNull("expected") ? o.get("expected").asText() : null,
                        o.hasNonNull("chosen") ? o.get("chosen").asText() : null,
                        o.path("reference").asText(),
                        o.path("policy").asText()));
            }
        }
        Path config = dir.resolve("config.yaml");
        String configText = Files.isRegularFile(config) ? Files.readString(config) : "";
        Path abs = dir.toAbsolutePath().normalize();
        return new Run(
                abs.getFileName() == null ? abs.toString() : abs.getFileName().toString(),
                dir,
                configText,
                points,
                samples);
    }

    /**
     * Writes samples as the report reads them: one JSON object per line, null fields left out.
     *
     * @param file the file (usually {@code RUN/samples.jsonl}), written to a temp file and renamed
     * @param samples the samples
     * @throws IOException when it cannot be written
     */
    public static void writeSamples(Path file, List<Sample> samples) throws IOException {
        StringBuilder sb = new StringBuilder();
        for (Sample s : samples) {
            ObjectNode o = JSON.createObjectNode();
            o.put("prompt", s.prompt());
            if (s.expected() != null) {
                o.put("expected", s.expected());
            }
            if (s.chosen() != null) {
                o.put("chosen", s.chosen());
            }
            o.put("reference", s.reference());
            o.put("policy", s.policy());
            sb.append(JSON.writeValueAsString(o)).append('\n');
        }
        AtomicDirectory.writeFile(file, sb.toString().getBytes(StandardCharsets.UTF_8));
    }

    /**
     * A metric as metrics.jsonl holds it: a number; null for a value that was not a number (the trainer writes
     * NaN and infinities as null, JSON having neither), read as NaN; or the strings "NaN", "Infinity" and
     * "-Infinity" that earlier versions wrote. Anything else is not a metric (null is returned).
     */
    private static Double metricValue(JsonNode v) {
        if (v.isNumber()) {
            return v.asDouble();
        }
        if (v.isNull()) {
            return Double.NaN;
        }
        if (v.isTextual() && List.of("NaN", "Infinity", "-Infinity").contains(v.asText())) {
            return Double.parseDouble(v.asText());
        }
        return null;
    }

    private static List<JsonNode> jsonLines(Path file) throws IOException {
        List<JsonNode> out = new ArrayList<>();
        List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).isBlank()) {
                continue;
            }
            try {
                JsonNode o = JSON.readTree(lines.get(i));
                if (!o.isObject()) {
                    throw new DataException(file, i + 1, null, "expected a JSON object");
                }
                out.add(o);
            } catch (JsonProcessingException e) {
                throw new DataException(file, i + 1, null, "not JSON: " + e.getOriginalMessage());
            }
        }
        return out;
    }

    /**
     * The charts for these runs, one per metric some run logged.
     *
     * @param runs the runs
     * @return chart file name (without extension) → chart
     */
    public static Map<String, Charts.Spec> charts(List<Run> runs) {
        Map<String, Charts.Spec> out = new LinkedHashMap<>();
        List<String[]> charts = new ArrayList<>(List.of(CHARTS));
        // each reward of an online run on its own, held out: a proxy's score beside a checker's shows hacking
        Set<String> perReward = new TreeSet<>();
        for (Run r : runs) {
            for (Point p : r.points()) {
                for (String k : p.values().keySet()) {
                    if (k.startsWith("eval_rewards/") && k.endsWith("/mean")) {
                        perReward.add(k);
                    }
                }
            }
        }
        for (String k : perReward) {
            String name = k.substring("eval_rewards/".length(), k.length() - "/mean".length());
            charts.add(new String[] {k, "Held-out reward '" + name + "' of greedy answers (online RL)", "mean reward"});
        }
        for (String[] c : charts) {
            List<Charts.Series> series = new ArrayList<>();
            for (Run r : runs) {
                List<double[]> xy = new ArrayList<>();
                for (Point p : r.points()) {
                    Double v = p.values().get(c[0]);
                    if (v != null && Double.isFinite(v)) {
                        xy.add(new double[] {p.step(), v});
                    }
                }
                if (!xy.isEmpty()) {
                    series.add(new Charts.Series(
                            r.name(),
                            xy.stream().mapToDouble(a -> a[0]).toArray(),
                            xy.stream().mapToDouble(a -> a[1]).toArray()));
                }
            }
            if (!series.isEmpty()) {
                out.put(c[0].replace('/', '_'), new Charts.Spec(c[1], "step", c[2], series));
            }
        }
        return out;
    }

    /**
     * Writes {@code OUT/index.html} and {@code OUT/charts/*.png}.
     *
     * @param runs the runs to show (one or more)
     * @param out the output folder
     * @param title the page title
     * @param introHtml an opening paragraph (HTML, may be empty)
     * @param headline an optional table of headline numbers: row name → column → value (may be empty)
     * @return the HTML file
     * @throws IOException when the files cannot be written
     */
    public static Path write(
            List<Run> runs, Path out, String title, String introHtml, Map<String, Map<String, Double>> headline)
            throws IOException {
        if (runs.isEmpty()) {
            throw new IllegalArgumentException("runs: nothing to report");
        }
        Files.createDirectories(out.resolve("charts"));
        StringBuilder body = new StringBuilder();
        if (!introHtml.isEmpty()) {
            body.append("<p>").append(introHtml).append("</p>\n");
        }
        if (!headline.isEmpty()) {
            body.append("<h2>Headline numbers</h2>\n");
            body.append(table(headline));
        }
        body.append("<h2>Final logged values</h2>\n");
        Map<String, Map<String, Double>> finals = new LinkedHashMap<>();
        Set<String> keys = new LinkedHashSet<>();
        for (Run r : runs) {
            for (Point p : r.points()) {
                keys.addAll(p.values().keySet());
            }
        }
        for (String k : keys) {
            Map<String, Double> row = new LinkedHashMap<>();
            for (Run r : runs) {
                row.put(r.name(), r.last(k));
            }
            finals.put(k, row);
        }
        body.append(table(finals));
        body.append("<p>Last step: ");
        for (int i = 0; i < runs.size(); i++) {
            Run r = runs.get(i);
            body.append(i == 0 ? "" : ", ")
                    .append(Html.escape(r.name()))
                    .append(" ")
                    .append(
                            r.points().isEmpty()
                                    ? "–"
                                    : r.points().get(r.points().size() - 1).step());
        }
        body.append(".</p>\n<h2>Charts</h2>\n");
        for (Map.Entry<String, Charts.Spec> e : charts(runs).entrySet()) {
            byte[] png = Charts.png(e.getValue(), 900, 420);
            AtomicDirectory.writeFile(out.resolve("charts").resolve(e.getKey() + ".png"), png);
            body.append(Html.figure(png, e.getValue().title(), ""));
        }
        appendSamples(body, runs);
        body.append("<h2>Configuration</h2>\n");
        for (Run r : runs) {
            body.append("<details open><summary>")
                    .append(Html.escape(r.name()))
                    .append(" (")
                    .append(Html.escape(r.dir().toString()))
                    .append(")</summary><pre>")
                    .append(Html.escape(r.config().isEmpty() ? "(no config.yaml)" : r.config()))
                    .append("</pre></details>\n");
        }
        Path html = out.resolve("index.html");
        AtomicDirectory.writeFile(html, Html.page(title, body.toString()).getBytes(StandardCharsets.UTF_8));
        return html;
    }

    private static void appendSamples(StringBuilder body, List<Run> runs) {
        List<Run> withSamples =
                runs.stream().filter(r -> !r.samples().isEmpty()).toList();
        body.append("<h2>Sample generations</h2>\n");
        if (withSamples.isEmpty()) {
            body.append("<p>No run folder has a samples.jsonl.</p>\n");
            return;
        }
        // rows by prompt, in the first run's order; the reference answer from the first run that has one
        Map<String, Map<String, Sample>> byPrompt = new LinkedHashMap<>();
        for (Run r : withSamples) {
            for (Sample s : r.samples()) {
                byPrompt.computeIfAbsent(s.prompt(), k -> new LinkedHashMap<>()).put(r.name(), s);
            }
        }
        boolean expected =
                withSamples.stream().flatMap(r -> r.samples().stream()).anyMatch(s -> s.expected() != null);
        boolean chosen = withSamples.stream().flatMap(r -> r.samples().stream()).anyMatch(s -> s.chosen() != null);
        body.append("<table><tr><th>prompt</th>")
                .append(expected ? "<th>right answer</th>" : "")
                .append(chosen ? "<th>chosen (data)</th>" : "")
                .append("<th>reference</th>");
        for (Run r : withSamples) {
            body.append("<th>").append(Html.escape(r.name())).append("</th>");
        }
        body.append("</tr>\n");
        for (Map.Entry<String, Map<String, Sample>> e : byPrompt.entrySet()) {
            Sample any = e.getValue().values().iterator().next();
            body.append("<tr><td class=\"text\">")
                    .append(Html.escape(e.getKey()))
                    .append("</td>");
            if (expected) {
                body.append("<td class=\"text\">")
                        .append(Html.escape(any.expected()))
                        .append("</td>");
            }
            if (chosen) {
                body.append("<td class=\"text\">")
                        .append(Html.escape(any.chosen()))
                        .append("</td>");
            }
            body.append(cell(any.reference(), any.expected()));
            for (Run r : withSamples) {
                Sample s = e.getValue().get(r.name());
                body.append(s == null ? "<td>–</td>" : cell(s.policy(), s.expected()));
            }
            body.append("</tr>\n");
        }
        body.append("</table>\n");
    }

    private static String cell(String answer, String expected) {
        String cls = expected == null ? "text" : expected.equals(answer) ? "text right" : "text wrong";
        return "<td class=\"" + cls + "\">" + Html.escape(answer) + "</td>";
    }

    /**
     * @param rows row name → column → value
     * @return an HTML table with a header of the columns seen
     */
    public static String table(Map<String, Map<String, Double>> rows) {
        Set<String> columns = new LinkedHashSet<>();
        rows.values().forEach(r -> columns.addAll(r.keySet()));
        StringBuilder sb = new StringBuilder("<table><tr><th></th>");
        for (String c : columns) {
            sb.append("<th>").append(Html.escape(c)).append("</th>");
        }
        sb.append("</tr>\n");
        for (Map.Entry<String, Map<String, Double>> r : rows.entrySet()) {
            sb.append("<tr><th>").append(Html.escape(r.getKey())).append("</th>");
            for (String c : columns) {
                sb.append("<td class=\"num\">")
                        .append(Html.number(r.getValue().get(c)))
                        .append("</td>");
            }
            sb.append("</tr>\n");
        }
        return sb.append("</table>\n").toString();
    }
}
