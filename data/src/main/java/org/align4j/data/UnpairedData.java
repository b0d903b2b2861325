package org.align4j.data;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import org.align4j.data.io.RawRecord;

/**
 * Unpaired feedback as TRL 1.13's {@code KTOTrainer} reads it: records {@code {"prompt": ..., "completion":
 * ..., "label": true|false}}, the prompt and completion both strings (standard) or both message lists
 * (conversational: the completion is the assistant turn), with a record's own {@code tools} and {@code
 * chat_template_kwargs} as for pairs.
 *
 * <p>Preference pairs are read only when asked ({@code unpair}), and then unpaired as TRL's {@code
 * unpair_preference_dataset} does it: each pair becomes a desirable example (its chosen response) and an
 * undesirable one (its rejected response), in TRL's order, which is that of {@code datasets.map} in
 * batches of {@value #UNPAIR_CHUNK} pairs: the chosen responses of the first {@value #UNPAIR_CHUNK} pairs,
 * then their rejected responses, then the next {@value #UNPAIR_CHUNK}. Without {@code unpair} a pair is a
 * {@link DataException} naming the switch, so that pairs never train as if they were something else.
 */
public final class UnpairedData {
    /** Pairs unpaired at a time: {@code datasets.map}'s default batch size, which TRL's unpairing inherits. */
    public static final int UNPAIR_CHUNK = 1000;

    /**
     * One record as read: an unpaired example, or a pair still to be unpaired (exactly one is set).
     *
     * @param unpaired the example, or null
     * @param pair the pair, or null
     */
    public record Item(UnpairedExample unpaired, PreferenceExample pair) {}

    /**
     * Two disjoint parts of a dataset's records (a pair stays whole in one part).
     *
     * @param train the training records
     * @param eval the held-out records
     */
    public record Split(List<Item> train, List<Item> eval) {}

    private UnpairedData() {}

    /**
     * Reads every record.
     *
     * @param path a data file or a folder of shards
     * @param format the record format (AUTO detects it per record; a forced format applies to pairs as
     *     {@link PreferenceParser} reads them, and to the type of an unpaired record's prompt)
     * @param skipInvalid skip and count bad records instead of stopping at the first
     * @param unpair read preference pairs, to be unpaired; without it a pair is refused
     * @return the records in file order
     * @throws DataException naming file, line and field: a record without {@code label}, a label that is
     *     not true or false, a pair without {@code unpair}, a file that mixes pairs and unpaired records
     */
    public static List<Item> read(Path path, DataFormat format, boolean skipInvalid, boolean unpair) {
        PreferenceParser pairs = new PreferenceParser(format);
        boolean[] first = {true};
        boolean[] pairsFirst = {false};
        return PreferenceData.read(
                        path,
                        r -> {
                            Item item = parse(r, format, pairs, unpair);
                            boolean isPair = item.pair() != null;
                            if (first[0]) {
                                first[0] = false;
                                pairsFirst[0] = isPair;
                            } else if (isPair != pairsFirst[0]) {
                                throw new DataException(
                                        r.file(),
                                        r.line(),
                                        isPair ? "chosen" : "label",
                                        "a " + (isPair ? "preference pair" : "labelled completion")
                                                + " among " + (isPair ? "labelled completions" : "preference pairs")
                                                + "; give one kind per dataset");
                            }
                            return item;
                        },
                        skipInvalid,
                        unpair ? "records" : "labelled completions")
                .items();
    }

    /**
     * The examples of records: unpaired records as they are; pairs unpaired in TRL's order.
     *
     * @param items records, all unpaired or all pairs
     * @return the examples
     */
    public static List<UnpairedExample> examples(List<Item> items) {
        List<UnpairedExample> out = new ArrayList<>();
        List<PreferenceExample> chunk = new ArrayList<>();
        for (Item item : items) {
            if (item.unpaired() != null) {
                flush(chunk, out);
                out.add(item.unpaired());
            } else {
                chunk.add(item.pair());
                if (chunk.size() == UNPAIR_CHUNK) {
                    flush(chunk, out);
                }
            }
        }
        flush(chunk, out);
        return Collections.unmodifiableList(out);
    }

    private static void flush(List<PreferenceExample> chunk, List<UnpairedExample> out) {
        for (PreferenceExample p : chunk) {
            out.add(new UnpairedExample(side(p, true), true));
        }
        for (PreferenceExample p : chunk) {
            out.add(new UnpairedExample(side(p, false), false));
        }
        chunk.clear();
    }

    /** One side of a pair as an example whose chosen side is that response. */
    private static PreferenceExample side(PreferenceExample p, boolean chosen) {
        return new PreferenceExample(
                p.prompt(),
                p.prompt() == null ? null : chosen ? p.chosen() : p.rejected(),
                null,
                p.promptMessages(),
                p.promptMessages() == null ? null : chosen ? p.chosenMessages() : p.rejectedMessages(),
                null,
                null,
                p.file(),
                p.line(),
                p.templateArgs());
    }

    /**
     * A seeded random split of the records, as {@link PreferenceData#split} splits pairs: the same seed
     * gives the same split, and a pair's two examples stay on one side.
     *
     * @param items the records
     * @param evalFraction the share held out, in [0, 1)
     * @param seed the seed
     * @return train and eval parts
     */
    public static Split split(List<Item> items, double evalFraction, long seed) {
        if (!(evalFraction >= 0 && evalFraction < 1)) {
            throw new IllegalArgumentException("evalFraction: must lie in [0, 1), got " + evalFraction);
        }
        List<Item> shuffled = new ArrayList<>(items);
        Collections.shuffle(shuffled, new Random(seed));
        int nEval = evalFraction == 0 ? 0 : Math.max(1, (int) Math.round(evalFraction * items.size()));
        if (nEval >= items.size()) {
            throw new IllegalArgumentException(
                    "evalFraction: " + evalFraction + " of " + items.size() + " records leaves none to train on");
        }
        return new Split(
                List.copyOf(shuffled.subList(nEval, shuffled.size())), List.copyOf(shuffled.subList(0, nEval)));
    }

    private static Item parse(RawRecord r, DataFormat format, PreferenceParser pairs, boolean unpair) {
        JsonNode v = r.value();
        if (v == null || !v.isObject()) {
            throw PreferenceParser.error(r, null, "expected a JSON object, got " + kind(v));
        }
        if (v.has("chosen") || v.has("rejected")) {
            if (!unpair) {
                throw PreferenceParser.error(
                        r,
                        v.has("chosen") ? "chosen" : "rejected",
                        "a preference pair, where kto reads labelled completions {prompt, completion, label};"
                                + " give unpair_preference_dataset: true (--unpair-preference-dataset) to train on"
                                + " each pair as a desirable and an undesirable completion, as TRL's"
                                + " unpair_preference_dataset does");
            }
            if (v.has("label") || v.has("completion")) {
                throw PreferenceParser.error(
                        r,
                        v.has("label") ? "label" : "completion",
                        "a record with both a pair (chosen, rejected) and a labelled completion; give one");
            }
            return new Item(null, pairs.parse(r));
        }
        JsonNode prompt = v.get("prompt");
        JsonNode completion = v.get("completion");
        if (completion == null || completion.isNull()) {
            throw PreferenceParser.error(
                    r,
                    "completion",
                    "missing: kto reads labelled completions {prompt, completion, label}"
                            + (prompt != null && !prompt.isNull() && !v.has("label")
                                    ? " (a prompt-only record is for grpo and rloo)"
                                    : ""));
        }
        if (prompt == null || prompt.isNull()) {
            throw PreferenceParser.error(r, "prompt", "missing");
        }
        JsonNode label = v.get("label");
        if (label == null || label.isNull()) {
            throw PreferenceParser.error(
                    r, "label", "missing: true for a desirable completion, false for an undesirable one");
        }
        if (!label.isBoolean()) {
            throw PreferenceParser.error(
                    r,
                    "label",
                    "expected true or false (desirable or not), got "
                            + (label.isTextual() ? "\"" + label.asText() + "\"" : label.toString()));
        }
        PreferenceExample e;
        if (prompt.isTextual() && completion.isTextual()) {
            if (format == DataFormat.CONVERSATIONAL) {
                throw PreferenceParser.error(r, "prompt", "a string, but format is conversational");
            }
            e = new PreferenceExample(
                    prompt.asText(), completion.asText(), null, null, null, null, null, r.file(), r.line());
        } else if (prompt.isArray() && completion.isArray()) {
            if (format == DataFormat.STANDARD) {
                throw PreferenceParser.error(r, "prompt", "a list of messages, but format is standard");
            }
            List<Message> p = PreferenceParser.messages(r, "prompt");
            List<Message> c = PreferenceParser.messages(r, "completion");
            for (int i = 0; i < c.size(); i++) {
                if (!"assistant".equals(c.get(i).role())) {
                    throw PreferenceParser.error(
                            r,
                            "completion[" + i + "].role",
                            "a completion must be assistant messages, got '"
                                    + c.get(i).role() + "'");
                }
            }
            e = new PreferenceExample(null, null, null, p, c, null, null, r.file(), r.line())
                    .withTemplateArgs(PreferenceParser.templateArgs(r));
        } else {
            throw PreferenceParser.error(
                    r, "completion", "expected prompt and completion both strings or both message lists");
        }
        if (format == DataFormat.IMPLICIT_PROMPT) {
            throw PreferenceParser.error(r, "prompt", "given, but format is implicit_prompt (pairs without a prompt)");
        }
        return new Item(new UnpairedExample(e, label.booleanValue()), null);
    }

    private static String kind(JsonNode n) {
        return n == null || n.isNull() ? "null" : n.getNodeType().name().toLowerCase(Locale.ROOT);
    }
}
