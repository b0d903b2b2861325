package org.align4j.model.lora;

import com.google.re2j.Pattern;
import com.google.re2j.PatternSyntaxException;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import org.align4j.model.nn.CausalLmBlock;
import org.align4j.model.nn.Projection;

/**
 * A LoRA configuration as PEFT's {@code LoraConfig} has it (Hu et al., 2021, "LoRA: Low-Rank
 * Adaptation of Large Language Models", arXiv:2106.09685; rsLoRA: Kalajdzievski, 2023,
 * arXiv:2312.03732): rank r, α, dropout on the adapter's input, the target modules, and whether the
 * scale is α/r or α/√r.
 *
 * <p>Target modules follow PEFT's rules: a list of names matches a module whose full name equals an
 * entry or ends with {@code "." + entry} ({@code q_proj} matches {@code model.layers.3.self_attn.q_proj});
 * {@code all-linear} is every linear map of the layers (PEFT leaves out the LM head, and so does
 * align4j); any other single string is a regular expression the full module name must match entirely.
 * Without targets, PEFT's defaults per architecture apply: {@code c_attn} for GPT-2, {@code q_proj} and
 * {@code v_proj} for the Llama family.
 *
 * @param r the rank, at least 1
 * @param alpha α; the adapter's output is scaled by α/r (α/√r with rsLoRA)
 * @param dropout dropout probability on the adapter's input during training, in [0, 1)
 * @param targets which projections get an adapter
 * @param useRslora scale by α/√r instead of α/r
 */
public record LoraConfig(int r, double alpha, double dropout, Targets targets, boolean useRslora) {
    /** The shorthand PEFT and align4j accept for every linear map of the layers. */
    public static final String ALL_LINEAR = "all-linear";

    /** Which modules get adapters. */
    public sealed interface Targets {
        /** @return the value as PEFT's {@code target_modules} has it: a list, or a string */
        Object peftValue();
    }

    /**
     * Module names, matched exactly or as the last parts of a module's name.
     *
     * @param names e.g. {@code q_proj}, {@code mlp.c_proj}, {@code model.layers.0.self_attn.v_proj}
     */
    public record Names(List<String> names) implements Targets {
        /** @param names the names, at least one */
        public Names {
            names = List.copyOf(names);
            if (names.isEmpty()) {
                throw new IllegalArgumentException(
                        "LoRA target modules: give at least one module name (or all-linear)");
            }
        }

        @Override
        public Object peftValue() {
            return names;
        }
    }

    /** Every linear map of the layers (PEFT's {@code all-linear}; not the LM head). */
    public record AllLinear() implements Targets {
        @Override
        public Object peftValue() {
            return ALL_LINEAR;
        }
    }

    /**
     * A regular expression over full module names (PEFT's string form of {@code target_modules}).
     *
     * @param regex matched against the whole name, in linear time (RE2 syntax: a nested quantifier such
     *     as {@code (a+)+$} cannot backtrack for minutes; back-references and look-arounds are refused)
     */
    public record Regex(String regex) implements Targets {
        /** @param regex the expression */
        public Regex {
            try {
                Pattern.compile(regex);
            } catch (PatternSyntaxException e) {
                throw new IllegalArgumentException("LoRA target modules: not a valid regular expression: " + regex, e);
            }
        }

        @Override
        public Object peftValue() {
            return regex;
        }
    }

    /** PEFT's defaults: the targets used when none are given. */
    public record Default() implements Targets {
        @Override
        public Object peftValue() {
            return null;
        }
    }

    /** Validates r, α and dropout. */
    public LoraConfig {
        if (r < 1) {
            throw new IllegalArgumentException("LoRA rank r must be at least 1, got " + r);
        }
        if (!Double.isFinite(alpha)) {
            throw new IllegalArgumentException("LoRA alpha must be a finite number, got " + alpha);
        }
        double scale = useRslora ? alpha / Math.sqrt(r) : alpha / r;
        if (!Float.isFinite((float) scale)) {
            throw new IllegalArgumentException("LoRA alpha " + alpha + " makes the adapter's scale " + scale
                    + ", beyond float32's range: every output would be infinite");
        }
        if (!(dropout >= 0 && dropout < 1)) {
            throw new IllegalArgumentException("LoRA dropout must be in [0, 1), got " + dropout);
        }
        if (targets == null) {
            targets = new Default();
        }
    }

    /**
     * A configuration with PEFT's defaults besides r and α: no dropout, the default targets, scale α/r.
     *
     * @param r the rank
     * @param alpha α
     * @return the configuration
     */
    public static LoraConfig of(int r, double alpha) {
        return new LoraConfig(r, alpha, 0.0, new Default(), false);
    }

    /**
     * Targets as a command line or a YAML file gives them: {@code all-linear}, or module names
     * separated by commas.
     *
     * @param spec the text; null or blank for PEFT's defaults
     * @return the targets
     */
    public static Targets parseTargets(String spec) {
        if (spec == null || spec.isBlank()) {
            return new Default();
        }
        if (ALL_LINEAR.equals(spec.trim().toLowerCase(Locale.ROOT))) {
            return new AllLinear();
        }
        List<String> names = new ArrayList<>();
        for (String s : spec.split(",")) {
            if (!s.isBlank()) {
                names.add(s.trim());
            }
        }
        return new Names(names);
    }

    /** @return this configuration with other targets */
    public LoraConfig withTargets(Targets newTargets) {
        return new LoraConfig(r, alpha, dropout, newTargets, useRslora);
    }

    /** @return this configuration with another dropout */
    public LoraConfig withDropout(double newDropout) {
        return new LoraConfig(r, alpha, newDropout, targets, useRslora);
    }

    /** @return this configuration with rsLoRA's scale α/√r on or off */
    public LoraConfig withRslora(boolean on) {
        return new LoraConfig(r, alpha, dropout, targets, on);
    }

    /** @return s, the scale of the adapter's output: α/r, or α/√r with rsLoRA */
    public double scale() {
        return useRslora ? alpha / Math.sqrt(r) : alpha / r;
    }

    /**
     * PEFT's default targets for an architecture.
     *
     * @param modelType the HF {@code model_type}
     * @return the module names
     */
    public static List<String> defaultTargets(String modelType) {
        return "gpt2".equals(modelType) ? List.of("c_attn") : List.of("q_proj", "v_proj");
    }

    /**
     * The projections of a model these targets select, in the model's order.
     *
     * @param block the model
     * @return the selected projections
     * @throws IllegalArgumentException naming a target that matches no linear map of the layers, and
     *     listing the names that do
     */
    public List<Projection> select(CausalLmBlock block) {
        List<Projection> all = new ArrayList<>(block.projections().values());
        List<Projection> out = new ArrayList<>();
        Targets t = targets instanceof Default
                ? new Names(defaultTargets(block.config().modelType()))
                : targets;
        if (t instanceof AllLinear) {
            return all;
        }
        if (t instanceof Regex re) {
            Pattern p = Pattern.compile(re.regex());
            for (Projection proj : all) {
                if (p.matcher(proj.module()).matches()) {
                    out.add(proj);
                }
            }
            if (out.isEmpty()) {
                throw new IllegalArgumentException("LoRA target modules: the expression '" + re.regex()
                        + "' matches no linear map of this " + block.config().modelType()
                        + " model; its modules are named like " + all.get(0).module());
            }
            return out;
        }
        List<String> names = ((Names) t).names();
        for (String name : names) {
            if (all.stream().noneMatch(p -> matches(p.module(), name))) {
                throw new IllegalArgumentException("LoRA target module '" + name + "': no linear map of this "
                        + block.config().modelType()
                        + " model is called that; choose from " + shortNames(all) + " or " + ALL_LINEAR
                        + " (the LM head and embeddings cannot carry an adapter)");
            }
        }
        for (Projection p : all) {
            if (names.stream().anyMatch(n -> matches(p.module(), n))) {
                out.add(p);
            }
        }
        return out;
    }

    /** PEFT's rule for a list of targets: the module's name is the target or ends with ".target". */
    static boolean matches(String module, String target) {
        return module.equals(target) || module.endsWith("." + target);
    }

    private static Set<String> shortNames(List<Projection> all) {
        Set<String> s = new LinkedHashSet<>();
        all.forEach(p -> s.add(p.shortName()));
        return s;
    }
}
