package org.align4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.align4j.model.Fixtures;
import org.align4j.model.hub.FakeHub;
import org.align4j.model.hub.HubClient;
import org.align4j.model.hub.HubId;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Models and datasets by Hub id through the CLI, against {@link FakeHub} on 127.0.0.1. */
class HubCliTest {
    @TempDir
    Path tmp;

    FakeHub hub;

    @BeforeEach
    void start() throws Exception {
        hub = new FakeHub();
        hub.putFolder(HubId.Type.MODEL, "tiny/gpt2", Fixtures.model("gpt2-tiny"));
        hub.put(HubId.Type.MODEL, "tiny/gpt2-ref", "v1", FakeHub.read(Fixtures.model("gpt2-tiny")));
        byte[] prefs = Files.readAllBytes(Fixtures.root().resolve("prefs.jsonl"));
        hub.put(
                HubId.Type.DATASET,
                "team/prefs",
                HubId.MAIN,
                Map.of(
                        "README.md", new byte[] {1},
                        "data/train_prefs-00000-of-00001.jsonl", prefs,
                        "data/test_prefs-00000-of-00001.jsonl", prefs));
        HubClient.setShared(HubClient.fromEnvironment(
                        Map.of("HF_HUB_CACHE", tmp.resolve("hub").toString(), "HF_ENDPOINT", hub.endpoint()), tmp)
                .build());
    }

    @AfterEach
    void stop() {
        HubClient.setShared(null);
        HubClient.setForcedOffline(false);
        hub.close();
    }

    @Test
    void trainsFromAModelAndADatasetByIdThenAgainOfflineFromTheCache() throws Exception {
        CliTest.Result r = CliTest.run(
                "train",
                "--model",
                "tiny/gpt2",
                "--data",
                "team/prefs:train_prefs",
                "--eval-data",
                "team/prefs:test_prefs",
                "--reference-model",
                "tiny/gpt2-ref@v1",
                "--output",
                tmp.resolve("run").toString(),
                "--max-steps",
                "2",
                "--batch-size",
                "2");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(tmp.resolve("run/final/model.safetensors")).exists();
        assertThat(r.err()).contains("downloaded tiny/gpt2 model.safetensors: 622.2 kB / 622.2 kB");
        assertThat(Files.readString(tmp.resolve("run/config.yaml"))).contains("model: tiny/gpt2");
        assertThat(tmp.resolve("hub/datasets--team--prefs/refs/main")).exists();
        assertThat(tmp.resolve("hub/models--tiny--gpt2-ref/refs/v1")).exists();

        int before = hub.requests().size();
        CliTest.Result offline = CliTest.run(
                "train",
                "--offline",
                "--model",
                "tiny/gpt2",
                "--data",
                "team/prefs:train_prefs",
                "--output",
                tmp.resolve("run2").toString(),
                "--max-steps",
                "1",
                "--batch-size",
                "2");
        assertThat(offline.code()).as(offline.err()).isZero();
        assertThat(hub.requests()).hasSize(before);
    }

    @Test
    void badIdsAreOneLineAndExitTwo() throws Exception {
        hub.put(
                HubId.Type.MODEL,
                "old/bert",
                HubId.MAIN,
                Map.of(
                        "config.json",
                        Files.readAllBytes(Fixtures.model("gpt2-tiny").resolve("config.json")),
                        "pytorch_model.bin",
                        new byte[] {1}));
        String[][] cases = {
            {"--model", "tiny/gp--t2", "'gp--t2' is not a valid Hub name"},
            {"--model", "tiny/gpt2@nope", "tiny/gpt2: revision 'nope' does not exist"},
            {"--model", "old/bert", "old/bert: the model's weights are pickle files only (pytorch_model.bin)"},
            {
                "--data",
                "team/prefs:validation",
                "team/prefs:validation: no split 'validation'; the dataset has test_prefs, train_prefs"
            },
        };
        for (String[] c : cases) {
            String model = c[0].equals("--model") ? c[1] : "tiny/gpt2";
            String data = c[0].equals("--data") ? c[1] : "team/prefs:train_prefs";
            CliTest.Result r = CliTest.run(
                    "train",
                    "--model",
                    model,
                    "--data",
                    data,
                    "--output",
                    tmp.resolve("bad").toString(),
                    "--max-steps",
                    "1");
            assertThat(r.code()).as(r.err()).isEqualTo(2);
            // download lines may come first; the error is one line, the last
            String last = r.err().strip().lines().reduce((a, b) -> b).orElse("");
            assertThat(last).startsWith("error: ").contains(c[2]);
            assertThat(r.err().lines()).allMatch(l -> l.startsWith("error: ") || l.startsWith("downloaded "));
        }
    }

    @Test
    void aLocalFolderWinsOverAnIdOfTheSameName() throws Exception {
        // target/junit-NNN is shaped like an id (owner/name) and exists: it is read as a folder, the Hub is not asked
        for (String f : new String[] {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}) {
            Files.copy(Fixtures.model("gpt2-tiny").resolve(f), tmp.resolve(f));
        }
        String relative = Path.of("").toAbsolutePath().relativize(tmp).toString();
        assertThat(HubId.looksLikeId(relative)).isTrue();
        CliTest.Result r = CliTest.run("generate", "--model", relative, "--prompt", "a", "--max-new-tokens", "1");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(hub.requests()).isEmpty();
    }

    @Test
    void pushUploadsARunsFinalFolderInOneCommitWithTheWeightsThroughLfs() throws Exception {
        CliTest.Result train = CliTest.run(
                "train",
                "--model",
                "tiny/gpt2",
                "--data",
                "team/prefs:train_prefs",
                "--output",
                tmp.resolve("run").toString(),
                "--max-steps",
                "1",
                "--batch-size",
                "2");
        assertThat(train.code()).as(train.err()).isZero();
        Path fin = tmp.resolve("run/final");

        CliTest.Result noToken = CliTest.run("push", "--model", fin.toString(), "--repo", "me/tiny-dpo");
        assertThat(noToken.code()).isEqualTo(2);
        assertThat(noToken.err().strip())
                .isEqualTo("error: me/tiny-dpo: pushing needs a token with write access: "
                        + "set HF_TOKEN or run `hf auth login` (a token from " + hub.endpoint() + "/settings/tokens)");

        HubClient.setShared(HubClient.shared().toBuilder().token("hf_good").build());
        CliTest.Result r = CliTest.run("push", "--model", fin.toString(), "--repo", "me/tiny-dpo", "--private");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(hub.commits()).hasSize(1);
        FakeHub.Commit c = hub.commits().get(0);
        assertThat(c.repo()).isEqualTo("me/tiny-dpo");
        assertThat(c.summary()).isEqualTo("Upload model trained with align4j");
        try (var files = Files.list(fin)) {
            for (Path f : files.filter(Files::isRegularFile).toList()) {
                assertThat(c.files()).containsKey(f.getFileName().toString());
                assertThat(c.files().get(f.getFileName().toString())).isEqualTo(Files.readAllBytes(f));
            }
        }
        assertThat(hub.requests())
                .anyMatch(q -> q.method().equals("PUT") && q.host().equals("127.0.0.2"));
        assertThat(r.out()).contains("me/tiny-dpo: ").contains("files in commit ");

        // and what was pushed downloads again by id (the private repository with the token), and trains
        CliTest.Result again = CliTest.run(
                "train",
                "--model",
                "me/tiny-dpo",
                "--data",
                "team/prefs:train_prefs",
                "--output",
                tmp.resolve("run3").toString(),
                "--max-steps",
                "1",
                "--batch-size",
                "2");
        assertThat(again.code()).as(again.err()).isZero();
    }

    @Test
    void anAdapterByIdLoadsItsBaseByTheIdPeftWroteInItsConfig() throws Exception {
        Path peft = Fixtures.lora("peft-written/gpt2-tiny");
        ObjectNode config = (ObjectNode)
                new ObjectMapper().readTree(peft.resolve("adapter_config.json").toFile());
        config.put("base_model_name_or_path", "tiny/gpt2");
        hub.put(
                HubId.Type.MODEL,
                "tiny/gpt2-lora",
                HubId.MAIN,
                Map.of(
                        "adapter_config.json", new ObjectMapper().writeValueAsBytes(config),
                        "adapter_model.safetensors", Files.readAllBytes(peft.resolve("adapter_model.safetensors")),
                        "README.md", new byte[] {1}));

        CliTest.Result r = CliTest.run(
                "merge",
                "--adapter",
                "tiny/gpt2-lora",
                "--output",
                tmp.resolve("merged").toString());

        assertThat(r.code()).as(r.err()).isZero();
        assertThat(tmp.resolve("merged/config.json")).exists();
        assertThat(tmp.resolve("merged/tokenizer.json")).exists();
        assertThat(tmp.resolve("hub/models--tiny--gpt2-lora/refs/main")).exists();
        assertThat(tmp.resolve("hub/models--tiny--gpt2/refs/main")).exists();
    }

    @Test
    void envShowsTheHubSettingsInUse() {
        CliTest.Result r = CliTest.run("env", "--offline");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out())
                .containsPattern("hf_endpoint +" + hub.endpoint())
                .containsPattern("hf_hub_cache +" + tmp.resolve("hub"))
                .containsPattern("hf_token +none")
                .containsPattern("hf_hub_offline +true");
    }
}
