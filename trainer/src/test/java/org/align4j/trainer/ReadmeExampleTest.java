package org.align4j.trainer;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.Device;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.align4j.losses.LossType;
import org.align4j.model.CausalLm;
import org.align4j.model.Fixtures;
import org.align4j.model.generate.GenerationConfig;
import org.align4j.model.generate.Generator;
import org.align4j.model.tokenizer.TextTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The README's Java API example, verbatim between the markers, so the README cannot rot. */
class ReadmeExampleTest {
    @Test
    void readmeJavaExampleRuns(@TempDir Path tmp) throws Exception {
        Path modelDir = Fixtures.model("qwen2-tiny");
        Path outputDir = tmp.resolve("out");
        // spotless:off (the README shows it as written here)
        // README example start
        try (TextTokenizer tokenizer = TextTokenizer.load(modelDir);
                CausalLm lm = CausalLm.load(modelDir, Device.cpu())) {
            int[] prompt = tokenizer.encode("What is the capital of France?");
            Generator generator = new Generator(lm, tokenizer.padId(), tokenizer.eosIds());
            int[] answer = generator.generate(List.of(prompt), GenerationConfig.greedy(16)).get(0);
            System.out.println(tokenizer.decode(answer, true));
            lm.save(outputDir, modelDir); // an HF folder transformers loads, tokenizer files included
        }
        // README example end
        // spotless:on
        assertThat(outputDir.resolve("model.safetensors")).exists();
        assertThat(outputDir.resolve("tokenizer.json")).exists();
    }

    @Test
    void readmeTrainingExampleRuns(@TempDir Path tmp) throws Exception {
        Path base = Fixtures.model("gpt2-tiny");
        Path prefs = Fixtures.root().resolve("prefs.jsonl");
        Path runs = tmp;
        // spotless:off (the README shows it as written here)
        // README training example start
        try (PreferenceTrainer trainer = PreferenceTrainer.builder()
                .model(base).data(prefs).output(runs.resolve("dpo"))
                .loss(LossType.DPO).beta(0.1).learningRate(1e-4).batchSize(4).maxSteps(2)
                .build()) {
            TrainResult result = trainer.train();
            System.out.println(result.lastMetrics().get("rewards/accuracies") + " -> " + result.finalModel());
        }
        // README training example end
        // spotless:on
        assertThat(runs.resolve("dpo/final/model.safetensors")).exists();
    }

    @Test
    void exampleInTheReadmeIsTheOneTested() throws Exception {
        Path readme = Path.of(System.getProperty("maven.multiModuleProjectDirectory", ".."))
                .resolve("README.md");
        if (!Files.exists(readme)) {
            readme = Path.of("..", "README.md");
        }
        String text = Files.readString(readme);
        String source = Files.readString(Path.of("src/test/java/org/align4j/trainer/ReadmeExampleTest.java"));
        // the consumer project (it/) compiles the training example against the installed artifacts
        String consumer = Files.readString(
                readme.resolveSibling("it/src/it/readme-consumer/src/main/java/example/ReadmeExample.java"));
        for (String marker : new String[] {"README example", "README training example"}) {
            for (String line : between(source, marker)) {
                assertThat(text).as("README contains: %s", line).contains(line);
            }
        }
        assertThat(between(consumer, "README training example")).isEqualTo(between(source, "README training example"));
    }

    private static List<String> between(String source, String marker) {
        String body = source.substring(
                source.indexOf("// " + marker + " start") + ("// " + marker + " start").length(),
                source.indexOf("// " + marker + " end"));
        return body.strip().lines().map(String::strip).toList();
    }
}
