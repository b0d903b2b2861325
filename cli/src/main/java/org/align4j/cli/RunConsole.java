package org.align4j.cli;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import org.align4j.trainer.RunFolder;
import org.align4j.trainer.TrainResult;
import org.align4j.trainer.TrainingListener;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.LoggerContext;
import org.apache.logging.log4j.core.appender.FileAppender;
import org.apache.logging.log4j.core.config.Configuration;
import org.apache.logging.log4j.core.layout.PatternLayout;

/** What a training command shows: a progress bar on the console, the log in OUTPUT/train.log, a summary at the end. */
final class RunConsole implements TrainingListener {
    private final String task;
    private ProgressBar bar;
    private PairsProgress preparation;
    private String preparing;

    RunConsole(String task) {
        this.task = task;
    }

    /**
     * A progress bar for a scoring pass on the console: pairs done, pairs/s and the time left.
     *
     * @param task the command's name
     * @param pairs pairs to score
     * @return the bar (close it when the pass ends)
     */
    static PairsProgress pairsBar(String task, long pairs) {
        return new PairsProgress(task, pairs, "pairs");
    }

    /** Sends every INFO log line of the run to {@code OUTPUT/train.log} (the console keeps warnings only). */
    static void logTo(Path output) {
        if (Processes.follower()) {
            return; // rank 0 alone writes the run folder
        }
        LoggerContext ctx = (LoggerContext) LogManager.getContext(false);
        Configuration cfg = ctx.getConfiguration();
        if (cfg.getAppender("run-file") != null) {
            cfg.getRootLogger().removeAppender("run-file");
            if (cfg.getLoggers().containsKey("org.align4j.cli.Failure")) {
                cfg.getLoggers().get("org.align4j.cli.Failure").removeAppender("run-file");
            }
            cfg.getAppender("run-file").stop();
        }
        FileAppender file = FileAppender.newBuilder()
                .setName("run-file")
                .withFileName(output.resolve("train.log").toString())
                .withAppend(true)
                .setLayout(PatternLayout.newBuilder()
                        .withPattern("%d{yyyy-MM-dd HH:mm:ss} %-5level %c{1} - %msg%n")
                        .withConfiguration(cfg)
                        .build())
                .setConfiguration(cfg)
                .build();
        file.start();
        cfg.addAppender(file);
        cfg.getRootLogger().addAppender(file, Level.INFO, null);
        if (cfg.getLoggers().containsKey("org.align4j.cli.Failure")) {
            cfg.getLoggers().get("org.align4j.cli.Failure").addAppender(file, Level.ERROR, null);
        }
        logFile = output.resolve("train.log");
        if (cfg.getRootLogger().getLevel().isMoreSpecificThan(Level.INFO)) {
            cfg.getRootLogger().setLevel(Level.INFO);
            cfg.getRootLogger().getAppenders().forEach((name, appender) -> {
                if (!"run-file".equals(name)) {
                    cfg.getRootLogger().removeAppender(name);
                    cfg.getRootLogger().addAppender(appender, Level.WARN, null);
                }
            });
        }
        ctx.updateLoggers();
    }

    @Override
    public void onPrepare(String what, String unit, long done, long total) {
        if (Processes.follower()) {
            return;
        }
        if (preparation == null || !what.equals(preparing)) {
            if (preparation != null) {
                preparation.close();
            }
            preparation = new PairsProgress(task + " " + what, total, unit);
            preparing = what;
        }
        preparation.stepTo(done);
        if (done >= total) {
            preparation.close();
            preparation = null;
            preparing = null;
        }
    }

    @Override
    public void onStart(long firstStep, long totalSteps) {
        if (preparation != null) {
            preparation.close(); // a preparation pass that did not reach its end
            preparation = null;
        }
        if (Processes.follower()) {
            return; // one progress bar: rank 0's
        }
        bar = new ProgressBarBuilder()
                .setTaskName(task)
                .setInitialMax(totalSteps)
                .startsFrom(firstStep - 1, Duration.ZERO)
                .setStyle(ProgressBarStyle.ASCII)
                .setUpdateIntervalMillis(500)
                .setMaxRenderedLength(120)
                .build();
    }

    @Override
    public void onStep(long step, Map<String, Double> m) {
        if (bar == null) {
            return;
        }
        bar.stepTo(step);
        if (!m.containsKey("loss")) {
            return; // not a logging step: the loss stays on the device, the message keeps the last one
        }
        StringBuilder sb = new StringBuilder(String.format(Locale.ROOT, "loss %.4f", m.get("loss")));
        Double accuracy = m.containsKey("rewards/accuracies")
                ? m.get("rewards/accuracies")
                : m.get("accuracy"); // a policy's, or a reward model's
        if (accuracy != null) {
            sb.append(String.format(Locale.ROOT, " acc %.2f", accuracy));
        }
        sb.append(String.format(Locale.ROOT, " %.0f tok/s", m.get("tokens_per_second")));
        bar.setExtraMessage(sb.toString());
    }

    @Override
    public void onEnd() {
        if (bar != null) {
            bar.close();
            bar = null;
        }
    }

    /** @return the run's train.log, once a training command has sent its log there */
    static Optional<Path> logFile() {
        return Optional.ofNullable(logFile);
    }

    private static Path logFile;

    /** Says on the console which checkpoint a resumed run continues, and what it was told differently. */
    static void resumed(PrintWriter w, RunFolder folder) {
        if (Processes.follower()) {
            return;
        }
        folder.resumeFrom().ifPresent(c -> {
            w.println(
                    "resuming from " + c + (Files.isRegularFile(c.resolve("config.yaml")) ? "" : " (no config.yaml)"));
            folder.changes().forEach(change -> w.println("  changed: " + change));
            w.flush();
        });
    }

    static void header(PrintWriter w, List<String> lines) {
        if (Processes.follower()) {
            return;
        }
        lines.forEach(w::println);
        w.flush();
    }

    static void summary(PrintWriter w, TrainResult r) {
        if (Processes.follower()) {
            return;
        }
        if (r.interrupted()) {
            w.printf("stopped at step %d; checkpoint %s (continue with --resume)%n", r.lastStep(), r.lastCheckpoint());
        } else {
            w.printf("finished %d steps; model in %s%n", r.lastStep(), r.finalModel());
        }
        // one column as wide as the longest name (completions/mean_terminated_length is 34)
        int width = Math.max(
                22,
                Stream.concat(r.lastMetrics().keySet().stream(), r.evalMetrics().keySet().stream())
                        .mapToInt(String::length)
                        .max()
                        .orElse(0));
        String line = "  %-" + width + "s %.6g%n";
        r.lastMetrics().forEach((k, v) -> w.printf(Locale.ROOT, line, k, v));
        r.evalMetrics().forEach((k, v) -> w.printf(Locale.ROOT, line, k, v));
        w.flush();
    }
}
