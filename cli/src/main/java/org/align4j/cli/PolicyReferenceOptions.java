package org.align4j.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import org.align4j.model.CausalLm;
import org.align4j.model.Devices;
import org.align4j.model.io.ModelFolder;
import org.align4j.model.tokenizer.TextTokenizer;
import picocli.CommandLine.Option;

/** Options of the commands that compare a policy with its reference on a dataset. */
final class PolicyReferenceOptions {
    @Option(names = "--policy", required = true, paramLabel = "DIR", description = "The trained model folder")
    Path policy;

    @Option(
            names = "--reference",
            required = true,
            paramLabel = "DIR",
            description = "The reference model folder (usually the starting model)")
    Path reference;

    @Option(
            names = "--data",
            required = true,
            paramLabel = "PATH",
            description = "Held-out preference pairs (file or folder)")
    Path data;

    @Option(
            names = "--device",
            defaultValue = "cpu",
            paramLabel = "cpu|gpu",
            description = "Where to run (default: ${DEFAULT-VALUE})")
    String device;

    /** Both models, frozen, and the policy's tokenizer; close all three. */
    record Loaded(TextTokenizer tokenizer, CausalLm policy, CausalLm reference) implements AutoCloseable {
        @Override
        public void close() {
            reference.close();
            policy.close();
            tokenizer.close();
        }
    }

    Loaded load() {
        policy = ModelFolder.resolve(policy);
        reference = ModelFolder.resolve(reference);
        if (!Files.isDirectory(policy) || !Files.isDirectory(reference)) {
            throw new IllegalArgumentException(
                    (Files.isDirectory(policy) ? "--reference: " + reference : "--policy: " + policy)
                            + " is not a model folder");
        }
        var d = Devices.resolve(device);
        TextTokenizer tk = TextTokenizer.load(policy);
        CausalLm pol = null;
        try {
            pol = CausalLm.load(policy, d);
            CausalLm ref = CausalLm.load(reference, d);
            pol.setTrainable(false);
            ref.setTrainable(false);
            return new Loaded(tk, pol, ref);
        } catch (RuntimeException e) {
            if (pol != null) {
                pol.close();
            }
            tk.close();
            throw e;
        }
    }
}
