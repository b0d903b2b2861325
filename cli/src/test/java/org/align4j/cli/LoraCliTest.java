package org.align4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Parameter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import org.align4j.model.CausalLm;
import org.align4j.model.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The LoRA commands: merge (PEFT's merge_and_unload as a command). */
class LoraCliTest {
    @TempDir
    Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny", "qwen2-tiny:with-model"})
    void mergeWritesTheWeightsPeftsMergeAndUnloadGives(String spec) throws Exception {
        String kind = spec.split(":")[0];
        Path out = tmp.resolve("merged-" + kind);
        Path adapter = Fixtures.lora("peft-written/" + kind);
        CliTest.Result r = spec.endsWith("with-model")
                ? CliTest.run(
                        "merge",
                        "--model",
                        Fixtures.model(kind).toString(),
                        "--adapter",
                        adapter.toString(),
                        "--output",
                        out.toString())
                // without --model the base comes from the adapter's base_model_name_or_path
                : CliTest.run("merge", "--adapter", adapter.toString(), "--output", out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(out.resolve("config.json")).exists();
        assertThat(out.resolve("tokenizer.json")).exists();
        assertThat(out.resolve("adapter_config.json")).doesNotExist();
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                CausalLm merged = CausalLm.load(out, Device.cpu());
                CausalLm base = CausalLm.load(Fixtures.model(kind), Device.cpu())) {
            assertThat(merged.hasAdapters()).isFalse();
            Map<String, NDArray> expected = Fixtures.tensors(adapter.resolve("expected.safetensors"), m);
            int compared = 0;
            for (Map.Entry<String, Parameter> e : merged.parameters().entrySet()) {
                NDArray want = expected.getOrDefault(
                        "merged." + e.getKey(),
                        base.parameters().get(e.getKey()).getArray());
                compared += expected.containsKey("merged." + e.getKey()) ? 1 : 0;
                assertThat(e.getValue().getArray().sub(want).abs().max().getFloat())
                        .as(e.getKey())
                        .isLessThan(1e-6f);
            }
            assertThat(compared).isGreaterThan(0);
        }
    }

    @Test
    void badLoraFlagsGiveOneErrorNamingTheFlag() throws Exception {
        Path data = tmp.resolve("prefs.jsonl");
        Files.write(
                data, Files.readAllLines(Fixtures.root().resolve("prefs.jsonl")).subList(0, 4));
        String[] base = {
            "train", "--model", Fixtures.model("llama-tiny").toString(), "--data", data.toString(), "--max-steps", "1"
        };
        CliTest.Result r = CliTest.run(concat(base, "--output", tmp.resolve("a").toString(), "--lora-r", "-1"));
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("--lora-r").contains("at least 1");
        r = CliTest.run(concat(base, "--output", tmp.resolve("b").toString(), "--lora-alpha", "16"));
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("--lora-alpha").contains("LoRA is off");
        r = CliTest.run(
                concat(base, "--output", tmp.resolve("c").toString(), "--lora-r", "4", "--lora-target", "q_proj,mlp"));
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("lora_target").contains("'mlp'").contains("q_proj, k_proj");
        // an adapter made for GPT-2 on a Llama base
        r = CliTest.run(concat(
                base,
                "--output",
                tmp.resolve("d").toString(),
                "--adapter",
                Fixtures.lora("peft-written/gpt2-tiny").toString()));
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("adapter_config.json").contains("target_modules");
    }

    private static String[] concat(String[] a, String... b) {
        String[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    @Test
    void mergeRefusesAnExistingOutputAndAFolderThatIsNoAdapter() throws Exception {
        Path adapter = Fixtures.lora("peft-written/gpt2-tiny");
        Files.createDirectories(tmp.resolve("taken"));
        CliTest.Result r = CliTest.run(
                "merge",
                "--adapter",
                adapter.toString(),
                "--output",
                tmp.resolve("taken").toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("--output").contains("exists");
        r = CliTest.run(
                "merge",
                "--model",
                Fixtures.model("gpt2-tiny").toString(),
                "--adapter",
                Fixtures.model("gpt2-tiny").toString(),
                "--output",
                tmp.resolve("x").toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("adapter_config.json");
        assertThat(tmp.resolve("x")).doesNotExist();
    }
}
