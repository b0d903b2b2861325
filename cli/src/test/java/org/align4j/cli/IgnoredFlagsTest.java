package org.align4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** A flag that would change nothing in the invocation it is given in is refused by name, before any model is loaded. */
class IgnoredFlagsTest {
    @ParameterizedTest
    @CsvSource(
            delimiter = '|',
            value = {
                "generate --model m --prompt hi --greedy --temperature 0.7|--temperature: has no effect with --greedy",
                "generate --model m --prompt hi --greedy --top-p 0.9|--top-p: has no effect with --greedy",
                "generate --model m --prompt hi --greedy --seed 3|--seed: has no effect with --greedy",
                "logprobs --model m --data d.jsonl --no-eos|--no-eos: has no effect with --data",
                "logprobs --model m --prompt a --completion b --output o.jsonl|--output: has no effect without --data",
                "logprobs --model m --prompt a --completion b --max-length 5|--max-length: has no effect without --data",
                "bench --model m --preset gpt2-124m|--preset: has no effect with --model",
                "bench --model m --padding-free|--padding-free: has no effect without --data",
                "bench --model m --data d.jsonl --seq-len 64|--seq-len: has no effect with --data, whose rows give the lengths",
                "evaluate preferences --policy p --reference r --data d --kl-prompts 0 --seed 3|--seed: has no effect without sampled KL",
                "evaluate report run --output o --max-new-tokens 8|--max-new-tokens: has no effect without --samples N",
                "train --model m --data d --output o --f-alpha-divergence-coef 0.3|--f-alpha-divergence-coef: has no effect here: read only with f_divergence_type alpha_divergence",
                "sft --model m --data d --output o --use-weighting|--use-weighting: has no effect here: sft trains no preference objective",
                "train --model m --data d --output o --reference precomputed --ld-alpha 0.5|--ld-alpha: has no effect here: the precomputed reference cache holds whole sums"
            })
    void aFlagThatWouldDoNothingIsRefused(String args, String message) {
        CliTest.Result r = CliTest.run(args.split(" "));
        assertThat(r.code()).as(r.err()).isEqualTo(2);
        assertThat(r.err().strip()).startsWith("error: " + message);
    }
}
