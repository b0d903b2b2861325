package org.align4j.trainer.cli;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import org.align4j.model.CausalLm;
import org.align4j.model.LogProbs;
import org.align4j.model.tokenizer.TextTokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** Scores a completion given a prompt: Σ and mean log p(completion ∣ prompt). */
@Command(name = "logprobs", mixinStandardHelpOptions = true,
        description = "Log-probability of a completion after a prompt (the completion is scored as its tokens plus one eos).")
final class LogprobsCommand implements Callable<Integer> {
    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--prompt", required = true, description = "Prompt text (encoded as is, no special tokens)")
    String prompt;

    @Option(names = "--completion", required = true, description = "Completion text to score")
    String completion;

    @Option(names = "--no-eos", description = "Do not append eos to the completion")
    boolean noEos;

    @Option(names = "--json", description = "Print {\"logps\": sum, \"logps_mean\": mean, \"tokens\": n}")
    boolean json;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        try (TextTokenizer tk = modelOptions.loadTokenizer();
                CausalLm lm = modelOptions.loadModel();
                NDManager m = lm.manager().newSubManager()) {
            int[] p = tk.encode(prompt);
            int[] c = tk.encode(completion);
            if (p.length == 0) {
                throw new IllegalArgumentException("--prompt: encodes to no tokens; the first completion token needs a prompt token before it");
            }
            boolean eos = !noEos;
            if (eos && tk.eosId() < 0) {
                throw new IllegalArgumentException("--model: the tokenizer names no eos token; pass --no-eos");
            }
            int n = p.length + c.length + (eos ? 1 : 0);
            if (n == p.length) {
                throw new IllegalArgumentException("--completion: encodes to no tokens");
            }
            long[] ids = new long[n];
            long[] completionMask = new long[n];
            for (int i = 0; i < n; i++) {
                ids[i] = i < p.length ? p[i] : i < p.length + c.length ? c[i - p.length] : tk.eosId();
                completionMask[i] = i < p.length ? 0 : 1;
            }
            NDArray idArr = m.create(ids, new Shape(1, n));
            NDArray mask = idArr.onesLike();
            LogProbs lp = LogProbs.of(lm.logits(idArr, mask, false), idArr, m.create(completionMask, new Shape(1, n)));
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("logps", (double) lp.sum().getFloat(0));
            out.put("logps_mean", (double) lp.mean().getFloat(0));
            out.put("tokens", (int) lp.tokens().getFloat(0));
            var w = spec.commandLine().getOut();
            if (json) {
                w.println(Json.write(out));
            } else {
                w.printf("logps %.6f  mean %.6f  over %d tokens%n", out.get("logps"), out.get("logps_mean"), out.get("tokens"));
            }
            w.flush();
        }
        return 0;
    }
}
