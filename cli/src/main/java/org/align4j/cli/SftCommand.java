package org.align4j.cli;

import java.util.Map;
import java.util.concurrent.Callable;
import org.align4j.losses.LossType;
import org.align4j.trainer.RunFolder;
import org.align4j.trainer.SftTrainer;
import org.align4j.trainer.TrainConfig;
import org.align4j.trainer.TrainResult;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Spec;

/** Supervised fine-tuning from the command line. */
@Command(
        name = "sft",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        abbreviateSynopsis = true,
        header = "Supervised fine-tuning: next-token loss on completion tokens.",
        description = {
            "Supervised fine-tuning on prompt/completion data (or the chosen side of preference pairs):",
            "next-token loss on completion tokens. Same flags and outputs as train."
        })
final class SftCommand implements Callable<Integer> {
    @Mixin
    TrainOptions options;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        TrainConfig config = options.resolve(Map.of("loss", LossType.SFT));
        if (options.dryRun) {
            DryRun.print(spec.commandLine().getOut(), config);
            return 0;
        }
        Integer relaunched = Processes.relaunch(
                options.nproc,
                options.threads,
                spec.commandLine().getParseResult().originalArgs(),
                "align4j sft");
        if (relaunched != null) {
            return relaunched;
        }
        Threads.apply(options.threads, null);
        RunFolder folder = RunFolder.claim(config, options.mode());
        RunConsole.logTo(folder.output());
        RunConsole.resumed(spec.commandLine().getErr(), folder);
        TrainCommand.warnTf32(config, spec.commandLine().getErr());
        try (SftTrainer trainer = SftTrainer.create(config, folder)) {
            RunConsole.header(spec.commandLine().getErr(), trainer.header());
            trainer.addListener(new RunConsole("sft"));
            TrainResult r = trainer.train();
            RunConsole.summary(spec.commandLine().getOut(), r);
        }
        return 0;
    }
}
