package org.align4j.cli.quickstart;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The whole quickstart pipeline, shortened: the full run's numbers are in the README, measured by hand. */
class QuickstartSmokeTest {
    @Test
    void shortQuickstartWritesTheSummaryAndRunFolders(@TempDir Path tmp) throws Exception {
        Map<String, Quickstart.Row> rows = Quickstart.run(new Quickstart.Settings(tmp, 20, 5, 50, 7), null);
        assertThat(rows).containsOnlyKeys("sft", "dpo", "ipo");
        assertThat(rows.get("sft").klToReference()).isZero();
        assertThat(rows.get("sft").rewardAccuracy()).as("SFT against itself: every pair ties, and a tie counts 0 as in TRL").isZero();
        JsonNode summary = new ObjectMapper().readTree(tmp.resolve("summary.json").toFile());
        for (String name : new String[] {"sft", "dpo", "ipo"}) {
            for (String key : new String[] {"heldout_accuracy", "reward_accuracy", "kl_to_reference"}) {
                assertThat(summary.get(name).get(key).isNumber()).as(name + "." + key).isTrue();
            }
        }
        assertThat(rows.get("dpo").klToReference()).isPositive();
        assertThat(tmp.resolve("dpo/final/model.safetensors")).exists();
        assertThat(tmp.resolve("ipo/metrics.jsonl")).exists();
        assertThat(tmp.resolve("base/tokenizer.json")).exists();
        // the SFT model against itself: every answer ties
        assertThat(rows.get("sft").winRate().ties()).isEqualTo(50);
        assertThat(summary.get("dpo").get("win_rate_ci95")).hasSize(2);
        // the report: DPO and IPO overlaid, eval_kl logged during training, samples side by side
        String page = java.nio.file.Files.readString(tmp.resolve("report/index.html"));
        assertThat(page).contains("Headline numbers").contains("KL(π ‖ π_ref) along held-out chosen answers").contains("Sample generations");
        assertThat(tmp.resolve("report/charts/eval_kl.png")).exists();
        assertThat(tmp.resolve("dpo/samples.jsonl")).exists();
        // and it renders in headless Chromium with both runs' chart lines on screen (where Chromium is installed)
        Path chromium = Path.of(System.getenv().getOrDefault("CHROMIUM", "/usr/bin/chromium"));
        if (java.nio.file.Files.isExecutable(chromium)) {
            byte[] png = org.align4j.evaluation.report.Chromium.screenshot(chromium, tmp.resolve("report/index.html"),
                    tmp.resolve("screenshot.png"), 1000, 3000);
            java.awt.image.BufferedImage img = javax.imageio.ImageIO.read(new java.io.ByteArrayInputStream(png));
            assertThat(pixelsNear(img, 0x0072B2)).as("DPO's lines on screen").isGreaterThan(500);
            assertThat(pixelsNear(img, 0xD55E00)).as("IPO's lines on screen").isGreaterThan(500);
        }
    }

    private static int pixelsNear(java.awt.image.BufferedImage img, int rgb) {
        int n = 0;
        for (int y = 0; y < img.getHeight(); y++) {
            for (int x = 0; x < img.getWidth(); x++) {
                int p = img.getRGB(x, y);
                int d = Math.abs(((p >> 16) & 255) - ((rgb >> 16) & 255)) + Math.abs(((p >> 8) & 255) - ((rgb >> 8) & 255))
                        + Math.abs((p & 255) - (rgb & 255));
                n += d < 60 ? 1 : 0;
            }
        }
        return n;
    }
}
