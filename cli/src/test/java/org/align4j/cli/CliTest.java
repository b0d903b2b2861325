package org.align4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Map;
import javax.xml.parsers.DocumentBuilderFactory;
import org.align4j.model.Fixtures;
import org.align4j.model.hub.HubClient;
import org.align4j.model.io.SafetensorsFile;
import org.assertj.core.data.Percentage;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import picocli.CommandLine;

class CliTest {
    static final ObjectMapper JSON = new ObjectMapper();

    record Result(int code, String out, String err) {}

    static Result run(String... args) {
        CommandLine cl = Align4j.commandLine();
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        cl.setOut(new PrintWriter(out));
        cl.setErr(new PrintWriter(err));
        int code = cl.execute(args);
        return new Result(code, out.toString(), err.toString());
    }

    static float[] referenceVector(String model, String tensor) {
        try (var m = NDManager.newBaseManager(Device.cpu());
                SafetensorsFile f = SafetensorsFile.open(Fixtures.model(model).resolve("reference.safetensors"))) {
            return f.read(tensor, m).toFloatArray();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny", "qwen2-tiny"})
    void logprobsJsonReproducesTheFixture(String model) throws Exception {
        JsonNode pair = Fixtures.prefs().get(0);
        Result r = run(
                "logprobs",
                "--model",
                Fixtures.model(model).toString(),
                "--prompt",
                pair.get("prompt").asText(),
                "--completion",
                pair.get("chosen").asText(),
                "--json");
        assertThat(r.code()).as(r.err()).isZero();
        JsonNode out = JSON.readTree(r.out());
        float[] sum = referenceVector(model, "policy_logps");
        float[] mean = referenceVector(model, "policy_logps_mean");
        float[] tokens = referenceVector(model, "completion_tokens");
        assertThat(out.get("logps").asDouble()).isCloseTo(sum[0], Percentage.withPercentage(0.01));
        assertThat(out.get("logps_mean").asDouble()).isCloseTo(mean[0], Percentage.withPercentage(0.01));
        assertThat(out.get("tokens").asInt()).isEqualTo((int) tokens[0]);
    }

    @Test
    void logprobsWithoutEosScoresOneTokenFewer() throws Exception {
        JsonNode pair = Fixtures.prefs().get(1);
        String[] base = {
            "logprobs",
            "--model",
            Fixtures.model("gpt2-tiny").toString(),
            "--prompt",
            pair.get("prompt").asText(),
            "--completion",
            pair.get("chosen").asText(),
            "--json"
        };
        JsonNode with = JSON.readTree(run(base).out());
        String[] noEos = Arrays.copyOf(base, base.length + 1);
        noEos[base.length] = "--no-eos";
        JsonNode without = JSON.readTree(run(noEos).out());
        assertThat(without.get("tokens").asInt()).isEqualTo(with.get("tokens").asInt() - 1);
        assertThat(without.get("logps").asDouble())
                .isGreaterThan(with.get("logps").asDouble());
    }

    @Test
    void generateChatGreedyReproducesTheFixture() throws Exception {
        JsonNode ref = Fixtures.referenceJson("llama-tiny");
        Result r = run(
                "generate",
                "--model",
                Fixtures.model("llama-tiny").toString(),
                "--prompt",
                Fixtures.prefs().get(0).get("prompt").asText(),
                "--chat",
                "--greedy",
                "--max-new-tokens",
                "12",
                "--json");
        assertThat(r.code()).as(r.err()).isZero();
        JsonNode out = JSON.readTree(r.out());
        assertThat(out.get("prompt_ids")).isEqualTo(ref.get("chat_template_ids"));
        // the fixture does not stop at eos (id 2); the CLI does, so compare up to the first eos
        JsonNode expected = ref.get("greedy_new_tokens");
        JsonNode got = out.get("new_token_ids");
        int stop = 0;
        while (stop < expected.size() && expected.get(stop).asInt() != 2) {
            stop++;
        }
        int n = Math.min(stop + 1, expected.size());
        assertThat(got.size()).isEqualTo(n);
        for (int i = 0; i < n; i++) {
            assertThat(got.get(i).asInt()).isEqualTo(expected.get(i).asInt());
        }
        assertThat(out.get("text").isTextual()).isTrue();
    }

    @Test
    void torchScriptModelNeedsAndUsesATokenizerFolder() throws Exception {
        JsonNode pair = Fixtures.prefs().get(0);
        Path pt = Fixtures.root().resolve("torchscript/gpt2-tiny.pt");
        Result missing = run("logprobs", "--model", pt.toString(), "--prompt", "a", "--completion", "b");
        assertThat(missing.code()).isEqualTo(2);
        assertThat(missing.err()).contains("--tokenizer");
        Result r = run(
                "logprobs",
                "--model",
                pt.toString(),
                "--tokenizer",
                Fixtures.model("gpt2-tiny").toString(),
                "--prompt",
                pair.get("prompt").asText(),
                "--completion",
                pair.get("chosen").asText(),
                "--json");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(JSON.readTree(r.out()).get("logps").asDouble())
                .isCloseTo(referenceVector("gpt2-tiny", "policy_logps")[0], Percentage.withPercentage(0.01));
    }

    @Test
    void badModelFolderNamesTheMissingFile(@TempDir Path tmp) throws Exception {
        Files.copy(Fixtures.model("gpt2-tiny").resolve("tokenizer.json"), tmp.resolve("tokenizer.json"));
        Result r = run("logprobs", "--model", tmp.toString(), "--prompt", "a", "--completion", "b");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("config.json").contains("not found");
        Result noFolder = run("generate", "--model", tmp.resolve("nothing").toString(), "--prompt", "a");
        assertThat(noFolder.code()).isEqualTo(2);
        assertThat(noFolder.err().strip()).isEqualTo("error: " + tmp.resolve("nothing") + ": no such folder");
        // a Hub id, offline, with an empty cache (never the user's own cache nor the network in a test)
        HubClient.setShared(HubClient.fromEnvironment(
                        Map.of("HF_HUB_CACHE", tmp.resolve("hub").toString()), tmp)
                .offline(true)
                .build());
        try {
            Result hubId = run("generate", "--model", "Qwen/Qwen3-0.6B", "--prompt", "a");
            assertThat(hubId.code()).isEqualTo(2);
            assertThat(hubId.err().strip())
                    .isEqualTo("error: Qwen/Qwen3-0.6B: no local path of that name, and not in the cache "
                            + tmp.resolve("hub")
                            + ", and only the cache may be read (HF_HUB_OFFLINE=1 or --offline); download it once online"
                            + " (or `hf download Qwen/Qwen3-0.6B`)");
        } finally {
            HubClient.setShared(null);
        }
        // a run folder where its final/ model was meant
        Path run = tmp.resolve("run");
        Files.createDirectories(run.resolve("final"));
        for (String f : new String[] {"config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"}) {
            Files.copy(
                    Fixtures.model("gpt2-tiny").resolve(f), run.resolve("final").resolve(f));
        }
        Result runFolder = run("generate", "--model", run.toString(), "--prompt", "a");
        assertThat(runFolder.err()).contains("is a run folder; did you mean " + run.resolve("final") + "?");
    }

    /** generate and logprobs take --threads as the training commands do, checked by flag. */
    @Test
    void modelCommandsTakeThreads() {
        String model = Fixtures.model("gpt2-tiny").toString();
        Result ok = run("generate", "--model", model, "--prompt", "a", "--max-new-tokens", "2", "--threads", "1");
        assertThat(ok.code()).as(ok.err()).isZero();
        Result zero = run("logprobs", "--model", model, "--prompt", "a", "--completion", "b", "--threads", "0");
        assertThat(zero.code()).isEqualTo(2);
        assertThat(zero.err().strip()).isEqualTo("error: --threads: must be >= 1, got 0");
    }

    @Test
    void askingForAGpuWithoutOneIsAnErrorNotACpuRun() {
        Result r = run(
                "logprobs",
                "--model",
                Fixtures.model("gpt2-tiny").toString(),
                "--prompt",
                "a",
                "--completion",
                "b",
                "--device",
                "gpu");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("GPU").contains("PYTORCH_LIBRARY_PATH").contains("Refusing");
    }

    @ParameterizedTest
    @ValueSource(strings = {"logprobs", "generate", "quickstart", "data"})
    void everyCommandHasHelp(String command) {
        Result r = run(command, "--help");
        assertThat(r.code()).isZero();
        assertThat(r.out()).contains("Usage:").contains(command);
    }

    /** A stopped logprobs --data run resumes from FILE.partial, scoring only the pairs it lacks. */
    @Test
    void logprobsOverADatasetResumesFromItsJournal(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("scores.jsonl");
        String[] args = {
            "logprobs",
            "--model",
            Fixtures.model("gpt2-tiny").toString(),
            "--data",
            Fixtures.root().resolve("prefs.jsonl").toString(),
            "--output",
            out.toString(),
            "--batch-size",
            "3"
        };
        // stopped after 2 of its 3 batches (3, 3 and 2 pairs), as if killed there
        Result stopped = RewardCliTest.stoppedAfter(2, args);
        assertThat(stopped.code()).as(stopped.err()).isNotZero();
        Path journal = tmp.resolve("scores.jsonl.partial");
        var lines = new ArrayList<>(Files.readAllLines(journal));
        assertThat(lines).hasSize(1 + 6);
        for (int i = 1; i < lines.size(); i++) {
            ObjectNode o = (ObjectNode) JSON.readTree(lines.get(i));
            o.put("chosen_logps", -1000.0 - o.get("i").asInt());
            lines.set(i, JSON.writeValueAsString(o));
        }
        Files.write(journal, lines);
        Result resumed = run(args);
        assertThat(resumed.code()).as(resumed.err()).isZero();
        assertThat(resumed.err()).contains("6 of 8 pair(s) already scored");
        assertThat(journal).doesNotExist();
        var rows = Files.readAllLines(out);
        int tampered = 0;
        for (int i = 0; i < 8; i++) {
            double logps = JSON.readTree(rows.get(i)).get("chosen_logps").asDouble();
            if (logps == -1000.0 - i) {
                tampered++;
            } else {
                assertThat(logps).isNegative().isGreaterThan(-1000);
            }
        }
        // the 6 journaled pairs come out as the journal says, the 2 others are scored anew
        assertThat(tampered).isEqualTo(6);
    }

    @Test
    void logprobsOverADatasetReproducesTheFixtureForEveryRow(@TempDir Path tmp) throws Exception {
        Path four = tmp.resolve("four.jsonl");
        Files.write(
                four, Files.readAllLines(Fixtures.root().resolve("prefs.jsonl")).subList(0, 4));
        Path out = tmp.resolve("scores.jsonl");
        Result r = run(
                "logprobs",
                "--model",
                Fixtures.model("llama-tiny").toString(),
                "--data",
                four.toString(),
                "--output",
                out.toString(),
                "--batch-size",
                "3");
        assertThat(r.code()).as(r.err()).isZero();
        var lines = Files.readAllLines(out);
        assertThat(lines).hasSize(4);
        float[] sum = referenceVector("llama-tiny", "policy_logps");
        float[] mean = referenceVector("llama-tiny", "policy_logps_mean");
        float[] tokens = referenceVector("llama-tiny", "completion_tokens");
        for (int i = 0; i < 4; i++) {
            JsonNode s = JSON.readTree(lines.get(i));
            assertThat(s.get("chosen_logps").asDouble()).isCloseTo(sum[i], Percentage.withPercentage(0.01));
            assertThat(s.get("rejected_logps").asDouble()).isCloseTo(sum[4 + i], Percentage.withPercentage(0.01));
            assertThat(s.get("chosen_logps_mean").asDouble()).isCloseTo(mean[i], Percentage.withPercentage(0.01));
            assertThat(s.get("rejected_logps_mean").asDouble()).isCloseTo(mean[4 + i], Percentage.withPercentage(0.01));
            assertThat(s.get("chosen_tokens").asInt()).isEqualTo((int) tokens[i]);
            assertThat(s.get("rejected_tokens").asInt()).isEqualTo((int) tokens[4 + i]);
        }
    }

    @Test
    void dataInspectJsonCountsAndShowsParsedPairs(@TempDir Path tmp) throws Exception {
        Path f = tmp.resolve("mixed.jsonl");
        Files.writeString(
                f,
                String.join(
                                "\n",
                                "{\"prompt\": \"2+2=\", \"chosen\": \" 4\", \"rejected\": \" 5\"}",
                                "{\"prompt\": \"broken\"",
                                "{\"prompt\": \"A long prompt that will not fit at all in eight tokens\", \"chosen\": \" yes\", \"rejected\": \" no\"}")
                        + "\n");
        Result strict = run(
                "data",
                "inspect",
                "--data",
                f.toString(),
                "--model",
                Fixtures.model("gpt2-tiny").toString());
        assertThat(strict.code()).isEqualTo(2);
        assertThat(strict.err()).contains("mixed.jsonl:2");
        Result r = run(
                "data",
                "inspect",
                "--data",
                f.toString(),
                "--model",
                Fixtures.model("gpt2-tiny").toString(),
                "--skip-invalid",
                "--max-length",
                "8",
                "--show",
                "1",
                "--json");
        assertThat(r.code()).as(r.err()).isZero();
        JsonNode o = JSON.readTree(r.out());
        assertThat(o.get("pairs").asInt()).isEqualTo(1);
        assertThat(o.get("invalid").asInt()).isEqualTo(1);
        assertThat(o.get("dropped").asInt()).isEqualTo(1);
        String eos = JSON.readTree(Fixtures.model("gpt2-tiny")
                        .resolve("tokenizer_config.json")
                        .toFile())
                .get("eos_token")
                .asText();
        JsonNode shown = o.get("examples").get(0);
        assertThat(shown.get("prompt_text").asText()).isEqualTo("2+2=");
        assertThat(shown.get("rejected_text").asText()).isEqualTo(" 5" + eos);
        assertThat(shown.get("chosen_ids").size()).isPositive();
        assertThat(shown.get("prompt_ids").size()).isPositive();
        Result text = run(
                "data",
                "inspect",
                "--data",
                Fixtures.root().resolve("prefs.jsonl").toString(),
                "--model",
                Fixtures.model("gpt2-tiny").toString(),
                "--show",
                "2");
        assertThat(text.code()).isZero();
        assertThat(text.out())
                .contains("p50")
                .contains("prompt_text:")
                .contains("    | How do I reset my password?")
                .contains("chosen_ids: [");
    }

    @Test
    void dataInspectShowsTemplatedTextsAndNamesARecordTheTemplateRefuses(@TempDir Path tmp) throws Exception {
        // gpt2-tiny's tokenizer with Mistral v0.1's template, which raises on two user turns in a row
        Path model = tmp.resolve("model");
        Files.createDirectories(model);
        Files.copy(Fixtures.model("gpt2-tiny").resolve("tokenizer.json"), model.resolve("tokenizer.json"));
        var cfg = (ObjectNode) JSON.readTree(
                Fixtures.model("gpt2-tiny").resolve("tokenizer_config.json").toFile());
        cfg.put(
                "chat_template",
                "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
                        + "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
                        + "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
                        + "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}{% endif %}{% endfor %}");
        Files.writeString(model.resolve("tokenizer_config.json"), JSON.writeValueAsString(cfg));
        Path f = tmp.resolve("chat.jsonl");
        Files.writeString(
                f,
                String.join(
                                "\n",
                                "{\"prompt\": [{\"role\": \"user\", \"content\": \"Say {{ 7*7 }}\"}], \"chosen\": [{\"role\": \"assistant\", \"content\": \"{{ 7*7 }}\"}],"
                                        + " \"rejected\": [{\"role\": \"assistant\", \"content\": \"49\"}]}",
                                "{\"prompt\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"user\", \"content\": \"b {{\"}],"
                                        + " \"chosen\": [{\"role\": \"assistant\", \"content\": \"x\"}], \"rejected\": [{\"role\": \"assistant\", \"content\": \"y\"}]}")
                        + "\n");
        Result strict = run("data", "inspect", "--data", f.toString(), "--model", model.toString());
        assertThat(strict.code()).isEqualTo(2);
        assertThat(strict.err())
                .contains("chat.jsonl:2")
                .contains("field 'prompt'")
                .contains("Conversation roles must alternate")
                .contains(model.resolve("tokenizer_config.json").toString());
        Result r = run(
                "data",
                "inspect",
                "--data",
                f.toString(),
                "--model",
                model.toString(),
                "--skip-invalid",
                "--show",
                "2",
                "--json");
        assertThat(r.code()).as(r.err()).isZero();
        JsonNode o = JSON.readTree(r.out());
        assertThat(o.get("pairs").asInt()).isEqualTo(1);
        assertThat(o.get("invalid").asInt()).isEqualTo(1);
        String eos = cfg.get("eos_token").asText();
        String bos = cfg.get("bos_token").asText();
        JsonNode first = o.get("examples").get(0);
        assertThat(first.get("prompt_text").asText()).isEqualTo(bos + "[INST] Say {{ 7*7 }} [/INST]");
        assertThat(first.get("chosen_text").asText()).isEqualTo("{{ 7*7 }}" + eos + " ");
        assertThat(first.get("rejected_text").asText()).isEqualTo("49" + eos + " ");
        assertThat(o.get("examples").get(1).get("error").asText())
                .contains("chat.jsonl:2")
                .contains("Conversation roles must alternate");
    }

    @Test
    void shippedLoggingConfigParses() throws Exception {
        try (var in = CliTest.class.getResourceAsStream("/log4j2.xml")) {
            assertThat(in).isNotNull();
            var doc = DocumentBuilderFactory.newInstance().newDocumentBuilder().parse(in);
            assertThat(doc.getDocumentElement().getNodeName()).isEqualTo("Configuration");
        }
    }

    @Test
    void topLevelHelpListsTheCommands() {
        Result r = run("--help");
        assertThat(r.out()).contains("logprobs").contains("generate").contains("quickstart");
    }
}
