package org.align4j.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import org.align4j.data.PreferenceData;
import org.align4j.data.PreferenceEncoder;
import org.align4j.data.PreferenceExample;
import org.align4j.data.PromptData;
import org.align4j.evaluation.rewards.BuiltinRewards;
import org.align4j.evaluation.rewards.RewardFunction;
import org.align4j.losses.LossType;
import org.align4j.model.config.ModelConfig;
import org.align4j.model.io.ModelFolder;
import org.align4j.model.tokenizer.TextTokenizer;
import org.align4j.trainer.SftTrainer;
import org.align4j.trainer.TrainConfig;
import org.align4j.trainer.rl.OnlineRlTrainer;
import org.align4j.trainer.rl.RlConfig;

/**
 * {@code train --dry-run} and {@code sft --dry-run}: everything a run would start from, without loading
 * weights or touching the run folder: the resolved config, the model's shape, the data's counts and
 * token lengths, and the first example as training sees it. Bad input fails here as it would in the run.
 */
final class DryRun {
    private DryRun() {}

    static void print(PrintWriter w, TrainConfig config) {
        w.println("# the resolved config (what OUTPUT/config.yaml will hold)");
        w.print(config.toYaml());
        Path modelDir = ModelFolder.resolve(Path.of(config.model()));
        TextTokenizer.load(modelDir).close(); // the same errors as the run for a wrong folder
        ModelConfig m = ModelConfig.read(modelDir.resolve("config.json"));
        printModel(w, m);
        try (TextTokenizer tk = TextTokenizer.load(modelDir)) {
            PreferenceEncoder encoder = new PreferenceEncoder(tk, config.encodingOptions());
            PreferenceData.Loaded data = load(config, Path.of(config.data()));
            if (config.evalData() == null && config.evalFraction() > 0) {
                PreferenceData.Split split =
                        PreferenceData.split(data.examples(), config.evalFraction(), config.seed());
                w.printf(
                        Locale.ROOT,
                        "%n# held out: %d of %d examples (eval_fraction %s)%n",
                        split.eval().size(),
                        data.examples().size(),
                        TrainConfig.defaultFormat(config.evalFraction()));
                data = new PreferenceData.Loaded(split.train(), data.invalid());
            }
            w.printf("%n# training data: %s%n", config.data());
            report(w, config, tk, encoder, data, 1);
            if (config.evalData() != null) {
                w.printf("%n# held-out data: %s%n", config.evalData());
                report(w, config, tk, encoder, load(config, Path.of(config.evalData())), 0);
            }
        }
        w.flush();
    }

    /**
     * {@code grpo --dry-run} and {@code rloo --dry-run}: both configs, the model's shape, the prompts' counts and
     * token lengths (as the sampler gets them), and the first prompt with its fields.
     */
    static void print(PrintWriter w, RlConfig.Run run) {
        OnlineRlTrainer.check(run); // the checks the run makes before it loads anything
        TrainConfig config = run.train();
        w.println("# the resolved config (what OUTPUT/config.yaml will hold, with the method's keys below)");
        w.print(OnlineRlTrainer.configYaml(run));
        Path modelDir = Path.of(config.model());
        ModelConfig m = ModelConfig.read(modelDir.resolve("config.json"));
        printModel(w, m);
        if (run.rl().ppo() != null && run.rl().ppo().valueModel() != null) {
            // the check the run makes once the value model is loaded, from its config alone
            Path v = ModelFolder.resolve(Path.of(run.rl().ppo().valueModel()));
            ModelFolder.check(v, "config.json");
            OnlineRlTrainer.requireSameShape(
                    run.rl().where("value_model"), v, ModelConfig.read(v.resolve("config.json")), m);
        }
        try (TextTokenizer tk = TextTokenizer.load(modelDir)) {
            PreferenceEncoder encoder = new PreferenceEncoder(tk, config.encodingOptions());
            for (String part :
                    config.evalData() == null ? List.of(config.data()) : List.of(config.data(), config.evalData())) {
                List<PromptData.PromptExample> prompts = PromptData.load(Path.of(part), config.skipInvalid());
                int[] lengths = new int[prompts.size()];
                List<int[]> encoded = new ArrayList<>();
                for (int i = 0; i < lengths.length; i++) {
                    encoded.add(encoder.encodePrompt(prompts.get(i).example()));
                    lengths[i] = encoded.get(i).length;
                }
                OnlineRlTrainer.checkFits(m, prompts, encoded, run.rl().maxCompletionLength());
                // the fields the built-in rewards read (a class or a reward model is only loaded by the run)
                List<RewardFunction> builtins = new ArrayList<>();
                for (String spec : run.rl().rewardFuncs()) {
                    RewardFunction f = BuiltinRewards.parse(spec);
                    if (f != null) {
                        builtins.add(f);
                    }
                }
                OnlineRlTrainer.requireFields(builtins, prompts);
                w.printf(
                        "%n# prompts: %s: %d (eval_fraction %s of them held out when no eval_data)%n",
                        part, prompts.size(), TrainConfig.defaultFormat(config.evalFraction()));
                w.println("tokens            p50     p90     p99     max");
                DataCommand.Inspect.row(w, "prompt", lengths);
                PromptData.PromptExample first = prompts.get(0);
                int[] ids = encoder.encodePrompt(first.example());
                w.printf(
                        "%n[0] %s%n  prompt_text:%n%s%n  prompt_ids: %s%n  fields: %s%n",
                        first.source(),
                        DataCommand.Inspect.indent(encoder.promptText(first.example())),
                        Arrays.toString(ids),
                        first.fields());
            }
        }
        w.flush();
    }

    private static void printModel(PrintWriter w, ModelConfig m) {
        w.printf(
                Locale.ROOT,
                "%n# model: %s, %d layers, width %d, vocabulary %d, %d positions%n",
                m.modelType(),
                m.numLayers(),
                m.hiddenSize(),
                m.vocabSize(),
                m.maxPositions());
    }

    private static void report(
            PrintWriter w,
            TrainConfig config,
            TextTokenizer tk,
            PreferenceEncoder encoder,
            PreferenceData.Loaded data,
            int show) {
        if (config.loss() != LossType.REWARD) {
            DataCommand.Inspect.report(w, encoder, data, config.skipInvalid(), show, false);
            return;
        }
        // a reward model reads each side of a pair as one sequence, prompt and response together
        PreferenceEncoder.Encoded enc =
                encoder.encodeAll(data.examples(), config.skipInvalid(), PreferenceEncoder.Target.REWARD_MODEL);
        w.printf(
                "pairs %d   invalid %d   dropped (a sequence longer than max_length) %d%n",
                enc.pairs().size(), data.invalid().size() + enc.invalid().size(), enc.dropped());
        if (enc.pairs().isEmpty()) {
            return;
        }
        w.println("tokens            p50     p90     p99     max");
        DataCommand.Inspect.row(
                w,
                "chosen",
                enc.pairs().stream().mapToInt(p -> p.chosen().length).toArray());
        DataCommand.Inspect.row(
                w,
                "rejected",
                enc.pairs().stream().mapToInt(p -> p.rejected().length).toArray());
        for (int i = 0; i < Math.min(show, enc.pairs().size()); i++) {
            w.printf(
                    "%n[%d] %s:%d%n",
                    i, enc.kept().get(i).file().getFileName(), enc.kept().get(i).line());
            for (String part : List.of("chosen", "rejected")) {
                int[] ids = part.equals("chosen")
                        ? enc.pairs().get(i).chosen()
                        : enc.pairs().get(i).rejected();
                w.printf(
                        "  %s_text:%n%s%n  %s_ids: %s%n",
                        part, DataCommand.Inspect.indent(tk.decode(ids, false)), part, Arrays.toString(ids));
            }
        }
    }

    private static PreferenceData.Loaded load(TrainConfig config, Path path) {
        if (config.loss() == LossType.SFT) {
            List<PreferenceExample> examples = SftTrainer.load(path, config.format(), config.skipInvalid());
            return new PreferenceData.Loaded(examples, List.of());
        }
        return PreferenceData.load(path, config.format(), config.skipInvalid());
    }
}
