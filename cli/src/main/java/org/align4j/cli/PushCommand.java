package org.align4j.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import org.align4j.model.hub.HubClient;
import org.align4j.model.hub.HubUpload;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** Uploads a model folder to the Hugging Face Hub, as TRL's push_to_hub does. */
@Command(
        name = "push",
        mixinStandardHelpOptions = true,
        header = "Upload a model folder (e.g. a run's final/) to a Hugging Face Hub repository.",
        description = {
            "Creates the repository if needed and uploads every file of the folder in one commit, through the Hub's",
            "commit API (safetensors through LFS). Needs a token with write access: HF_TOKEN or `hf auth login`."
        })
final class PushCommand implements Callable<Integer> {
    @Option(
            names = "--model",
            paramLabel = "DIR",
            required = true,
            description = "The folder to upload, e.g. runs/dpo/final")
    Path model;

    @Option(names = "--repo", paramLabel = "OWNER/NAME", required = true, description = "The model repository")
    String repo;

    @Option(names = "--private", description = "Create the repository private (an existing one keeps its visibility)")
    boolean privateRepo;

    @Option(
            names = "--message",
            paramLabel = "TEXT",
            defaultValue = "Upload model trained with align4j",
            description = "The commit's summary (default: ${DEFAULT-VALUE})")
    String message;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        if (!Files.isDirectory(model)) {
            throw new IllegalArgumentException("--model: " + model + " is not a folder");
        }
        if (!Files.isRegularFile(model.resolve("config.json"))
                && !Files.isRegularFile(model.resolve("adapter_config.json"))) {
            throw new IllegalArgumentException(
                    "--model: " + model + " is not a model folder (no config.json or adapter_config.json)");
        }
        HubUpload.Result r = new HubUpload(HubClient.shared()).upload(model, repo, privateRepo, message);
        spec.commandLine().getOut().printf("%s: %d files in commit %s%n%s%n", repo, r.files(), r.commit(), r.url());
        spec.commandLine().getOut().flush();
        return 0;
    }
}
