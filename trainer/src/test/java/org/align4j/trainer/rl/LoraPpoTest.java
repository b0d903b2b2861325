package org.align4j.trainer.rl;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.align4j.losses.LossType;
import org.align4j.model.Fixtures;
import org.align4j.model.lora.PeftAdapter;
import org.align4j.trainer.RunFolder;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * PPO with LoRA: the value model is an adapter set and score head on the policy's frozen base (one copy
 * of the base for policy, reference and value model), saved in checkpoints as a sequence classifier's
 * PEFT adapter folder with its optimizer moments, and a run stopped mid-rollout resumes exactly.
 */
class LoraPpoTest {
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    private Path prompts() throws IOException {
        Path data = tmp.resolve("prompts.jsonl");
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < 12; i++) {
            b.append("{\"prompt\": \"").append(i).append("+3=\"}\n");
        }
        Files.writeString(data, b);
        return data;
    }

    /** 2 epochs x 2 mini-batches of 2 samples per rollout: 4 steps each; adapters of rank 2. */
    private Map<String, Object> options(Path data, Path out, Object rewards) {
        Map<String, Object> o = new LinkedHashMap<>();
        o.put("model", Fixtures.model("gpt2-tiny").toString());
        o.put("data", data.toString());
        o.put("output", out.toString());
        o.put("batch_size", 2);
        o.put("num_mini_batches", 2);
        o.put("num_ppo_epochs", 2);
        o.put("kl_coef", 0.1);
        o.put("max_completion_length", 4);
        o.put("max_steps", 6);
        o.put("learning_rate", 1e-2);
        o.put("save_every", 1);
        o.put("keep_last", 10);
        o.put("lora_r", 2);
        o.put("lora_alpha", 4);
        o.put("reward_funcs", rewards);
        return o;
    }

    private OnlineRlTrainer trainer(Map<String, Object> o, RunFolder.Mode mode) throws IOException {
        return OnlineRlTrainer.create(RlConfig.resolve(LossType.PPO, null, o, k -> "key '" + k + "'"), mode);
    }

    private static Map<String, NDArray> tensors(Path file, NDManager m) {
        return Fixtures.tensors(file, m);
    }

    @Test
    void theValueModelIsAnAdapterSetOnThePolicysBaseAndAStoppedRunResumesExactly() throws Exception {
        Path data = prompts();
        List<String> regex = List.of("regex:.*[0-9a-m].*");
        OnlineRlTrainerTest.Steps whole = new OnlineRlTrainerTest.Steps(-1);
        try (OnlineRlTrainer t = trainer(options(data, tmp.resolve("a"), regex), RunFolder.Mode.fresh())) {
            t.addListener(whole);
            t.train();
        }
        Path value = tmp.resolve("a/checkpoint-6/" + OnlineRlTrainer.VALUE_MODEL_DIR);
        // a sequence classifier's adapter folder on the policy's base, not a second full model
        assertThat(value.resolve("model.safetensors")).doesNotExist();
        JsonNode config = JSON.readTree(value.resolve(PeftAdapter.CONFIG_FILE).toFile());
        assertThat(config.get("task_type").asText()).isEqualTo("SEQ_CLS");
        assertThat(config.get("r").asInt()).isEqualTo(2);
        assertThat(Path.of(config.get("base_model_name_or_path").asText()))
                .isEqualTo(Fixtures.model("gpt2-tiny").toAbsolutePath().normalize());
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            Map<String, NDArray> first =
                    tensors(tmp.resolve("a/checkpoint-1/value_model/" + PeftAdapter.WEIGHTS_FILE), m);
            Map<String, NDArray> last = tensors(value.resolve(PeftAdapter.WEIGHTS_FILE), m);
            assertThat(last.keySet()).contains(PeftAdapter.SCORE_TENSOR).noneMatch(n -> n.contains(".value."));
            // the value model trained: its head and adapters moved
            assertThat(last.get(PeftAdapter.SCORE_TENSOR).contentEquals(first.get(PeftAdapter.SCORE_TENSOR)))
                    .isFalse();
            // its AdamW moments are in the checkpoint beside the policy's
            assertThat(tensors(tmp.resolve("a/checkpoint-6/optimizer.safetensors"), m)
                            .keySet())
                    .anyMatch(n -> n.contains("value_model.score.weight"))
                    .anyMatch(n -> n.contains("value_model.") && n.contains(".lora_B.weight"));
            // the policy's final adapter holds its own set only
            assertThat(tensors(tmp.resolve("a/final/" + PeftAdapter.WEIGHTS_FILE), m)
                            .keySet())
                    .allMatch(n -> n.contains(".lora_"));
        }

        // stopped after step 3, in the middle of the first rollout's 4 updates, then resumed
        OnlineRlTrainerTest.Steps first = new OnlineRlTrainerTest.Steps(3);
        try (OnlineRlTrainer t = trainer(options(data, tmp.resolve("b"), regex), RunFolder.Mode.fresh())) {
            first.stopper = t::requestStop;
            t.addListener(first);
            assertThat(t.train().interrupted()).isTrue();
        }
        OnlineRlTrainerTest.Steps rest = new OnlineRlTrainerTest.Steps(-1);
        try (OnlineRlTrainer t = trainer(options(data, tmp.resolve("b"), regex), RunFolder.Mode.resumeLatest())) {
            t.addListener(rest);
            t.train();
        }
        List<Map<String, Double>> resumed = new ArrayList<>(first.steps);
        resumed.addAll(rest.steps);
        assertThat(resumed).hasSize(6);
        for (int i = 0; i < 6; i++) {
            for (String k : List.of("loss", "grad_norm", "loss/value_avg", "loss/policy_avg", "policy/approxkl_avg")) {
                assertThat(resumed.get(i).get(k))
                        .as("step %d %s", i + 1, k)
                        .isCloseTo(whole.steps.get(i).get(k), Offset.offset(1e-6));
            }
        }
        // the value loss is not constant: a value model that did not train, or lost its state, would show here
        assertThat(whole.steps.get(5).get("loss/value_avg"))
                .isNotCloseTo(whole.steps.get(0).get("loss/value_avg"), Offset.offset(1e-9));
    }

    /** PEFT 0.21's SEQ_CLS adapter of rank 4 on gpt2-tiny, with a tokenizer and its base named by an absolute path. */
    private Path loraRewardModel() throws IOException {
        Path rm = tmp.resolve("reward-lora");
        if (Files.isDirectory(rm)) {
            return rm;
        }
        Files.createDirectories(rm);
        Path peft = Fixtures.reward("lora/peft-written/gpt2-tiny"); // model/src/test/python/reward_lora_fixtures.py
        Files.copy(peft.resolve(PeftAdapter.WEIGHTS_FILE), rm.resolve(PeftAdapter.WEIGHTS_FILE));
        ObjectNode adapterConfig =
                (ObjectNode) JSON.readTree(peft.resolve(PeftAdapter.CONFIG_FILE).toFile());
        adapterConfig.put(
                "base_model_name_or_path",
                Fixtures.model("gpt2-tiny").toAbsolutePath().normalize().toString());
        Files.writeString(rm.resolve(PeftAdapter.CONFIG_FILE), JSON.writeValueAsString(adapterConfig));
        for (String f : List.of("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")) {
            Files.copy(Fixtures.model("gpt2-tiny").resolve(f), rm.resolve(f));
        }
        return rm;
    }

    @Test
    void aLoraRewardModelOnThePolicysBaseStartsTheValueSetWithItsAdaptersAndHead() throws Exception {
        Path rm = loraRewardModel();
        Map<String, Object> o = options(prompts(), tmp.resolve("rm"), List.of(rm.toString()));
        o.put("max_steps", 1);
        o.put("learning_rate", 1e-12); // one step that moves nothing measurable: the checkpoint shows the start
        try (OnlineRlTrainer t = trainer(o, RunFolder.Mode.fresh())) {
            t.train();
        }
        Path value = tmp.resolve("rm/checkpoint-1/" + OnlineRlTrainer.VALUE_MODEL_DIR);
        assertThat(value.resolve("model.safetensors")).doesNotExist();
        JsonNode config = JSON.readTree(value.resolve(PeftAdapter.CONFIG_FILE).toFile());
        JsonNode reward = JSON.readTree(rm.resolve(PeftAdapter.CONFIG_FILE).toFile());
        // the reward model's rank and targets, not the policy's (r = 2)
        assertThat(config.get("r").asInt()).isEqualTo(reward.get("r").asInt()).isNotEqualTo(2);
        assertThat(config.get("target_modules")).isEqualTo(reward.get("target_modules"));
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            Map<String, NDArray> got = tensors(value.resolve(PeftAdapter.WEIGHTS_FILE), m);
            Map<String, NDArray> want = tensors(rm.resolve(PeftAdapter.WEIGHTS_FILE), m);
            assertThat(got.keySet()).isEqualTo(want.keySet());
            want.forEach(
                    (name, w) -> assertThat(got.get(name).sub(w).abs().max().getFloat())
                            .as(name)
                            .isLessThan(1e-6f));
        }
    }

    @Test
    void withoutLoraALoraRewardModelIsMergedIntoAFullValueModel() throws Exception {
        Path rm = loraRewardModel();
        Map<String, Object> o = options(prompts(), tmp.resolve("merged"), List.of(rm.toString()));
        o.remove("lora_r");
        o.remove("lora_alpha");
        o.put("max_steps", 1);
        o.put("learning_rate", 1e-12);
        try (OnlineRlTrainer t = trainer(o, RunFolder.Mode.fresh())) {
            t.train();
        }
        Path value = tmp.resolve("merged/checkpoint-1/" + OnlineRlTrainer.VALUE_MODEL_DIR);
        assertThat(value.resolve(PeftAdapter.CONFIG_FILE)).doesNotExist();
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            // the reward model's head, not a new one; and every weight trained (moments for all of them)
            NDArray head = tensors(value.resolve("model.safetensors"), m).get("score.weight");
            NDArray want = tensors(rm.resolve(PeftAdapter.WEIGHTS_FILE), m).get(PeftAdapter.SCORE_TENSOR);
            assertThat(head.sub(want).abs().max().getFloat()).isLessThan(1e-6f);
            assertThat(tensors(tmp.resolve("merged/checkpoint-1/optimizer.safetensors"), m)
                            .keySet())
                    .anyMatch(n -> n.contains("value_model.transformer.h.0.attn.c_attn.weight"));
        }
    }

    @Test
    void aRewardModelTrainedInFullStaysASecondFullValueModel() throws Exception {
        Path rm = Fixtures.reward("transformers-written/gpt2-tiny");
        Map<String, Object> o = options(prompts(), tmp.resolve("full"), List.of(rm.toString()));
        o.put("max_steps", 1);
        try (OnlineRlTrainer t = trainer(o, RunFolder.Mode.fresh())) {
            t.train();
        }
        Path value = tmp.resolve("full/checkpoint-1/" + OnlineRlTrainer.VALUE_MODEL_DIR);
        assertThat(value.resolve("model.safetensors")).exists();
        assertThat(value.resolve(PeftAdapter.CONFIG_FILE)).doesNotExist();
    }
}
