package org.align4j.evaluation.rewards;

import java.util.List;
import java.util.Map;

/**
 * A reward for online RL, as TRL's {@code reward_funcs} callables: a score for each sampled completion,
 * or null where the function does not apply (the sample is then left out of that function's mean and,
 * when every function abstains, out of its group's baseline, with advantage 0). Implementations must be
 * deterministic and must not keep references to the samples. A user class named on the command line
 * ({@code class:com.example.MyReward}) needs a public no-argument constructor.
 */
public interface RewardFunction {
    /**
     * One sampled completion and what it answers.
     *
     * @param prompt the prompt text as the policy saw it (chat template applied when the record is a
     *     conversation)
     * @param completion the completion's text, special tokens skipped (as TRL decodes it: no eos)
     * @param completionIds the completion's token ids (with the eos id when it ended with one)
     * @param truncated whether it was cut at {@code max_completion_length} without an eos
     * @param fields the record's other fields (e.g. {@code answer}), as parsed JSON values
     * @param source where the record came from ({@code FILE:LINE}), for messages
     */
    record Sample(
            String prompt,
            String completion,
            int[] completionIds,
            boolean truncated,
            Map<String, Object> fields,
            String source) {}

    /** @return the name metrics carry ({@code rewards/NAME/mean}) */
    String name();

    /**
     * @return the record fields every sample must carry for this reward (checked for every prompt before a
     *     run starts, so a misspelt field is named instead of silently scoring nothing); empty by default
     */
    default List<String> requiredFields() {
        return List.of();
    }

    /**
     * @param samples the samples of a generation batch, in order
     * @return one score per sample (null: abstains); must be finite numbers
     */
    List<Double> score(List<Sample> samples);
}
