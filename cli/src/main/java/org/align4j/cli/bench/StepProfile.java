package org.align4j.cli.bench;

import ai.djl.pytorch.jni.JniUtils;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.align4j.model.config.ModelConfig;

/**
 * Where a training step's time goes ({@code bench --profile}): each phase of a step (data, reference
 * pass, policy forward, policy backward, optimizer) is recorded by libtorch's autograd profiler (DJL's
 * {@link JniUtils#startProfile}, the legacy profiler behind {@code torch.autograd.profiler.profile}),
 * and every operator's own time (its duration less its children's) is put in a part of the model by
 * its name and the shapes of its inputs:
 *
 * <ul>
 *   <li>{@link Part#HEAD_MATMUL}: a matrix product with a dimension equal to the vocabulary size V (the
 *       LM head's logits in a forward phase; its gradients with respect to the hidden states and the
 *       tied embedding in the backward phase);
 *   <li>{@link Part#LOG_SOFTMAX}: any other operator on a [N, V] array (log-softmax, the target's
 *       gather, their backward);
 *   <li>{@link Part#MLP}: products and element-wise operators with a dimension equal to the MLP's
 *       intermediate size;
 *   <li>{@link Part#ATTENTION}: scaled-dot-product attention, other 4-d operators over heads, and the
 *       remaining products (the q/k/v/o projections);
 *   <li>{@link Part#EMBEDDING}: the token embedding and its backward;
 *   <li>{@link Part#NORM_RESIDUAL}: operators on [.., H] arrays that are none of the above (RMSNorm or
 *       LayerNorm, residual additions);
 *   <li>{@link Part#OTHER}: what matches nothing (the loss, masks, index bookkeeping);
 *   <li>{@link Part#HOST}: the phase's wall time not spent inside any operator (Java, JNI, allocation of
 *       DJL handles, the profiler's own cost).
 * </ul>
 *
 * The data phase's time is all {@link Part#DATA} and the optimizer's all {@link Part#OPTIMIZER}
 * (clipping and AdamW), whatever their operators. Classification is by shapes alone, so a dimension
 * that equals two of H, I and V is read as the first of V, I, H; the rule is a heuristic, and the
 * {@link #unclassified} share says how much fell through it. On the CPU libtorch runs every operator
 * synchronously on the calling thread, so the phases' wall times are real; a GPU's asynchronous
 * kernels would need CUDA events (not built). Profiled steps run after the timed ones and are not
 * part of the step times the bench reports.
 */
public final class StepProfile {
    /** The phases of a step, in the order they run. */
    public enum Phase {
        DATA("data"),
        REFERENCE("reference forward"),
        FORWARD("policy forward"),
        BACKWARD("policy backward"),
        OPTIMIZER("optimizer");

        final String label;

        Phase(String label) {
            this.label = label;
        }
    }

    /** The parts of the model an operator's time is put in. */
    public enum Part {
        DATA("data"),
        EMBEDDING("embedding"),
        ATTENTION("attention"),
        MLP("MLP"),
        NORM_RESIDUAL("norms, residual"),
        HEAD_MATMUL("LM head matmul"),
        LOG_SOFTMAX("log-softmax, gather"),
        OPTIMIZER("optimizer"),
        OTHER("other operators"),
        HOST("host (Java, JNI)");

        final String label;

        Part(String label) {
            this.label = label;
        }
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    private final ModelConfig config;
    private final Path scratch;
    private final Map<Phase, Map<Part, Double>> micros = new EnumMap<>(Phase.class);
    private final Map<Phase, Double> wallMicros = new EnumMap<>(Phase.class);
    private final Map<String, Double> operators = new LinkedHashMap<>();
    private double unclassified;
    private int steps;
    private Phase open;
    private long openedAt;

    /**
     * @param config the model's shape (H, I, V decide the parts)
     * @param scratch a folder for the profiler's trace files (each is read and deleted)
     */
    public StepProfile(ModelConfig config, Path scratch) {
        this.config = config;
        this.scratch = scratch;
        for (Phase p : Phase.values()) {
            micros.put(p, new EnumMap<>(Part.class));
            wallMicros.put(p, 0.0);
        }
    }

    /**
     * Starts recording a phase (ends the one still open).
     *
     * @param phase the phase about to run
     */
    public void begin(Phase phase) {
        end();
        JniUtils.startProfile(false, true, false);
        open = phase;
        openedAt = System.nanoTime();
    }

    /** Ends the open phase, if any, and adds its operators' times. */
    public void end() {
        if (open == null) {
            return;
        }
        double wall = (System.nanoTime() - openedAt) / 1e3;
        Path trace = scratch.resolve("trace-" + open.name().toLowerCase(Locale.ROOT) + ".json");
        JniUtils.stopProfile(trace.toString());
        try {
            add(open, wall, JSON.readTree(trace.toFile()));
            Files.deleteIfExists(trace);
        } catch (IOException e) {
            throw new UncheckedIOException("reading the profiler's trace " + trace, e);
        }
        open = null;
    }

    /** Counts one more profiled step (the means divide by it). */
    public void stepDone() {
        end();
        steps++;
    }

    /** One recorded operator: its name, input shapes, start and duration in µs, and thread. */
    record Event(String name, List<long[]> shapes, double start, double duration, long thread) {
        double end() {
            return start + duration;
        }
    }

    /**
     * Adds one phase's trace: self times by part, and the wall time outside any operator as host time.
     *
     * @param phase the phase
     * @param wall its wall time in µs
     * @param trace the profiler's chrome-trace array
     */
    void add(Phase phase, double wall, JsonNode trace) {
        List<Event> events = new ArrayList<>();
        for (JsonNode e : trace) {
            if (!"X".equals(e.path("ph").asText())) {
                continue;
            }
            List<long[]> shapes = new ArrayList<>();
            for (JsonNode s : e.path("shape")) {
                long[] dims = new long[s.size()];
                for (int i = 0; i < dims.length; i++) {
                    dims[i] = s.get(i).asLong();
                }
                shapes.add(dims);
            }
            events.add(new Event(
                    e.path("name").asText(),
                    shapes,
                    e.path("ts").asDouble(),
                    e.path("dur").asDouble(),
                    e.path("tid").asLong()));
        }
        Map<Part, Double> into = micros.get(phase);
        double inOperators = 0;
        Map<Long, List<Event>> byThread = new LinkedHashMap<>();
        events.forEach(e ->
                byThread.computeIfAbsent(e.thread(), t -> new ArrayList<>()).add(e));
        for (List<Event> thread : byThread.values()) {
            double roots = 0;
            thread.sort(Comparator.comparingDouble(Event::start)
                    .thenComparing(Comparator.comparingDouble(Event::duration).reversed()));
            // a stack of open events: each event's parent is the innermost one still open when it starts
            List<Event> stack = new ArrayList<>();
            List<Part> stackParts = new ArrayList<>();
            List<double[]> selfTimes = new ArrayList<>();
            for (Event e : thread) {
                while (!stack.isEmpty() && stack.get(stack.size() - 1).end() <= e.start() + 1e-3) {
                    pop(stack, stackParts, selfTimes, into, phase);
                }
                Part inherited = stackParts.isEmpty() ? Part.OTHER : stackParts.get(stackParts.size() - 1);
                Part part = classify(e, inherited);
                if (stack.isEmpty()) {
                    roots += e.duration();
                } else {
                    selfTimes.get(selfTimes.size() - 1)[0] -= e.duration();
                }
                stack.add(e);
                stackParts.add(part);
                selfTimes.add(new double[] {e.duration()});
            }
            while (!stack.isEmpty()) {
                pop(stack, stackParts, selfTimes, into, phase);
            }
            // the phase's operators run on its own thread (the one with the most time in operators);
            // others (intra-op workers, if a build records them) overlap it: counted by part, not as wall time
            inOperators = Math.max(inOperators, roots);
        }
        into.merge(own(phase, Part.HOST), Math.max(0, wall - inOperators), Double::sum);
        wallMicros.merge(phase, wall, Double::sum);
    }

    private void pop(
            List<Event> stack, List<Part> parts, List<double[]> selfTimes, Map<Part, Double> into, Phase phase) {
        int last = stack.size() - 1;
        Event e = stack.remove(last);
        Part part = parts.remove(last);
        double self = Math.max(0, selfTimes.remove(last)[0]);
        Part counted = own(phase, part);
        into.merge(counted, self, Double::sum);
        operators.merge(
                phase.label + " | " + counted.label + " | " + e.name() + " "
                        + e.shapes().stream().map(Arrays::toString).toList(),
                self,
                Double::sum);
        if (counted == Part.OTHER && e.shapes().stream().allMatch(s -> s.length == 0)) {
            unclassified += self;
        }
    }

    /** The data and optimizer phases' time is theirs whatever their operators. */
    private static Part own(Phase phase, Part part) {
        return phase == Phase.DATA ? Part.DATA : phase == Phase.OPTIMIZER ? Part.OPTIMIZER : part;
    }

    /**
     * The part of one operator, from its name and input shapes; {@code inherited} (its parent's part)
     * when neither says more.
     */
    Part classify(Event e, Part inherited) {
        String n = e.name().toLowerCase(Locale.ROOT);
        long v = config.vocabSize();
        long h = config.hiddenSize();
        long i = config.intermediateSize();
        if (n.contains("embedding")) {
            return Part.EMBEDDING;
        }
        if (n.contains("scaled_dot_product")
                || n.contains("flash_attention")
                || n.contains("efficient_attention")
                || n.contains("scaleddotproduct")) {
            return Part.ATTENTION;
        }
        boolean product = n.endsWith("::mm")
                || n.endsWith("::addmm")
                || n.endsWith("::bmm")
                || n.endsWith("::matmul")
                || n.endsWith("::linear")
                || n.startsWith("mmbackward")
                || n.startsWith("addmmbackward")
                || n.startsWith("bmmbackward");
        if (has(e, v)) {
            return product ? Part.HEAD_MATMUL : Part.LOG_SOFTMAX;
        }
        if (i > 0 && has(e, i)) {
            return Part.MLP;
        }
        if (e.shapes().stream().anyMatch(s -> s.length == 4)) {
            return Part.ATTENTION;
        }
        if (has(e, h)) {
            // the q/k/v/o projections are the products left once the head's and the MLP's are taken
            return product ? Part.ATTENTION : Part.NORM_RESIDUAL;
        }
        return inherited;
    }

    private static boolean has(Event e, long dim) {
        for (long[] s : e.shapes()) {
            for (long d : s) {
                if (d == dim) {
                    return true;
                }
            }
        }
        return false;
    }

    /** @return profiled steps so far */
    public int steps() {
        return steps;
    }

    /**
     * @return ms per step by phase and part (phases in order; parts with no time left out), plus each
     *     phase's wall time under {@code "wall"}
     */
    public Map<String, Map<String, Double>> perStep() {
        Map<String, Map<String, Double>> out = new LinkedHashMap<>();
        for (Phase p : Phase.values()) {
            if (wallMicros.get(p) == 0) {
                continue;
            }
            Map<String, Double> row = new LinkedHashMap<>();
            row.put("wall", wallMicros.get(p) / 1e3 / Math.max(1, steps));
            for (Part part : Part.values()) {
                Double us = micros.get(p).get(part);
                if (us != null && us > 0) {
                    row.put(part.label, us / 1e3 / Math.max(1, steps));
                }
            }
            out.put(p.label, row);
        }
        return out;
    }

    /** @return ms per step by part, over all phases */
    public Map<String, Double> byPart() {
        Map<String, Double> out = new LinkedHashMap<>();
        for (Part part : Part.values()) {
            double us = 0;
            for (Phase p : Phase.values()) {
                us += micros.get(p).getOrDefault(part, 0.0);
            }
            if (us > 0) {
                out.put(part.label, us / 1e3 / Math.max(1, steps));
            }
        }
        return out;
    }

    /**
     * @param n how many
     * @return the n operators with the most own time, "phase | part | name [input shapes]" → ms per step
     */
    public Map<String, Double> topOperators(int n) {
        Map<String, Double> out = new LinkedHashMap<>();
        operators.entrySet().stream()
                .sorted(Map.Entry.<String, Double>comparingByValue().reversed())
                .limit(n)
                .forEach(e -> out.put(e.getKey(), e.getValue() / 1e3 / Math.max(1, steps)));
        return out;
    }

    /** @return ms per step of operators without shapes that matched no part (the heuristic's blind spot) */
    public double unclassified() {
        return unclassified / 1e3 / Math.max(1, steps);
    }

    /**
     * A table: one row per part, one column per phase, ms per step and the part's share of the step.
     *
     * @return the lines
     */
    public List<String> table() {
        Map<String, Map<String, Double>> phases = perStep();
        double total = phases.values().stream().mapToDouble(r -> r.get("wall")).sum();
        List<String> lines = new ArrayList<>();
        StringBuilder head = new StringBuilder(String.format(Locale.ROOT, "  %-22s", "ms per step"));
        phases.keySet().forEach(k -> head.append(String.format(Locale.ROOT, " %18s", k)));
        head.append(String.format(Locale.ROOT, " %10s %7s", "all", "share"));
        lines.add(head.toString());
        for (Map.Entry<String, Double> part : byPart().entrySet()) {
            StringBuilder row = new StringBuilder(String.format(Locale.ROOT, "  %-22s", part.getKey()));
            phases.values()
                    .forEach(
                            r -> row.append(String.format(Locale.ROOT, " %18.1f", r.getOrDefault(part.getKey(), 0.0))));
            row.append(String.format(Locale.ROOT, " %10.1f %6.1f%%", part.getValue(), 100 * part.getValue() / total));
            lines.add(row.toString());
        }
        StringBuilder wall = new StringBuilder(String.format(Locale.ROOT, "  %-22s", "wall (profiled)"));
        phases.values().forEach(r -> wall.append(String.format(Locale.ROOT, " %18.1f", r.get("wall"))));
        wall.append(String.format(Locale.ROOT, " %10.1f %6.1f%%", total, 100.0));
        lines.add(wall.toString());
        return lines;
    }
}
