package org.align4j.cli;

import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.align4j.losses.LossType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** Every objective align4j trains: its name, TRL's, its paper, what it computes and the options it reads. */
@Command(
        name = "losses",
        mixinStandardHelpOptions = true,
        description = "List every objective (--loss) with its paper and the options it reads.")
final class LossesCommand implements Callable<Integer> {
    @Option(names = "--markdown", description = "Print the table as Markdown (the README's)")
    boolean markdown;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        if (markdown) {
            markdownTable().forEach(out::println);
        } else {
            for (LossType t : LossType.values()) {
                out.printf("%-13s %-13s %-28s %s%n", t, t.trlName().orElse("-"), t.paper(), t.description());
                out.printf("%55s options: %s%n", "", String.join(", ", t.options()));
            }
            out.println("A comma list is a mix of the objectives marked loss_weights (TRL's loss_type list);"
                    + " f_divergence_type, ld_alpha and use_weighting apply to every objective of the run.");
        }
        out.flush();
        return 0;
    }

    /** @return the README's table of objectives, one line a row */
    static List<String> markdownTable() {
        List<String> rows = new ArrayList<>();
        rows.add("| `--loss` | TRL `loss_type` | paper | objective | options it reads |");
        rows.add("| --- | --- | --- | --- | --- |");
        for (LossType t : LossType.values()) {
            rows.add("| `" + t + "` | " + t.trlName().map(n -> "`" + n + "`").orElse("-") + " | " + t.paper() + " | "
                    + t.description().replace("|", "\\|") + " | "
                    + String.join(
                            ", ", t.options().stream().map(k -> "`" + k + "`").toList()) + " |");
        }
        return rows;
    }
}
