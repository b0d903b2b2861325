package org.align4j.cli;

import picocli.CommandLine.Model.CommandSpec;

/** Refuses a flag the user gave where it would change nothing, naming it and why (TRL warns; align4j stops). */
final class Flags {
    private Flags() {}

    /**
     * @param spec the command
     * @param applies whether the flags take effect in this invocation
     * @param why what would make them take effect, or why they cannot
     * @param names the flags
     * @throws IllegalArgumentException naming the first such flag that was given
     */
    static void refuseUnless(CommandSpec spec, boolean applies, String why, String... names) {
        if (applies) {
            return;
        }
        for (String name : names) {
            if (spec.commandLine().getParseResult().hasMatchedOption(name)) {
                throw new IllegalArgumentException(name + ": has no effect " + why);
            }
        }
    }
}
