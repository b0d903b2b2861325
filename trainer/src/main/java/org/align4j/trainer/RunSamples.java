package org.align4j.trainer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.align4j.data.EncodedPair;
import org.align4j.data.PreferenceData;
import org.align4j.evaluation.WinRate;
import org.align4j.evaluation.report.RunReport;
import org.align4j.losses.LossType;
import org.align4j.model.CausalLm;
import org.align4j.model.Devices;
import org.align4j.model.generate.GenerationConfig;
import org.align4j.model.tokenizer.TextTokenizer;

/**
 * Sample generations of a finished run for its report: greedy answers of the trained policy
 * ({@code RUN/final}) and of its reference (the starting model) to the first held-out prompts (or
 * the first training prompts without an eval set), written to {@code RUN/samples.jsonl} with the
 * prompt and the chosen answer of the data.
 */
public final class RunSamples {
    private RunSamples() {}

    /**
     * @param run a run folder written by the trainer (config.yaml and final/)
     * @param count prompts
     * @param maxNewTokens longest answer
     * @return the samples file
     * @throws IOException when a file cannot be read or written
     * @throws IllegalArgumentException naming the file that is missing
     */
    public static Path write(Path run, int count, int maxNewTokens) throws IOException {
        Path configFile = run.resolve("config.yaml");
        Path policyDir = run.resolve("final");
        if (!Files.isRegularFile(configFile) || !Files.isDirectory(policyDir)) {
            throw new IllegalArgumentException(
                    run + ": samples need a finished run (config.yaml and final/ are missing)");
        }
        TrainConfig config = TrainConfig.resolveSaved(configFile);
        Path referenceDir = Path.of(config.loss() == LossType.SFT ? config.model() : config.referenceModelOrModel());
        try (TextTokenizer tk = TextTokenizer.load(policyDir)) {
            RunData data = RunData.load(
                    config,
                    tk,
                    config.loss() == LossType.SFT
                            ? SftTrainer::load
                            : (path, format, skip) ->
                                    PreferenceData.load(path, format, skip).examples());
            List<EncodedPair> pairs = data.eval().isEmpty() ? data.train() : data.eval();
            pairs = pairs.subList(0, Math.min(count, pairs.size()));
            List<int[]> prompts = new ArrayList<>();
            for (EncodedPair p : pairs) {
                prompts.add(p.prompt());
            }
            GenerationConfig greedy = GenerationConfig.greedy(maxNewTokens);
            List<String> mine;
            List<String> theirs;
            try (CausalLm policy = CausalLm.load(policyDir, Devices.resolve(config.device()))) {
                mine = WinRate.generateFromIds(policy, tk, prompts, greedy, config.evalBatchSize());
            }
            try (CausalLm reference = CausalLm.load(referenceDir, Devices.resolve(config.device()))) {
                theirs = WinRate.generateFromIds(reference, tk, prompts, greedy, config.evalBatchSize());
            }
            List<RunReport.Sample> samples = new ArrayList<>();
            for (int i = 0; i < pairs.size(); i++) {
                samples.add(new RunReport.Sample(
                        tk.decode(pairs.get(i).prompt(), false),
                        null,
                        tk.decode(pairs.get(i).chosen(), true),
                        theirs.get(i),
                        mine.get(i)));
            }
            Path file = run.resolve("samples.jsonl");
            RunReport.writeSamples(file, samples);
            return file;
        }
    }
}
