package org.align4j.data;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.align4j.data.io.RawRecord;
import org.align4j.data.template.ChatTemplate;

/**
 * Turns raw records into {@link PreferenceExample}s, detecting the format per record (or using a
 * forced one) and rejecting bad records with a {@link DataException} that names file, line and field.
 *
 * <p>Preference probability, when present: {@code preference} or {@code p} (a number in [0, 1]), or
 * {@code score_chosen} and {@code score_rejected} (UltraFeedback-style scores), turned into p = σ(s_c −
 * s_r).
 *
 * <p>Reward margin, when present: {@code margin} (a finite number), TRL RewardTrainer's column: the
 * reward model's loss becomes −log σ(r_c − r_r − margin).
 */
public final class PreferenceParser {
    /** HH-RLHF's turn marker that ends the shared prompt. */
    public static final String ASSISTANT_MARKER = "\n\nAssistant:";

    private final DataFormat format;

    /** @param format the format to expect, or AUTO */
    public PreferenceParser(DataFormat format) {
        this.format = format;
    }

    /**
     * @param r a raw record
     * @return the parsed pair
     * @throws DataException naming file, line and field
     */
    public PreferenceExample parse(RawRecord r) {
        JsonNode v = r.value();
        if (v == null || !v.isObject()) {
            throw error(r, null, "expected a JSON object, got " + kind(v));
        }
        DataFormat f = format == DataFormat.AUTO ? detect(r) : format;
        Double p = preference(r);
        PreferenceExample e;
        switch (f) {
            case STANDARD:
                e = standard(r, p);
                break;
            case CONVERSATIONAL:
                e = conversational(r, p);
                break;
            case IMPLICIT_PROMPT:
                e = v.path("chosen").isArray() ? implicitConversation(r, p) : implicitText(r, p);
                break;
            default:
                throw new IllegalStateException(f.name());
        }
        Double margin = margin(r);
        if (margin != null) {
            e = e.withMargin(margin);
        }
        return e.conversational() ? e.withTemplateArgs(templateArgs(r)) : e;
    }

    /**
     * A record's chat-template variables as TRL 1.13's DPOTrainer reads them: {@code tools} (a list, or
     * a JSON string of one) and the entries of {@code chat_template_kwargs}, which win.
     */
    static Map<String, Object> templateArgs(RawRecord r) {
        JsonNode tools = r.value().get("tools");
        JsonNode kwargs = r.value().get("chat_template_kwargs");
        if ((tools == null || tools.isNull()) && (kwargs == null || kwargs.isNull())) {
            return null;
        }
        Map<String, Object> args = new LinkedHashMap<>();
        if (tools != null && !tools.isNull()) {
            JsonNode list = tools;
            if (tools.isTextual()) {
                try {
                    list = JSON.readTree(tools.asText());
                } catch (JsonProcessingException ex) {
                    throw error(r, "tools", "a string, but not JSON: " + ex.getOriginalMessage());
                }
            }
            if (!list.isArray()) {
                throw error(r, "tools", "expected a list of tool JSON schemas, got " + kind(list));
            }
            args.put("tools", toJava(list));
        }
        if (kwargs != null && !kwargs.isNull()) {
            if (!kwargs.isObject()) {
                throw error(r, "chat_template_kwargs", "expected an object, got " + kind(kwargs));
            }
            kwargs.fields().forEachRemaining(k -> args.put(k.getKey(), toJava(k.getValue())));
        }
        for (String name : new String[] {"tools", "documents"}) {
            ChatTemplate.Problem problem = ChatTemplate.listOfObjectsProblem(name, args.get(name));
            if (problem != null) {
                String field = kwargs != null && kwargs.has(name)
                        ? "chat_template_kwargs." + problem.field()
                        : problem.field();
                throw error(r, field, problem.problem());
            }
        }
        return args;
    }

    /**
     * A record of TRL's language-modeling formats, as TRL 1.13's SFTTrainer reads them: {@code {"text":
     * "..."}} (a non-empty string), or {@code {"messages": [...]}} (a conversation, each message checked as
     * a pair's are) with the record's {@code tools} and {@code chat_template_kwargs}.
     *
     * @param r a record with {@code text} or {@code messages}
     * @return the example ({@link PreferenceExample#languageModeling})
     * @throws DataException naming the record and field when it is malformed
     */
    public static PreferenceExample languageModeling(RawRecord r) {
        if (r.value().has("messages")) {
            return PreferenceExample.languageModeling(messages(r, "messages"), r.file(), r.line(), templateArgs(r));
        }
        JsonNode text = r.value().get("text");
        if (text == null || !text.isTextual()) {
            throw error(r, "text", "expected a string, got " + kind(text));
        }
        if (text.asText().isEmpty()) {
            throw error(r, "text", "empty");
        }
        return PreferenceExample.languageModeling(text.asText(), r.file(), r.line());
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    /** JSON as the plain Java values a template reads: Map (in order), List, String, Long, Double, Boolean, null. */
    static Object toJava(JsonNode n) {
        if (n == null || n.isNull() || n.isMissingNode()) {
            return null;
        }
        if (n.isTextual()) {
            return n.asText();
        }
        if (n.isBoolean()) {
            return n.asBoolean();
        }
        if (n.isIntegralNumber()) {
            return n.asLong();
        }
        if (n.isNumber()) {
            return n.asDouble();
        }
        if (n.isArray()) {
            List<Object> l = new ArrayList<>();
            n.forEach(x -> l.add(toJava(x)));
            return l;
        }
        Map<String, Object> m = new LinkedHashMap<>();
        n.fields().forEachRemaining(f -> m.put(f.getKey(), toJava(f.getValue())));
        return m;
    }

    private DataFormat detect(RawRecord r) {
        JsonNode v = r.value();
        if (!v.has("chosen") && !v.has("rejected") && v.has("prompt") && !v.has("completion")) {
            throw error(
                    r,
                    "chosen",
                    "missing: a prompt-only record (align4j grpo and rloo sample their own completions"
                            + " from these); preference training needs pairs");
        }
        if (!v.has("chosen")) {
            throw error(r, "chosen", "missing");
        }
        if (!v.has("rejected")) {
            throw error(r, "rejected", "missing");
        }
        JsonNode prompt = v.get("prompt");
        if (prompt == null || prompt.isNull()) {
            return DataFormat.IMPLICIT_PROMPT;
        }
        if (prompt.isArray()) {
            return DataFormat.CONVERSATIONAL;
        }
        // UltraFeedback-binarized: a prompt string plus whole conversations as chosen/rejected
        if (v.get("chosen").isArray() && v.get("rejected").isArray()) {
            return DataFormat.IMPLICIT_PROMPT;
        }
        return DataFormat.STANDARD;
    }

    private PreferenceExample standard(RawRecord r, Double p) {
        String prompt = text(r, "prompt", false);
        // an empty response is allowed, as TRL allows it: the completion is then its eos alone
        String chosen = text(r, "chosen", true);
        String rejected = text(r, "rejected", true);
        if (chosen.equals(rejected)) {
            throw error(r, "rejected", "identical to chosen; a pair must differ");
        }
        return PreferenceExample.text(prompt, chosen, rejected, p, r.file(), r.line());
    }

    private PreferenceExample conversational(RawRecord r, Double p) {
        List<Message> prompt = messages(r, "prompt");
        List<Message> chosen = messages(r, "chosen");
        List<Message> rejected = messages(r, "rejected");
        assistantOnly(r, "chosen", chosen);
        assistantOnly(r, "rejected", rejected);
        if (chosen.equals(rejected)) {
            throw error(r, "rejected", "identical to chosen; a pair must differ");
        }
        return PreferenceExample.conversation(prompt, chosen, rejected, p, r.file(), r.line());
    }

    private PreferenceExample implicitText(RawRecord r, Double p) {
        String chosen = text(r, "chosen", false);
        String rejected = text(r, "rejected", false);
        if (chosen.equals(rejected)) {
            throw error(r, "rejected", "identical to chosen; a pair must differ");
        }
        int common = 0;
        int max = Math.min(chosen.length(), rejected.length());
        while (common < max && chosen.charAt(common) == rejected.charAt(common)) {
            common++;
        }
        int cut = chosen.lastIndexOf(ASSISTANT_MARKER, common - ASSISTANT_MARKER.length());
        if (cut < 0) {
            throw error(
                    r, "chosen", "no shared prompt: chosen and rejected share no text ending in \"\\n\\nAssistant:\"");
        }
        int end = cut + ASSISTANT_MARKER.length();
        // a response that is nothing after the shared prompt (HH-RLHF has such chosen answers) is a
        // completion of its eos alone, as in TRL, not an error
        String chosenTail = chosen.substring(end);
        String rejectedTail = rejected.substring(end);
        return PreferenceExample.text(chosen.substring(0, end), chosenTail, rejectedTail, p, r.file(), r.line());
    }

    private PreferenceExample implicitConversation(RawRecord r, Double p) {
        List<Message> chosen = messages(r, "chosen");
        List<Message> rejected = messages(r, "rejected");
        int common = 0;
        while (common < Math.min(chosen.size(), rejected.size())
                && chosen.get(common).equals(rejected.get(common))) {
            common++;
        }
        // the prompt ends before the first assistant turn where the two differ
        while (common > 0 && "assistant".equals(chosen.get(common - 1).role())) {
            common--;
        }
        if (common == 0) {
            throw error(r, "chosen", "no shared prompt: chosen and rejected share no leading non-assistant messages");
        }
        List<Message> prompt = chosen.subList(0, common);
        List<Message> c = chosen.subList(common, chosen.size());
        List<Message> j = rejected.subList(common, rejected.size());
        if (c.isEmpty()) {
            throw error(r, "chosen", "no response after the shared prompt");
        }
        if (j.isEmpty()) {
            throw error(r, "rejected", "no response after the shared prompt");
        }
        assistantOnly(r, "chosen", c);
        assistantOnly(r, "rejected", j);
        if (c.equals(j)) {
            throw error(r, "rejected", "identical to chosen; a pair must differ");
        }
        return PreferenceExample.conversation(prompt, c, j, p, r.file(), r.line());
    }

    private static Double margin(RawRecord r) {
        JsonNode n = r.value().get("margin");
        if (n == null || n.isNull()) {
            return null;
        }
        if (!n.isNumber() || !Double.isFinite(n.asDouble())) {
            throw error(r, "margin", "expected a finite number, got " + (n.isNumber() ? n.asText() : kind(n)));
        }
        return n.asDouble();
    }

    private Double preference(RawRecord r) {
        JsonNode v = r.value();
        for (String key : new String[] {"preference", "p"}) {
            JsonNode n = v.get(key);
            if (n != null && !n.isNull()) {
                if (!n.isNumber()) {
                    throw error(r, key, "expected a number in [0, 1], got " + kind(n));
                }
                double p = n.asDouble();
                if (!(p >= 0 && p <= 1)) {
                    throw error(r, key, "expected a number in [0, 1], got " + p);
                }
                return p;
            }
        }
        JsonNode sc = v.get("score_chosen");
        JsonNode sr = v.get("score_rejected");
        if ((sc == null || sc.isNull()) != (sr == null || sr.isNull())) {
            throw error(
                    r,
                    sc == null || sc.isNull() ? "score_chosen" : "score_rejected",
                    "missing while the other score is given");
        }
        if (sc != null && !sc.isNull()) {
            if (!sc.isNumber()) {
                throw error(r, "score_chosen", "expected a number, got " + kind(sc));
            }
            if (!sr.isNumber()) {
                throw error(r, "score_rejected", "expected a number, got " + kind(sr));
            }
            return 1 / (1 + Math.exp(-(sc.asDouble() - sr.asDouble())));
        }
        return null;
    }

    private static String text(RawRecord r, String field, boolean mayBeEmpty) {
        JsonNode n = r.value().get(field);
        if (n == null || n.isNull()) {
            throw error(r, field, "missing");
        }
        if (!n.isTextual()) {
            throw error(r, field, "expected a string, got " + kind(n));
        }
        if (!mayBeEmpty && n.asText().isEmpty()) {
            throw error(r, field, "empty");
        }
        return n.asText();
    }

    static List<Message> messages(RawRecord r, String field) {
        JsonNode n = r.value().get(field);
        if (n == null || n.isNull()) {
            throw error(r, field, "missing");
        }
        if (!n.isArray()) {
            throw error(r, field, "expected a list of {role, content} messages, got " + kind(n));
        }
        if (n.isEmpty()) {
            throw error(r, field, "empty");
        }
        List<Message> out = new ArrayList<>();
        for (int i = 0; i < n.size(); i++) {
            JsonNode m = n.get(i);
            String where = field + "[" + i + "]";
            if (!m.isObject()) {
                throw error(r, where, "expected a {role, content} object, got " + kind(m));
            }
            JsonNode role = m.get("role");
            JsonNode content = m.get("content");
            if (role == null || !role.isTextual() || role.asText().isEmpty()) {
                throw error(r, where + ".role", "missing or not a string");
            }
            boolean callsTools = m.hasNonNull("tool_calls");
            boolean parts = content != null && content.isArray();
            if (parts) {
                checkParts(r, where + ".content", content);
            } else if (!(content != null && content.isTextual())
                    && !(callsTools && (content == null || content.isNull()))) {
                throw error(r, where + ".content", "missing or not a string (or a list of typed parts)");
            }
            Map<String, Object> fields = new LinkedHashMap<>();
            m.fields().forEachRemaining(f -> {
                if (!f.getKey().equals("role") && !f.getKey().equals("content")) {
                    fields.put(f.getKey(), toJava(f.getValue()));
                }
            });
            ChatTemplate.Problem problem = ChatTemplate.messageProblem(fields);
            if (problem != null) {
                throw error(r, where + "." + problem.field(), problem.problem());
            }
            if (parts) {
                // typed parts reach the template as the list they are, as transformers passes them
                Map<String, Object> withParts = new LinkedHashMap<>();
                withParts.put("content", toJava(content));
                withParts.putAll(fields);
                out.add(new Message(role.asText(), null, withParts));
                continue;
            }
            out.add(new Message(role.asText(), content == null || content.isNull() ? null : content.asText(), fields));
        }
        return out;
    }

    /**
     * Message content as a list of typed parts ({@code [{"type": "text", "text": "..."}]}, the OpenAI and
     * transformers multimodal form): every part an object with a string {@code type}; a text part has a
     * string {@code text}.
     */
    private static void checkParts(RawRecord r, String where, JsonNode content) {
        if (content.isEmpty()) {
            throw error(r, where, "an empty list of parts");
        }
        for (int j = 0; j < content.size(); j++) {
            JsonNode part = content.get(j);
            String at = where + "[" + j + "]";
            if (!part.isObject() || !part.path("type").isTextual()) {
                throw error(r, at, "expected a {type, ...} part, got " + kind(part));
            }
            if ("text".equals(part.get("type").asText()) && !part.path("text").isTextual()) {
                throw error(r, at + ".text", "missing or not a string");
            }
        }
    }

    private static void assistantOnly(RawRecord r, String field, List<Message> messages) {
        for (int i = 0; i < messages.size(); i++) {
            if (!"assistant".equals(messages.get(i).role())) {
                throw error(
                        r,
                        field + "[" + i + "].role",
                        "a response must be assistant messages, got '"
                                + messages.get(i).role() + "'");
            }
            if (messages.get(i).content() != null
                    && messages.get(i).content().isEmpty()
                    && messages.get(i).fields().get("tool_calls") == null) {
                throw error(r, field + "[" + i + "].content", "empty");
            }
        }
    }

    private static String kind(JsonNode n) {
        if (n == null || n.isNull()) {
            return "null";
        }
        return n.getNodeType().name().toLowerCase(Locale.ROOT);
    }

    static DataException error(RawRecord r, String field, String message) {
        return new DataException(r.file(), r.line(), field, message);
    }
}
