package org.align4j.data.template;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.el.TruthyTypeConverter;
import com.hubspot.jinjava.interpret.Context;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.exptest.ExpTest;
import com.hubspot.jinjava.lib.filter.Filter;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import com.hubspot.jinjava.lib.tag.Tag;
import com.hubspot.jinjava.objects.date.StrftimeFormatter;
import com.hubspot.jinjava.tree.Node;
import com.hubspot.jinjava.tree.TagNode;
import com.hubspot.jinjava.util.ObjectTruthValue;
import java.time.Clock;
import java.time.Instant;
import java.time.ZonedDateTime;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import jinjava.de.odysseus.el.ExpressionFactoryImpl;
import jinjava.de.odysseus.el.tree.TreeStore;
import jinjava.de.odysseus.el.tree.impl.Cache;
import jinjava.javax.el.CompositeELResolver;
import jinjava.javax.el.ExpressionFactory;
import org.align4j.model.tokenizer.TextTokenizer;

/**
 * A model's Jinja chat template, rendered exactly as transformers' {@code apply_chat_template} renders
 * it with jinja2 (transformers 5.17 {@code utils/chat_template_utils.py}): an immutable sandbox with
 * {@code trim_blocks}, {@code lstrip_blocks} and loop controls; in scope {@code messages}, {@code
 * add_generation_prompt}, {@code tools}, {@code documents}, every special token of the tokenizer
 * ({@code bos_token}, {@code eos_token}, {@code pad_token}, ...; a token the tokenizer lacks is
 * undefined, not empty) and any extra keyword ({@code enable_thinking}, {@code date_string}, ...);
 * the functions {@code raise_exception(msg)} and {@code strftime_now(fmt)}, the {@code tojson} filter
 * as Python's {@code json.dumps(ensure_ascii=False)}, Python's str/list/dict methods, slicing,
 * {@code namespace(...)} and {@code +} ({@link PythonPlus}), and the {@code {% generation %}} tag.
 *
 * <p>Engine: Jinjava, with nested interpretation off (message content is data, never template code:
 * {@code {{ 7*7 }}} in a message stays {@code {{ 7*7 }}}), whitespace control on expressions and
 * comments, and the syntax differences rewritten by {@link PythonSyntax}. The template is parsed once;
 * {@link #render} is safe to call from several threads.
 */
public final class ChatTemplate {
    private final String source;
    private final Map<String, String> specialTokens;
    private final Jinjava jinjava;
    private final Node root;

    /**
     * One chat message with only a role and text. Messages with more fields ({@code tool_calls},
     * {@code reasoning_content}, ...) are passed to {@link #render(List, boolean, Map)} as maps.
     *
     * @param role system, user, assistant, tool, ...
     * @param content the text
     */
    public record Message(String role, String content) {
        /** @return the message as the template sees it */
        public Map<String, Object> toMap() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("role", role);
            m.put("content", content);
            return m;
        }
    }

    /** A template that fails: it does not parse, or raises, or evaluates an expression it cannot. */
    public static final class TemplateException extends IllegalArgumentException {
        private static final long serialVersionUID = 1L;
        private final int templateLine;

        TemplateException(String message, int templateLine) {
            super(message);
            this.templateLine = templateLine;
        }

        /** @return the template line at fault (1-based), or 0 when unknown */
        public int templateLine() {
            return templateLine;
        }
    }

    /**
     * A template whose {@code strftime_now} reads the system clock.
     *
     * @param source the Jinja template text
     * @param specialTokens special tokens by name ({@code bos_token}, ...); a token not named is undefined
     * @throws TemplateException if the template does not parse
     */
    public ChatTemplate(String source, Map<String, String> specialTokens) {
        this(source, specialTokens, Clock.systemDefaultZone());
    }

    /**
     * @param source the Jinja template text
     * @param specialTokens special tokens by name ({@code bos_token}, {@code eos_token}, ...), as
     *     transformers' {@code special_tokens_map}
     * @param clock the clock {@code strftime_now} reads (local date and time in the clock's zone)
     * @throws TemplateException if the template does not parse
     */
    public ChatTemplate(String source, Map<String, String> specialTokens, Clock clock) {
        this.source = source;
        this.specialTokens = Map.copyOf(specialTokens);
        CompositeELResolver resolver = new CompositeELResolver();
        resolver.add(new PythonResolver());
        resolver.add(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_ONLY);
        JinjavaConfig config = JinjavaConfig.newBuilder()
                .withTrimBlocks(false) // PythonSyntax applies trim_blocks, keeping line numbers
                .withLstripBlocks(true)
                .withNestedInterpretationEnabled(false)
                .withElResolver(resolver)
                .withDateTimeProvider(clock::millis)
                .withTimeZone(clock.getZone())
                .withLegacyOverrides(LegacyOverrides.newBuilder()
                        .withUseTrimmingForNotesAndExpressions(true)
                        .withUseNaturalOperatorPrecedence(true)
                        .withParseWhitespaceControlStrictly(true)
                        .withKeepNullableLoopValues(true)
                        .build())
                .build();
        this.jinjava = new PythonJinjava(config);
        Context global = jinjava.getGlobalContext();
        global.registerFunction(
                new ELFunctionDefinition("", "raise_exception", ChatTemplate.class, "raiseException", Object.class));
        global.registerFunction(
                new ELFunctionDefinition("", "strftime_now", ChatTemplate.class, "strftimeNow", String.class));
        global.registerFilter(new ToJson());
        global.registerFilter(new Length());
        global.registerFilter(new Trim());
        global.registerFilter(new LoopFilter());
        global.registerFilter(new StringFilter());
        global.registerTag(new Generation());
        global.registerExpTest(new IterableTest("iterable"));
        global.registerExpTest(new IterableTest("sequence"));
        JinjavaInterpreter parser = jinjava.newInterpreter();
        this.root = parser.parse(PythonSyntax.rewrite(source));
        failOnErrors(parser.getErrors());
    }

    /**
     * The template of a tokenizer, with every special token of its {@code tokenizer_config.json}.
     *
     * @param tokenizer a loaded tokenizer
     * @return its template
     * @throws IllegalArgumentException if the tokenizer has no chat template, or it does not parse
     */
    public static ChatTemplate of(TextTokenizer tokenizer) {
        String t = tokenizer
                .chatTemplate()
                .orElseThrow(() -> new IllegalArgumentException(tokenizer.dir().resolve("tokenizer_config.json")
                        + ": key 'chat_template': the model has no chat template"));
        return new ChatTemplate(t, tokenizer.specialTokens(), Clock.systemDefaultZone());
    }

    /**
     * This template with another clock for {@code strftime_now}.
     *
     * @param clock the clock
     * @return a new template
     */
    public ChatTemplate withClock(Clock clock) {
        return new ChatTemplate(source, specialTokens, clock);
    }

    /**
     * Called from templates as {@code raise_exception('...')}.
     *
     * @param message the template's message
     * @return never
     */
    public static String raiseException(Object message) {
        throw new Raised(String.valueOf(message));
    }

    /**
     * Called from templates as {@code strftime_now('%d %b %Y')}: now, in the template's clock and zone.
     *
     * @param format a Python strftime format
     * @return the formatted local time
     */
    public static String strftimeNow(String format) {
        JinjavaInterpreter interpreter = JinjavaInterpreter.getCurrent();
        long millis = interpreter.getConfig().getDateTimeProvider().getCurrentTimeMillis();
        ZonedDateTime now = ZonedDateTime.ofInstant(
                Instant.ofEpochMilli(millis), interpreter.getConfig().getTimeZone());
        return StrftimeFormatter.format(now, format, Locale.ENGLISH);
    }

    /** What {@code raise_exception} throws, carried out of Jinjava to {@link #render}. */
    private static final class Raised extends RuntimeException {
        private static final long serialVersionUID = 1L;

        Raised(String message) {
            super(message, null, false, false);
        }
    }

    /**
     * Renders messages with only a role and text.
     *
     * @param messages the conversation
     * @param addGenerationPrompt append the assistant turn's opening
     * @return the text
     * @throws TemplateException if the template raises or fails
     */
    public String render(List<Message> messages, boolean addGenerationPrompt) {
        List<Map<String, Object>> maps = new ArrayList<>();
        for (Message m : messages) {
            maps.add(m.toMap());
        }
        return render(maps, addGenerationPrompt, Map.of());
    }

    /**
     * Renders a conversation as {@code tokenizer.apply_chat_template(messages, add_generation_prompt=...,
     * tokenize=False, **kwargs)} does.
     *
     * @param messages the messages, each a map of JSON-like values (strings, numbers, booleans, nulls,
     *     lists, maps) with at least {@code role}; every field reaches the template
     * @param addGenerationPrompt append the assistant turn's opening
     * @param kwargs further template variables: {@code tools} (a list of JSON schemas), {@code
     *     documents}, {@code enable_thinking}, ...; they override special tokens of the same name
     * @return the text
     * @throws TemplateException if a message's tool calls, or {@code tools} or {@code documents}, are malformed
     *     ({@link #messageProblem}, {@link #listOfObjectsProblem}: named by field, before the template runs), or the
     *     template raises ({@code raise_exception}, Python's TypeError of {@code +}) or fails to evaluate
     */
    public String render(List<? extends Map<String, ?>> messages, boolean addGenerationPrompt, Map<String, ?> kwargs) {
        for (int i = 0; i < messages.size(); i++) {
            Problem p = messageProblem(messages.get(i));
            if (p != null) {
                throw new TemplateException("messages[" + i + "]." + p.field() + ": " + p.problem(), 0);
            }
        }
        for (String list : new String[] {"tools", "documents"}) {
            Problem p = listOfObjectsProblem(list, kwargs.get(list));
            if (p != null) {
                throw new TemplateException(p.field() + ": " + p.problem(), 0);
            }
        }
        Map<String, Object> bindings = new HashMap<>(specialTokens);
        // functions are defined names in jinja2 ("strftime_now is defined"); calls still go to the functions
        bindings.put("raise_exception", "<function raise_exception>");
        bindings.put("strftime_now", "<function strftime_now>");
        bindings.put("tools", null);
        bindings.put("documents", null);
        bindings.putAll(immutable(kwargs));
        bindings.put("messages", immutable(messages));
        bindings.put("add_generation_prompt", addGenerationPrompt);
        Context context = new Context(
                jinjava.getGlobalContext(), bindings, jinjava.getGlobalConfig().getDisabled());
        JinjavaInterpreter interpreter = new PythonInterpreter(jinjava, context, jinjava.getGlobalConfig());
        JinjavaInterpreter.pushCurrent(interpreter);
        String out;
        try {
            out = interpreter.render(root);
        } finally {
            JinjavaInterpreter.popCurrent();
        }
        failOnErrors(interpreter.getErrors());
        return out;
    }

    /**
     * A field of a chat message or of the template's variables that the chat format rules out.
     *
     * @param field the field at fault, relative to the message ({@code tool_calls[0].function}) or the
     *     variable ({@code tools[1]})
     * @param problem what is wrong with it
     */
    public record Problem(String field, String problem) {}

    /**
     * The first problem of a message's tool calls, checked before any template runs. Tool calls follow
     * transformers' documented format (its chat-template guide on tool use): {@code tool_calls} is a list
     * of objects, each either {@code {"function": {"name": ..., "arguments": ...}}} (OpenAI's form) or
     * {@code {"name": ..., "arguments": ...}} (the form templates such as Qwen3's also read), with a string
     * name and arguments an object or a JSON string. transformers checks nothing here, but the templates
     * that read tool calls raise on anything else, mostly at {@code tool_call.arguments | tojson} of an
     * undefined value, which Jinjava cannot tell from None: this check refuses what they raise on, by
     * field, whatever the template.
     *
     * @param message a message as {@link #render(List, boolean, Map)} takes it
     * @return the problem, or null when the message's tool calls (if any) are well formed
     */
    public static Problem messageProblem(Map<String, ?> message) {
        Object calls = message.get("tool_calls");
        if (calls == null) {
            return null;
        }
        if (!(calls instanceof List<?> list)) {
            return new Problem(
                    "tool_calls", "expected a list of tool calls, got " + PythonPlus.type(calls) + " " + brief(calls));
        }
        for (int i = 0; i < list.size(); i++) {
            String at = "tool_calls[" + i + "]";
            if (!(list.get(i) instanceof Map<?, ?> call)) {
                return new Problem(
                        at, "expected a {function: {name, arguments}} object, got " + PythonPlus.type(list.get(i)));
            }
            Object function = call.get("function");
            Map<?, ?> named = call;
            if (function != null) {
                if (!(function instanceof Map<?, ?> f)) {
                    return new Problem(
                            at + ".function",
                            "expected a {name, arguments} object, got " + PythonPlus.type(function) + " "
                                    + brief(function));
                }
                named = f;
                at += ".function";
            } else if (!call.containsKey("name")) {
                return new Problem(
                        at,
                        "a tool call needs 'function' ({name, arguments}), or 'name' and 'arguments'; it has neither");
            }
            if (!(named.get("name") instanceof String)) {
                return new Problem(
                        at + ".name", "missing or not a string (got " + PythonPlus.type(named.get("name")) + ")");
            }
            Object arguments = named.get("arguments");
            if (!(arguments instanceof Map<?, ?> || arguments instanceof String)) {
                return new Problem(
                        at + ".arguments",
                        "missing or not an object or a JSON string (got " + PythonPlus.type(arguments) + ")");
            }
        }
        return null;
    }

    /**
     * What transformers' {@code render_jinja_template} itself refuses in {@code tools} (each a JSON
     * schema: ValueError) and {@code documents} (each a dict: TypeError).
     *
     * @param name {@code tools} or {@code documents}
     * @param value the variable's value, or null when not given
     * @return the problem, or null
     */
    public static Problem listOfObjectsProblem(String name, Object value) {
        if (value == null) {
            return null;
        }
        String what = name.equals("tools") ? "a tool's JSON schema (an object)" : "a {title, text} object";
        if (!(value instanceof List<?> list)) {
            return new Problem(name, "expected a list, each " + what + ", got " + PythonPlus.type(value));
        }
        for (int i = 0; i < list.size(); i++) {
            if (!(list.get(i) instanceof Map<?, ?>)) {
                return new Problem(name + "[" + i + "]", "expected " + what + ", got " + PythonPlus.type(list.get(i)));
            }
        }
        return null;
    }

    private static String brief(Object v) {
        String r = PythonValues.repr(v);
        return r.length() > 40 ? r.substring(0, 40) + "..." : r;
    }

    private static void failOnErrors(List<TemplateError> errors) {
        for (TemplateError e : errors) {
            if (e.getSeverity() != TemplateError.ErrorType.FATAL) {
                continue;
            }
            for (Throwable c = e.getException(); c != null; c = c.getCause()) {
                if (c instanceof Raised r) {
                    throw new TemplateException(
                            "chat template raised: " + r.getMessage() + " (template line " + e.getLineno() + ")",
                            e.getLineno());
                }
                if (c instanceof PythonPlus.PythonTypeError t) {
                    throw new TemplateException(
                            "chat template: " + t.getMessage() + " (template line " + e.getLineno() + ")",
                            e.getLineno());
                }
            }
            throw new TemplateException(
                    "chat template: " + e.getMessage() + " (template line " + e.getLineno() + ")", e.getLineno());
        }
    }

    /** Jinjava whose expressions add as Python does ({@link PythonPlus}). */
    private static final class PythonJinjava extends Jinjava {
        private final ExpressionFactory expressions = new ExpressionFactoryImpl(
                new TreeStore(new PythonPlus.SyntaxBuilder(), new Cache(1000)), new TruthyTypeConverter());

        PythonJinjava(JinjavaConfig config) {
            super(config);
        }

        @Override
        public ExpressionFactory getExpressionFactory() {
            return expressions;
        }
    }

    /** Read-only copies: jinja2's immutable sandbox lets no template change the chat. */
    @SuppressWarnings("unchecked")
    private static <T> T immutable(T value) {
        if (value instanceof Map<?, ?> m) {
            Map<Object, Object> copy = new LinkedHashMap<>();
            m.forEach((k, v) -> copy.put(k, immutable(v)));
            return (T) Collections.unmodifiableMap(copy);
        }
        if (value instanceof List<?> l) {
            List<Object> copy = new ArrayList<>(l.size());
            l.forEach(v -> copy.add(immutable(v)));
            return (T) Collections.unmodifiableList(copy);
        }
        return value;
    }

    /** @return the template text */
    public String source() {
        return source;
    }

    /** @return the special tokens in scope, by name */
    public Map<String, String> specialTokens() {
        return specialTokens;
    }

    /**
     * Prints values as Python's {@code str} does ({@code True}, {@code ['a', 1]}, {@code {'k': 'v'}}), except
     * null, which prints as nothing: Jinjava cannot tell None from undefined, and jinja2 prints an undefined
     * value as nothing.
     */
    private static final class PythonInterpreter extends JinjavaInterpreter {
        PythonInterpreter(Jinjava jinjava, Context context, JinjavaConfig config) {
            super(jinjava, context, config);
        }

        @Override
        public String getAsString(Object object) {
            return object == null ? "" : PythonValues.str(object);
        }
    }

    /** {@code string}: Python's {@code str} (null prints as nothing, see {@link PythonInterpreter}). */
    private static final class StringFilter implements Filter {
        @Override
        public String getName() {
            return "string";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            return var == null ? "" : PythonValues.str(var);
        }
    }

    /** {@code tojson(indent=None, separators=None, sort_keys=False)} as transformers defines it. */
    private static final class ToJson implements Filter {
        @Override
        public String getName() {
            return "tojson";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
            Object indent = kwargs.getOrDefault("indent", args.length > 0 ? args[0] : null);
            Object separators = kwargs.getOrDefault("separators", args.length > 1 ? args[1] : null);
            Object sort = kwargs.getOrDefault("sort_keys", args.length > 2 ? args[2] : false);
            List<Object> seps = separators == null ? null : PythonResolver.asList(separators);
            List<String> sepStrings =
                    seps == null ? null : seps.stream().map(String::valueOf).toList();
            return PythonJson.dumps(
                    var,
                    indent == null ? null : ((Number) indent).intValue(),
                    sepStrings,
                    ObjectTruthValue.evaluate(sort));
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            return filter(var, interpreter, args, Map.of());
        }
    }

    /** {@code length}: code points for strings, as Python's {@code len}. */
    private static final class Length implements Filter {
        @Override
        public String getName() {
            return "length";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            if (var == null) {
                return 0;
            }
            if (var instanceof String s) {
                return s.codePointCount(0, s.length());
            }
            if (var instanceof Map<?, ?> m) {
                return m.size();
            }
            List<Object> l = PythonResolver.asList(var);
            return l == null ? 0 : l.size();
        }
    }

    /** {@code trim(chars=None)}: Python's {@code str.strip} of the value's {@code str} (a list prints as Python's). */
    private static final class Trim implements Filter {
        @Override
        public String getName() {
            return "trim";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            return var == null
                    ? null
                    : PythonResolver.strip(PythonValues.str(var), args.length > 0 ? args[0] : null, true, true);
        }
    }

    /**
     * The condition of {@code {% for x in items if cond %}} (see {@link PythonSyntax}): the items for
     * which {@code cond} is true with the loop target bound.
     */
    private static final class LoopFilter implements Filter {
        @Override
        public String getName() {
            return "py_loop_filter";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            String[] targets = args[0].split(",");
            String cond = args[1];
            Iterable<?> items = var instanceof Map<?, ?> m ? m.keySet() : PythonResolver.asList(var);
            List<Object> kept = new ArrayList<>();
            if (items == null) {
                return kept;
            }
            for (Object item : items) {
                try (var scope = interpreter.enterScope()) {
                    if (targets.length == 1) {
                        interpreter.getContext().put(targets[0].strip(), item);
                    } else {
                        List<Object> parts = item instanceof Map.Entry<?, ?> e
                                ? Arrays.asList(e.getKey(), e.getValue())
                                : PythonResolver.asList(item);
                        for (int i = 0; i < targets.length; i++) {
                            interpreter
                                    .getContext()
                                    .put(targets[i].strip(), parts == null || i >= parts.size() ? null : parts.get(i));
                        }
                    }
                    if (ObjectTruthValue.evaluate(interpreter.resolveELExpression(cond, interpreter.getLineNumber()))) {
                        kept.add(item);
                    }
                }
            }
            return kept;
        }
    }

    /**
     * jinja2's {@code iterable} and {@code sequence} tests: strings are iterable sequences in Python
     * (Llama 3.2 writes {@code message.content is mapping or message.content is iterable}).
     */
    private record IterableTest(String name) implements ExpTest {
        @Override
        public String getName() {
            return name;
        }

        @Override
        public boolean evaluate(Object var, JinjavaInterpreter interpreter, Object... args) {
            return var instanceof String
                    || var instanceof Iterable<?>
                    || var instanceof Object[]
                    || (name.equals("iterable") && var instanceof Map<?, ?>);
        }
    }

    /** transformers' {@code {% generation %}...{% endgeneration %}}: renders its body (the mask it marks is not used here). */
    private static final class Generation implements Tag {
        private static final long serialVersionUID = 1L;

        @Override
        public String getName() {
            return "generation";
        }

        @Override
        public String getEndTagName() {
            return "endgeneration";
        }

        @Override
        public String interpret(TagNode tagNode, JinjavaInterpreter interpreter) {
            StringBuilder sb = new StringBuilder();
            for (Node child : tagNode.getChildren()) {
                sb.append(child.render(interpreter).getValue());
            }
            return sb.toString();
        }
    }
}
