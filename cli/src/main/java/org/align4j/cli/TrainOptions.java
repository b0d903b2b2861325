package org.align4j.cli;

import java.lang.reflect.RecordComponent;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.align4j.losses.LossType;
import org.align4j.trainer.CpoConfig;
import org.align4j.trainer.KtoConfig;
import org.align4j.trainer.RunFolder;
import org.align4j.trainer.TrainConfig;
import org.align4j.trainer.TrlNames;
import org.align4j.trainer.rl.RlConfig;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.ISetter;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Option;

/**
 * The flags of {@code train}, {@code sft}, {@code reward train}, and the shared ones of {@code kto},
 * {@code orpo}, {@code cpo}, {@code grpo} and {@code rloo}. The config flags are made from {@link TrainConfig}'s
 * table, not written out here: each key is {@code --kebab-case} and {@code --snake_case}, TRL's name
 * for it ({@code --per_device_train_batch_size}) is a hidden alias, and a TRL option with no align4j
 * meaning is a hidden flag that is refused with the reason. Only flags given on the command line
 * override the YAML file.
 */
final class TrainOptions {
    @Option(
            names = "--config",
            paramLabel = "FILE.yaml",
            description = "YAML config (align4j or TRL key names); flags override it")
    Path config;

    @Option(
            names = "--resume",
            arity = "0..1",
            fallbackValue = "",
            paramLabel = "CHECKPOINT",
            description =
                    "Continue from the newest checkpoint in --output (which must exist), or from the checkpoint folder given")
    String resume;

    @Option(
            names = "--overwrite",
            description = "Delete the run already in --output (its checkpoints, final/, logs) and start afresh")
    boolean overwrite;

    @Option(
            names = "--dry-run",
            description =
                    "Print the resolved config, the data's counts and token lengths and the first example as training sees it; train nothing")
    boolean dryRun;

    @Option(
            names = "--nproc",
            paramLabel = "N",
            description =
                    "Train with N processes on this machine (data parallel over Open MPI's mpirun; batch_size is per process,"
                            + " so a step takes batch_size x N examples); under mpirun or srun leave it out")
    Integer nproc;

    @Option(
            names = "--threads",
            description = "libtorch intra-op threads on the CPU (default: libtorch's; 1 is bit-reproducible)")
    Integer threads;

    /** Keys only offline objectives read: hidden from grpo's and rloo's --help (given, they are refused by name). */
    private static final Set<String> OFFLINE_ONLY = Set.of(
            "loss",
            "label_smoothing",
            "preference",
            "gamma",
            "center_rewards_coefficient",
            "loss_terms",
            "loss_weights",
            "f_divergence_type",
            "f_alpha_divergence_coef",
            "ld_alpha",
            "use_weighting",
            "discopop_tau",
            "cache_dir",
            "max_length",
            "eval_kl",
            "eval_samples",
            "eval_judge",
            "eval_max_new_tokens");

    /**
     * Keys {@code train}'s DPO objectives read and the commands of KTO, ORPO and CPO do not: hidden from their
     * {@code --help} (given, they are refused by name).
     */
    private static final Set<String> DPO_ONLY = Set.of(
            "loss",
            "preference",
            "center_rewards_coefficient",
            "loss_terms",
            "loss_weights",
            "f_divergence_type",
            "f_alpha_divergence_coef",
            "ld_alpha",
            "use_weighting",
            "discopop_tau");

    /** @return whether {@code key}'s flag is left out of the {@code --help} of {@code objective}'s command */
    private static boolean hiddenFor(String key, LossType objective) {
        if (objective.isOnline()) {
            return OFFLINE_ONLY.contains(key);
        }
        if (!objective.hasOwnTrainer()) {
            return false;
        }
        if (DPO_ONLY.contains(key)) {
            return true;
        }
        if ((key.equals("label_smoothing") || key.equals("gamma")) && objective != LossType.CPO) {
            return true;
        }
        if (objective == LossType.KTO) {
            return List.of("eval_kl", "eval_samples", "eval_judge", "eval_max_new_tokens")
                    .contains(key);
        }
        return List.of(
                        "reference",
                        "reference_model",
                        "reference_dtype",
                        "cache_dir",
                        "eval_kl",
                        "max_prompt_length",
                        "truncation",
                        "padding_free")
                .contains(key);
    }

    /** Config key or TRL name → the value given on the command line (a string, or a Boolean for switches). */
    private final Map<String, Object> given = new LinkedHashMap<>();

    /**
     * Adds a flag for every config key and TRL name to a command.
     *
     * @param spec the command ({@code train}, {@code sft} or {@code reward train})
     * @param options the command's options object, which collects the values
     * @param objective the command's objective, whose defaults {@code --help} shows (sft's learning rate is 2e-5, reward's 1e-4)
     */
    static void register(CommandSpec spec, TrainOptions options, LossType objective) {
        Set<String> taken = new LinkedHashSet<>();
        for (OptionSpec o : spec.options()) {
            taken.addAll(List.of(o.names()));
        }
        for (String key : TrainConfig.keys()) {
            RecordComponent rc = TrainConfig.component(key);
            TrainConfig.Key doc = rc.getAnnotation(TrainConfig.Key.class);
            List<String> names = new ArrayList<>();
            names.add("--" + key.replace('_', '-'));
            if (key.contains("_")) {
                names.add("--" + key);
            }
            names.addAll(List.of(doc.flags()));
            Object dflt = TrainConfig.defaultOf(key, objective);
            String help = doc.help() + (dflt == null ? "" : " (default: " + dflt + ")");
            boolean flag = rc.getType() == boolean.class;
            // a method's --help leaves out the keys it does not read (still refused by name when given)
            boolean hidden = hiddenFor(key, objective);
            OptionSpec o = option(names, flag, label(rc, doc), help, hidden, options, key, taken);
            if (o != null) { // an online method's own flag of the same name (--beta) came first
                spec.addOption(o);
            }
        }
        for (String trl : TrlNames.names()) {
            List<String> names = new ArrayList<>(List.of("--" + trl, "--" + trl.replace('_', '-')));
            boolean flag = List.of(
                            "precompute_ref_log_probs",
                            "bf16",
                            "do_train",
                            "fp16",
                            "completion_only_loss",
                            "gradient_checkpointing",
                            "use_peft",
                            "push_to_hub",
                            "padding_free",
                            "use_liger_kernel",
                            "packing",
                            "unpair_preference_dataset")
                    .contains(trl);
            OptionSpec o = option(names, flag, "VALUE", "TRL's " + trl, true, options, trl, taken);
            if (o != null) {
                spec.addOption(o);
            }
        }
    }

    /**
     * A visible flag that records its value under {@code key} (an online RL method's own option).
     *
     * @param names the flag's names (those already taken are dropped)
     * @param flag a switch
     * @param label the value's label
     * @param help the help line
     * @param key the config key it sets
     * @param taken names already used by the command
     * @return the option, or null when every name is taken
     */
    OptionSpec option(List<String> names, boolean flag, String label, String help, String key, Set<String> taken) {
        return option(names, flag, label == null ? "VALUE" : label, help, false, this, key, taken);
    }

    /**
     * @param spec a command
     * @return the names its options already use
     */
    static Set<String> takenNames(CommandSpec spec) {
        Set<String> taken = new LinkedHashSet<>();
        for (OptionSpec o : spec.options()) {
            taken.addAll(List.of(o.names()));
        }
        return taken;
    }

    /**
     * The flag of a method's own key: {@code --key-name} and {@code --key_name} (and {@code more}), a switch
     * when its default is a boolean, the default (unless null or an empty list) after the help line.
     *
     * @param key the config key
     * @param help the help line
     * @param dflt its default, or null
     * @param taken names already used
     * @param more further names
     * @return the option, or null when every name is taken
     */
    OptionSpec keyOption(String key, String help, Object dflt, Set<String> taken, String... more) {
        List<String> names = new ArrayList<>(List.of("--" + key.replace('_', '-'), "--" + key));
        names.addAll(List.of(more));
        String shown = dflt == null || dflt instanceof List<?> l && l.isEmpty() ? null : String.valueOf(dflt);
        boolean flag = dflt instanceof Boolean;
        return option(
                names,
                flag,
                flag ? null : "VALUE",
                help + (shown == null ? "" : " (default: " + shown + ")"),
                key,
                taken);
    }

    /**
     * A hidden flag that records its value under {@code key} (the other online method's option, refused by
     * name when given).
     *
     * @param names the flag's names
     * @param flag a switch
     * @param key the config key
     * @param taken names already used
     * @return the option, or null when every name is taken
     */
    OptionSpec hiddenOption(List<String> names, boolean flag, String key, Set<String> taken) {
        return option(names, flag, "VALUE", "", true, this, key, taken);
    }

    private static OptionSpec option(
            List<String> names,
            boolean flag,
            String label,
            String help,
            boolean hidden,
            TrainOptions options,
            String key,
            Set<String> taken) {
        List<String> free = new ArrayList<>(new LinkedHashSet<>(names));
        free.removeIf(taken::contains);
        if (free.isEmpty()) {
            return null;
        }
        taken.addAll(free);
        ISetter setter = new ISetter() {
            @Override
            public <T> T set(T value) {
                if (value != null) {
                    options.given.put(key, value);
                }
                return null;
            }
        };
        OptionSpec.Builder b = OptionSpec.builder(free.toArray(String[]::new))
                .description(help)
                .hidden(hidden)
                .setter(setter);
        if (flag) {
            // --bf16, --bf16 true, --bf16=false and --no-bf16, as HF's parser and picocli both read them
            b.type(Boolean.class).arity("0..1").negatable(!hidden).fallbackValue("true");
        } else {
            b.type(String.class).paramLabel(label);
        }
        return b.build();
    }

    private static String label(RecordComponent rc, TrainConfig.Key doc) {
        if (!doc.label().isEmpty()) {
            return doc.label();
        }
        Class<?> t = rc.getType();
        if (t == int.class || t == long.class) {
            return "N";
        }
        if (t == double.class) {
            return "X";
        }
        if (t.isEnum()) {
            return t.getSimpleName().toUpperCase(Locale.ROOT);
        }
        return "VALUE";
    }

    /**
     * @return how the run uses its folder: fresh, overwrite, or resume (the newest checkpoint or the one given)
     * @throws IllegalArgumentException for --resume with --overwrite
     */
    RunFolder.Mode mode() {
        if (resume != null && overwrite) {
            throw new IllegalArgumentException("--overwrite: cannot be combined with --resume");
        }
        if (resume != null) {
            return resume.isEmpty() ? RunFolder.Mode.resumeLatest() : RunFolder.Mode.resumeFrom(Path.of(resume));
        }
        return overwrite ? RunFolder.Mode.overwrite() : RunFolder.Mode.fresh();
    }

    /**
     * The YAML config: {@code --config}, or for {@code --output RUN --resume} given without {@code
     * --config}, {@code --model} or {@code --data}, the run's own {@code config.yaml} (the checkpoint's, when
     * --resume names one), so that a run continues as it was started.
     */
    Path configFile() {
        if (config != null || resume == null || given.containsKey("model") || given.containsKey("data")) {
            return config;
        }
        Object output = given.get("output");
        if (output == null) {
            return null;
        }
        Path own = resume.isEmpty()
                ? Path.of(output.toString()).resolve("config.yaml")
                : Path.of(resume).resolve("config.yaml");
        return Files.isRegularFile(own) ? own : config;
    }

    /**
     * @param method GRPO or RLOO
     * @return the resolved shared and method options: defaults, then {@code --config}, then the flags given
     */
    RlConfig.Run resolveRl(LossType method) {
        return RlConfig.resolve(
                method,
                configFile(),
                given,
                key -> TrainConfig.keys().contains(key) || RlConfig.KEYS.containsKey(key)
                        ? "--" + key.replace('_', '-')
                        : "--" + key);
    }

    /** @return the resolved shared and KTO options: defaults, then {@code --config}, then the flags given */
    KtoConfig.Run resolveKto() {
        return KtoConfig.resolve(configFile(), given, key -> flagName(key, KtoConfig.KEYS.keySet()));
    }

    /** @return the resolved shared and CPO options: defaults, then {@code --config}, then the flags given */
    CpoConfig.Run resolveCpo() {
        return CpoConfig.resolve(configFile(), given, key -> flagName(key, CpoConfig.KEYS.keySet()));
    }

    /**
     * @return the resolved ORPO options; TRL's {@code loss_type}, which ORPOConfig does not have, is refused by
     *     name rather than read as {@code train}'s objective
     */
    TrainConfig resolveOrpo() {
        Map<String, TrainConfig.Given> own = new LinkedHashMap<>();
        TrainConfig c = TrainConfig.resolve(
                Map.of("loss", LossType.ORPO),
                configFile(),
                given,
                key -> flagName(key, Set.of("loss_type")),
                Set.of("loss_type"),
                own);
        TrainConfig.Given type = own.get("loss_type");
        if (type != null) {
            throw new IllegalArgumentException(type.where()
                    + ": has no effect here: orpo is one objective (TRL's ORPOConfig has no loss_type; the cpo command"
                    + " has loss types)");
        }
        return c;
    }

    private static String flagName(String key, Set<String> ownKeys) {
        return TrainConfig.keys().contains(key) || ownKeys.contains(key) ? "--" + key.replace('_', '-') : "--" + key;
    }

    /**
     * @param base the command's own defaults (the sft command's {@code loss: sft})
     * @return the resolved config: defaults, then {@code --config}, then the flags given
     */
    TrainConfig resolve(Map<String, ?> base) {
        return TrainConfig.resolve(
                base,
                configFile(),
                given,
                key -> TrainConfig.keys().contains(key) ? "--" + key.replace('_', '-') : "--" + key);
    }
}
