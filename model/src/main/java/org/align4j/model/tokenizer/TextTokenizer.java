package org.align4j.model.tokenizer;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.djl.huggingface.tokenizers.jni.TokenizersLibrary;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.align4j.model.hub.HubId;
import org.align4j.model.io.CheckpointException;
import org.align4j.model.io.InputFiles;
import org.align4j.model.io.ModelFolder;
import org.align4j.model.lora.PeftAdapter;

/**
 * The tokenizer of an HF model folder: {@code tokenizer.json} through DJL's HF tokenizers, plus the
 * special tokens and chat template of {@code tokenizer_config.json}. Encoding never adds special
 * tokens and never truncates: align4j's encoders place eos and truncate themselves.
 */
public final class TextTokenizer implements AutoCloseable {
    private static final ObjectMapper JSON = InputFiles.strictMapper();

    private final HuggingFaceTokenizer tokenizer;
    private final Path dir;
    private final int bosId;
    private final int eosId;
    private final List<Integer> eosIds;
    private final int padId;
    private final String chatTemplate;
    private final String bosToken;
    private final String eosToken;
    private final Map<String, String> specialTokens;
    private final AddedTokens addedTokens;

    private TextTokenizer(
            HuggingFaceTokenizer tokenizer,
            Path dir,
            int bosId,
            int eosId,
            List<Integer> eosIds,
            int padId,
            String chatTemplate,
            String bosToken,
            String eosToken,
            Map<String, String> specialTokens) {
        this.tokenizer = tokenizer;
        this.dir = dir;
        this.bosId = bosId;
        this.eosId = eosId;
        this.eosIds = List.copyOf(eosIds);
        this.padId = padId;
        this.chatTemplate = chatTemplate;
        this.bosToken = bosToken;
        this.eosToken = eosToken;
        this.specialTokens = Map.copyOf(specialTokens);
        this.addedTokens = AddedTokens.read(dir.resolve("tokenizer.json"));
    }

    /**
     * Loads the tokenizer of a model folder.
     *
     * @param dir a folder with {@code tokenizer.json} (and usually {@code tokenizer_config.json})
     * @return the tokenizer
     * @throws CheckpointException naming the missing or broken file
     */
    public static TextTokenizer load(Path dir) {
        dir = ModelFolder.resolve(dir);
        Path adapterBase = adapterBase(dir);
        if (adapterBase != null) {
            return load(adapterBase);
        }
        ModelFolder.check(dir, "tokenizer.json");
        Path file = InputFiles.requireRegular(dir.resolve("tokenizer.json"));
        HuggingFaceTokenizer tk;
        try {
            tk = HuggingFaceTokenizer.newInstance(
                    file,
                    Map.of(
                            "addSpecialTokens",
                            "false",
                            "truncation",
                            "false",
                            "padding",
                            "false",
                            "maxLength",
                            "1000000000",
                            "modelMaxLength",
                            "1000000000"));
        } catch (IOException | RuntimeException e) {
            throw new CheckpointException(file, "cannot load tokenizer: " + e.getMessage(), e);
        }
        JsonNode cfg = readJson(dir.resolve("tokenizer_config.json"));
        JsonNode modelCfg = readJson(dir.resolve("config.json"));
        String bos = tokenString(cfg.get("bos_token"));
        String eos = tokenString(cfg.get("eos_token"));
        String pad = tokenString(cfg.get("pad_token"));
        int bosId = idOf(tk, bos, modelCfg.path("bos_token_id").asInt(-1));
        List<Integer> eosIds = new ArrayList<>();
        int eosFromTokenizer = idOf(tk, eos, -1);
        if (eosFromTokenizer >= 0) {
            eosIds.add(eosFromTokenizer);
        }
        JsonNode modelEos = modelCfg.get("eos_token_id");
        if (modelEos != null) {
            for (JsonNode e :
                    modelEos.isArray() ? modelEos : JSON.createArrayNode().add(modelEos)) {
                if (e.isInt() && !eosIds.contains(e.asInt())) {
                    eosIds.add(e.asInt());
                }
            }
        }
        int padId = idOf(tk, pad, modelCfg.path("pad_token_id").asInt(-1));
        if (padId < 0) {
            padId = eosIds.isEmpty() ? 0 : eosIds.get(0); // HF's usual fallback: pad with eos
        }
        String template = chatTemplate(dir, cfg);
        int eosId = eosIds.isEmpty() ? -1 : eosIds.get(0);
        List<Integer> stopIds = generationEos(dir.resolve("generation_config.json"));
        return new TextTokenizer(
                tk,
                dir,
                bosId,
                eosId,
                stopIds != null ? stopIds : eosIds,
                padId,
                template,
                bos,
                eos,
                specialTokens(cfg));
    }

    /** {@code eos_token_id} of generation_config.json (an id or a list), or null when it names none. */
    private static List<Integer> generationEos(Path file) {
        JsonNode eos = readJson(file).get("eos_token_id");
        if (eos == null || eos.isNull()) {
            return null;
        }
        List<Integer> ids = new ArrayList<>();
        for (JsonNode e : eos.isArray() ? eos : JSON.createArrayNode().add(eos)) {
            if (!e.isIntegralNumber()) {
                throw new CheckpointException(file, "key 'eos_token_id': expected an id or a list of ids, got " + eos);
            }
            ids.add(e.asInt());
        }
        return ids.isEmpty() ? null : ids;
    }

    /**
     * transformers 5's {@code special_tokens_map}: the named tokens (bos, eos, unk, sep, pad, cls, mask),
     * every other {@code *_token} key whose value is a token, and a named {@code extra_special_tokens} map.
     */
    private static Map<String, String> specialTokens(JsonNode cfg) {
        Map<String, String> out = new LinkedHashMap<>();
        cfg.fields().forEachRemaining(e -> {
            String token = e.getValue().isTextual() || e.getValue().has("content") ? tokenString(e.getValue()) : null;
            if (e.getKey().endsWith("_token") && token != null) {
                out.put(e.getKey(), token);
            }
        });
        JsonNode extra = cfg.get("extra_special_tokens");
        if (extra != null && extra.isObject()) {
            extra.fields().forEachRemaining(e -> {
                String token = tokenString(e.getValue());
                if (token != null) {
                    out.put(e.getKey(), token);
                }
            });
        }
        return out;
    }

    /**
     * A PEFT adapter folder (PEFT saves no tokenizer files beside {@code adapter_config.json}) takes its
     * tokenizer from the base model it names, as {@code AutoTokenizer} on the base does.
     *
     * @return the base folder, or null when {@code dir} has a tokenizer or is no adapter folder
     */
    private static Path adapterBase(Path dir) {
        if (Files.exists(dir.resolve("tokenizer.json"), LinkOption.NOFOLLOW_LINKS)
                || !Files.isRegularFile(dir.resolve(PeftAdapter.CONFIG_FILE))) {
            return null;
        }
        String base = PeftAdapter.baseModel(dir);
        if (base == null || base.isBlank()) {
            return null;
        }
        for (Path candidate : new Path[] {Path.of(base), dir.resolve(base)}) {
            if (Files.isRegularFile(candidate.resolve("tokenizer.json"))) {
                return candidate;
            }
        }
        // an adapter made on a Hub model names it by id, as PEFT does (the model is fetched the same way)
        return HubId.looksLikeId(base) ? ModelFolder.resolve(Path.of(base)) : null;
    }

    private static JsonNode readJson(Path file) {
        if (!Files.exists(file, LinkOption.NOFOLLOW_LINKS)) {
            return JSON.createObjectNode();
        }
        InputFiles.requireRegular(file);
        try {
            JsonNode n = JSON.readTree(Files.readString(file));
            return n == null ? JSON.createObjectNode() : n;
        } catch (IOException e) {
            throw new CheckpointException(file, "not valid JSON: " + e.getMessage(), e);
        }
    }

    /** Special tokens are a string or an AddedToken object {content: ...}. */
    private static String tokenString(JsonNode n) {
        if (n == null || n.isNull()) {
            return null;
        }
        return n.isTextual() ? n.asText() : n.path("content").asText(null);
    }

    private static int idOf(HuggingFaceTokenizer tk, String token, int fallback) {
        if (token == null) {
            return fallback;
        }
        long[] ids = tk.encode(token, false, false).getIds();
        return ids.length == 1 ? (int) ids[0] : fallback;
    }

    private static String chatTemplate(Path dir, JsonNode cfg) {
        Path jinja = dir.resolve("chat_template.jinja");
        if (Files.exists(jinja, LinkOption.NOFOLLOW_LINKS)) {
            InputFiles.requireRegular(jinja);
            try {
                return Files.readString(jinja);
            } catch (IOException e) {
                throw new CheckpointException(jinja, "cannot read: " + e.getMessage(), e);
            }
        }
        JsonNode t = cfg.get("chat_template");
        if (t == null || t.isNull()) {
            return null;
        }
        Path file = dir.resolve("tokenizer_config.json");
        if (t.isArray()) { // named templates: "default", as transformers takes it
            for (JsonNode named : t) {
                if ("default".equals(named.path("name").asText())
                        && named.path("template").isTextual()) {
                    return named.path("template").asText();
                }
            }
            return raising(file + ": key 'chat_template': named templates without a 'default' one (as transformers,"
                    + " align4j does not choose one)");
        }
        if (!t.isTextual()) {
            return raising(file + ": key 'chat_template': expected a string (or a list of {name, template}), got " + t);
        }
        return t.asText();
    }

    /**
     * A template that raises when applied: transformers loads such a tokenizer and tokenizes text with it,
     * and refuses only to apply its chat template.
     */
    private static String raising(String message) {
        // a double-quoted literal without double quotes or backslashes inside, whatever the engine's escapes
        return "{{ raise_exception(\"" + message.replace('"', '\'').replace('\\', '/') + "\") }}";
    }

    /**
     * @param text any text
     * @return its token ids, no special tokens added
     */
    public int[] encode(String text) {
        return encode(text, false);
    }

    /**
     * The ids transformers' {@code tokenizer(text)} gives: with the special tokens the tokenizer's
     * post-processor adds (a bos for Llama-family tokenizers; nothing for GPT-2's or Qwen's), as TRL's
     * RewardTrainer tokenizes a plain-text sequence.
     *
     * @param text any text
     * @return its token ids, special tokens added
     */
    public int[] encodeWithSpecialTokens(String text) {
        return encode(text, true);
    }

    private int[] encode(String text, boolean addSpecialTokens) {
        // Only the ids: DJL's encode() also copies tokens, offsets and masks over JNI (3x slower).
        long encoding = TokenizersLibrary.LIB.encode(tokenizer.getHandle(), text, addSpecialTokens);
        long[] ids;
        try {
            ids = TokenizersLibrary.LIB.getTokenIds(encoding);
        } finally {
            TokenizersLibrary.LIB.deleteEncoding(encoding);
        }
        int[] out = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            out[i] = (int) ids[i];
        }
        return out;
    }

    /**
     * Where a text may be cut so that its ids are the ids of the part before the cut followed by those of
     * the part after it: right after the last added token (special tokens such as {@code <|im_end|>} or
     * {@code <|end_header_id|>}), which HF tokenizers split out of the text before normalizing and
     * pre-tokenizing the pieces between them one by one. An added token that a longer one could continue
     * ({@code \n} where {@code \n\n} is a token too) is passed over for an earlier one. None when the
     * tokenizer treats a piece differently by its place in the text (Metaspace that prepends to the first
     * piece only, added tokens that strip neighbouring whitespace, normalized added tokens under a
     * normalizer).
     *
     * @param text a text
     * @return the cut (a char index, 0 &lt; cut &lt;= length), or -1
     */
    public int cutAfterLastAddedToken(String text) {
        return addedTokens.cutAfterLast(text);
    }

    /**
     * @param ids token ids
     * @param skipSpecial drop special tokens
     * @return the text
     */
    public String decode(int[] ids, boolean skipSpecial) {
        long[] l = new long[ids.length];
        for (int i = 0; i < ids.length; i++) {
            l[i] = ids[i];
        }
        return tokenizer.decode(l, skipSpecial);
    }

    /** @return the folder it was loaded from */
    public Path dir() {
        return dir;
    }

    /** @return the bos id or -1 */
    public int bosId() {
        return bosId;
    }

    /**
     * @return the eos id align4j appends after a plain completion: the tokenizer's {@code eos_token},
     *     else config.json's first {@code eos_token_id}; -1 when neither names one
     */
    public int eosId() {
        return eosId;
    }

    /**
     * @return every id that ends generation: generation_config.json's {@code eos_token_id} (an id or a
     *     list) when it names any, as transformers' {@code generate} uses it; else the tokenizer's eos
     *     and config.json's {@code eos_token_id}
     */
    public List<Integer> eosIds() {
        return eosIds;
    }

    /** @return the padding id (eos when the tokenizer names no pad token) */
    public int padId() {
        return padId;
    }

    /** @return the Jinja chat template, if the model has one */
    public Optional<String> chatTemplate() {
        return Optional.ofNullable(chatTemplate);
    }

    /** @return the bos token text, or null */
    public String bosToken() {
        return bosToken;
    }

    /** @return the eos token text, or null */
    public String eosToken() {
        return eosToken;
    }

    /**
     * @return the special tokens a chat template sees, by name ({@code bos_token}, {@code eos_token},
     *     {@code pad_token}, model-specific ones such as {@code image_token}), as transformers 5's
     *     {@code special_tokens_map}; a token the config does not name is absent
     */
    public Map<String, String> specialTokens() {
        return specialTokens;
    }

    @Override
    public void close() {
        tokenizer.close();
    }

    /** The added tokens of tokenizer.json, for {@link #cutAfterLastAddedToken}. */
    private static final class AddedTokens {
        private final Map<Character, List<String>> byLastChar;
        private final Set<String> extendable;
        private final boolean independent;

        private AddedTokens(List<String> tokens, boolean independent) {
            this.independent = independent;
            this.byLastChar = new HashMap<>();
            for (String t : tokens) {
                byLastChar
                        .computeIfAbsent(t.charAt(t.length() - 1), c -> new ArrayList<>())
                        .add(t);
            }
            this.extendable = new HashSet<>();
            for (String t : tokens) {
                for (String u : tokens) {
                    if (u.length() > t.length() && u.startsWith(t)) {
                        extendable.add(t);
                        break;
                    }
                }
            }
        }

        /** Reads added_tokens, normalizer and pre_tokenizer, streaming past the (large) model. */
        static AddedTokens read(Path file) {
            List<String> tokens = new ArrayList<>();
            boolean independent = true;
            JsonNode normalizer = null;
            JsonNode preTokenizer = null;
            boolean normalizedTokens = false;
            try (JsonParser p = JSON.getFactory().createParser(file.toFile())) {
                if (p.nextToken() != JsonToken.START_OBJECT) {
                    return new AddedTokens(List.of(), false);
                }
                while (p.nextToken() == JsonToken.FIELD_NAME) {
                    String name = p.getCurrentName();
                    p.nextToken();
                    switch (name) {
                        case "added_tokens" -> {
                            for (JsonNode t : InputFiles.treeReader(JSON).<JsonNode>readValue(p)) {
                                String content = t.path("content").asText("");
                                if (t.path("lstrip").asBoolean()
                                        || t.path("rstrip").asBoolean()
                                        || t.path("single_word").asBoolean()) {
                                    independent = false;
                                }
                                normalizedTokens |= t.path("normalized").asBoolean();
                                if (!content.isEmpty()) {
                                    tokens.add(content);
                                }
                            }
                        }
                        case "normalizer" ->
                            normalizer = InputFiles.treeReader(JSON).readValue(p);
                        case "pre_tokenizer" ->
                            preTokenizer = InputFiles.treeReader(JSON).readValue(p);
                        default -> p.skipChildren();
                    }
                }
            } catch (IOException | RuntimeException e) {
                return new AddedTokens(List.of(), false);
            }
            if (firstPieceOnly(preTokenizer) || (normalizedTokens && !identity(normalizer))) {
                independent = false;
            }
            return new AddedTokens(tokens, independent);
        }

        /** Metaspace with prepend_scheme "first" (or add_prefix_space without a scheme, the old "first") treats the first piece apart. */
        private static boolean firstPieceOnly(JsonNode pre) {
            if (pre == null || pre.isNull()) {
                return false;
            }
            if (pre.has("pretokenizers")) {
                for (JsonNode p : pre.get("pretokenizers")) {
                    if (firstPieceOnly(p)) {
                        return true;
                    }
                }
                return false;
            }
            return "Metaspace".equals(pre.path("type").asText())
                    && "first".equals(pre.path("prepend_scheme").asText("first"));
        }

        private static boolean identity(JsonNode normalizer) {
            return normalizer == null
                    || normalizer.isNull()
                    || ("Sequence".equals(normalizer.path("type").asText())
                            && normalizer.path("normalizers").isEmpty());
        }

        int cutAfterLast(String text) {
            if (!independent) {
                return -1;
            }
            for (int end = text.length(); end > 0; end--) {
                List<String> candidates = byLastChar.get(text.charAt(end - 1));
                if (candidates == null) {
                    continue;
                }
                String longest = null;
                for (String t : candidates) {
                    if (t.length() <= end
                            && text.startsWith(t, end - t.length())
                            && (longest == null || t.length() > longest.length())) {
                        longest = t;
                    }
                }
                if (longest != null && !extendable.contains(longest)) {
                    return end;
                }
                if (longest != null) { // another added token might continue it past this point: cut before it
                    end -= longest.length() - 1;
                }
            }
            return -1;
        }
    }
}
