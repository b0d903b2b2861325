package org.align4j.trainer.rl;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One generation's samples and everything the optimizer steps that reuse it need (TRL's buffered
 * generation batch): G completions per prompt, in the order the prompts were taken, with their
 * advantages and, when needed, the old policy's and the reference's per-token log-probs at sampling
 * time. Saved in a checkpoint taken between two steps that share it, so a resumed run continues on
 * the same samples ({@code rollout.json}).
 *
 * @param generation the generation's index (0-based)
 * @param promptIndex per row, the index of its prompt in the training data
 * @param promptIds per row, the prompt's ids
 * @param completionIds per row, the completion's ids (with the eos id when it ended with one)
 * @param truncated per row, cut at {@code max_completion_length} without an eos
 * @param scored per row, whether its tokens count in the loss (false: masked as truncated)
 * @param advantages per row
 * @param oldLogProbs per row, log π_old of each completion token at sampling time, or null when on-policy
 * @param refLogProbs per row, log π_ref of each completion token, or null when β = 0
 * @param scoredTokens completion tokens that count in the loss, over the whole generation
 * @param metrics the generation's metrics (rewards, lengths), logged with the step that made it
 * @param ppo PPO's per-token values, returns and advantages (null for GRPO and RLOO)
 */
public record Rollout(
        long generation,
        int[] promptIndex,
        List<int[]> promptIds,
        List<int[]> completionIds,
        boolean[] truncated,
        boolean[] scored,
        double[] advantages,
        List<float[]> oldLogProbs,
        List<float[]> refLogProbs,
        long scoredTokens,
        Map<String, Double> metrics,
        PerToken ppo) {
    /**
     * PPO's per-token arrays of a rollout, one row per sample (empty for a sample left out of the loss).
     *
     * @param values V_old: the value model's estimates at rollout time
     * @param returns R = GAE advantage + V_old
     * @param advantages the whitened GAE advantages
     * @param klCoef the KL coefficient this rollout's rewards used
     * @param kl the rollout's KL (per-token mean per sample, averaged over samples) that the adaptive
     *     coefficient reads
     */
    public record PerToken(
            List<float[]> values, List<float[]> returns, List<float[]> advantages, double klCoef, double kl) {}

    /** The file a checkpoint keeps it in. */
    public static final String FILE = "rollout.json";

    private static final ObjectMapper JSON = new ObjectMapper();

    /** @return the number of samples */
    public int size() {
        return promptIndex.length;
    }

    /**
     * Writes it (and the run's token count) as JSON.
     *
     * @param file the target
     * @param tokensSeen the run's {@code num_tokens} so far
     * @throws IOException on write failure
     */
    public void write(Path file, long tokensSeen) throws IOException {
        ObjectNode root = JSON.createObjectNode();
        root.put("generation", generation);
        root.put("tokens_seen", tokensSeen);
        root.put("scored_tokens", scoredTokens);
        ArrayNode rows = root.putArray("rows");
        for (int i = 0; i < size(); i++) {
            ObjectNode r = rows.addObject();
            r.put("prompt_index", promptIndex[i]);
            ints(r.putArray("prompt_ids"), promptIds.get(i));
            ints(r.putArray("completion_ids"), completionIds.get(i));
            r.put("truncated", truncated[i]);
            r.put("scored", scored[i]);
            r.put("advantage", advantages[i]);
            if (oldLogProbs != null) {
                floats(r.putArray("old_logps"), oldLogProbs.get(i));
            }
            if (refLogProbs != null) {
                floats(r.putArray("ref_logps"), refLogProbs.get(i));
            }
            if (ppo != null) {
                floats(r.putArray("values"), ppo.values().get(i));
                floats(r.putArray("returns"), ppo.returns().get(i));
                floats(r.putArray("token_advantages"), ppo.advantages().get(i));
            }
        }
        if (ppo != null) {
            root.put("kl_coef", ppo.klCoef());
            root.put("kl", ppo.kl());
        }
        ObjectNode m = root.putObject("metrics");
        metrics.forEach(m::put);
        Files.writeString(file, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root));
    }

    /**
     * The rollout and the token count a checkpoint holds.
     *
     * @param rollout the rollout
     * @param tokensSeen the run's {@code num_tokens} when it was saved
     */
    public record Saved(Rollout rollout, long tokensSeen) {}

    /**
     * @param file a file {@link #write} wrote
     * @return what it holds
     * @throws IOException when it cannot be read
     * @throws IllegalArgumentException naming the file when it is not such a file
     */
    public static Saved read(Path file) throws IOException {
        JsonNode root = JSON.readTree(Files.readString(file));
        try {
            JsonNode rows = root.get("rows");
            int n = rows.size();
            int[] promptIndex = new int[n];
            List<int[]> prompts = new ArrayList<>();
            List<int[]> completions = new ArrayList<>();
            boolean[] truncated = new boolean[n];
            boolean[] scored = new boolean[n];
            double[] adv = new double[n];
            List<float[]> old = rows.size() > 0 && rows.get(0).has("old_logps") ? new ArrayList<>() : null;
            List<float[]> ref = rows.size() > 0 && rows.get(0).has("ref_logps") ? new ArrayList<>() : null;
            boolean ppo = root.has("kl_coef");
            List<float[]> values = new ArrayList<>();
            List<float[]> returns = new ArrayList<>();
            List<float[]> tokenAdv = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                JsonNode r = rows.get(i);
                promptIndex[i] = r.get("prompt_index").asInt();
                prompts.add(ints(r.get("prompt_ids")));
                completions.add(ints(r.get("completion_ids")));
                truncated[i] = r.get("truncated").asBoolean();
                scored[i] = r.get("scored").asBoolean();
                adv[i] = r.get("advantage").asDouble();
                if (old != null) {
                    old.add(floats(r.get("old_logps")));
                }
                if (ref != null) {
                    ref.add(floats(r.get("ref_logps")));
                }
                if (ppo) {
                    values.add(floats(r.get("values")));
                    returns.add(floats(r.get("returns")));
                    tokenAdv.add(floats(r.get("token_advantages")));
                }
            }
            Map<String, Double> metrics = new LinkedHashMap<>();
            root.get("metrics")
                    .fields()
                    .forEachRemaining(e -> metrics.put(e.getKey(), e.getValue().asDouble()));
            Rollout rollout = new Rollout(
                    root.get("generation").asLong(),
                    promptIndex,
                    prompts,
                    completions,
                    truncated,
                    scored,
                    adv,
                    old,
                    ref,
                    root.get("scored_tokens").asLong(),
                    metrics,
                    ppo
                            ? new PerToken(
                                    values,
                                    returns,
                                    tokenAdv,
                                    root.get("kl_coef").asDouble(),
                                    root.get("kl").asDouble())
                            : null);
            return new Saved(rollout, root.get("tokens_seen").asLong());
        } catch (RuntimeException e) {
            throw new IllegalArgumentException(file + ": not a rollout align4j wrote (" + e + ")", e);
        }
    }

    private static void ints(ArrayNode a, int[] v) {
        for (int x : v) {
            a.add(x);
        }
    }

    private static void floats(ArrayNode a, float[] v) {
        for (float x : v) {
            a.add(x);
        }
    }

    private static int[] ints(JsonNode a) {
        int[] v = new int[a.size()];
        for (int i = 0; i < v.length; i++) {
            v[i] = a.get(i).asInt();
        }
        return v;
    }

    private static float[] floats(JsonNode a) {
        float[] v = new float[a.size()];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) a.get(i).asDouble();
        }
        return v;
    }
}
