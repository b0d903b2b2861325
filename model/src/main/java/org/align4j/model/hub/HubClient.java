package org.align4j.model.hub;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reads models and datasets from the Hugging Face Hub into the cache {@code huggingface_hub} uses (see
 * {@link HubCache}), and answers from that cache alone when offline. Configured as {@code huggingface_hub}
 * is: {@code HF_ENDPOINT} (a mirror), {@code HF_TOKEN} or the token file {@code hf auth login} writes
 * ({@code HF_TOKEN_PATH}, else {@code HF_HOME/token}), {@code HF_HUB_OFFLINE=1}, {@code HF_HUB_CACHE} and
 * {@code HF_HOME}.
 *
 * <p>A file is fetched as {@code hf_hub_download} fetches it: {@code HEAD /{repo}/resolve/{commit}/{file}}
 * gives the blob's etag ({@code X-Linked-Etag}, else {@code ETag}: the LFS sha256, or the git blob sha1 of a
 * small file), its size and where it lives (a redirect to another host, which gets no token); the blob is
 * written to {@code blobs/<etag>.incomplete} under a file lock, resumed with a {@code Range} request after a
 * dropped connection, checked against the etag's hash and only then renamed into place and linked from
 * {@code snapshots/<commit>/}. A blob that fails its check is deleted and never linked.
 */
public final class HubClient {
    /** The public Hub. */
    public static final String DEFAULT_ENDPOINT = "https://huggingface.co";

    private static final Logger LOG = LoggerFactory.getLogger(HubClient.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int ATTEMPTS = 5;
    private static final Map<Path, Object> JVM_LOCKS = new ConcurrentHashMap<>();
    private static volatile HubClient shared;
    private static volatile boolean forcedOffline;

    private final URI endpoint;
    private final HubCache cache;
    private final String token;
    private final boolean offline;
    private final DownloadProgress progress;
    private final Duration timeout;
    private final HttpClient http;
    private final Map<HubId, Path> models = new ConcurrentHashMap<>();
    private final Map<HubId, List<Path>> datasets = new ConcurrentHashMap<>();

    private HubClient(Builder b) {
        this.endpoint =
                URI.create(b.endpoint.endsWith("/") ? b.endpoint.substring(0, b.endpoint.length() - 1) : b.endpoint);
        this.cache = b.cache;
        this.token = b.token == null || b.token.isBlank() ? null : b.token.trim();
        this.offline = b.offline;
        this.progress = b.progress;
        this.timeout = b.timeout;
        this.http = HttpClient.newBuilder()
                .followRedirects(HttpClient.Redirect.NEVER)
                .connectTimeout(b.timeout)
                .build();
    }

    /**
     * The settings {@code huggingface_hub} would use in this environment.
     *
     * @param env the environment ({@code System.getenv()})
     * @param home the user's home folder
     * @return a builder holding them
     */
    public static Builder fromEnvironment(Map<String, String> env, Path home) {
        Builder b = new Builder();
        String ep = env.get("HF_ENDPOINT");
        b.endpoint = ep == null || ep.isBlank() ? DEFAULT_ENDPOINT : ep.trim();
        b.cache = HubCache.fromEnvironment(env, home);
        b.offline = isTrue(env.get("HF_HUB_OFFLINE"));
        b.token = tokenFrom(env, home);
        return b;
    }

    private static boolean isTrue(String v) {
        return v != null && Set.of("1", "on", "yes", "true").contains(v.trim().toLowerCase(Locale.ROOT));
    }

    private static String tokenFrom(Map<String, String> env, Path home) {
        String t = env.get("HF_TOKEN");
        if (t != null && !t.isBlank()) {
            return t.trim();
        }
        String tokenPath = env.get("HF_TOKEN_PATH");
        Path file = tokenPath != null && !tokenPath.isBlank()
                ? Path.of(tokenPath)
                : HubCache.hfHome(env, home).resolve("token");
        try {
            return Files.isRegularFile(file)
                    ? Files.readString(file, StandardCharsets.UTF_8).trim()
                    : null;
        } catch (IOException e) {
            LOG.warn("cannot read the Hub token file {}: {}", file, e.getMessage());
            return null;
        }
    }

    /**
     * The client model and data loads use when they meet a Hub id; from the process's environment unless
     * {@link #setShared} replaced it.
     *
     * @return the shared client
     */
    public static HubClient shared() {
        HubClient c = shared;
        if (c == null) {
            synchronized (HubClient.class) {
                if (shared == null) {
                    shared = fromEnvironment(System.getenv(), Path.of(System.getProperty("user.home")))
                            .build();
                }
                c = shared;
            }
        }
        return c;
    }

    /** @param client the client model and data loads use from now on */
    public static void setShared(HubClient client) {
        shared = client;
    }

    /** @param on read only the cache, whatever the environment says (the CLI's {@code --offline}) */
    public static void setForcedOffline(boolean on) {
        forcedOffline = on;
    }

    /** @return a builder holding this client's settings */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.endpoint = endpoint.toString();
        b.cache = cache;
        b.token = token;
        b.offline = offline;
        b.progress = progress;
        b.timeout = timeout;
        return b;
    }

    /** @return whether only the cache is read ({@code HF_HUB_OFFLINE}, the builder, or {@code --offline}) */
    public boolean offline() {
        return offline || forcedOffline;
    }

    /** @return the cache */
    public HubCache cache() {
        return cache;
    }

    /** @return the Hub's base URL */
    public URI endpoint() {
        return endpoint;
    }

    /** @return whether a token is configured */
    public boolean hasToken() {
        return token != null;
    }

    // ---------------------------------------------------------------- models

    /**
     * A model's snapshot folder holding the files a run needs, downloaded when missing (see {@link
     * RepoFiles#model}); offline, the cached snapshot, checked complete. Resolved once per client.
     *
     * @param id a model repository at a revision
     * @return {@code snapshots/<commit>} in the cache
     * @throws HubException for a repository, revision or token the Hub refuses, pickle-only weights, or an
     *     offline cache without the model
     * @throws UncheckedIOException for network and disk faults, and a blob that fails its checksum
     */
    public Path model(HubId id) {
        Path p = models.get(id);
        if (p == null) {
            p = fetchModel(id);
            models.put(id, p);
        }
        return p;
    }

    private Path fetchModel(HubId id) {
        if (offline()) {
            return cachedModel(id, "only the cache may be read (HF_HUB_OFFLINE=1 or --offline)");
        }
        RepoInfo info;
        try {
            info = repoInfo(id);
        } catch (Unreachable e) {
            LOG.warn("{}: {}; trying the cache", id, e.getMessage());
            return cachedModel(id, "the Hub is unreachable (" + e.getMessage() + ")");
        }
        List<String> files = RepoFiles.model(id, info.siblings());
        LOG.info("{}: commit {}, {} files", id, info.commit(), files.size());
        // every blob is fetched and verified before the snapshot links any: a failed download leaves no snapshot
        Map<String, Path> blobs = new LinkedHashMap<>();
        for (String f : files) {
            blobs.put(f, blob(id, info.commit(), f));
        }
        if (blobs.containsKey(RepoFiles.INDEX)) {
            for (String shard : indexShards(blobs.get(RepoFiles.INDEX))) {
                if (!info.siblings().contains(shard)) {
                    throw new HubException(
                            id + ": " + RepoFiles.INDEX + " names " + shard + ", which the repository does not hold");
                }
                blobs.put(shard, blob(id, info.commit(), shard));
            }
        }
        link(id, info.commit(), blobs);
        cache.writeRef(id, info.commit());
        return cache.snapshotDir(id, info.commit());
    }

    private Path cachedModel(HubId id, String why) {
        String commit = cache.commitOf(id)
                .orElseThrow(
                        () -> new HubException(id + ": no local path of that name, and not in the cache " + cache.root()
                                + ", and " + why + "; download it once online (or `hf download " + id.repo() + "`)"));
        Path dir = cache.snapshotDir(id, commit);
        Set<String> present = presentFiles(dir);
        List<String> shards = present.contains(RepoFiles.INDEX) ? indexShards(dir.resolve(RepoFiles.INDEX)) : List.of();
        List<String> missing = RepoFiles.missingFromModelSnapshot(present, shards);
        if (!missing.isEmpty()) {
            throw new HubException(id + ": the cached snapshot " + dir + " lacks " + String.join(", ", missing)
                    + ", and " + why + "; complete it once online");
        }
        LOG.info("{}: commit {} from the cache", id, commit);
        return dir;
    }

    private static Set<String> presentFiles(Path dir) {
        if (!Files.isDirectory(dir)) {
            return Set.of();
        }
        try (Stream<Path> s = Files.walk(dir)) {
            Set<String> out = new TreeSet<>();
            // isRegularFile follows links: a dangling link (a blob that was removed) does not count
            s.filter(Files::isRegularFile)
                    .forEach(p -> out.add(dir.relativize(p).toString().replace('\\', '/')));
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static List<String> indexShards(Path index) {
        try {
            JsonNode map = JSON.readTree(index.toFile()).path("weight_map");
            Set<String> shards = new LinkedHashSet<>();
            map.forEach(n -> shards.add(n.asText()));
            if (shards.isEmpty()) {
                throw new HubException(index + ": key 'weight_map': missing or empty");
            }
            for (String s : shards) {
                if (s.contains("/") || s.contains("\\") || s.startsWith(".")) {
                    throw new HubException(
                            index + ": key 'weight_map': shard '" + s + "' is not a file beside the index");
                }
            }
            return new ArrayList<>(shards);
        } catch (IOException e) {
            throw new HubException(index + ": not JSON: " + e.getMessage());
        }
    }

    // ---------------------------------------------------------------- datasets

    /**
     * The data files of one split of a dataset repository: its data files at the revision, else those of
     * the Hub's Parquet conversion ({@code refs/convert/parquet}). The split is the id's, else {@code train},
     * else the only one.
     *
     * @param id a dataset repository at a revision, with a split or none
     * @return the split's files in the cache, in name order
     * @throws HubException for a split, repository or revision that does not exist, or an offline cache
     *     without them
     */
    public List<Path> dataset(HubId id) {
        List<Path> p = datasets.get(id);
        if (p == null) {
            p = fetchDataset(id);
            datasets.put(id, p);
        }
        return p;
    }

    private List<Path> fetchDataset(HubId id) {
        if (offline()) {
            return cachedDataset(id, "only the cache may be read (HF_HUB_OFFLINE=1 or --offline)");
        }
        RepoInfo info;
        HubId at = id;
        try {
            info = repoInfo(id);
            if (RepoFiles.splits(info.siblings()).isEmpty() && HubId.MAIN.equals(id.revision())) {
                at = id.at("refs/convert/parquet");
                LOG.info("{}: no data files on main; reading the Hub's Parquet conversion ({})", id, at.revision());
                info = repoInfo(at);
            }
        } catch (Unreachable e) {
            LOG.warn("{}: {}; trying the cache", id, e.getMessage());
            return cachedDataset(id, "the Hub is unreachable (" + e.getMessage() + ")");
        }
        List<String> files = chooseSplit(id, parquetConfig(RepoFiles.splits(info.siblings()), info.siblings()));
        Map<String, Path> blobs = new LinkedHashMap<>();
        for (String f : files) {
            blobs.put(f, blob(at, info.commit(), f));
        }
        link(at, info.commit(), blobs);
        cache.writeRef(at, info.commit());
        return files.stream().map(cache.snapshotDir(at, info.commit())::resolve).toList();
    }

    private List<Path> cachedDataset(HubId id, String why) {
        for (HubId at : List.of(id, id.at("refs/convert/parquet"))) {
            Optional<String> commit = cache.commitOf(at);
            if (commit.isEmpty()) {
                continue;
            }
            Path dir = cache.snapshotDir(at, commit.get());
            Set<String> present = presentFiles(dir);
            Map<String, List<String>> splits = parquetConfig(RepoFiles.splits(present), present);
            if (splits.isEmpty()) {
                continue;
            }
            try {
                List<String> files = chooseSplit(id, splits);
                LOG.info("{}: commit {} from the cache", at, commit.get());
                return files.stream().map(dir::resolve).toList();
            } catch (HubException e) {
                throw new HubException(e.getMessage() + " in the cache, and " + why);
            }
        }
        throw new HubException(id + ": no local path of that name, and not in the cache " + cache.root() + ", and "
                + why + "; download it once online (or `hf download --repo-type dataset " + id.repo() + "`)");
    }

    /** The Parquet conversion holds one folder per config: read {@code default}'s (or the only one's). */
    private static Map<String, List<String>> parquetConfig(Map<String, List<String>> splits, Set<String> siblings) {
        boolean hasDefault = siblings.stream().anyMatch(s -> s.startsWith("default/") && RepoFiles.isDataFile(s));
        if (!hasDefault) {
            return splits;
        }
        Map<String, List<String>> out = new LinkedHashMap<>();
        splits.forEach((k, v) -> {
            List<String> kept = v.stream().filter(s -> s.startsWith("default/")).toList();
            if (!kept.isEmpty()) {
                out.put(k, kept);
            }
        });
        return out;
    }

    private static List<String> chooseSplit(HubId id, Map<String, List<String>> splits) {
        if (splits.isEmpty()) {
            throw new HubException(id + ": the dataset holds no .parquet, .jsonl or .json files");
        }
        String name = id.split() != null
                ? id.split()
                : splits.containsKey("train")
                        ? "train"
                        : splits.size() == 1 ? splits.keySet().iterator().next() : null;
        if (name == null) {
            throw new HubException(
                    id + ": name a split (owner/name:split); the dataset has " + String.join(", ", splits.keySet()));
        }
        List<String> files = splits.get(name);
        if (files == null) {
            throw new HubException(
                    id + ": no split '" + name + "'; the dataset has " + String.join(", ", splits.keySet()));
        }
        return files;
    }

    // ---------------------------------------------------------------- the API

    /**
     * A repository at a commit.
     *
     * @param commit the commit hash the revision points at
     * @param siblings every file of the repository at that commit
     */
    public record RepoInfo(String commit, Set<String> siblings) {}

    /** The Hub could not be reached at all (no answer), as opposed to an answer that refuses. */
    private static final class Unreachable extends Exception {
        private static final long serialVersionUID = 1L;

        Unreachable(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /**
     * {@code GET /api/{models|datasets}/{repo}/revision/{revision}}.
     *
     * @param id a repository at a revision
     * @return its commit and files
     * @throws HubException when the Hub refuses (no such repository or revision, gated, private)
     * @throws UncheckedIOException when it cannot be reached
     */
    public RepoInfo info(HubId id) {
        try {
            return repoInfo(id);
        } catch (Unreachable e) {
            throw new UncheckedIOException(new IOException(e.getMessage(), e.getCause()));
        }
    }

    private RepoInfo repoInfo(HubId id) throws Unreachable {
        URI uri = URI.create(endpoint + "/api/" + id.type().plural() + "/" + id.repo() + "/revision/"
                + URLEncoder.encode(id.revision(), StandardCharsets.UTF_8));
        HttpResponse<InputStream> r;
        String body;
        try {
            r = send(request(uri).GET(), true);
            body = readBody(r);
        } catch (ConnectException | HttpTimeoutException e) {
            throw new Unreachable("cannot reach " + endpoint + ": " + describe(e), e);
        } catch (IOException e) {
            throw new UncheckedIOException(id + ": " + uri + ": " + describe(e), e);
        }
        if (r.statusCode() != 200) {
            throw refusal(
                    id, r.statusCode(), r.headers().firstValue("X-Error-Code").orElse(""), body, null);
        }
        try {
            JsonNode root = JSON.readTree(body);
            String sha = root.path("sha").asText("");
            if (!sha.matches("[0-9a-f]{40}")) {
                throw new UncheckedIOException(new IOException(uri + ": the answer has no commit ('sha')"));
            }
            Set<String> siblings = new LinkedHashSet<>();
            root.path("siblings").forEach(s -> siblings.add(s.path("rfilename").asText()));
            return new RepoInfo(sha, siblings);
        } catch (IOException e) {
            throw new UncheckedIOException(uri + ": not the Hub's JSON", e);
        }
    }

    private static String describe(Throwable e) {
        String m = e.getMessage();
        return m == null || m.isBlank() ? e.getClass().getSimpleName() : m;
    }

    HubException refusal(HubId id, int status, String errorCode, String body, String file) {
        String page = endpoint + "/" + id.type().urlPrefix() + id.repo();
        String lower = body == null ? "" : body.toLowerCase(Locale.ROOT);
        if ("GatedRepo".equals(errorCode) || lower.contains("gated")) {
            return new HubException(
                    id.repo() + ": a gated repository: accept its conditions at " + page
                            + " while logged in, then "
                            + (token == null
                                    ? "set HF_TOKEN (or run `hf auth login`) to a token of that account"
                                    : "use a token of that account (this one, from HF_TOKEN or HF_HOME/token, has no access yet)"));
        }
        if (status == 401) {
            return new HubException(id.repo() + ": no such " + id.kind() + " repository, or a private one: "
                    + (token == null
                            ? "if it is private, set HF_TOKEN (or run `hf auth login`) to a token that may read it"
                            : "the token given (HF_TOKEN or HF_HOME/token) may not read it, or the name is wrong"));
        }
        if (status == 403) {
            return new HubException(id.repo() + ": the token given may not read this repository (a fine-grained "
                    + "token needs read access to it, or to public gated repositories)");
        }
        if (status == 404) {
            if ("RevisionNotFound".equals(errorCode)
                    || lower.contains("invalid rev")
                    || lower.contains("revision not found")) {
                return new HubException(id.repo() + ": revision '" + id.revision()
                        + "' does not exist (give a branch, tag or commit of the repository)");
            }
            if ("EntryNotFound".equals(errorCode) && file != null) {
                return new HubException(id + ": no file '" + file + "' in the repository");
            }
            return new HubException(id.repo() + ": no such " + id.kind() + " repository on " + endpoint
                    + " (and no local path of that name)");
        }
        throw new UncheckedIOException(new IOException(id + ": the Hub answered HTTP " + status
                + (body == null || body.isBlank()
                        ? ""
                        : ": " + body.lines().findFirst().orElse(""))));
    }

    // ---------------------------------------------------------------- files

    /**
     * One file of a repository at a commit, in the cache: linked from the snapshot if its blob is there,
     * else downloaded, verified and linked.
     *
     * @param id the repository
     * @param commit the commit
     * @param file the file's path in the repository
     * @return {@code snapshots/<commit>/<file>}
     */
    public Path fetch(HubId id, String commit, String file) {
        link(id, commit, Map.of(file, blob(id, commit, file)));
        return cache.snapshotDir(id, commit).resolve(file);
    }

    private void link(HubId id, String commit, Map<String, Path> blobs) {
        try {
            for (Map.Entry<String, Path> e : blobs.entrySet()) {
                cache.link(id, commit, e.getKey(), e.getValue());
            }
        } catch (IOException e) {
            throw new UncheckedIOException(id + ": cannot link the snapshot: " + describe(e), e);
        }
    }

    /** @return the file's blob, downloaded and verified if the cache lacks it (or the snapshot's file itself) */
    private Path blob(HubId id, String commit, String file) {
        Path pointer = cache.snapshotDir(id, commit).resolve(file);
        if (Files.isRegularFile(pointer)) {
            return pointer;
        }
        URI uri = URI.create(
                endpoint + "/" + id.type().urlPrefix() + id.repo() + "/resolve/" + commit + "/" + encodePath(file));
        try {
            Meta meta = head(id, uri, file);
            Path blob = cache.blob(id, meta.etag());
            if (!Files.isRegularFile(blob)) {
                download(id, file, meta, blob);
            }
            return blob;
        } catch (IOException e) {
            throw new UncheckedIOException(id + ": " + file + ": " + describe(e), e);
        }
    }

    private static String encodePath(String file) {
        StringBuilder sb = new StringBuilder();
        for (String part : file.split("/")) {
            if (sb.length() > 0) {
                sb.append('/');
            }
            sb.append(URLEncoder.encode(part, StandardCharsets.UTF_8).replace("+", "%20"));
        }
        return sb.toString();
    }

    /** What {@code HEAD .../resolve/...} says about a file. */
    private record Meta(String etag, long size, URI location) {}

    private Meta head(HubId id, URI uri, String file) throws IOException {
        URI at = uri;
        for (int hop = 0; hop < 10; hop++) {
            HttpResponse<InputStream> r = send(
                    request(at)
                            .method("HEAD", HttpRequest.BodyPublishers.noBody())
                            .header("Accept-Encoding", "identity"),
                    false);
            readBody(r);
            int status = r.statusCode();
            if (status >= 300 && status < 400) {
                URI from = at;
                URI next = at.resolve(r.headers()
                        .firstValue("Location")
                        .orElseThrow(() -> new IOException(from + ": a redirect without a Location")));
                if (sameHost(next, at)) {
                    at = next; // a renamed repository: follow on the Hub itself
                    continue;
                }
                return meta(r, next, file, true);
            }
            if (status != 200) {
                throw refusal(id, status, r.headers().firstValue("X-Error-Code").orElse(""), "", file);
            }
            return meta(r, at, file, false);
        }
        throw new IOException(uri + ": more than 10 redirects");
    }

    private static Meta meta(HttpResponse<?> r, URI location, String file, boolean redirect) throws IOException {
        String etag = r.headers()
                .firstValue("X-Linked-Etag")
                .or(() -> r.headers().firstValue("ETag"))
                .orElse(null);
        if (etag == null) {
            throw new IOException("the Hub gave no ETag for " + file + "; is HF_ENDPOINT a Hub?");
        }
        etag = etag.trim();
        if (etag.startsWith("W/")) {
            etag = etag.substring(2);
        }
        etag = etag.replace("\"", "");
        if (!etag.matches("[A-Za-z0-9._-]{1,128}")) {
            throw new IOException("the Hub gave an ETag that is not a file name: " + etag);
        }
        long size = r.headers()
                .firstValue("X-Linked-Size")
                .or(() -> redirect ? Optional.empty() : r.headers().firstValue("Content-Length"))
                .map(Long::parseLong)
                .orElse(-1L);
        return new Meta(etag, size, location);
    }

    private static boolean sameHost(URI a, URI b) {
        return a.getHost() != null
                && a.getHost().equalsIgnoreCase(b.getHost())
                && a.getPort() == b.getPort()
                && a.getScheme().equalsIgnoreCase(b.getScheme());
    }

    private void download(HubId id, String file, Meta meta, Path blob) throws IOException {
        Path lockFile = cache.lockFile(id, meta.etag());
        Files.createDirectories(lockFile.getParent());
        Files.createDirectories(blob.getParent());
        // a FileLock is per process; threads of this process queue on the monitor first
        synchronized (JVM_LOCKS.computeIfAbsent(lockFile.toAbsolutePath(), k -> new Object())) {
            try (FileChannel lockChannel =
                            FileChannel.open(lockFile, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
                    FileLock lock = lockChannel.lock()) {
                if (Files.isRegularFile(blob)) {
                    LOG.info("{}: {} was downloaded by another process or thread meanwhile", id, file);
                    return;
                }
                Path incomplete = blob.resolveSibling(blob.getFileName() + ".incomplete");
                transfer(id, file, meta, incomplete);
                verify(id, file, meta, incomplete);
                Files.move(incomplete, blob, StandardCopyOption.ATOMIC_MOVE);
            }
        }
    }

    private void transfer(HubId id, String file, Meta meta, Path incomplete) throws IOException {
        long resumedFrom = Files.isRegularFile(incomplete) ? Files.size(incomplete) : 0;
        if (resumedFrom > 0) {
            LOG.info("{}: resuming {} at byte {}", id, file, resumedFrom);
        }
        long start = System.nanoTime();
        IOException last = null;
        for (int attempt = 1; attempt <= ATTEMPTS; attempt++) {
            long have = Files.isRegularFile(incomplete) ? Files.size(incomplete) : 0;
            if (meta.size() >= 0 && have == meta.size()) {
                break;
            }
            if (meta.size() >= 0 && have > meta.size()) {
                Files.delete(incomplete);
                have = 0;
            }
            try {
                long got = get(id, file, meta, incomplete, have, resumedFrom, start);
                if (meta.size() < 0 || got == meta.size()) {
                    last = null;
                    break;
                }
                last = new IOException("the connection closed at byte " + got + " of " + meta.size());
            } catch (IOException e) {
                last = e; // a dropped connection, a timeout, a server error: resume from what arrived
            }
            long now = Files.isRegularFile(incomplete) ? Files.size(incomplete) : 0;
            LOG.warn(
                    "{}: {}: {} at byte {}; resuming (attempt {} of {})",
                    id,
                    file,
                    describe(last),
                    now,
                    attempt + 1,
                    ATTEMPTS);
            sleep(Math.min(8000, 250L << (attempt - 1)));
        }
        if (last != null) {
            throw new IOException(
                    "download failed after " + ATTEMPTS + " attempts (" + describe(last) + "); what arrived stays in "
                            + incomplete + " and the next run resumes it",
                    last);
        }
        long bytes = Files.size(incomplete);
        double secs = (System.nanoTime() - start) / 1e9;
        LOG.info(
                "{}: {} {} in {} s ({}/s)",
                id,
                file,
                human(bytes),
                String.format(Locale.ROOT, "%.1f", secs),
                human((long) ((bytes - resumedFrom) / Math.max(secs, 1e-3))));
        progress.update(new DownloadProgress.Transfer(
                id.toString(), file, bytes, meta.size(), resumedFrom, System.nanoTime() - start, true));
    }

    /** @return the file's size after this request */
    private long get(HubId id, String file, Meta meta, Path incomplete, long have, long resumedFrom, long start)
            throws IOException {
        URI at = meta.location();
        HttpResponse<InputStream> r = null;
        for (int hop = 0; hop < 10; hop++) {
            HttpRequest.Builder rb = request(at).GET().header("Accept-Encoding", "identity");
            if (have > 0) {
                rb.header("Range", "bytes=" + have + "-");
            }
            r = send(rb, false);
            if (r.statusCode() >= 300 && r.statusCode() < 400) {
                readBody(r);
                URI base = at;
                at = at.resolve(r.headers()
                        .firstValue("Location")
                        .orElseThrow(() -> new IOException(base + ": a redirect without a Location")));
                continue;
            }
            break;
        }
        int status = r.statusCode();
        boolean append;
        if (status == 206) {
            String range = r.headers().firstValue("Content-Range").orElse("");
            append = range.startsWith("bytes " + have + "-");
            if (!append) {
                readBody(r);
                Files.deleteIfExists(incomplete);
                throw new IOException("HTTP 206 for another range (" + range + "); starting over");
            }
        } else if (status == 200) {
            append = false;
        } else if (status == 416 && meta.size() >= 0 && have == meta.size()) {
            readBody(r);
            return have;
        } else {
            readBody(r);
            if (status == 401 || status == 403 || status == 404) {
                throw refusal(id, status, r.headers().firstValue("X-Error-Code").orElse(""), "", file);
            }
            throw new IOException("HTTP " + status + " from " + at.getHost());
        }
        long total = meta.size();
        try (InputStream in = r.body();
                FileChannel out = FileChannel.open(
                        incomplete,
                        StandardOpenOption.CREATE,
                        StandardOpenOption.WRITE,
                        append ? StandardOpenOption.APPEND : StandardOpenOption.TRUNCATE_EXISTING)) {
            long pos = append ? have : 0;
            byte[] buf = new byte[1 << 16];
            long lastReport = 0;
            int n;
            while ((n = in.read(buf)) > 0) {
                ByteBuffer bb = ByteBuffer.wrap(buf, 0, n);
                while (bb.hasRemaining()) {
                    out.write(bb);
                }
                pos += n;
                long now = System.nanoTime();
                if (now - lastReport > 200_000_000L) {
                    lastReport = now;
                    progress.update(new DownloadProgress.Transfer(
                            id.toString(), file, pos, total, resumedFrom, now - start, false));
                }
            }
            out.force(false);
            return pos;
        }
    }

    private void verify(HubId id, String file, Meta meta, Path incomplete) throws IOException {
        long size = Files.size(incomplete);
        if (meta.size() >= 0 && size != meta.size()) {
            Files.deleteIfExists(incomplete);
            throw new IOException(
                    "size " + size + " where the Hub said " + meta.size() + "; the download was discarded");
        }
        String etag = meta.etag().toLowerCase(Locale.ROOT);
        String algorithm;
        String got;
        if (etag.matches("[0-9a-f]{64}")) {
            algorithm = "sha256";
            got = digest(incomplete, "SHA-256", null);
        } else if (etag.matches("[0-9a-f]{40}")) {
            algorithm = "git blob sha1";
            got = digest(incomplete, "SHA-1", ("blob " + size + "\0").getBytes(StandardCharsets.US_ASCII));
        } else {
            LOG.debug("{}: {}: etag {} is no hash; not verified", id, file, etag);
            return;
        }
        if (!got.equals(etag)) {
            Files.deleteIfExists(incomplete);
            throw new IOException(
                    "checksum mismatch: the Hub's " + algorithm + " is " + etag + ", the bytes received hash to " + got
                            + "; the download was discarded (a proxy or mirror altered it?)");
        }
    }

    private static String digest(Path file, String algorithm, byte[] prefix) throws IOException {
        MessageDigest md;
        try {
            md = MessageDigest.getInstance(algorithm);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        if (prefix != null) {
            md.update(prefix);
        }
        try (InputStream in = Files.newInputStream(file)) {
            byte[] buf = new byte[1 << 16];
            int n;
            while ((n = in.read(buf)) > 0) {
                md.update(buf, 0, n);
            }
        }
        return HexFormat.of().formatHex(md.digest());
    }

    // ---------------------------------------------------------------- HTTP

    /**
     * A request carrying the token when it goes to the Hub itself (never to the host a download is
     * redirected to).
     *
     * @param uri where
     * @return the request, to be given its method
     */
    HttpRequest.Builder request(URI uri) {
        HttpRequest.Builder b = HttpRequest.newBuilder(uri).timeout(timeout).header("User-Agent", "align4j");
        if (token != null && sameHost(uri, endpoint)) {
            b.header("Authorization", "Bearer " + token);
        }
        return b;
    }

    HttpResponse<InputStream> send(HttpRequest.Builder request, boolean followRedirects) throws IOException {
        HttpRequest req = request.build();
        for (int hop = 0; ; hop++) {
            HttpResponse<InputStream> r;
            try {
                r = http.send(req, HttpResponse.BodyHandlers.ofInputStream());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted", e);
            }
            int s = r.statusCode();
            if (!followRedirects
                    || s < 300
                    || s >= 400
                    || hop >= 10
                    || r.headers().firstValue("Location").isEmpty()) {
                return r;
            }
            readBody(r);
            URI next = req.uri().resolve(r.headers().firstValue("Location").get());
            HttpRequest.Builder nb =
                    request(next).method(req.method(), req.bodyPublisher().orElse(HttpRequest.BodyPublishers.noBody()));
            req.headers().map().forEach((k, vs) -> {
                if (!k.equalsIgnoreCase("Authorization") && !k.equalsIgnoreCase("User-Agent")) {
                    vs.forEach(v -> nb.header(k, v));
                }
            });
            req = nb.build();
        }
    }

    static String readBody(HttpResponse<InputStream> r) throws IOException {
        try (InputStream in = r.body()) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    private static void sleep(long ms) throws IOException {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
    }

    /** @param bytes a size @return it in B, kB, MB or GB (decimal, as the Hub shows sizes) */
    public static String human(long bytes) {
        if (bytes < 1000) {
            return bytes + " B";
        }
        String[] units = {"kB", "MB", "GB", "TB"};
        double v = bytes;
        int u = -1;
        while (v >= 1000 && u < units.length - 1) {
            v /= 1000;
            u++;
        }
        return String.format(Locale.ROOT, "%.1f %s", v, units[u]);
    }

    /** Settings of a {@link HubClient}; {@link HubClient#fromEnvironment} fills them as huggingface_hub would. */
    public static final class Builder {
        private String endpoint = DEFAULT_ENDPOINT;
        private HubCache cache = new HubCache(Path.of(System.getProperty("user.home"), ".cache", "huggingface", "hub"));
        private String token;
        private boolean offline;
        private DownloadProgress progress = DownloadProgress.NONE;
        private Duration timeout = Duration.ofSeconds(30);

        private Builder() {}

        /** @param v the Hub's base URL ({@code HF_ENDPOINT}) @return this */
        public Builder endpoint(String v) {
            endpoint = v;
            return this;
        }

        /** @param v the cache's root ({@code HF_HUB_CACHE}) @return this */
        public Builder cache(Path v) {
            cache = new HubCache(v);
            return this;
        }

        /** @param v a token, or null for none @return this */
        public Builder token(String v) {
            token = v;
            return this;
        }

        /** @param v read only the cache @return this */
        public Builder offline(boolean v) {
            offline = v;
            return this;
        }

        /** @param v receives download progress @return this */
        public Builder progress(DownloadProgress v) {
            progress = v;
            return this;
        }

        /** @param v connect timeout and the longest wait for a response's headers @return this */
        public Builder timeout(Duration v) {
            timeout = v;
            return this;
        }

        /** @return the client */
        public HubClient build() {
            return new HubClient(this);
        }
    }
}
