package org.align4j.trainer;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.Device;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
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
        assertThat(outputDir.resolve("model.safetensors")).exists();
        assertThat(outputDir.resolve("tokenizer.json")).exists();
    }

    @Test
    void exampleInTheReadmeIsTheOneTested() throws Exception {
        Path readme = Path.of(System.getProperty("maven.multiModuleProjectDirectory", "..")).resolve("README.md");
        if (!Files.exists(readme)) {
            readme = Path.of("..", "README.md");
        }
        String text = Files.readString(readme);
        String source = Files.readString(Path.of("src/test/java/org/align4j/trainer/ReadmeExampleTest.java"));
        String body = source.substring(source.indexOf("// README example start") + "// README example start".length(),
                source.indexOf("        // README example end"));
        for (String line : body.strip().lines().map(String::strip).toList()) {
            assertThat(text).as("README contains: %s", line).contains(line);
        }
    }
}
