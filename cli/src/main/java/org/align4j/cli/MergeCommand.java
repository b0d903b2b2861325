package org.align4j.cli;

import ai.djl.Device;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import org.align4j.model.CausalLm;
import org.align4j.model.io.ModelFolder;
import org.align4j.model.lora.LoraConfig;
import org.align4j.model.lora.PeftAdapter;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** Merges a LoRA adapter into its base model. */
@Command(
        name = "merge",
        mixinStandardHelpOptions = true,
        header = "Merge a LoRA adapter into its base model, writing a full HF folder.",
        description = {
            "Merges a LoRA adapter (a PEFT folder: adapter_config.json + adapter_model.safetensors) into its base model,",
            "W + (alpha/r)·B·A as PEFT's merge_and_unload(), and writes a full HF model folder with the base's tokenizer files."
        })
final class MergeCommand implements Callable<Integer> {
    @Option(
            names = "--model",
            paramLabel = "BASE",
            description = "The base model folder (default: the adapter's base_model_name_or_path)")
    Path model;

    @Option(
            names = "--adapter",
            paramLabel = "DIR",
            required = true,
            description = "The adapter folder, e.g. a LoRA run's final/")
    Path adapter;

    @Option(
            names = "--output",
            paramLabel = "OUT",
            required = true,
            description = "The merged model's folder (must not exist yet)")
    Path output;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        if (Files.exists(output)) {
            throw new IllegalArgumentException("--output: " + output + " exists; merge writes a new folder");
        }
        model = ModelFolder.resolve(model);
        adapter = ModelFolder.resolve(adapter);
        if (model != null && !Files.isRegularFile(model.resolve("config.json"))) {
            throw new IllegalArgumentException("--model: " + model + " is not a model folder (no config.json)");
        }
        // a reward model's adapter (PEFT SEQ_CLS) goes on its base read as a reward model, its score head with it
        boolean rewardModel =
                model != null && PeftAdapter.isAdapterFolder(adapter) && PeftAdapter.isSequenceClassifier(adapter);
        try (CausalLm lm = model == null
                ? CausalLm.load(adapter, Device.cpu())
                : rewardModel
                        ? CausalLm.loadRewardModel(model, Device.cpu(), -1, 0)
                        : CausalLm.load(model, Device.cpu())) {
            LoraConfig lora = model != null ? lm.loadAdapter(adapter) : lm.lora();
            if (lora == null) {
                throw new IllegalArgumentException(
                        "--adapter: " + adapter + " is not an adapter folder (no adapter_config.json)");
            }
            lm.mergeAdapters();
            lm.save(output, lm.source());
            var w = spec.commandLine().getOut();
            w.println("merged " + adapter + " (r=" + lora.r() + ", alpha=" + lora.alpha() + ") into " + lm.source()
                    + " -> " + output);
            w.flush();
        }
        return 0;
    }
}
