package example;

import java.nio.file.Files;
import java.nio.file.Path;
import org.align4j.losses.LossType;
import org.align4j.trainer.PreferenceTrainer;
import org.align4j.trainer.TrainResult;

/** The README's Java training example, compiled and run by a project that depends on align4j as a user's would. */
public final class ReadmeExample {
    private ReadmeExample() {}

    /**
     * @param args the fixtures folder, and a folder for the run
     * @throws Exception if the example fails
     */
    public static void main(String[] args) throws Exception {
        Path base = Path.of(args[0], "gpt2-tiny");
        Path prefs = Path.of(args[0], "prefs.jsonl");
        Path runs = Path.of(args[1]);
        // README training example start
        try (PreferenceTrainer trainer = PreferenceTrainer.builder()
                .model(base).data(prefs).output(runs.resolve("dpo"))
                .loss(LossType.DPO).beta(0.1).learningRate(1e-4).batchSize(4).maxSteps(2)
                .build()) {
            TrainResult result = trainer.train();
            System.out.println(result.lastMetrics().get("rewards/accuracies") + " -> " + result.finalModel());
        }
        // README training example end
        if (!Files.exists(runs.resolve("dpo/final/model.safetensors"))) {
            throw new IllegalStateException("no final model in " + runs);
        }
    }
}
