package org.align4j.cli;

import ai.djl.Device;
import java.nio.file.Files;
import java.nio.file.Path;
import org.align4j.model.CausalLm;
import org.align4j.model.Devices;
import org.align4j.model.io.ModelFolder;
import org.align4j.model.tokenizer.TextTokenizer;
import picocli.CommandLine.Option;

/** Options shared by commands that load a model. */
final class ModelOptions {
    @Option(
            names = "--model",
            required = true,
            paramLabel = "DIR|ID|FILE.pt",
            description =
                    "HF model folder (config.json + safetensors + tokenizer.json), a Hub id owner/name[@revision],"
                            + " or a TorchScript .pt file")
    Path model;

    @Option(
            names = "--tokenizer",
            paramLabel = "DIR",
            description = "Folder with tokenizer.json (default: the model folder; required for a .pt file)")
    Path tokenizer;

    @Option(
            names = "--device",
            defaultValue = "cpu",
            paramLabel = "cpu|gpu",
            description = "Where to run (default: ${DEFAULT-VALUE}); gpu refuses to fall back to the CPU")
    String device;

    @Option(names = "--threads", paramLabel = "N", description = "CPU threads for libtorch (default: all cores)")
    Integer threads;

    Device resolveDevice() {
        // before anything starts the engine, which reads the thread count once
        Threads.apply(threads, null);
        return Devices.resolve(device);
    }

    CausalLm loadModel() {
        Device d = resolveDevice();
        model = ModelFolder.resolve(model);
        if (Files.isRegularFile(model)) {
            return CausalLm.loadTorchScript(model, d, false);
        }
        if (!Files.isDirectory(model)) {
            throw new IllegalArgumentException("--model: " + model + " is neither a model folder nor a .pt file");
        }
        return CausalLm.load(model, d);
    }

    TextTokenizer loadTokenizer() {
        Path dir = ModelFolder.resolve(tokenizer != null ? tokenizer : model);
        if (Files.isRegularFile(dir)) {
            throw new IllegalArgumentException(
                    "--tokenizer: a TorchScript model needs --tokenizer DIR with tokenizer.json");
        }
        return TextTokenizer.load(dir);
    }
}
