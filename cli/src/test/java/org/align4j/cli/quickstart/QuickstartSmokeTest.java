package org.align4j.cli.quickstart;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import javax.imageio.ImageIO;
import org.align4j.evaluation.report.Chromium;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The whole quickstart pipeline, shortened: the full run's numbers are in the README, measured by hand. */
class QuickstartSmokeTest {
    @Test
    void shortQuickstartWritesTheSummaryAndRunFolders(@TempDir Path tmp) throws Exception {
        Map<String, Quickstart.Row> rows = Quickstart.run(new Quickstart.Settings(tmp, 20, 5, 50, 7), null);
        assertThat(rows).containsOnlyKeys("sft", "dpo", "ipo");
        assertThat(rows.get("sft").klToReference()).isZero();
        assertThat(rows.get("sft").rewardAccuracy())
                .as("SFT against itself: every pair ties, and a tie counts 0 as in TRL")
                .isZero();
        JsonNode summary =
                new ObjectMapper().readTree(tmp.resolve("summary.json").toFile());
        for (String name : new String[] {"sft", "dpo", "ipo"}) {
            for (String key : new String[] {"heldout_accuracy", "reward_accuracy", "kl_to_reference"}) {
                assertThat(summary.get(name).get(key).isNumber())
                        .as(name + "." + key)
                        .isTrue();
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
        String page = Files.readString(tmp.resolve("report/index.html"));
        assertThat(page)
                .contains("Headline numbers")
                .contains("KL(π ‖ π_ref) along held-out chosen answers")
                .contains("Sample generations");
        assertThat(tmp.resolve("report/charts/eval_kl.png")).exists();
        assertThat(tmp.resolve("dpo/samples.jsonl")).exists();
        // and it renders in headless Chromium with both runs' chart lines on screen (where Chromium is installed)
        Path chromium = Path.of(System.getenv().getOrDefault("CHROMIUM", "/usr/bin/chromium"));
        if (Files.isExecutable(chromium)) {
            byte[] png = Chromium.screenshot(
                    chromium, tmp.resolve("report/index.html"), tmp.resolve("screenshot.png"), 1000, 3000);
            BufferedImage img = ImageIO.read(new ByteArrayInputStream(png));
            assertThat(pixelsNear(img, 0x0072B2)).as("DPO's lines on screen").isGreaterThan(500);
            assertThat(pixelsNear(img, 0xD55E00)).as("IPO's lines on screen").isGreaterThan(500);
        }
    }

    @Test
    void shortRlhfAndRlQuickstartTrainsARewardModelSoftIpoAndGrpoOnTheCheckerAndOnTheRewardModel(@TempDir Path tmp)
            throws Exception {
        Quickstart.Result r =
                Quickstart.run(new Quickstart.Settings(tmp, 20, 4, 40, 7), new Quickstart.RewardStage(6, 0.2), 3, null);
        assertThat(r.rows()).containsOnlyKeys("sft", "dpo", "ipo", "ipo-soft", "grpo", "grpo-rm", "ppo");
        // each run's wall time and peak memory, in the order they ran
        assertThat(r.costs().keySet())
                .containsExactly("sft", "reward", "dpo", "ipo", "ipo-soft", "grpo", "grpo-rm", "ppo");
        r.costs().forEach((name, c) -> {
            assertThat(c.seconds()).as(name).isPositive();
            if (Files.isReadable(Path.of("/proc/self/status"))) {
                assertThat(c.peakBytes()).as(name).isGreaterThan(50L << 20);
            }
        });
        assertThat(tmp.resolve("ppo/checkpoint-12/value_model/model.safetensors"))
                .exists();
        assertThat(Files.readString(tmp.resolve("ppo/metrics.jsonl"))).contains("\"objective/rlhf_reward\"");
        // the reward-model run logs the checker beside the reward model's score, at weight 0
        assertThat(Files.readString(tmp.resolve("grpo-rm/metrics.jsonl")))
                .contains("\"rewards/reward_final/mean\"")
                .contains("\"rewards/exact_answer/mean\"");
        assertThat(tmp.resolve("grpo/final/model.safetensors")).exists();
        assertThat(tmp.resolve("report/charts/eval_rewards_exact_answer_mean.png"))
                .exists();
        assertThat(r.reward().heldoutRankingAccuracy()).isBetween(0.0, 1.0);
        assertThat(r.reward().flippedCorrected()).as("some labels were flipped").isBetween(0.0, 1.0);
        ObjectMapper json = new ObjectMapper();
        List<String> hard = Files.readAllLines(tmp.resolve("data/prefs.jsonl"));
        List<String> soft = Files.readAllLines(tmp.resolve("data/prefs_soft.jsonl"));
        assertThat(soft).hasSameSizeAs(hard);
        int flipped = 0;
        for (int i = 0; i < hard.size(); i++) {
            JsonNode h = json.readTree(hard.get(i));
            JsonNode s = json.readTree(soft.get(i));
            assertThat(s.get("chosen").asText()).isEqualTo(h.get("chosen").asText());
            assertThat(s.get("preference").asDouble()).isStrictlyBetween(0.0, 1.0);
            // the right answer is the sum; a flipped label prefers the one-off answer
            String prompt = h.get("prompt").asText();
            int sum = Integer.parseInt(prompt.substring(0, 2)) + Integer.parseInt(prompt.substring(3, 5));
            flipped += Integer.parseInt(h.get("chosen").asText()) != sum ? 1 : 0;
        }
        assertThat((double) flipped / hard.size())
                .as("the share of flipped labels")
                .isCloseTo(0.2, Offset.offset(0.03));
        JsonNode summary = json.readTree(tmp.resolve("summary.json").toFile());
        assertThat(summary.get("reward_model").get("heldout_ranking_accuracy").isNumber())
                .isTrue();
        assertThat(summary.get("ipo-soft").get("heldout_accuracy").isNumber()).isTrue();
        assertThat(summary.get("ppo").get("wall_seconds").isNumber()).isTrue();
        assertThat(summary.get("reward_model").get("wall_seconds").isNumber()).isTrue();
        if (Files.isReadable(Path.of("/proc/self/status"))) {
            assertThat(summary.get("ppo").get("peak_rss_bytes").asLong()).isGreaterThan(50L << 20);
        }
        assertThat(tmp.resolve("reward/final/config.json")).content().contains("GPT2ForSequenceClassification");
        assertThat(Files.readString(tmp.resolve("dpo/metrics.jsonl"))).contains("eval_win_rate");
        assertThat(tmp.resolve("report/charts/eval_win_rate.png")).exists();
        assertThat(tmp.resolve("report/charts/eval_accuracy.png")).exists();
    }

    private static int pixelsNear(BufferedImage img, int rgb) {
        int n = 0;
        for (int y = 0; y < img.getHeight(); y++) {
            for (int x = 0; x < img.getWidth(); x++) {
                int p = img.getRGB(x, y);
                int d = Math.abs(((p >> 16) & 255) - ((rgb >> 16) & 255))
                        + Math.abs(((p >> 8) & 255) - ((rgb >> 8) & 255))
                        + Math.abs((p & 255) - (rgb & 255));
                n += d < 60 ? 1 : 0;
            }
        }
        return n;
    }
}
