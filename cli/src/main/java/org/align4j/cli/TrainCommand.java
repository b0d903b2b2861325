package org.align4j.cli;

import java.io.PrintWriter;
import java.util.Map;
import java.util.concurrent.Callable;
import org.align4j.losses.LossType;
import org.align4j.trainer.PreferenceTrainer;
import org.align4j.trainer.RunFolder;
import org.align4j.trainer.TrainConfig;
import org.align4j.trainer.TrainResult;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Spec;

/** Preference fine-tuning from the command line. */
@Command(
        name = "train",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        abbreviateSynopsis = true,
        description = {
            "Align a model with preference pairs: DPO, IPO and relatives.",
            "Writes OUTPUT/metrics.jsonl, OUTPUT/train.log, OUTPUT/checkpoint-N/ and OUTPUT/final/ (an HF model folder)."
        })
final class TrainCommand implements Callable<Integer> {
    @Mixin
    TrainOptions options;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        TrainConfig config = options.resolve(Map.of());
        if (config.loss() == LossType.SFT) {
            throw new IllegalArgumentException("--loss: sft is the align4j sft command");
        }
        if (config.loss() == LossType.REWARD) {
            throw new IllegalArgumentException("--loss: reward is the align4j reward train command");
        }
        if (config.loss().hasOwnTrainer()) {
            throw new IllegalArgumentException("--loss: " + config.loss() + " has a trainer of its own: the align4j "
                    + config.loss() + " command");
        }
        if (config.loss().isOnline()) {
            throw new IllegalArgumentException(
                    "--loss: " + config.loss() + " is online RL: the align4j " + config.loss() + " command");
        }
        if (options.dryRun) {
            DryRun.print(spec.commandLine().getOut(), config);
            return 0;
        }
        Integer relaunched = Processes.relaunch(
                options.nproc,
                options.threads,
                spec.commandLine().getParseResult().originalArgs(),
                "align4j train");
        if (relaunched != null) {
            return relaunched;
        }
        Threads.apply(options.threads, null);
        RunFolder folder = RunFolder.claim(config, options.mode());
        RunConsole.logTo(folder.output());
        RunConsole.resumed(spec.commandLine().getErr(), folder);
        warnTf32(config, spec.commandLine().getErr());
        // the console hears the precomputed reference's pass too (a bar while the trainer is made)
        try (PreferenceTrainer trainer = PreferenceTrainer.create(config, folder, new RunConsole(config.lossName()))) {
            RunConsole.header(spec.commandLine().getErr(), trainer.header());
            TrainResult r = trainer.train();
            RunConsole.summary(spec.commandLine().getOut(), r);
        }
        return 0;
    }

    static void warnTf32(TrainConfig config, PrintWriter err) {
        if (config.device().startsWith("gpu")
                && config.tf32()
                && System.getenv("TORCH_ALLOW_TF32_CUBLAS_OVERRIDE") == null) {
            err.println(
                    "note: TF32 is read by libtorch at start-up; run through ./align4j (which sets TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1)"
                            + " or set it yourself for ~7x faster fp32 matmuls");
            err.flush();
        }
    }
}
