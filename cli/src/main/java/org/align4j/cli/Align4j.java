package org.align4j.cli;

import java.io.PrintWriter;
import org.align4j.model.config.ConfigException;
import org.align4j.model.io.CheckpointException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code align4j} command line: a thin recipe layer over the library modules. */
@Command(
        name = "align4j",
        mixinStandardHelpOptions = true,
        version = "align4j 0.1.0",
        description = "Preference alignment (DPO, IPO and relatives) of causal language models on DJL.",
        subcommands = {
            QuickstartCommand.class,
            TrainCommand.class,
            SftCommand.class,
            LogprobsCommand.class,
            DataCommand.class,
            GenerateCommand.class,
            EvaluateCommand.class,
            BenchCommand.class,
            MergeCommand.class,
            CommandLine.HelpCommand.class
        })
public final class Align4j implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    /**
     * Builds the command line with align4j's error handling: bad input prints one line naming the
     * file, key or flag at fault and exits with status 2.
     *
     * @return the configured command line
     */
    public static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new Align4j());
        CommandLine train = cl.getSubcommands().get("train");
        TrainOptions.register(train.getCommandSpec(), ((TrainCommand) train.getCommand()).options, false);
        CommandLine sft = cl.getSubcommands().get("sft");
        TrainOptions.register(sft.getCommandSpec(), ((SftCommand) sft.getCommand()).options, true);
        // a flag picocli cannot parse: one line with its guess, not the whole usage text
        cl.setParameterExceptionHandler((ex, args) -> {
            PrintWriter err = ex.getCommandLine().getErr();
            String guess = "";
            if (ex instanceof CommandLine.UnmatchedArgumentException u && !u.getSuggestions().isEmpty()) {
                guess = " (did you mean " + String.join(" or ", u.getSuggestions().subList(0, Math.min(2, u.getSuggestions().size()))) + "?)";
            }
            err.println("error: " + ex.getMessage().lines().findFirst().orElse("") + guess + "; see " + ex.getCommandLine().getCommandName()
                    + " --help");
            err.flush();
            return 2;
        });
        cl.setExecutionExceptionHandler((ex, cmd, parseResult) -> {
            PrintWriter err = cmd.getErr();
            if (ex instanceof ConfigException || ex instanceof CheckpointException || ex instanceof org.align4j.data.DataException
                    || ex instanceof IllegalArgumentException || ex instanceof org.align4j.trainer.TrainingDivergedException
                    || ex instanceof IllegalStateException) {
                err.println("error: " + ex.getMessage());
                err.flush();
                return 2;
            }
            throw ex;
        });
        return cl;
    }

    /**
     * Runs the CLI.
     *
     * @param args the arguments
     */
    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }
}
