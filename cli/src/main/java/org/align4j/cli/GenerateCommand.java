package org.align4j.cli;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.align4j.data.template.ChatTemplate;
import org.align4j.model.CausalLm;
import org.align4j.model.generate.GenerationConfig;
import org.align4j.model.generate.Generator;
import org.align4j.model.tokenizer.TextTokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** Generates a continuation of a prompt. */
@Command(
        name = "generate",
        mixinStandardHelpOptions = true,
        description = "Continue a prompt, greedily or by sampling; stops at eos.")
final class GenerateCommand implements Callable<Integer> {
    @Mixin
    ModelOptions modelOptions;

    @Option(
            names = "--prompt",
            required = true,
            description =
                    "Prompt text (with the tokenizer's special tokens, a bos for Llama-3, as training encodes a plain prompt; through the chat template with --chat)")
    String prompt;

    @Option(
            names = "--max-new-tokens",
            defaultValue = "64",
            description = "At most this many new tokens (default: ${DEFAULT-VALUE})")
    int maxNewTokens;

    @Option(names = "--greedy", description = "Take the most likely token (default: sample)")
    boolean greedy;

    @Option(
            names = "--temperature",
            defaultValue = "1.0",
            description = "Sampling temperature (default: ${DEFAULT-VALUE})")
    double temperature;

    @Option(names = "--top-k", defaultValue = "0", description = "Sample from the K most likely tokens (0 = off)")
    int topK;

    @Option(names = "--top-p", defaultValue = "1.0", description = "Nucleus sampling mass (1 = off)")
    double topP;

    @Option(names = "--seed", defaultValue = "0", description = "Sampling seed (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--chat", description = "Wrap the prompt as one user message in the model's chat template")
    boolean chat;

    @Option(names = "--no-cache", description = "Recompute every step without the KV cache (same output, slower)")
    boolean noCache;

    @Option(
            names = "--json",
            description = "Print {\"prompt_ids\": [...], \"new_token_ids\": [...], \"text\": \"...\"}")
    boolean json;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        Flags.refuseUnless(
                spec,
                !greedy,
                "with --greedy, which takes the most likely token",
                "--temperature",
                "--top-k",
                "--top-p",
                "--seed");
        GenerationConfig cfg = greedy
                ? GenerationConfig.greedy(maxNewTokens)
                : GenerationConfig.sample(maxNewTokens, temperature, topK, topP, seed);
        cfg = cfg.withCache(!noCache);
        try (TextTokenizer tk = modelOptions.loadTokenizer();
                CausalLm lm = modelOptions.loadModel()) {
            String text =
                    chat ? ChatTemplate.of(tk).render(List.of(new ChatTemplate.Message("user", prompt)), true) : prompt;
            // a plain prompt as training encodes one (the tokenizer's special tokens: Llama-3's bos); a rendered
            // chat template places its own
            int[] ids = chat ? tk.encode(text) : tk.encodeWithSpecialTokens(text);
            if (ids.length == 0) {
                throw new IllegalArgumentException("--prompt: encodes to no tokens");
            }
            if (lm.config() != null) {
                // the longest sequence generation can reach must fit the model (GPT-2's learned positions)
                lm.config()
                        .problemWith(Arrays.copyOf(ids, ids.length + maxNewTokens))
                        .ifPresent(problem -> {
                            throw new IllegalArgumentException("--prompt and --max-new-tokens: " + ids.length
                                    + " prompt tokens + " + maxNewTokens + " new ones: "
                                    + problem.replace("set max_length (--max-length) to", "keep the sum at"));
                        });
            }
            int[] generated = new Generator(lm, tk.padId(), tk.eosIds())
                    .generate(List.of(ids), cfg)
                    .get(0);
            String out = tk.decode(generated, true);
            var w = spec.commandLine().getOut();
            if (json) {
                Map<String, Object> o = new LinkedHashMap<>();
                o.put("prompt_ids", ids);
                o.put("new_token_ids", generated);
                o.put("text", out);
                w.println(Json.write(o));
            } else {
                w.println(out);
            }
            w.flush();
        }
        return 0;
    }
}
