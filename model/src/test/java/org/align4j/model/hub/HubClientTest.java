package org.align4j.model.hub;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.align4j.model.Fixtures;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class HubClientTest {
    @TempDir
    Path tmp;

    FakeHub hub;
    Map<String, byte[]> gpt2;
    String commit;

    @BeforeEach
    void start() {
        hub = new FakeHub();
        gpt2 = FakeHub.read(Fixtures.model("gpt2-tiny"));
        Map<String, byte[]> files = new TreeMap<>(gpt2);
        files.put("pytorch_model.bin", new byte[] {1, 2, 3});
        files.put("README.md", "# tiny".getBytes(StandardCharsets.UTF_8));
        files.put("onnx/model.onnx", new byte[] {4});
        commit = hub.put(HubId.Type.MODEL, "tiny/gpt2", HubId.MAIN, files);
    }

    @AfterEach
    void stop() {
        hub.close();
    }

    HubClient client() {
        return client(null);
    }

    HubClient client(String token) {
        return HubClient.fromEnvironment(
                        Map.of("HF_HUB_CACHE", tmp.resolve("hub").toString(), "HF_ENDPOINT", hub.endpoint()), tmp)
                .token(token)
                .build();
    }

    @Test
    void aModelByIdLandsInHuggingFaceHubsLayoutWithOnlyTheFilesARunNeeds() throws IOException {
        Path dir = client().model(HubId.parse("tiny/gpt2", HubId.Type.MODEL));

        Path repo = tmp.resolve("hub/models--tiny--gpt2");
        assertThat(dir).isEqualTo(repo.resolve("snapshots").resolve(commit));
        assertThat(Files.readString(repo.resolve("refs/main"))).isEqualTo(commit);
        Path weights = dir.resolve("model.safetensors");
        assertThat(Files.isSymbolicLink(weights)).isTrue();
        assertThat(Files.readSymbolicLink(weights).toString())
                .isEqualTo("../../blobs/" + FakeHub.sha256(gpt2.get("model.safetensors")));
        assertThat(Files.readSymbolicLink(dir.resolve("config.json")).toString())
                .isEqualTo("../../blobs/" + FakeHub.gitBlobSha1(gpt2.get("config.json")));
        assertThat(Files.readAllBytes(weights)).isEqualTo(gpt2.get("model.safetensors"));
        try (Stream<Path> s = Files.list(dir)) {
            assertThat(s.map(p -> p.getFileName().toString()))
                    .containsExactlyInAnyOrder(
                            "config.json",
                            "generation_config.json",
                            "model.safetensors",
                            "special_tokens_map.json",
                            "tokenizer.json",
                            "tokenizer_config.json");
        }
        assertThat(hub.paths())
                .noneMatch(p -> p.contains("pytorch_model.bin") || p.contains("README") || p.contains("onnx"));
        assertThat(hub.requests()).filteredOn(r -> r.host().equals("127.0.0.2")).hasSize(1); // the weights' redirect
    }

    @Test
    void aSecondResolveInAnotherClientReadsTheSnapshotWithoutDownloadingAgain() {
        HubId id = HubId.parse("tiny/gpt2", HubId.Type.MODEL);
        client().model(id);
        int before = hub.requests().size();
        client().model(id);
        assertThat(hub.requests().subList(before, hub.requests().size()))
                .extracting(FakeHub.Request::path)
                .containsExactly("/api/models/tiny/gpt2/revision/main");
    }

    @Test
    void shardedWeightsFetchTheIndexAndTheShardsItNames() throws IOException {
        Map<String, byte[]> sharded = FakeHub.read(Fixtures.model("gpt2-tiny-bf16-sharded"));
        sharded.remove("reference.safetensors");
        hub.put(HubId.Type.MODEL, "tiny/sharded", "v1", sharded);

        Path dir = client().model(HubId.parse("tiny/sharded@v1", HubId.Type.MODEL));

        assertThat(dir.resolve("model-00001-of-00002.safetensors")).exists();
        assertThat(dir.resolve("model-00002-of-00002.safetensors")).exists();
        assertThat(Files.readString(tmp.resolve("hub/models--tiny--sharded/refs/v1")))
                .isEqualTo(dir.getFileName().toString());
    }

    @Test
    void aConnectionDroppedMidFileIsResumedWithARangeRequest() throws IOException {
        int size = gpt2.get("model.safetensors").length;
        hub.dropAfterBytes = size / 2;

        Path dir = client().model(HubId.parse("tiny/gpt2", HubId.Type.MODEL));

        assertThat(Files.readAllBytes(dir.resolve("model.safetensors"))).isEqualTo(gpt2.get("model.safetensors"));
        List<FakeHub.Request> cdn = hub.requests().stream()
                .filter(r -> r.host().equals("127.0.0.2"))
                .toList();
        assertThat(cdn).hasSize(2);
        assertThat(cdn.get(0).range()).isNull();
        // resumed from what reached the disk (at most what the server sent before it dropped)
        long resumedAt = Long.parseLong(cdn.get(1).range().replaceAll("\\D", ""));
        assertThat(resumedAt).isPositive().isLessThanOrEqualTo(size / 2);
    }

    @Test
    void aPartialBlobLeftByAnEarlierRunIsResumed() throws IOException {
        byte[] weights = gpt2.get("model.safetensors");
        Path blobs = Files.createDirectories(tmp.resolve("hub/models--tiny--gpt2/blobs"));
        Files.write(blobs.resolve(FakeHub.sha256(weights) + ".incomplete"), Arrays.copyOf(weights, 1000));

        client().model(HubId.parse("tiny/gpt2", HubId.Type.MODEL));

        assertThat(hub.requests())
                .filteredOn(r -> r.host().equals("127.0.0.2"))
                .extracting(FakeHub.Request::range)
                .containsExactly("bytes=1000-");
    }

    @Test
    void aBlobWithTheWrongChecksumIsRefusedAndNothingIsLinked() throws IOException {
        hub.corrupt = true;

        assertThatThrownBy(() -> client().model(HubId.parse("tiny/gpt2", HubId.Type.MODEL)))
                .isInstanceOf(UncheckedIOException.class)
                .hasMessageContaining("model.safetensors")
                .hasMessageContaining("checksum mismatch")
                .hasMessageContaining(FakeHub.sha256(gpt2.get("model.safetensors")));
        Path repo = tmp.resolve("hub/models--tiny--gpt2");
        assertThat(repo.resolve("snapshots")).doesNotExist();
        assertThat(repo.resolve("refs")).doesNotExist();
        try (Stream<Path> s = Files.list(repo.resolve("blobs"))) {
            assertThat(s.map(p -> p.getFileName().toString()))
                    .noneMatch(n -> n.startsWith(FakeHub.sha256(gpt2.get("model.safetensors"))));
        }
    }

    @Test
    void theTokenGoesToTheHubButNotToTheHostADownloadIsRedirectedTo() {
        hub.makePrivate("tiny/gpt2");
        client("hf_good").model(HubId.parse("tiny/gpt2", HubId.Type.MODEL));
        assertThat(hub.requests())
                .filteredOn(r -> r.host().equals("127.0.0.1"))
                .allMatch(r -> "Bearer hf_good".equals(r.authorization()));
        assertThat(hub.requests())
                .filteredOn(r -> r.host().equals("127.0.0.2"))
                .isNotEmpty()
                .allMatch(r -> r.authorization() == null);
    }

    @Test
    void refusalsSayWhatToDoNotAnHttpCode() {
        assertThatThrownBy(() -> client().model(HubId.parse("nobody/nothing", HubId.Type.MODEL)))
                .isInstanceOf(HubException.class)
                .hasMessage("nobody/nothing: no such model repository on " + hub.endpoint()
                        + " (and no local path of that name)");
        assertThatThrownBy(() -> client().model(HubId.parse("tiny/gpt2@v9", HubId.Type.MODEL)))
                .isInstanceOf(HubException.class)
                .hasMessage("tiny/gpt2: revision 'v9' does not exist (give a branch, tag or commit of the repository)");
        hub.makePrivate("tiny/gpt2");
        assertThatThrownBy(() -> client().model(HubId.parse("tiny/gpt2", HubId.Type.MODEL)))
                .isInstanceOf(HubException.class)
                .hasMessage("tiny/gpt2: no such model repository, or a private one: if it is private, set HF_TOKEN "
                        + "(or run `hf auth login`) to a token that may read it")
                .message()
                .doesNotContain("401");
        assertThatThrownBy(() -> client("hf_bad").model(HubId.parse("tiny/gpt2", HubId.Type.MODEL)))
                .hasMessageContaining("the token given (HF_TOKEN or HF_HOME/token) may not read it");

        hub.put(HubId.Type.MODEL, "meta/gated", HubId.MAIN, gpt2);
        hub.makeGated("meta/gated");
        assertThatThrownBy(() -> client("hf_good").model(HubId.parse("meta/gated", HubId.Type.MODEL)))
                .isInstanceOf(HubException.class)
                .hasMessage("meta/gated: a gated repository: accept its conditions at " + hub.endpoint()
                        + "/meta/gated while logged in, then use a token of that account (this one, from HF_TOKEN or "
                        + "HF_HOME/token, has no access yet)");
        assertThatThrownBy(() -> client().model(HubId.parse("meta/gated", HubId.Type.MODEL)))
                .hasMessageContaining("accept its conditions")
                .hasMessageContaining("set HF_TOKEN");
    }

    @Test
    void pickleOnlyRepositoriesAreRefusedByName() {
        hub.put(
                HubId.Type.MODEL,
                "old/bert",
                HubId.MAIN,
                Map.of(
                        "config.json",
                        gpt2.get("config.json"),
                        "pytorch_model.bin",
                        new byte[] {1},
                        "tokenizer.json",
                        gpt2.get("tokenizer.json")));
        assertThatThrownBy(() -> client().model(HubId.parse("old/bert", HubId.Type.MODEL)))
                .isInstanceOf(HubException.class)
                .hasMessageStartingWith(
                        "old/bert: the model's weights are pickle files only (pytorch_model.bin); align4j never loads pickle");
        assertThat(hub.paths()).noneMatch(p -> p.contains("resolve"));
    }

    @Test
    void malformedIdsAreNamedWithTheRuleTheyBreak() {
        assertThatThrownBy(() -> HubId.parse("own--er/name", HubId.Type.MODEL))
                .isInstanceOf(HubException.class)
                .hasMessageContaining("'own--er' is not a valid Hub name");
        assertThatThrownBy(() -> HubId.parse("owner/name@", HubId.Type.MODEL))
                .hasMessageContaining("revision '' is not a branch, tag or commit name");
        assertThatThrownBy(() -> HubId.parse("owner/name:train", HubId.Type.MODEL))
                .hasMessageContaining("names a split, which only datasets have");
        assertThat(HubId.looksLikeId("runs/x/final")).isFalse();
        assertThat(HubId.looksLikeId("./a/b")).isFalse();
        assertThat(HubId.looksLikeId("/abs/path")).isFalse();
        HubId id = HubId.parse("owner/name@refs/pr/1:test_prefs", HubId.Type.DATASET);
        assertThat(id.revision()).isEqualTo("refs/pr/1");
        assertThat(id.split()).isEqualTo("test_prefs");
        assertThat(id.cacheFolderName()).isEqualTo("datasets--owner--name");
    }

    @Test
    void aLegacyNameWithoutAnOwnerIsGivenTheIdTheHubRedirectsItTo() {
        assertThat(HubId.ownerlessNameHint("gpt2"))
                .hasValue("; on the Hugging Face Hub 'gpt2' is a legacy name that the Hub redirects to"
                        + " openai-community/gpt2: give openai-community/gpt2");
        assertThat(HubId.ownerlessNameHint("distilgpt2").orElseThrow()).endsWith("give distilbert/distilgpt2");
        assertThat(HubId.ownerlessNameHint("llama-7b"))
                .hasValue("; a Hugging Face Hub id names its owner too (owner/name)");
        assertThat(HubId.ownerlessNameHint("runs/x/final")).isEmpty();
        assertThat(HubId.ownerlessNameHint("../model")).isEmpty();
    }

    @Test
    void offlineACompleteCacheIsReadWithoutARequestAndAnIncompleteOneIsNamed() throws IOException {
        HubId id = HubId.parse("tiny/gpt2", HubId.Type.MODEL);
        Path online = client().model(id);
        int before = hub.requests().size();

        HubClient offline = HubClient.fromEnvironment(
                        Map.of(
                                "HF_HUB_CACHE",
                                tmp.resolve("hub").toString(),
                                "HF_ENDPOINT",
                                hub.endpoint(),
                                "HF_HUB_OFFLINE",
                                "1"),
                        tmp)
                .build();
        assertThat(offline.model(id)).isEqualTo(online);
        assertThat(hub.requests()).hasSize(before);

        Files.delete(
                Files.readSymbolicLink(online.resolve("model.safetensors")).isAbsolute()
                        ? Files.readSymbolicLink(online.resolve("model.safetensors"))
                        : online.resolve(Files.readSymbolicLink(online.resolve("model.safetensors"))));
        HubClient offline2 = offline.toBuilder().build();
        assertThatThrownBy(() -> offline2.model(id))
                .isInstanceOf(HubException.class)
                .hasMessageContaining("tiny/gpt2: the cached snapshot")
                .hasMessageContaining(
                        "lacks model.safetensors, and only the cache may be read (HF_HUB_OFFLINE=1 or --offline)");
        assertThatThrownBy(() -> offline2.model(HubId.parse("tiny/other", HubId.Type.MODEL)))
                .hasMessageContaining(
                        "tiny/other: no local path of that name, and not in the cache " + tmp.resolve("hub"));
        assertThat(hub.requests()).hasSize(before);
    }

    @Test
    void anUnreachableHubFallsBackToACompleteCache() {
        HubId id = HubId.parse("tiny/gpt2", HubId.Type.MODEL);
        Path online = client().model(id);
        HubClient unreachable =
                client().toBuilder().endpoint("http://127.0.0.1:9").build();
        assertThat(unreachable.model(id)).isEqualTo(online);
    }

    @Test
    void aDatasetSplitByIdIsItsDataFilesAndAMissingSplitListsTheOthers() throws IOException {
        byte[] prefs = Files.readAllBytes(Fixtures.root().resolve("prefs.jsonl"));
        hub.put(
                HubId.Type.DATASET,
                "team/prefs",
                HubId.MAIN,
                Map.of(
                        "README.md", new byte[] {1},
                        "data/train_prefs-00000-of-00002.jsonl", prefs,
                        "data/train_prefs-00001-of-00002.jsonl", prefs,
                        "data/test_prefs-00000-of-00001.jsonl", prefs));

        List<Path> files = client().dataset(HubId.parse("team/prefs:train_prefs", HubId.Type.DATASET));
        assertThat(files)
                .extracting(p -> p.getFileName().toString())
                .containsExactly("train_prefs-00000-of-00002.jsonl", "train_prefs-00001-of-00002.jsonl");
        assertThat(files.get(0).toString())
                .startsWith(tmp.resolve("hub/datasets--team--prefs/snapshots").toString());
        assertThat(Files.readAllBytes(files.get(1))).isEqualTo(prefs);

        assertThatThrownBy(() -> client().dataset(HubId.parse("team/prefs:validation", HubId.Type.DATASET)))
                .isInstanceOf(HubException.class)
                .hasMessage("team/prefs:validation: no split 'validation'; the dataset has test_prefs, train_prefs");
        assertThatThrownBy(() -> client().dataset(HubId.parse("team/prefs", HubId.Type.DATASET)))
                .hasMessageContaining("name a split (owner/name:split); the dataset has test_prefs, train_prefs");
    }

    @Test
    void aDatasetWithoutDataFilesIsReadFromTheParquetConversionBranch() throws IOException {
        hub.put(HubId.Type.DATASET, "team/script", HubId.MAIN, Map.of("script.py", new byte[] {1}));
        hub.put(
                HubId.Type.DATASET,
                "team/script",
                "refs/convert/parquet",
                Map.of(
                        "default/train/0000.parquet", new byte[] {7, 7},
                        "default/test/0000.parquet", new byte[] {8},
                        "other/train/0000.parquet", new byte[] {9}));

        List<Path> files = client().dataset(HubId.parse("team/script", HubId.Type.DATASET));
        assertThat(files).hasSize(1);
        assertThat(Files.readAllBytes(files.get(0))).containsExactly(7, 7);
        assertThat(tmp.resolve("hub/datasets--team--script/refs/refs/convert/parquet"))
                .exists();

        HubClient offline = client().toBuilder().offline(true).build();
        assertThat(offline.dataset(HubId.parse("team/script:train", HubId.Type.DATASET)))
                .isEqualTo(files);
    }

    @Test
    void twoThreadsAskingForOneModelDownloadEachBlobOnce() throws Exception {
        hub.slowMillis = 20;
        HubId id = HubId.parse("tiny/gpt2", HubId.Type.MODEL);
        List<Throwable> errors = new ArrayList<>();
        Map<String, Path> got = new HashMap<>();
        Thread[] threads = new Thread[3];
        for (int i = 0; i < threads.length; i++) {
            int k = i;
            threads[i] = new Thread(() -> {
                try {
                    Path p = client().model(id);
                    synchronized (got) {
                        got.put("t" + k, p);
                    }
                } catch (Throwable t) {
                    synchronized (errors) {
                        errors.add(t);
                    }
                }
            });
            threads[i].start();
        }
        for (Thread t : threads) {
            t.join();
        }
        assertThat(errors).isEmpty();
        assertThat(got.values()).hasSize(3).allMatch(p -> p.equals(got.get("t0")));
        assertThat(hub.requests()).filteredOn(r -> r.host().equals("127.0.0.2")).hasSize(1);
    }

    @Test
    void twoProcessesAskingForOneModelDownloadEachBlobOnce() throws Exception {
        hub.slowMillis = 40; // the weights take ~1.5 s, so the second JVM starts while the first holds the lock
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<Process> procs = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            ProcessBuilder pb = new ProcessBuilder(
                            java,
                            "-cp",
                            System.getProperty("java.class.path"),
                            HubDownloadMain.class.getName(),
                            "tiny/gpt2")
                    .redirectErrorStream(true)
                    .redirectOutput(tmp.resolve("proc" + i + ".log").toFile());
            pb.environment().put("HF_HUB_CACHE", tmp.resolve("hub").toString());
            pb.environment().put("HF_ENDPOINT", hub.endpoint());
            pb.environment().remove("HF_HUB_OFFLINE");
            pb.environment().remove("HF_TOKEN");
            procs.add(pb.start());
        }
        for (int i = 0; i < procs.size(); i++) {
            assertThat(procs.get(i).waitFor())
                    .as(Files.readString(tmp.resolve("proc" + i + ".log")))
                    .isZero();
        }
        assertThat(Files.readString(tmp.resolve("proc0.log")).trim())
                .endsWith(tmp.resolve("hub/models--tiny--gpt2/snapshots/" + commit)
                        .toString());
        assertThat(Files.readString(tmp.resolve("proc1.log")).trim())
                .endsWith(tmp.resolve("hub/models--tiny--gpt2/snapshots/" + commit)
                        .toString());
        assertThat(hub.requests()).filteredOn(r -> r.host().equals("127.0.0.2")).hasSize(1);
        assertThat(tmp.resolve("hub/.locks/models--tiny--gpt2")).isDirectory();
    }

    @Test
    void theEnvironmentIsReadAsHuggingFaceHubReadsIt() throws IOException {
        Path home = tmp.resolve("home");
        Files.createDirectories(home.resolve(".cache/huggingface"));
        Files.writeString(home.resolve(".cache/huggingface/token"), "hf_fromfile\n");
        HubClient c = HubClient.fromEnvironment(Map.of(), home).build();
        assertThat(c.cache().root()).isEqualTo(home.resolve(".cache/huggingface/hub"));
        assertThat(c.hasToken()).isTrue();
        assertThat(c.endpoint().toString()).isEqualTo("https://huggingface.co");
        assertThat(HubClient.fromEnvironment(Map.of("HF_HOME", "/x/hf"), home)
                        .build()
                        .cache()
                        .root())
                .isEqualTo(Path.of("/x/hf/hub"));
        assertThat(HubClient.fromEnvironment(Map.of("HF_HOME", "/x/hf", "HF_HUB_CACHE", "/y"), home)
                        .build()
                        .cache()
                        .root())
                .isEqualTo(Path.of("/y"));
        assertThat(HubClient.fromEnvironment(Map.of("HF_HUB_OFFLINE", "1"), home)
                        .build()
                        .offline())
                .isTrue();
        assertThat(HubClient.fromEnvironment(Map.of("HF_TOKEN", "hf_env"), tmp)
                        .build()
                        .hasToken())
                .isTrue();
        assertThat(HubClient.fromEnvironment(Map.of(), tmp).build().hasToken()).isFalse();
    }
}
