package org.align4j.cli;

import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import org.align4j.losses.LossType;
import org.align4j.trainer.RunFolder;
import org.align4j.trainer.TrainResult;
import org.align4j.trainer.rl.OnlineRlTrainer;
import org.align4j.trainer.rl.RlConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Spec;

/**
 * Online RL from the command line: {@code align4j grpo} and {@code align4j rloo}. The flags are the shared
 * training flags ({@link TrainOptions}) plus the method's own ({@link RlConfig#KEYS}), made from their
 * tables; one YAML file may hold both, with TRL's {@code GRPOConfig}/{@code RLOOConfig} names.
 */
abstract class RlCommand implements Callable<Integer> {
    @Mixin
    TrainOptions options;

    @Spec
    CommandSpec spec;

    /** @return GRPO or RLOO */
    abstract LossType method();

    /**
     * Adds the method's own flags (before the shared ones, so that {@code --beta} and {@code --loss-type}
     * show the method's help).
     *
     * @param spec the command
     * @param options its options object
     * @param method GRPO or RLOO
     */
    static void register(CommandSpec spec, TrainOptions options, LossType method) {
        Set<String> taken = TrainOptions.takenNames(spec);
        RlConfig defaults = RlConfig.defaults(method);
        Map<String, Object> values = defaults.toMap();
        // batch_size counts completions here, as TRL's per_device_train_batch_size in GRPOConfig
        OptionSpec batch = options.option(
                List.of(
                        "--batch-size",
                        "--batch_size",
                        "--per_device_train_batch_size",
                        "--per-device-train-batch-size"),
                false,
                "N",
                method == LossType.ONLINE_DPO
                        ? "Prompts per micro-batch, 2 samples each (TRL's per_device_train_batch_size; default: 8)"
                        : method == LossType.PPO
                                ? "Completions per micro-batch (a rollout makes batch_size x grad_accum x num_mini_batches,"
                                        + " num_generations per prompt; default: 8)"
                                : "Completions per micro-batch (a generation makes batch_size x grad_accum, num_generations"
                                        + " per prompt; default: 8)",
                "batch_size",
                taken);
        spec.addOption(batch);
        for (Map.Entry<String, String> k : RlConfig.KEYS.entrySet()) {
            String key = k.getKey();
            if (!RlConfig.appliesTo(method, key)) {
                // another method's option: a hidden flag, so that RlConfig refuses it with its reason
                boolean switchFlag = false;
                for (LossType other : List.of(LossType.GRPO, LossType.RLOO, LossType.PPO, LossType.ONLINE_DPO)) {
                    switchFlag |= RlConfig.defaults(other).toMap().get(key) instanceof Boolean;
                }
                OptionSpec other =
                        options.hiddenOption(List.of("--" + key.replace('_', '-'), "--" + key), switchFlag, key, taken);
                if (other != null) {
                    spec.addOption(other);
                }
                continue;
            }
            spec.addOption(options.keyOption(key, k.getValue(), values.get(key), taken));
        }
        // TRL's names of max_completion_length (PPOConfig's response_length, OnlineDPOConfig's max_new_tokens):
        // read by the method they belong to, refused by name by the others
        for (String alias : List.of("response_length", "max_new_tokens")) {
            OptionSpec o =
                    options.hiddenOption(List.of("--" + alias.replace('_', '-'), "--" + alias), false, alias, taken);
            if (o != null) {
                spec.addOption(o);
            }
        }
        TrainOptions.register(spec, options, method);
    }

    @Override
    public Integer call() throws Exception {
        RlConfig.Run run = options.resolveRl(method());
        if (options.dryRun) {
            DryRun.print(spec.commandLine().getOut(), run);
            return 0;
        }
        Processes.refuse(options.nproc, "align4j " + method() + " (online RL)");
        Threads.apply(options.threads, null);
        RunFolder folder = RunFolder.claim(run.train(), options.mode());
        RunConsole.logTo(folder.output());
        RunConsole.resumed(spec.commandLine().getErr(), folder);
        TrainCommand.warnTf32(run.train(), spec.commandLine().getErr());
        try (OnlineRlTrainer trainer = OnlineRlTrainer.create(run, folder)) {
            RunConsole.header(spec.commandLine().getErr(), trainer.header());
            trainer.addListener(new RunConsole(method().toString()));
            TrainResult r = trainer.train();
            RunConsole.summary(spec.commandLine().getOut(), r);
        }
        return 0;
    }

    /** GRPO. */
    @Command(
            name = "grpo",
            mixinStandardHelpOptions = true,
            sortOptions = false,
            abbreviateSynopsis = true,
            header = "Online RL with GRPO: sample, reward, group-relative advantages.",
            description = {
                "Online RL with GRPO (TRL's GRPOTrainer): samples num_generations completions per prompt of a",
                "prompt-only dataset ({\"prompt\": ..., other fields for the rewards}), scores them with",
                "--reward-funcs (exact[:FIELD], regex:P, think_format, soft_overlong:MAX:CACHE, class:NAME or a",
                "reward model folder), and optimises the clipped ratio of group-relative advantages - beta * KL.",
                "Writes OUTPUT/metrics.jsonl, train.log, checkpoint-N/ and final/ as train does."
            })
    static final class Grpo extends RlCommand {
        @Override
        LossType method() {
            return LossType.GRPO;
        }
    }

    /** PPO. */
    @Command(
            name = "ppo",
            mixinStandardHelpOptions = true,
            sortOptions = false,
            abbreviateSynopsis = true,
            header = "RLHF with PPO: sample, reward, a value model and GAE, clipped updates.",
            description = {
                "RLHF's second stage with PPO (OpenRLHF's and TRL 0.x's PPOTrainer): samples num_generations",
                "completions per prompt (default 1), scores them with --reward-funcs (a reward model folder, or",
                "exact[:FIELD], regex:P, think_format, soft_overlong:MAX:CACHE, class:NAME), turns score - kl_coef * KL",
                "into per-token rewards, GAE advantages from a value model (--value-model; default: the reward model),",
                "and trains policy and value model together over num_ppo_epochs x num_mini_batches steps per rollout.",
                "YAML keys are TRL's PPOConfig names. Checkpoints hold the value model in value_model/."
            })
    static final class Ppo extends RlCommand {
        @Override
        LossType method() {
            return LossType.PPO;
        }
    }

    /** Online DPO. */
    @Command(
            name = "online-dpo",
            mixinStandardHelpOptions = true,
            sortOptions = false,
            abbreviateSynopsis = true,
            header = "Online DPO: two samples per prompt, the reward picks chosen/rejected, DPO or IPO loss.",
            description = {
                "Online DPO (TRL's OnlineDPOTrainer; Guo et al., 2024): samples 2 completions per prompt, scores",
                "them with --reward-funcs (a reward model folder, exact[:FIELD], regex:P, ... as grpo), takes the",
                "higher-scored one as chosen, and trains DPO's (--loss-type sigmoid, the default) or IPO's loss",
                "(--loss-type ipo) against the reference. --batch-size counts prompts, as TRL's."
            })
    static final class OnlineDpo extends RlCommand {
        @Override
        LossType method() {
            return LossType.ONLINE_DPO;
        }
    }

    /** RLOO. */
    @Command(
            name = "rloo",
            mixinStandardHelpOptions = true,
            sortOptions = false,
            abbreviateSynopsis = true,
            header = "Online RL with RLOO: sample, reward, leave-one-out baseline.",
            description = {
                "Online RL with RLOO (TRL's RLOOTrainer): as grpo, with a leave-one-out baseline, a per-sequence",
                "ratio and the KL to the reference subtracted from the reward (beta 0.05 by default)."
            })
    static final class Rloo extends RlCommand {
        @Override
        LossType method() {
            return LossType.RLOO;
        }
    }
}
