package org.align4j.evaluation.rewards;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * The rewards the CLI names, after TRL's reward library ({@code trl.rewards}) where it has one:
 * <ul>
 *   <li>{@code exact[:FIELD]}: 1 when the completion, trimmed, equals the record's field (default {@code
 *       answer}), trimmed; else 0; a run refuses a record without the field before it starts;
 *   <li>{@code regex:PATTERN}: 1 when the whole completion matches PATTERN (dot matches newlines), else 0;
 *   <li>{@code think_format}: TRL's {@code think_format_reward}: 1 for one {@code <think>...</think>} block
 *       at the start, else 0;
 *   <li>{@code soft_overlong:MAX:CACHE}: DAPO's soft overlong punishment (Yu et al., 2025; TRL's {@code
 *       get_soft_overlong_punishment}): 0 up to MAX − CACHE tokens, falling linearly to −1 at MAX, −1 beyond.
 * </ul>
 * Patterns are java.util.regex patterns.
 */
public final class BuiltinRewards {
    private BuiltinRewards() {}

    /** @return the names and forms, for help texts */
    public static List<String> forms() {
        return List.of("exact[:FIELD]", "regex:PATTERN", "think_format", "soft_overlong:MAX:CACHE");
    }

    /**
     * @param spec a built-in's spec
     * @return the reward, or null when the spec names no built-in
     * @throws IllegalArgumentException for a built-in with bad arguments
     */
    public static RewardFunction parse(String spec) {
        if (spec.equals("exact") || spec.startsWith("exact:")) {
            String field = spec.equals("exact") ? "answer" : spec.substring("exact:".length());
            if (field.isEmpty()) {
                throw new IllegalArgumentException("exact: give a field name after ':', e.g. exact:answer");
            }
            return exact(field);
        }
        if (spec.startsWith("regex:")) {
            String p = spec.substring("regex:".length());
            Pattern pattern;
            try {
                pattern = Pattern.compile(p, Pattern.DOTALL);
            } catch (RuntimeException e) {
                throw new IllegalArgumentException("regex: not a valid pattern: " + e.getMessage());
            }
            return fn("regex", s -> pattern.matcher(s.completion()).matches() ? 1.0 : 0.0);
        }
        if (spec.equals("think_format")) {
            Pattern p = Pattern.compile("^<think>(?!.*<think>)(.*?)</think>.*$", Pattern.DOTALL);
            return fn("think_format_reward", s -> p.matcher(s.completion()).matches() ? 1.0 : 0.0);
        }
        if (spec.startsWith("soft_overlong:")) {
            String[] parts = spec.split(":");
            int max;
            int cache;
            try {
                max = Integer.parseInt(parts[1]);
                cache = Integer.parseInt(parts[2]);
            } catch (RuntimeException e) {
                throw new IllegalArgumentException(
                        "soft_overlong: give soft_overlong:MAX:CACHE in tokens, got " + spec);
            }
            if (parts.length != 3 || max <= 0 || cache <= 0 || cache > max) {
                throw new IllegalArgumentException("soft_overlong: need 0 < CACHE <= MAX, got " + spec);
            }
            return fn("soft_overlong_punishment", s -> softOverlong(s.completionIds().length, max, cache));
        }
        return null;
    }

    /**
     * @param field the record field holding the expected answer
     * @return the exact-answer reward
     */
    public static RewardFunction exact(String field) {
        RewardFunction f = fn("exact_" + field, s -> {
            Object want = s.fields().get(field);
            return want == null
                    ? null
                    : s.completion().strip().equals(String.valueOf(want).strip()) ? 1.0 : 0.0;
        });
        return new RewardFunction() {
            @Override
            public String name() {
                return f.name();
            }

            @Override
            public List<String> requiredFields() {
                return List.of(field);
            }

            @Override
            public List<Double> score(List<Sample> samples) {
                return f.score(samples);
            }
        };
    }

    /**
     * DAPO's soft overlong punishment.
     *
     * @param length completion tokens
     * @param max the hard limit L_max
     * @param cache the soft band L_cache
     * @return 0, a linear ramp to −1, or −1
     */
    public static double softOverlong(int length, int max, int cache) {
        if (length <= max - cache) {
            return 0;
        }
        if (length <= max) {
            return (double) (max - cache - length) / cache;
        }
        return -1;
    }

    /** A reward scoring each sample alone. */
    interface PerSample {
        Double apply(RewardFunction.Sample s);
    }

    static RewardFunction fn(String name, PerSample f) {
        return new RewardFunction() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public List<Double> score(List<Sample> samples) {
                List<Double> out = new ArrayList<>(samples.size());
                for (Sample s : samples) {
                    out.add(f.apply(s));
                }
                return out;
            }
        };
    }
}
