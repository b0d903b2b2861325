package org.align4j.trainer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.align4j.data.DataFormat;
import org.align4j.losses.ApoLoss;
import org.align4j.losses.CombinedLoss;
import org.align4j.losses.FDivergence;
import org.align4j.losses.LossType;
import org.align4j.model.nn.Compute;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** One typed config behind YAML, flags and the builder: TRL's names, exact errors, and no option that silently does nothing. */
class TrainConfigTest {
    @TempDir
    Path tmp;

    private Path yaml(String body) throws IOException {
        Path f = tmp.resolve("c.yaml");
        Files.writeString(f, body);
        return f;
    }

    private static final String REQUIRED = "model: m\ndata: d\noutput: o\n";

    @Test
    void aTrlStyleYamlMapsOntoAlign4jKeys() throws IOException {
        // fifteen TRL DPOConfig / TrainingArguments / ModelConfig names, as a TRL user writes them
        TrainConfig c = TrainConfig.resolve(yaml("""
                model_name_or_path: base
                data: prefs.jsonl
                output_dir: runs/dpo
                loss_type: [sigmoid]
                learning_rate: 5.0e-7
                per_device_train_batch_size: 8
                per_device_eval_batch_size: 16
                gradient_accumulation_steps: 4
                num_train_epochs: 2.5
                warmup_ratio: 0.1
                lr_scheduler_type: constant_with_warmup
                logging_steps: 10
                save_steps: 100
                eval_steps: 50
                save_total_limit: 3
                precompute_ref_log_probs: true
                bf16: true
                eval_data: held.jsonl
                report_to: none
                optim: adamw_torch
                """), Map.of());
        assertThat(c.model()).isEqualTo("base");
        assertThat(c.output()).isEqualTo("runs/dpo");
        assertThat(c.loss()).isEqualTo(LossType.DPO);
        assertThat(c.learningRate()).isEqualTo(5e-7);
        assertThat(c.batchSize()).isEqualTo(8);
        assertThat(c.evalBatchSize()).isEqualTo(16);
        assertThat(c.gradAccum()).isEqualTo(4);
        assertThat(c.epochs()).isEqualTo(2.5);
        assertThat(c.warmupRatio()).isEqualTo(0.1);
        assertThat(c.schedule()).isEqualTo(TrainConfig.Schedule.CONSTANT);
        assertThat(c.logEvery()).isEqualTo(10);
        assertThat(c.saveEvery()).isEqualTo(100);
        assertThat(c.evalEvery()).isEqualTo(50);
        assertThat(c.keepLast()).isEqualTo(3);
        assertThat(c.reference()).isEqualTo(TrainConfig.Reference.PRECOMPUTED);
        assertThat(c.precision()).isEqualTo(Compute.Precision.BF16);
        // 2.5 epochs of 10 batches of 8 at 4 micro-batches a step: ceil(2.5 × 10 / 4) = 7 steps, warm-up ceil(0.7) = 1
        assertThat(c.totalSteps(80)).isEqualTo(7);
        assertThat(c.warmupStepsOf(7)).isEqualTo(1);
    }

    @ParameterizedTest
    @CsvSource(
            delimiter = '|',
            value = {
                "learning_rat: 0.1|did you mean 'learning_rate'",
                "per_device_batch_size: 8|did you mean 'per_device_eval_batch_size' or 'per_device_train_batch_size'",
                "bta: 0.2|did you mean 'beta'",
                "max_stpes: 3|did you mean 'max_steps'"
            })
    void aTypoGetsTheNearestName(String line, String suggestion) throws IOException {
        assertThatThrownBy(() -> TrainConfig.resolve(yaml(REQUIRED + line + "\n"), Map.of()))
                .hasMessageStartingWith(tmp.resolve("c.yaml") + ":4: key '")
                .hasMessageContaining("unknown")
                .hasMessageContaining(suggestion);
    }

    @ParameterizedTest
    @CsvSource(
            delimiter = '|',
            value = {
                "batch_size: 2.7|:4: key 'batch_size': expected a whole number, got 2.7",
                "batch_size: many|:4: key 'batch_size': expected a number, got 'many'",
                "learning_rate: Infinity|:4: key 'learning_rate': must be a finite number, got Infinity",
                "learning_rate: NaN|:4: key 'learning_rate': must be a finite number, got NaN",
                "loss: kto|:4: key 'loss': kto has a trainer of its own: the align4j kto command",
                "loss: rpo|:4: key 'loss': unknown objective 'rpo'",
                "schedule: exponential|:4: key 'schedule': 'exponential' is not one of constant, linear, cosine",
                "eval_kl: maybe|:4: key 'eval_kl': expected true or false, got 'maybe'",
                "beta: [1, 2]|:4: key 'beta': expected a single value, got a list",
                "lr_scheduler_type: polynomial|:4: key 'lr_scheduler_type': 'polynomial' is not implemented",
                "gradient_checkpointing: true|:4: key 'gradient_checkpointing': TRL's 'gradient_checkpointing' has no align4j meaning",
                "report_to: wandb|:4: key 'report_to': TRL's 'report_to': only",
                "logging_steps: 0.1|:4: key 'logging_steps': 0.1 as a share of all steps is not supported"
            })
    void aBadValueNamesFileLineAndKey(String line, String message) throws IOException {
        Path f = yaml(REQUIRED + line + "\n");
        assertThatThrownBy(() -> TrainConfig.resolve(f, Map.of()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith(f + message);
    }

    @Test
    void aYamlSyntaxErrorKeepsItsLine() throws IOException {
        Path f = yaml(REQUIRED + "beta: 0.1\nloss: [dpo\n");
        assertThatThrownBy(() -> TrainConfig.resolve(f, Map.of()))
                .hasMessageStartingWith(f + ":")
                .hasMessageContaining("not valid YAML");
        Path twice = yaml(REQUIRED + "batch_size: 4\nper_device_train_batch_size: 8\n");
        assertThatThrownBy(() -> TrainConfig.resolve(twice, Map.of()))
                .hasMessageContaining(":5: key 'per_device_train_batch_size': sets 'batch_size' again");
    }

    @ParameterizedTest
    @CsvSource(
            delimiter = '|',
            value = {
                "loss: ipo;label_smoothing: 0.2|key 'label_smoothing': loss ipo does not use it (dpo, cdpo, robust, exo-pair, aot, aot-unpaired, cpo do)",
                "loss: hinge;label_smoothing: 0.2|key 'label_smoothing': loss hinge does not use it",
                "loss: dpo;gamma: 5|key 'gamma': loss dpo does not use it (simpo, cpo do)",
                "loss: dpo;preference: 0.6|key 'preference': loss dpo does not use it (ipo-soft does)",
                "loss: sft;beta: 0.2|key 'beta': loss sft does not use it",
                "loss: sft;reference: precomputed|key 'reference': has no effect here: sft has no reference policy",
                "loss: simpo;reference: precomputed|key 'reference': has no effect here: simpo is reference-free",
                "reference: precomputed;reference_dtype: fp16|key 'reference_dtype': has no effect here",
                "reference: copy;cache_dir: c|key 'cache_dir': has no effect here: only reference: precomputed reads a cache",
                "warmup_steps: 10;warmup_ratio: 0.1|key 'warmup_ratio': give warmup_steps or warmup_ratio, not both",
                "max_steps: 10;epochs: 3|key 'epochs': max_steps 10 is also given",
                "max_length: 64;max_prompt_length: 128|key 'max_prompt_length': 128 exceeds max_length 64",
                "loss: ipo;ld_alpha: 0.5|key 'ld_alpha': loss ipo does not use it (LD-DPO weighs summed log-ratios;",
                "loss: [dpo, sft];ld_alpha: 0.5|key 'ld_alpha': loss sft does not use it",
                "loss: nca_pair;f_divergence_type: js_divergence|key 'f_divergence_type': loss nca-pair has no f-divergence form",
                "loss_type: [sigmoid, aot];f_divergence_type: forward_kl|key 'f_divergence_type': loss aot has no f-divergence form",
                "f_divergence_type: js_divergence;f_alpha_divergence_coef: 0.3|key 'f_alpha_divergence_coef': has no effect here: read only with f_divergence_type alpha_divergence",
                "loss: [dpo, bco_pair, sft];loss_weights: [0.8, 0.2]|key 'loss_weights': 2 weights for 3 objectives (dpo+bco-pair+sft)",
                "loss_weights: [1, 2]|key 'loss_weights': 2 weights for 1 objectives (dpo)",
                "loss: aot;use_weighting: true|key 'use_weighting': loss aot does not take per-pair weights",
                "loss: dpo;discopop_tau: 0.1|key 'discopop_tau': loss dpo does not use it (discopop does)",
                "loss: [dpo, simpo]|key 'loss': simpo cannot be a term of a mix",
                "loss: [sft, sft]|key 'loss': a mix needs a preference objective",
                "loss: exo_pair;label_smoothing: 0|key 'label_smoothing': exo-pair needs epsilon > 0",
                "ld_alpha: 1.5|key 'ld_alpha': must lie in [0, 1], got 1.5",
                "loss: [dpo, sft];reference: precomputed;ld_alpha: 0.5|key 'ld_alpha': loss sft does not use it",
                "reference: precomputed;ld_alpha: 0.5|key 'ld_alpha': has no effect here: the precomputed reference cache holds whole sums"
            })
    void anOptionThatWouldDoNothingIsRefusedByName(String lines, String message) throws IOException {
        Path f = yaml(REQUIRED + lines.replace(";", "\n") + "\n");
        assertThatThrownBy(() -> TrainConfig.resolve(f, Map.of()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining(message);
    }

    @Test
    void aListOfObjectivesIsAMixAsTrlsLossTypeList() throws IOException {
        Map<String, Object> base = Map.of("model", "m", "data", "d", "output", "o");
        Map<String, Object> flags = new HashMap<>(base);
        flags.put("loss_type", List.of("sigmoid", "bco_pair", "sft"));
        flags.put("loss_weights", "0.8, 0.2, 1");
        TrainConfig mpo = TrainConfig.resolve(null, flags);
        assertThat(mpo.loss()).isEqualTo(LossType.DPO);
        assertThat(mpo.objectives()).containsExactly(LossType.DPO, LossType.BCO_PAIR, LossType.SFT);
        assertThat(mpo.objectiveWeights()).containsExactly(0.8, 0.2, 1.0);
        assertThat(mpo.lossName()).isEqualTo("dpo+bco-pair+sft");
        assertThat(PreferenceTrainer.objective(mpo))
                .isInstanceOfSatisfying(
                        CombinedLoss.class, c -> assertThat(c.terms()).hasSize(3));
        assertThat(TrainConfig.resolve(yaml(mpo.toYaml()), Map.of()))
                .as("config.yaml resolves again")
                .isEqualTo(mpo);
        Map<String, Object> comma = new HashMap<>(base);
        comma.put("loss", "ipo,sft");
        assertThat(TrainConfig.resolve(null, comma).objectives()).containsExactly(LossType.IPO, LossType.SFT);
        Map<String, Object> one = new HashMap<>(base);
        one.put("loss_type", List.of("apo_zero"));
        TrainConfig apo = TrainConfig.resolve(null, one);
        assertThat(apo.loss()).isEqualTo(LossType.APO_ZERO);
        assertThat(apo.combinedObjective()).isFalse();
        assertThat(PreferenceTrainer.objective(apo)).isInstanceOf(ApoLoss.class);
        Map<String, Object> js = new HashMap<>(base);
        js.put("f_divergence_type", "js_divergence");
        assertThat(PreferenceTrainer.objective(TrainConfig.resolve(null, js)))
                .isInstanceOfSatisfying(
                        CombinedLoss.class, c -> assertThat(c.divergence()).isEqualTo(FDivergence.JS_DIVERGENCE));
    }

    @Test
    void flagsAreNamedAsTheUserTypedThem() {
        Map<String, Object> flags =
                Map.of("model", "m", "data", "d", "output", "o", "loss", "ipo", "label_smoothing", "0.2");
        assertThatThrownBy(() -> TrainConfig.resolve(Map.of(), null, flags, k -> "--" + k.replace('_', '-')))
                .hasMessageStartingWith("--label-smoothing: loss ipo does not use it");
    }

    @Test
    void defaultsDependOnTheObjectiveAsInTrl() {
        Map<String, Object> base = Map.of("model", "m", "data", "d", "output", "o");
        assertThat(TrainConfig.resolve(Map.of("loss", LossType.SFT), null, base, k -> k)
                        .learningRate())
                .as("TRL SFTConfig")
                .isEqualTo(2e-5);
        assertThat(TrainConfig.resolve(null, base).learningRate())
                .as("TRL DPOConfig")
                .isEqualTo(1e-6);
        assertThat(TrainConfig.resolve(null, Map.of("model", "m", "data", "d", "output", "o", "loss", "cdpo"))
                        .labelSmoothing())
                .isEqualTo(0.1);
        assertThat(TrainConfig.resolve(null, Map.of("model", "m", "data", "d", "output", "o", "loss", "robust"))
                        .labelSmoothing())
                .isEqualTo(0.1);
        assertThat(TrainConfig.resolve(null, base).labelSmoothing()).isZero();
    }

    @Test
    void theBuilderYamlAndToYamlAgree() throws IOException {
        TrainConfig built = TrainConfig.builder()
                .model(Path.of("m"))
                .data(Path.of("d"))
                .output(Path.of("o"))
                .loss(LossType.IPO_SOFT)
                .beta(0.2)
                .preference(0.7)
                .learningRate(3e-6)
                .batchSize(2)
                .gradAccum(8)
                .maxSteps(40)
                .schedule(TrainConfig.Schedule.COSINE)
                .format(DataFormat.CONVERSATIONAL)
                .attention(Compute.Attention.EAGER)
                .build();
        TrainConfig fromYaml = TrainConfig.resolve(yaml("""
                model: m
                data: d
                output: o
                loss: ipo-soft
                beta: 0.2
                preference: 0.7
                learning_rate: 3e-6
                batch_size: 2
                grad_accum: 8
                max_steps: 40
                schedule: cosine
                format: conversational
                attention: eager
                """), Map.of());
        assertThat(built).isEqualTo(fromYaml);
        assertThat(TrainConfig.resolve(yaml(built.toYaml()), Map.of())).isEqualTo(built);
        assertThat(built.differences(TrainConfig.builder()
                        .model(Path.of("m"))
                        .data(Path.of("d"))
                        .output(Path.of("o"))
                        .build()))
                .containsKeys("loss", "beta", "preference", "learning_rate", "batch_size")
                .doesNotContainKey("model");
    }

    @Test
    void theReadmeTableListsEveryTrlAlias() throws IOException {
        Path readme = Path.of(System.getProperty("maven.multiModuleProjectDirectory", ".."))
                .resolve("README.md");
        String text = Files.readString(Files.exists(readme) ? readme : Path.of("..", "README.md"));
        String table = text.substring(text.indexOf("### Coming from TRL"), text.indexOf("What a run writes"));
        for (TrlNames.Alias a : TrlNames.aliases()) {
            assertThat(table).as("README's TRL table").contains("| `" + a.trlName() + "` | `" + a.key() + "` |");
        }
        for (String name : TrlNames.acceptedWithoutEffectValues().keySet()) {
            assertThat(table).contains("`" + name + "`");
        }
        // DPOConfig's loss options that are align4j keys under the same name
        for (String key : List.of(
                "loss_weights",
                "f_divergence_type",
                "f_alpha_divergence_coef",
                "ld_alpha",
                "use_weighting",
                "discopop_tau")) {
            assertThat(TrainConfig.keys()).contains(key);
            assertThat(table).as("README's TRL table").contains("`" + key + "`");
        }
    }

    @Test
    void theTrainersRefuseTheOtherKindOfObjective() {
        String out = tmp.resolve("o").toString();
        TrainConfig sft = TrainConfig.resolve(
                Map.of("loss", "sft"), null, Map.of("model", "m", "data", "d", "output", out), k -> k);
        assertThatThrownBy(() -> PreferenceTrainer.create(sft, false))
                .hasMessageContaining("key 'loss': sft is not a preference objective");
        TrainConfig dpo = TrainConfig.resolve(null, Map.of("model", "m", "data", "d", "output", out));
        assertThatThrownBy(() -> SftTrainer.create(dpo, false))
                .hasMessageContaining("key 'loss': SFT trains loss sft, got dpo");
        assertThat(tmp.resolve("o")).as("refused before the run folder is made").doesNotExist();
    }
}
