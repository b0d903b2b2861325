package org.align4j.evaluation.report;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import javax.imageio.ImageIO;
import org.align4j.data.DataException;
import org.align4j.evaluation.Bandit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ReportTest {
    @TempDir
    Path tmp;

    /** A run folder like the trainer's, with a loss falling as 1/step and accuracy rising. */
    static Path fakeRun(Path dir, double speed) throws IOException {
        Files.createDirectories(dir);
        StringBuilder sb = new StringBuilder();
        for (int step = 5; step <= 200; step += 5) {
            double acc = 1 - 0.5 * Math.exp(-speed * step / 50.0);
            sb.append(String.format(
                    Locale.ROOT,
                    "{\"step\":%d,\"loss\":%f,\"rewards/accuracies\":%f,\"rewards/margins\":%f,\"learning_rate\":1e-5}%n",
                    step,
                    0.7 / (1 + speed * step / 20.0),
                    acc,
                    speed * step / 100.0));
            if (step % 50 == 0) {
                sb.append(String.format(
                        Locale.ROOT,
                        "{\"step\":%d,\"eval_loss\":%f,\"eval_kl\":%f}%n",
                        step,
                        0.6 / (1 + step / 40.0),
                        speed * step / 400.0));
            }
        }
        Files.writeString(dir.resolve("metrics.jsonl"), sb);
        Files.writeString(dir.resolve("config.yaml"), "loss: " + dir.getFileName() + "\nbeta: 0.5\n");
        Files.writeString(dir.resolve("samples.jsonl"), """
                {"prompt":"07+35=","expected":"042","reference":"043","policy":"042"}
                {"prompt":"<b>x</b>","reference":"a & b","policy":"c"}
                """);
        return dir;
    }

    @Test
    void writesChartsAndASelfContainedPage() throws IOException {
        List<RunReport.Run> runs =
                List.of(RunReport.read(fakeRun(tmp.resolve("dpo"), 2)), RunReport.read(fakeRun(tmp.resolve("ipo"), 1)));
        assertThat(runs.get(0).points()).hasSize(44);
        assertThat(runs.get(0).last("eval_kl")).isEqualTo(2 * 200 / 400.0);
        Path html = RunReport.write(
                runs, tmp.resolve("report"), "DPO vs IPO", "Two runs.", Map.of("dpo", Map.of("accuracy", 0.9)));
        String page = Files.readString(html);
        assertThat(RunReport.charts(runs))
                .containsOnlyKeys("loss", "rewards_accuracies", "rewards_margins", "eval_loss", "eval_kl");
        assertThat(page.split("src=\"data:image/png;base64,", -1)).hasSize(6); // five charts, embedded
        assertThat(page)
                .doesNotContain("<b>x</b>")
                .contains("&lt;b&gt;x&lt;/b&gt;")
                .contains("a &amp; b");
        assertThat(page).contains("<td class=\"text right\">042</td>").contains("<td class=\"text wrong\">043</td>");
        assertThat(page).contains("loss: dpo").doesNotContain("http://").doesNotContain("https://");
        for (String chart : List.of("loss", "eval_kl")) {
            BufferedImage img =
                    ImageIO.read(tmp.resolve("report/charts/" + chart + ".png").toFile());
            assertThat(img.getWidth()).isEqualTo(900);
            assertThat(colouredPixels(img, 0x0072B2))
                    .as("first run's line in " + chart)
                    .isGreaterThan(300);
            assertThat(colouredPixels(img, 0xD55E00))
                    .as("second run's line in " + chart)
                    .isGreaterThan(300);
        }
    }

    @Test
    void aMetricThatWasNotANumberIsReadAsNaNAndLeftOutOfChartsAndTables() throws IOException {
        Path run = fakeRun(tmp.resolve("grpo"), 1);
        // null: how the trainer writes NaN and infinities; the strings: what earlier versions wrote
        Files.writeString(run.resolve("metrics.jsonl"), """
                {"step":1,"loss":0.5,"reward":0.25}
                {"step":2,"loss":0.4,"reward":null}
                {"step":3,"loss":"NaN","reward":"Infinity","kl":"-Infinity"}
                {"step":4,"loss":0.3,"reward":null}
                """, StandardCharsets.UTF_8);
        RunReport.Run r = RunReport.read(run);
        assertThat(r.points()).hasSize(4);
        assertThat(r.points().get(1).values().get("reward")).isNaN();
        assertThat(r.points().get(2).values())
                .containsEntry("reward", Double.POSITIVE_INFINITY)
                .containsEntry("kl", Double.NEGATIVE_INFINITY);
        assertThat(r.points().get(2).values().get("loss")).isNaN();
        assertThat(r.last("reward"))
                .as("the last logged value, not an earlier one")
                .isNaN();
        Charts.Spec loss = RunReport.charts(List.of(r)).get("loss");
        assertThat(loss.series().get(0).x()).containsExactly(1.0, 2.0, 4.0);
        String page = Files.readString(RunReport.write(List.of(r), tmp.resolve("report"), "GRPO", "", Map.of()));
        assertThat(page).contains("reward").doesNotContain("NaN");
    }

    @Test
    void malformedMetricsNameFileAndLine() throws IOException {
        Path run = fakeRun(tmp.resolve("bad"), 1);
        Files.writeString(
                run.resolve("metrics.jsonl"),
                "{\"step\":1,\"loss\":0.5}\n{\"step\":2,\"loss\":\n",
                StandardCharsets.UTF_8);
        assertThatThrownBy(() -> RunReport.read(run))
                .isInstanceOf(DataException.class)
                .hasMessageContaining("metrics.jsonl:2");
        assertThatThrownBy(() -> RunReport.read(tmp.resolve("missing")))
                .isInstanceOf(DataException.class)
                .hasMessageContaining("metrics.jsonl")
                .hasMessageContaining("not found");
    }

    @Test
    void banditReportWritesCsvPngAndWords() throws IOException {
        List<Bandit.Curve> curves =
                List.of(Bandit.train("dpo", 0.5, 400, 0.1, 50), Bandit.train("ipo", 0.5, 400, 0.1, 50));
        Path html = BanditReport.write(curves, tmp.resolve("bandit"));
        List<String> csv = Files.readAllLines(tmp.resolve("bandit/curves.csv"));
        assertThat(csv.get(0)).isEqualTo("method,beta,step,pi_a,pi_b,pi_c");
        // DPO uses the whole budget (records at 0, 50, ..., 400); IPO stops at its minimum, with a last record there
        assertThat(csv.stream().filter(l -> l.startsWith("dpo"))).hasSize(9);
        assertThat(curves.get(1).converged()).isTrue();
        assertThat(csv.stream().filter(l -> l.startsWith("ipo")))
                .hasSize(curves.get(1).steps().length);
        assertThat(csv.get(1)).startsWith("dpo,0.5,0,0.333333333");
        String page = Files.readString(html);
        assertThat(page)
                .contains("IPO, β = 0.5: at a minimum")
                .contains("closed form")
                .contains("DPO never stops moving towards a")
                .contains("DPO, β = 0.5: still moving");
        BufferedImage img = ImageIO.read(tmp.resolve("bandit/bandit.png").toFile());
        assertThat(img.getWidth()).isEqualTo(420);
        assertThat(img.getHeight()).isEqualTo(2 * 320);
    }

    /**
     * Opens a report in headless Chromium (Debian's {@code chromium}) and checks the screenshot shows
     * the charts: pixels in the colours of both runs' lines. Skipped where Chromium is not installed
     * ({@code .ci/run} installs it when it can).
     */
    @Test
    void rendersInHeadlessChromiumWithItsChartsVisible() throws Exception {
        Path chromium = Path.of(System.getenv().getOrDefault("CHROMIUM", "/usr/bin/chromium"));
        Assumptions.assumeTrue(Files.isExecutable(chromium), "no Chromium at " + chromium);
        List<RunReport.Run> runs =
                List.of(RunReport.read(fakeRun(tmp.resolve("dpo"), 2)), RunReport.read(fakeRun(tmp.resolve("ipo"), 1)));
        Path html = RunReport.write(runs, tmp.resolve("report"), "DPO vs IPO", "", Map.of());
        Path shot = tmp.resolve("screenshot.png");
        BufferedImage img =
                ImageIO.read(new ByteArrayInputStream(Chromium.screenshot(chromium, html, shot, 1000, 2200)));
        assertThat(img.getWidth()).isEqualTo(1000);
        assertThat(colouredPixels(img, 0x0072B2))
                .as("first run's lines on screen")
                .isGreaterThan(500);
        assertThat(colouredPixels(img, 0xD55E00))
                .as("second run's lines on screen")
                .isGreaterThan(500);
    }

    static int colouredPixels(BufferedImage img, int rgb) {
        int n = 0;
        for (int y = 0; y < img.getHeight(); y++) {
            for (int x = 0; x < img.getWidth(); x++) {
                int p = img.getRGB(x, y);
                int dr = ((p >> 16) & 255) - ((rgb >> 16) & 255);
                int dg = ((p >> 8) & 255) - ((rgb >> 8) & 255);
                int db = (p & 255) - (rgb & 255);
                if (dr * dr + dg * dg + db * db < 40 * 40) {
                    n++;
                }
            }
        }
        return n;
    }
}
