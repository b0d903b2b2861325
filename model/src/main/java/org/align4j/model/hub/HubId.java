package org.align4j.model.hub;

import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A repository on the Hugging Face Hub as a user writes it: {@code owner/name}, optionally
 * {@code @revision} (a branch, tag or commit; default {@code main}) and, for a dataset, {@code :split}.
 * The repository name follows the Hub's rules: letters, digits, {@code -}, {@code _} and {@code .}, at most
 * 96 characters, neither {@code --} nor {@code ..}, not starting or ending with {@code -} or {@code .}.
 *
 * @param type model or dataset repository
 * @param repo {@code owner/name}
 * @param revision the branch, tag or commit asked for ({@code main} when none was given)
 * @param split a dataset's split, or null (the caller picks {@code train})
 */
public record HubId(Type type, String repo, String revision, String split) {
    /** The default branch. */
    public static final String MAIN = "main";

    private static final Pattern SHAPE = Pattern.compile("([^/@:]+)/([^/@:]+)(?:@([^:]*))?(?::(.*))?");
    private static final Pattern PART = Pattern.compile("[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?");
    private static final Pattern REVISION = Pattern.compile("[A-Za-z0-9._/-]{1,255}");
    private static final Pattern SPLIT = Pattern.compile("[A-Za-z0-9._-]{1,100}");
    private static final Pattern COMMIT = Pattern.compile("[0-9a-f]{40}");

    /** The kind of repository, which decides its URLs and its folder in the cache. */
    public enum Type {
        /** A model repository: {@code /api/models/...}, {@code models--owner--name}. */
        MODEL("models", ""),
        /** A dataset repository: {@code /api/datasets/...}, {@code datasets--owner--name}. */
        DATASET("datasets", "datasets/");

        private final String plural;
        private final String urlPrefix;

        Type(String plural, String urlPrefix) {
            this.plural = plural;
            this.urlPrefix = urlPrefix;
        }

        /** @return {@code models} or {@code datasets}, as in the API's paths and the cache's folder names */
        public String plural() {
            return plural;
        }

        /** @return the prefix of {@code /resolve/} URLs: empty for models, {@code datasets/} for datasets */
        public String urlPrefix() {
            return urlPrefix;
        }
    }

    /**
     * Whether a path as the user wrote it is meant as a Hub id: one {@code /}, relative, not starting with
     * {@code .} or {@code ~}, optionally with {@code @} or {@code :} after the name. A path that exists
     * locally is never asked about: it always wins.
     *
     * @param text a model or data path as given
     * @return whether it has a Hub id's shape (it may still be malformed; {@link #parse} says why)
     */
    public static boolean looksLikeId(String text) {
        return text != null
                && !text.startsWith(".")
                && !text.startsWith("~")
                && !text.startsWith("/")
                && !text.contains("\\")
                && SHAPE.matcher(text).matches();
    }

    /**
     * @param text {@code owner/name[@revision]} (and {@code [:split]} for a dataset)
     * @param type what the caller expects
     * @return the id
     * @throws HubException naming the text and the rule it breaks
     */
    public static HubId parse(String text, Type type) {
        Matcher m = SHAPE.matcher(text == null ? "" : text);
        if (!m.matches()) {
            throw new HubException("'" + text + "': not a Hub id (expected owner/name"
                    + (type == Type.DATASET ? "[@revision][:split])" : "[@revision])"));
        }
        for (String part : new String[] {m.group(1), m.group(2)}) {
            if (!PART.matcher(part).matches() || part.contains("--") || part.contains("..")) {
                throw new HubException("'" + text + "': '" + part + "' is not a valid Hub name (letters, digits, "
                        + "'-', '_' and '.', at most 96, no '--' or '..', not starting or ending with '-' or '.')");
            }
        }
        String revision = m.group(3);
        if (revision != null
                && (!REVISION.matcher(revision).matches()
                        || revision.contains("..")
                        || revision.startsWith("/")
                        || revision.endsWith("/"))) {
            throw new HubException("'" + text + "': revision '" + revision + "' is not a branch, tag or commit name");
        }
        String split = m.group(4);
        if (split != null) {
            if (type != Type.DATASET) {
                throw new HubException("'" + text + "': ':" + split + "' names a split, which only datasets have");
            }
            if (!SPLIT.matcher(split).matches()) {
                throw new HubException("'" + text + "': split '" + split + "' is not a split name");
            }
        }
        return new HubId(type, m.group(1) + "/" + m.group(2), revision == null ? MAIN : revision, split);
    }

    /**
     * The Hub's legacy model names without an owner that it redirects to an organisation's repository, among
     * the architectures align4j loads (GPT-2's family; the Hub moved them in 2024): what transformers
     * downloads for {@code from_pretrained("gpt2")}.
     */
    private static final Map<String, String> LEGACY_NAMES = Map.of(
            "gpt2", "openai-community/gpt2",
            "gpt2-medium", "openai-community/gpt2-medium",
            "gpt2-large", "openai-community/gpt2-large",
            "gpt2-xl", "openai-community/gpt2-xl",
            "distilgpt2", "distilbert/distilgpt2");

    /**
     * What to tell a user whose path is neither a local folder nor shaped like a Hub id, but is a name
     * without an owner: the Hub's id for a legacy name ({@code gpt2} is {@code openai-community/gpt2}), or
     * that an id needs its owner.
     *
     * @param text a model path as given, which does not exist locally
     * @return a hint to append to "no such folder", or empty when the text looks like a local path
     */
    public static Optional<String> ownerlessNameHint(String text) {
        if (text == null
                || text.contains("/")
                || text.contains("\\")
                || !PART.matcher(text).matches()) {
            return Optional.empty();
        }
        String id = LEGACY_NAMES.get(text.toLowerCase(Locale.ROOT));
        if (id != null) {
            return Optional.of("; on the Hugging Face Hub '" + text + "' is a legacy name that the Hub redirects to "
                    + id + ": give " + id);
        }
        return Optional.of("; a Hugging Face Hub id names its owner too (owner/name)");
    }

    /**
     * Parses {@code text} when it has a Hub id's shape.
     *
     * @param text a path as the user gave it
     * @param type what the caller expects
     * @return the id, or empty when the text is not shaped like one (a local path)
     * @throws HubException when it is shaped like an id but malformed
     */
    public static Optional<HubId> ifId(String text, Type type) {
        return looksLikeId(text) ? Optional.of(parse(text, type)) : Optional.empty();
    }

    /** @return whether the revision is a full commit hash (then the cache needs no ref to find it) */
    public boolean revisionIsCommit() {
        return COMMIT.matcher(revision).matches();
    }

    /** @return the repository's folder in the cache: {@code models--owner--name} */
    public String cacheFolderName() {
        return type.plural() + "--" + repo.replace("/", "--");
    }

    /** @return the same repository at a commit (or another revision), split kept */
    public HubId at(String rev) {
        return new HubId(type, repo, rev, split);
    }

    @Override
    public String toString() {
        return repo + (MAIN.equals(revision) ? "" : "@" + revision) + (split == null ? "" : ":" + split);
    }

    /** @return the type's name in lower case, as messages use it */
    public String kind() {
        return type.name().toLowerCase(Locale.ROOT);
    }
}
