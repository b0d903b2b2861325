package org.align4j.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import org.align4j.cli.quickstart.PeakMemory;
import org.align4j.cli.quickstart.Quickstart;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** The built-in end-to-end demo: SFT, then DPO and IPO, on a tiny model, offline on the CPU. */
@Command(
        name = "quickstart",
        mixinStandardHelpOptions = true,
        header = "Train a tiny GPT on two-digit sums, then align it with DPO and IPO (GRPO and PPO with --rl, --rlhf).",
        description = {
            "Train a tiny GPT from scratch on two-digit sums (SFT on a teacher who adds one to odd first numbers 60%% of the time), then align it with DPO and IPO",
            "on right-vs-one-off pairs; print held-out accuracy, reward accuracy and KL to the reference before and after.",
            "Offline, on the CPU, a few minutes. Writes OUTPUT/summary.json next to the runs."
        })
final class QuickstartCommand implements Callable<Integer> {
    @Option(
            names = "--output",
            defaultValue = "quickstart-output",
            description = "Where data, runs and the summary go (default: ${DEFAULT-VALUE})")
    Path output;

    @Option(names = "--sft-steps", description = "SFT steps (default: 1500)")
    Integer sftSteps;

    @Option(names = "--preference-steps", description = "DPO and IPO steps each (default: 600)")
    Integer preferenceSteps;

    @Option(names = "--seed", description = "Seed (default: 1234)")
    Long seed;

    @Option(
            names = "--rlhf",
            description =
                    "Also train a reward model on the pairs (RLHF's first stage), label the pairs with its p = sigmoid(r_c - r_r),"
                            + " and train soft-label IPO on them beside DPO and IPO; the reward model judges the win rates during training")
    boolean rlhf;

    @Option(
            names = "--rl",
            description = "Also run online RL: GRPO from the SFT model rewarded by the exact-answer checker (and, with"
                    + " --rlhf, by the reward model with the checker logged beside it)")
    boolean rl;

    @Option(names = "--rl-steps", description = "With --rl: GRPO steps (default: " + Quickstart.RL_STEPS + ")")
    Integer rlSteps;

    @Option(
            names = "--reward-steps",
            description = "With --rlhf: reward-model steps (default: " + Quickstart.REWARD_STEPS + ")")
    Integer rewardSteps;

    @Option(
            names = "--label-noise",
            paramLabel = "F",
            description = "With --rlhf: flip this share of the training labels, a careless annotator (default: 0)")
    Double labelNoise;

    @Option(
            names = {"--lora-r", "--lora"},
            paramLabel = "R",
            description = "DPO and IPO train LoRA adapters of rank R (alpha 2R, all linear maps, lr 1e-3) "
                    + "instead of every weight (default: full fine-tuning, the README's numbers)")
    Integer lora;

    @Option(
            names = "--threads",
            description =
                    "libtorch intra-op threads (default: all cores; 1 makes the numbers independent of the core count)")
    Integer threads;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        if (lora != null && lora < 1) {
            throw new IllegalArgumentException("--lora-r: a LoRA rank of at least 1, got " + lora);
        }
        Quickstart.Settings d = Quickstart.Settings.standard(output);
        Quickstart.Settings s = new Quickstart.Settings(
                output,
                sftSteps != null ? sftSteps : d.sftSteps(),
                preferenceSteps != null ? preferenceSteps : d.preferenceSteps(),
                d.heldOut(),
                seed != null ? seed : d.seed(),
                lora != null ? lora : 0);
        Flags.refuseUnless(spec, rlhf, "without --rlhf", "--reward-steps", "--label-noise");
        Flags.refuseUnless(spec, rl, "without --rl", "--rl-steps");
        if (rlSteps != null && rlSteps < 1) {
            throw new IllegalArgumentException("--rl-steps: at least 1, got " + rlSteps);
        }
        if (rewardSteps != null && rewardSteps < 1) {
            throw new IllegalArgumentException("--reward-steps: at least 1, got " + rewardSteps);
        }
        if (labelNoise != null && !(labelNoise >= 0 && labelNoise < 0.5)) {
            throw new IllegalArgumentException("--label-noise: a share in [0, 0.5), got " + labelNoise);
        }
        Quickstart.RewardStage stage = !rlhf
                ? Quickstart.RewardStage.NONE
                : new Quickstart.RewardStage(
                        rewardSteps != null ? rewardSteps : Quickstart.REWARD_STEPS,
                        labelNoise != null ? labelNoise : 0);
        Threads.apply(threads, null);
        Files.createDirectories(output);
        RunConsole.logTo(output);
        var w = spec.commandLine().getOut();
        w.printf(
                "align4j quickstart: two-digit sums; SFT on a teacher who adds one to odd first numbers 60%% of the time; then DPO and IPO%s.%n",
                rl ? (stage.on() ? ", GRPO and PPO" : " and GRPO") : "");
        w.printf("Output: %s%n", output.toAbsolutePath());
        w.flush();
        long t0 = System.nanoTime();
        Quickstart.Result result =
                Quickstart.run(s, stage, rl ? (rlSteps != null ? rlSteps : Quickstart.RL_STEPS) : 0, RunConsole::new);
        Map<String, Quickstart.Row> rows = result.rows();
        w.printf(
                "%n%-8s %18s %18s %16s %22s %9s %15s%n",
                "model",
                "held-out accuracy",
                "reward accuracy",
                "KL to SFT (nats)",
                "win rate vs SFT",
                "time (s)",
                "peak RSS (MiB)");
        rows.forEach((name, r) -> {
            Quickstart.Cost c = result.costs().get(name);
            w.printf(
                    Locale.ROOT,
                    "%-8s %18.3f %18.3f %16.3f %8.3f [%.3f, %.3f] %9s %15s%n",
                    name,
                    r.heldoutAccuracy(),
                    r.rewardAccuracy(),
                    r.klToReference(),
                    r.winRate().rate(),
                    r.winRate().lower(),
                    r.winRate().upper(),
                    c == null ? "-" : String.format(Locale.ROOT, "%.0f", c.seconds()),
                    peak(c));
        });
        if (result.reward() != null) {
            Quickstart.RewardRow rm = result.reward();
            w.printf(
                    Locale.ROOT,
                    "%nreward model: ranks the right answer above the one-off one in %.3f of held-out pairs; on the training pairs"
                            + " mean p %.3f, agrees with %.3f of the labels%s%n",
                    rm.heldoutRankingAccuracy(),
                    rm.meanPreference(),
                    rm.labelAgreement(),
                    Double.isNaN(rm.flippedCorrected())
                            ? ""
                            : String.format(
                                    Locale.ROOT,
                                    ", sides with the right answer on %.3f of the flipped ones",
                                    rm.flippedCorrected()));
        }
        w.printf(
                Locale.ROOT,
                "%nheld-out: %d problems never trained on; reward accuracy ranks the right answer above a one-off one by%n"
                        + "beta*log(pi/pi_sft) (a tie counts 0, as in TRL); KL is summed over the model's own greedy answer; the win rate compares%n"
                        + "greedy answers with the SFT model's (right beats wrong, ties half; 95%% Wilson interval).%n"
                        + "time and peak RSS: each run's wall time and the peak resident memory of this process while it ran (%s;%n"
                        + "the JVM and what earlier runs left resident count too).%n",
                s.heldOut(),
                peakNote(result.costs()));
        w.printf(
                Locale.ROOT,
                "summary: %s  (%.0f s)%n",
                output.resolve("summary.json").toAbsolutePath(),
                (System.nanoTime() - t0) / 1e9);
        w.printf(
                Locale.ROOT,
                "report:  %s%n",
                output.resolve("report").resolve("index.html").toAbsolutePath());
        w.flush();
        return 0;
    }

    /** A run's peak in MiB, or "n/a" where it cannot be read (not Linux). */
    static String peak(Quickstart.Cost c) {
        return c == null || c.peakBytes() < 0
                ? "n/a"
                : String.format(Locale.ROOT, "%.0f", c.peakBytes() / (double) (1L << 20));
    }

    /** How the peaks were measured. */
    static String peakNote(Map<String, Quickstart.Cost> costs) {
        PeakMemory.Source source = costs.values().stream()
                .map(Quickstart.Cost::peakSource)
                .findFirst()
                .orElse(PeakMemory.Source.NONE);
        return switch (source) {
            case KERNEL_PEAK -> "Linux's VmHWM, reset at each run's start through /proc/self/clear_refs";
            case SAMPLED -> "VmRSS sampled every 50 ms, a lower bound: this kernel refused to reset VmHWM";
            case NONE -> "n/a: no /proc/self/status on this system";
        };
    }
}
