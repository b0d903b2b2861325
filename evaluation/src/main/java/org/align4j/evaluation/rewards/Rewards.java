package org.align4j.evaluation.rewards;

import ai.djl.Device;
import java.lang.reflect.InvocationTargetException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.align4j.model.CausalLm;
import org.align4j.model.hub.HubId;
import org.align4j.model.io.ModelFolder;
import org.align4j.model.tokenizer.TextTokenizer;

/**
 * Several rewards with weights (TRL's {@code reward_funcs} and {@code reward_weights}): each sample's
 * reward is Σ_k w_k·r_k over the functions that did not abstain, NaN when all abstained.
 */
public final class Rewards implements AutoCloseable {
    private final List<RewardFunction> functions;
    private final List<RewardFunction> originals;
    private final double[] weights;

    /**
     * @param functions the rewards (closed with this set when they are {@link AutoCloseable})
     * @param weights one weight each, or null for all 1
     * @throws IllegalArgumentException when there is no function or the weights do not match
     */
    public Rewards(List<RewardFunction> functions, List<Double> weights) {
        if (functions.isEmpty()) {
            throw new IllegalArgumentException("reward_funcs: give at least one reward");
        }
        if (weights != null && !weights.isEmpty() && weights.size() != functions.size()) {
            throw new IllegalArgumentException("reward_weights: " + weights.size() + " weights for " + functions.size()
                    + " reward_funcs; give one per function");
        }
        this.originals = List.copyOf(functions);
        this.functions = uniquelyNamed(functions);
        this.weights = new double[functions.size()];
        for (int i = 0; i < this.weights.length; i++) {
            this.weights[i] = weights == null || weights.isEmpty() ? 1.0 : weights.get(i);
            if (!Double.isFinite(this.weights[i])) {
                throw new IllegalArgumentException("reward_weights: must be finite numbers, got " + weights);
            }
        }
    }

    /** Two rewards of one name (two regexes, two reward models' final/) get _2, _3 ... so their metrics stay apart. */
    private static List<RewardFunction> uniquelyNamed(List<RewardFunction> functions) {
        List<RewardFunction> out = new ArrayList<>();
        Map<String, Integer> seen = new HashMap<>();
        for (RewardFunction f : functions) {
            int n = seen.merge(f.name(), 1, Integer::sum);
            if (n == 1) {
                out.add(f);
                continue;
            }
            String name = f.name() + "_" + n;
            out.add(new RewardFunction() {
                @Override
                public String name() {
                    return name;
                }

                @Override
                public List<String> requiredFields() {
                    return f.requiredFields();
                }

                @Override
                public List<Double> score(List<Sample> samples) {
                    return f.score(samples);
                }
            });
        }
        return List.copyOf(out);
    }

    /**
     * Builds one reward from its spec: a built-in ({@link BuiltinRewards}), {@code class:NAME} (a class on
     * the classpath implementing {@link RewardFunction}, with a public no-argument constructor), or the
     * folder of a reward model (with its tokenizer).
     *
     * @param spec the spec
     * @param device where a reward model runs
     * @param appendEos how a reward model reads a sample ({@link RewardModelFunction})
     * @param batchSize samples per reward-model pass
     * @return the reward
     * @throws IllegalArgumentException naming the spec when it names nothing usable
     */
    public static RewardFunction parse(String spec, Device device, boolean appendEos, int batchSize) {
        RewardFunction builtin = BuiltinRewards.parse(spec);
        if (builtin != null) {
            return builtin;
        }
        if (spec.startsWith("class:")) {
            String name = spec.substring("class:".length());
            try {
                Object o = Class.forName(name).getDeclaredConstructor().newInstance();
                if (!(o instanceof RewardFunction f)) {
                    throw new IllegalArgumentException(
                            "'" + spec + "': " + name + " does not implement " + RewardFunction.class.getName());
                }
                return f;
            } catch (ClassNotFoundException e) {
                throw new IllegalArgumentException(noClass(spec, name));
            } catch (NoSuchMethodException e) {
                throw new IllegalArgumentException(
                        "'" + spec + "': " + name + " has no public no-argument constructor");
            } catch (InvocationTargetException | InstantiationException | IllegalAccessException e) {
                Throwable cause = e instanceof InvocationTargetException i ? i.getCause() : e;
                throw new IllegalArgumentException("'" + spec + "': cannot create " + name + ": " + cause);
            }
        }
        Path dir = ModelFolder.resolve(Path.of(spec)); // a Hub id is fetched into the shared cache
        if (Files.isDirectory(dir)) {
            if (!Files.isRegularFile(dir.resolve("tokenizer.json"))) {
                throw new IllegalArgumentException("'" + spec + "': a reward model folder needs its tokenizer "
                        + "(tokenizer.json is missing; reward train writes it beside the weights)");
            }
            TextTokenizer tokenizer = TextTokenizer.load(dir);
            CausalLm model;
            try {
                model = CausalLm.load(dir, device);
            } catch (RuntimeException e) {
                tokenizer.close();
                throw e;
            }
            try {
                return new RewardModelFunction(model, tokenizer, appendEos, batchSize);
            } catch (RuntimeException e) {
                model.close();
                tokenizer.close();
                throw e;
            }
        }
        throw new IllegalArgumentException("'" + spec + "': not a built-in reward ("
                + String.join(", ", BuiltinRewards.forms()) + "), a class:NAME or a reward model folder");
    }

    /**
     * Checks a spec without loading anything heavy: a built-in's arguments, that a {@code class:} names a
     * loadable class, that a folder exists and holds a config and a tokenizer.
     *
     * @param spec the spec
     * @throws IllegalArgumentException saying what is wrong with it
     */
    public static void check(String spec) {
        if (BuiltinRewards.parse(spec) != null) {
            return;
        }
        if (spec.startsWith("class:")) {
            String name = spec.substring("class:".length());
            try {
                Class<?> c = Class.forName(name);
                if (!RewardFunction.class.isAssignableFrom(c)) {
                    throw new IllegalArgumentException(
                            "'" + spec + "': " + name + " does not implement " + RewardFunction.class.getName());
                }
                return;
            } catch (ClassNotFoundException e) {
                throw new IllegalArgumentException(noClass(spec, name));
            }
        }
        Path dir = Path.of(spec);
        if (!Files.isDirectory(dir) && HubId.ifId(spec, HubId.Type.MODEL).isPresent()) {
            return; // a reward model by Hub id: fetched (and checked) when the run loads it
        }
        if (!Files.isDirectory(dir)) {
            throw new IllegalArgumentException("'" + spec + "': not a built-in reward ("
                    + String.join(", ", BuiltinRewards.forms()) + "), a class:NAME or a reward model folder");
        }
        if (!Files.isRegularFile(dir.resolve("config.json"))
                && !Files.isRegularFile(dir.resolve("adapter_config.json"))) {
            throw new IllegalArgumentException("'" + spec + "': a reward model folder needs its config.json (or, for a "
                    + "LoRA reward model, adapter_config.json)");
        }
        if (!Files.isRegularFile(dir.resolve("tokenizer.json"))) {
            throw new IllegalArgumentException("'" + spec + "': a reward model folder needs its tokenizer "
                    + "(tokenizer.json is missing; reward train writes it beside the weights)");
        }
    }

    /** @return the functions, in order */
    public List<RewardFunction> functions() {
        return functions;
    }

    /** @return the weights, in order */
    public double[] weights() {
        return weights.clone();
    }

    /**
     * Scores a batch with every function.
     *
     * @param samples the samples
     * @return [function][sample] scores, NaN where a function abstained
     * @throws RewardException naming the function and the sample's record when a function throws, returns
     *     the wrong number of scores, or returns NaN or an infinity
     */
    public double[][] score(List<RewardFunction.Sample> samples) {
        double[][] out = new double[functions.size()][];
        for (int k = 0; k < functions.size(); k++) {
            RewardFunction f = functions.get(k);
            List<Double> scores;
            try {
                scores = f.score(samples);
            } catch (RuntimeException e) {
                throw new RewardException(
                        "reward '" + f.name() + "' failed on the batch starting at "
                                + samples.get(0).source() + ": " + e,
                        e);
            }
            if (scores == null || scores.size() != samples.size()) {
                throw new RewardException(
                        "reward '" + f.name() + "': returned "
                                + (scores == null ? "null" : scores.size() + " scores") + " for " + samples.size()
                                + " samples",
                        null);
            }
            out[k] = new double[samples.size()];
            for (int i = 0; i < samples.size(); i++) {
                Double v = scores.get(i);
                if (v != null && !Double.isFinite(v)) {
                    throw new RewardException(
                            "reward '" + f.name() + "': returned " + v + " for the sample of "
                                    + samples.get(i).source() + " (return null to abstain)",
                            null);
                }
                out[k][i] = v == null ? Double.NaN : v;
            }
        }
        return out;
    }

    /**
     * @param perFunction [function][sample] scores, NaN = abstained
     * @return per sample Σ_k w_k·r_k over the functions that scored it, NaN when none did
     */
    public double[] combine(double[][] perFunction) {
        int n = perFunction[0].length;
        double[] out = new double[n];
        for (int i = 0; i < n; i++) {
            double s = 0;
            boolean any = false;
            for (int k = 0; k < perFunction.length; k++) {
                if (!Double.isNaN(perFunction[k][i])) {
                    s += weights[k] * perFunction[k][i];
                    any = true;
                }
            }
            out[i] = any ? s : Double.NaN;
        }
        return out;
    }

    @Override
    public void close() {
        for (RewardFunction f : originals) {
            if (f instanceof AutoCloseable c) {
                try {
                    c.close();
                } catch (Exception e) {
                    // closing frees native memory; nothing to report to the run
                }
            }
        }
    }

    /** A reward function that failed or returned what no reward may be (bad input to the run: exit 2 on the CLI). */
    public static final class RewardException extends IllegalArgumentException {
        private static final long serialVersionUID = 1L;

        RewardException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /** The one line for a {@code class:NAME} reward whose class is not there, with where to put it. */
    private static String noClass(String spec, String name) {
        return "'" + spec + "': no class " + name + " on the classpath (with ./align4j, put its classes or jar in"
                + " ALIGN4J_CLASSPATH)";
    }
}
