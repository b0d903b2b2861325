package org.align4j.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.align4j.distributed.Collectives;
import org.align4j.losses.LossType;
import org.align4j.model.hub.HubClient;
import org.align4j.model.io.InputFiles;
import org.align4j.trainer.Failure;
import org.apache.logging.log4j.LogManager;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** The {@code align4j} command line: a thin recipe layer over the library modules. */
@Command(
        name = "align4j",
        mixinStandardHelpOptions = true,
        version = "align4j " + Align4j.VERSION,
        description =
                "Preference alignment (DPO, IPO and relatives, KTO, ORPO, CPO/SimPO, reward models, online RL with GRPO,"
                        + " RLOO, PPO and Online DPO) of causal language models on DJL.",
        subcommands = {
            QuickstartCommand.class,
            TrainCommand.class,
            SftCommand.class,
            RewardCommand.class,
            OwnTrainerCommand.Kto.class,
            OwnTrainerCommand.Orpo.class,
            OwnTrainerCommand.Cpo.class,
            RlCommand.Grpo.class,
            RlCommand.Rloo.class,
            RlCommand.Ppo.class,
            RlCommand.OnlineDpo.class,
            LossesCommand.class,
            LogprobsCommand.class,
            DataCommand.class,
            GenerateCommand.class,
            EvaluateCommand.class,
            BenchCommand.class,
            MergeCommand.class,
            PushCommand.class,
            EnvCommand.class,
            CommandLine.HelpCommand.class
        })
public final class Align4j implements Runnable {
    /** The release, as {@code --version} and {@code env} print it. */
    static final String VERSION = "0.1.0";

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    /**
     * Joins each command's description lines into paragraphs, recursively: the sources break sentences
     * where the source line ends, and picocli prints every element on a line of its own, so a sentence
     * wrapped by the terminal's width then broke again mid-sentence. An empty element or one starting with
     * a space (an indented example) still starts a new paragraph.
     */
    private static void joinDescriptionLines(CommandLine cl) {
        String[] lines = cl.getCommandSpec().usageMessage().description();
        List<String> paragraphs = new ArrayList<>();
        StringBuilder current = new StringBuilder();
        for (String line : lines) {
            if ((line.isEmpty() || line.startsWith(" ")) && current.length() > 0) {
                paragraphs.add(current.toString());
                current.setLength(0);
            }
            if (line.isEmpty()) {
                paragraphs.add(line);
                continue;
            }
            current.append(current.length() > 0 ? " " : "").append(line);
        }
        if (current.length() > 0) {
            paragraphs.add(current.toString());
        }
        cl.getCommandSpec().usageMessage().description(paragraphs.toArray(new String[0]));
        cl.getSubcommands().values().forEach(Align4j::joinDescriptionLines);
    }

    /**
     * Builds the command line with align4j's error handling: bad input prints one line naming the
     * file, key or flag at fault and exits with status 2.
     *
     * @return the configured command line
     */
    public static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new Align4j());
        joinDescriptionLines(cl);
        HubClient.setForcedOffline(false); // --offline sets it again for this command line
        HubClient.setShared(HubClient.shared().toBuilder()
                .progress(new DownloadConsole(cl::getErr, System.console() != null))
                .build());
        CommandLine train = cl.getSubcommands().get("train");
        TrainOptions.register(train.getCommandSpec(), ((TrainCommand) train.getCommand()).options, LossType.DPO);
        CommandLine sft = cl.getSubcommands().get("sft");
        TrainOptions.register(sft.getCommandSpec(), ((SftCommand) sft.getCommand()).options, LossType.SFT);
        for (String own : new String[] {"kto", "orpo", "cpo"}) {
            CommandLine c = cl.getSubcommands().get(own);
            OwnTrainerCommand command = (OwnTrainerCommand) c.getCommand();
            OwnTrainerCommand.register(c.getCommandSpec(), command.options, command.method());
        }
        for (String rl : new String[] {"grpo", "rloo", "ppo", "online-dpo"}) {
            CommandLine c = cl.getSubcommands().get(rl);
            RlCommand command = (RlCommand) c.getCommand();
            RlCommand.register(c.getCommandSpec(), command.options, command.method());
        }
        CommandLine reward = cl.getSubcommands().get("reward").getSubcommands().get("train");
        TrainOptions.register(
                reward.getCommandSpec(), ((RewardCommand.Train) reward.getCommand()).options, LossType.REWARD);
        // a flag picocli cannot parse: one line with its guess, not the whole usage text
        cl.setParameterExceptionHandler((ex, args) -> {
            PrintWriter err = ex.getCommandLine().getErr();
            String guess = "";
            if (ex instanceof CommandLine.UnmatchedArgumentException u
                    && !u.getSuggestions().isEmpty()) {
                guess = " (did you mean "
                        + String.join(
                                " or ",
                                u.getSuggestions()
                                        .subList(
                                                0,
                                                Math.min(2, u.getSuggestions().size()))) + "?)";
            }
            err.println("error: " + ex.getMessage().lines().findFirst().orElse("") + guess + "; see "
                    + ex.getCommandLine().getCommandName() + " --help");
            err.flush();
            return 2;
        });
        // paths are checked before anything runs: an empty one, or an --output that is a dangling link
        cl.setExecutionStrategy(parseResult -> {
            checkPaths(parseResult);
            return new CommandLine.RunLast().execute(parseResult);
        });
        cl.setExecutionExceptionHandler((ex, cmd, parseResult) -> {
            PrintWriter err = cmd.getErr();
            Failure f = failure(ex);
            // the whole story goes to the run's train.log (when there is one); the console gets one line
            FAILURES.error(f.message(), ex);
            err.println("error: " + f.message() + (f.code() == 1 && !debug() ? hint(ex) : ""));
            if (debug()) {
                ex.printStackTrace(err);
            }
            err.flush();
            return f.code();
        });
        return cl;
    }

    /**
     * Refuses, by flag, an empty path (an empty --output would write into the working folder) and an
     * output that cannot be written where it is named (a symbolic link to nothing, a FIFO).
     */
    private static void checkPaths(CommandLine.ParseResult parseResult) {
        CommandLine.ParseResult pr = parseResult;
        while (pr.hasSubcommand()) {
            pr = pr.subcommand();
        }
        for (CommandLine.Model.OptionSpec o : pr.matchedOptions()) {
            boolean path = o.type() == Path.class || o.paramLabel().matches("(?i).*(DIR|FILE|PATH).*");
            boolean output = o.longestName().equals("--output");
            if (!path && !output) {
                continue;
            }
            for (String text : o.originalStringValues()) {
                String problem =
                        text.isBlank() ? "an empty path" : output ? InputFiles.outputProblem(Path.of(text)) : null;
                if (problem != null) {
                    throw new CommandLine.ParameterException(
                            pr.commandSpec().commandLine(), o.longestName() + ": " + problem);
                }
            }
        }
    }

    /** Logs failures with their stack traces to train.log only (log4j2.xml gives it no console appender). */
    private static final Logger FAILURES = LoggerFactory.getLogger("org.align4j.cli.Failure");

    /** {@code --debug} anywhere on the command line, or ALIGN4J_DEBUG=1: stack traces on the console too. */
    @Option(
            names = "--debug",
            scope = CommandLine.ScopeType.INHERIT,
            description = "Print stack traces of errors on the console.")
    static void setDebug(boolean on) {
        debugFlag = on;
    }

    private static boolean debugFlag;

    /** {@code --offline} anywhere on the command line: Hub ids are read from the cache only, as HF_HUB_OFFLINE=1. */
    @Option(
            names = "--offline",
            scope = CommandLine.ScopeType.INHERIT,
            description = "Read Hub ids (owner/name) from the local Hugging Face cache only, as HF_HUB_OFFLINE=1.")
    static void setOffline(boolean on) {
        HubClient.setForcedOffline(on);
    }

    static boolean debug() {
        return debugFlag || "1".equals(System.getenv("ALIGN4J_DEBUG"));
    }

    private static String hint(Exception ex) {
        return RunConsole.logFile().map(f -> " (stack trace in " + f + ")").orElse(" (--debug prints the stack trace)");
    }

    /**
     * How a command failed ({@link Failure}), where a JSON output refused for a non-finite value is exit 1:
     * the run produced it, not the input.
     *
     * @param ex what the command threw
     * @return its exit status and one line
     */
    static Failure failure(Exception ex) {
        if (ex instanceof Json.NonFiniteOutputException) {
            return new Failure(1, Failure.firstLine(ex.getMessage()));
        }
        return Failure.of(ex);
    }

    /**
     * Runs the CLI.
     *
     * @param args the arguments
     */
    public static void main(String[] args) {
        int code = commandLine().execute(args);
        if (code == 0) {
            // a process of an MPI job ends its part normally; a failing one exits without, and mpirun ends the others
            Collectives.Shared.closeIfOpen();
        }
        LogManager.shutdown(); // log4j2.xml leaves shutdown to us, so a signal's last lines still reach train.log
        System.exit(code);
    }
}
