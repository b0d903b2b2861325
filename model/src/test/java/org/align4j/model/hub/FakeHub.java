package org.align4j.model.hub;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

/**
 * A Hugging Face Hub on 127.0.0.1 for tests, answering as the Hub's documented endpoints answer: {@code GET
 * /api/{models|datasets}/{repo}[/revision/{rev}]} with {@code sha} and {@code siblings}; {@code HEAD/GET
 * /[datasets/]{repo}/resolve/{rev}/{file}} with {@code ETag}, {@code X-Repo-Commit}, and for LFS files
 * ({@code .safetensors}, {@code .parquet}, {@code .bin}) {@code X-Linked-Etag} (the sha256), {@code
 * X-Linked-Size} and a 302 to a second server on 127.0.0.2 or "localhost" (the "CDN", which honours {@code Range}); the
 * upload side ({@code /api/repos/create}, {@code preupload}, LFS batch, {@code commit}) records what it is sent.
 * Faults on demand: a connection dropped mid-file, corrupted bytes, a slow CDN.
 */
public final class FakeHub implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();

    static {
        // without it the JDK's server waits out delayed ACKs: ~40 ms per small response
        System.setProperty("sun.net.httpserver.nodelay", "true");
    }

    /** One request as the servers saw it. */
    public record Request(String method, String host, String path, String range, String authorization) {}

    /** A commit an upload made: its header summary and the files with their bytes. */
    public record Commit(String repo, String summary, Map<String, byte[]> files) {}

    private record Repo(Map<String, String> refs, Map<String, Map<String, byte[]>> commits, boolean[] flags) {}

    private final HttpServer hub;
    private final HttpServer cdn;
    private String cdnHost;
    private final Map<String, Repo> repos = new ConcurrentHashMap<>();
    private final Map<String, byte[]> lfsObjects = new ConcurrentHashMap<>();
    private final List<Request> requests = new CopyOnWriteArrayList<>();
    private final List<Commit> commits = new CopyOnWriteArrayList<>();
    private final AtomicInteger counter = new AtomicInteger();

    /** Bytes the next CDN response sends before it drops the connection; negative: none. */
    public volatile long dropAfterBytes = -1;
    /** Whether the CDN flips a byte of what it sends. */
    public volatile boolean corrupt;
    /** Milliseconds the CDN waits after each 16 KiB. */
    public volatile int slowMillis;
    /** The token private and gated repositories accept. */
    public volatile String acceptedToken = "hf_good";

    /** Starts both servers on free ports. */
    public FakeHub() {
        try {
            hub = HttpServer.create(new InetSocketAddress(InetAddress.getByName("127.0.0.1"), 0), 0);
            cdn = cdnServer();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        hub.createContext("/", this::hub);
        cdn.createContext("/", this::cdn);
        hub.setExecutor(Executors.newCachedThreadPool());
        cdn.setExecutor(Executors.newCachedThreadPool());
        hub.start();
        cdn.start();
    }

    /**
     * The CDN listens on 127.0.0.2 where the loopback holds all of 127/8 (Linux); elsewhere (macOS) on
     * 127.0.0.1, named "localhost": another host name either way, as the Hub's CDN is.
     */
    private HttpServer cdnServer() throws IOException {
        try {
            HttpServer s = HttpServer.create(new InetSocketAddress(InetAddress.getByName("127.0.0.2"), 0), 0);
            cdnHost = "127.0.0.2";
            return s;
        } catch (IOException e) {
            cdnHost = "localhost";
            return HttpServer.create(new InetSocketAddress(InetAddress.getByName("127.0.0.1"), 0), 0);
        }
    }

    private String cdnBase() {
        return "http://" + cdnHost + ":" + cdn.getAddress().getPort();
    }

    /** @return the Hub's base URL (for {@code HF_ENDPOINT}) */
    public String endpoint() {
        return "http://127.0.0.1:" + hub.getAddress().getPort();
    }

    /** @return every request so far */
    public List<Request> requests() {
        return List.copyOf(requests);
    }

    /** @return the commits uploads made */
    public List<Commit> commits() {
        return List.copyOf(commits);
    }

    /**
     * Adds (or replaces) a revision of a repository.
     *
     * @param type model or dataset
     * @param repo owner/name
     * @param revision the branch it goes on
     * @param files path in the repository to bytes
     * @return the new commit's hash
     */
    public String put(HubId.Type type, String repo, String revision, Map<String, byte[]> files) {
        Repo r = repos.computeIfAbsent(
                key(type, repo), k -> new Repo(new ConcurrentHashMap<>(), new ConcurrentHashMap<>(), new boolean[2]));
        String commit = sha1(
                ("commit " + repo + " " + revision + " " + counter.incrementAndGet()).getBytes(StandardCharsets.UTF_8));
        r.commits().put(commit, new TreeMap<>(files));
        r.refs().put(revision, commit);
        return commit;
    }

    /**
     * @param type model or dataset
     * @param repo owner/name
     * @param folder a folder whose regular files (not in subfolders) become the repository's files on main
     * @return the commit
     */
    public String putFolder(HubId.Type type, String repo, Path folder) {
        return put(type, repo, HubId.MAIN, read(folder));
    }

    /** @param folder a folder @return its files, by name */
    public static Map<String, byte[]> read(Path folder) {
        Map<String, byte[]> files = new TreeMap<>();
        try (Stream<Path> s = Files.list(folder)) {
            for (Path p : s.filter(Files::isRegularFile).toList()) {
                files.put(p.getFileName().toString(), Files.readAllBytes(p));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return files;
    }

    /** @param repo a model repository that only a request with {@link #acceptedToken} may read */
    public void makePrivate(String repo) {
        repos.get(key(HubId.Type.MODEL, repo)).flags()[0] = true;
    }

    /** @param repo a gated model repository whose conditions nobody has accepted */
    public void makeGated(String repo) {
        repos.get(key(HubId.Type.MODEL, repo)).flags()[1] = true;
    }

    private static String key(HubId.Type type, String repo) {
        return type.plural() + "/" + repo;
    }

    @Override
    public void close() {
        hub.stop(0);
        cdn.stop(0);
    }

    // ------------------------------------------------------------ the Hub

    private void hub(HttpExchange ex) throws IOException {
        try (ex) {
            String path = ex.getRequestURI().getPath();
            log(ex, "127.0.0.1");
            if (path.equals("/api/repos/create")) {
                create(ex);
            } else if (path.startsWith("/api/")) {
                api(ex, path.substring("/api/".length()));
            } else if (path.contains(".git/info/lfs/objects/")) {
                lfs(ex);
            } else {
                resolve(ex, path);
            }
        } catch (RuntimeException e) {
            send(ex, 500, Map.of(), e.toString().getBytes(StandardCharsets.UTF_8));
        }
    }

    private void log(HttpExchange ex, String host) {
        requests.add(new Request(
                ex.getRequestMethod(),
                host,
                ex.getRequestURI().getPath(),
                ex.getRequestHeaders().getFirst("Range"),
                ex.getRequestHeaders().getFirst("Authorization")));
    }

    /** @return whether the request was refused (and answered) because it may not read the repository */
    private boolean refused(HttpExchange ex, Repo repo) throws IOException {
        String auth = ex.getRequestHeaders().getFirst("Authorization");
        boolean good = ("Bearer " + acceptedToken).equals(auth);
        if (repo.flags()[0] && !good) {
            send(
                    ex,
                    401,
                    Map.of("X-Error-Code", "RepoNotFound"),
                    "{\"error\":\"Repository not found\"}".getBytes(StandardCharsets.UTF_8));
            return true;
        }
        if (repo.flags()[1]) {
            send(
                    ex,
                    auth == null ? 401 : 403,
                    Map.of("X-Error-Code", "GatedRepo"),
                    "{\"error\":\"Access to this model is restricted\"}".getBytes(StandardCharsets.UTF_8));
            return true;
        }
        return false;
    }

    private void api(HttpExchange ex, String rest) throws IOException {
        String[] p = rest.split("/", 5); // type, owner, name, verb, arg
        if (p.length < 3) {
            send(ex, 404, Map.of(), new byte[0]);
            return;
        }
        HubId.Type type = p[0].equals("datasets") ? HubId.Type.DATASET : HubId.Type.MODEL;
        String repoId = p[1] + "/" + p[2];
        Repo repo = repos.get(key(type, repoId));
        if (repo == null) {
            send(
                    ex,
                    404,
                    Map.of("X-Error-Code", "RepoNotFound"),
                    "{\"error\":\"Repository not found\"}".getBytes(StandardCharsets.UTF_8));
            return;
        }
        String verb = p.length > 3 ? p[3] : "revision";
        String arg = p.length > 4 ? p[4] : HubId.MAIN;
        // a gated repository's metadata is public, as on the Hub: its files are what the gate guards
        boolean gatedInfo = repo.flags()[1] && !repo.flags()[0] && verb.equals("revision");
        if (!gatedInfo && refused(ex, repo)) {
            return;
        }
        switch (verb) {
            case "revision" -> info(ex, repo, repoId, arg);
            case "preupload" -> preupload(ex);
            case "commit" -> commit(ex, type, repoId, arg);
            default -> send(ex, 404, Map.of(), new byte[0]);
        }
    }

    private void info(HttpExchange ex, Repo repo, String repoId, String rev) throws IOException {
        String commit = repo.commits().containsKey(rev) ? rev : repo.refs().get(rev);
        if (commit == null) {
            send(
                    ex,
                    404,
                    Map.of("X-Error-Code", "RevisionNotFound"),
                    ("{\"error\":\"Invalid rev id: " + rev + "\"}").getBytes(StandardCharsets.UTF_8));
            return;
        }
        ObjectNode o = JSON.createObjectNode();
        o.put("id", repoId);
        o.put("sha", commit);
        ArrayNode siblings = o.putArray("siblings");
        repo.commits().get(commit).keySet().forEach(f -> siblings.addObject().put("rfilename", f));
        send(ex, 200, Map.of("Content-Type", "application/json"), JSON.writeValueAsBytes(o));
    }

    private void resolve(HttpExchange ex, String path) throws IOException {
        HubId.Type type = HubId.Type.MODEL;
        String rest = path.substring(1);
        if (rest.startsWith("datasets/")) {
            type = HubId.Type.DATASET;
            rest = rest.substring("datasets/".length());
        }
        String[] p = rest.split("/", 5); // owner, name, "resolve", rev, file
        Repo repo = p.length == 5 && p[2].equals("resolve") ? repos.get(key(type, p[0] + "/" + p[1])) : null;
        if (repo == null) {
            send(ex, 404, Map.of("X-Error-Code", "RepoNotFound"), new byte[0]);
            return;
        }
        if (refused(ex, repo)) {
            return;
        }
        String commit = repo.commits().containsKey(p[3]) ? p[3] : repo.refs().get(p[3]);
        if (commit == null) {
            send(ex, 404, Map.of("X-Error-Code", "RevisionNotFound"), new byte[0]);
            return;
        }
        byte[] data = repo.commits().get(commit).get(p[4]);
        if (data == null) {
            send(ex, 404, Map.of("X-Error-Code", "EntryNotFound"), new byte[0]);
            return;
        }
        if (isLfs(p[4])) {
            String oid = sha256(data);
            lfsObjects.put(oid, data);
            ex.getResponseHeaders().add("X-Repo-Commit", commit);
            ex.getResponseHeaders().add("X-Linked-Etag", "\"" + oid + "\"");
            ex.getResponseHeaders().add("X-Linked-Size", Long.toString(data.length));
            ex.getResponseHeaders().add("ETag", "\"" + sha1(data) + "-lfs-pointer\"");
            ex.getResponseHeaders().add("Location", cdnBase() + "/blob/" + oid);
            ex.sendResponseHeaders(302, -1);
            return;
        }
        ex.getResponseHeaders().add("X-Repo-Commit", commit);
        ex.getResponseHeaders().add("ETag", "\"" + gitBlobSha1(data) + "\"");
        if (ex.getRequestMethod().equals("HEAD")) {
            ex.getResponseHeaders().add("Content-Length", Long.toString(data.length));
            ex.sendResponseHeaders(200, -1);
        } else {
            send(ex, 200, Map.of(), data);
        }
    }

    private static boolean isLfs(String file) {
        return file.endsWith(".safetensors") || file.endsWith(".parquet") || file.endsWith(".bin");
    }

    // ------------------------------------------------------------ the CDN

    private void cdn(HttpExchange ex) throws IOException {
        try (ex) {
            log(ex, "127.0.0.2"); // the CDN's label in requests(), whichever address it listens on
            String path = ex.getRequestURI().getPath();
            if (ex.getRequestMethod().equals("PUT") && path.startsWith("/upload/")) {
                byte[] body = ex.getRequestBody().readAllBytes();
                lfsObjects.put(path.substring("/upload/".length()), body);
                send(ex, 200, Map.of(), new byte[0]);
                return;
            }
            byte[] data = lfsObjects.get(path.substring("/blob/".length()));
            if (data == null || ex.getRequestHeaders().getFirst("Authorization") != null) {
                // a CDN that is sent the Hub's token refuses, as a signed URL with a second credential does
                send(ex, data == null ? 404 : 400, Map.of(), new byte[0]);
                return;
            }
            long from = 0;
            String range = ex.getRequestHeaders().getFirst("Range");
            if (range != null && range.startsWith("bytes=") && range.endsWith("-")) {
                from = Long.parseLong(range.substring(6, range.length() - 1));
                ex.getResponseHeaders()
                        .add("Content-Range", "bytes " + from + "-" + (data.length - 1) + "/" + data.length);
            }
            ex.getResponseHeaders().add("Content-Type", "application/octet-stream");
            ex.sendResponseHeaders(range != null ? 206 : 200, data.length - from);
            long drop = dropAfterBytes;
            dropAfterBytes = -1;
            OutputStream out = ex.getResponseBody();
            for (long i = from; i < data.length; ) {
                int n = (int) Math.min(16384, data.length - i);
                if (drop >= 0 && i - from + n > drop) {
                    out.write(data, (int) i, (int) (drop - (i - from)));
                    out.flush();
                    // a dropped connection: the peer sees fewer bytes than Content-Length, then EOF
                    throw new IOException("dropped on purpose");
                }
                byte[] chunk = Arrays.copyOfRange(data, (int) i, (int) i + n);
                if (corrupt && i == from) {
                    chunk[0] ^= 1;
                }
                out.write(chunk);
                i += n;
                if (slowMillis > 0) {
                    try {
                        Thread.sleep(slowMillis);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        return;
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------ uploads

    private void create(HttpExchange ex) throws IOException {
        JsonNode body = JSON.readTree(ex.getRequestBody());
        if (!("Bearer " + acceptedToken).equals(ex.getRequestHeaders().getFirst("Authorization"))) {
            send(ex, 401, Map.of(), "{\"error\":\"Invalid credentials\"}".getBytes(StandardCharsets.UTF_8));
            return;
        }
        String repo = body.path("organization").asText("user") + "/"
                + body.path("name").asText();
        HubId.Type type = "dataset".equals(body.path("type").asText("model")) ? HubId.Type.DATASET : HubId.Type.MODEL;
        if (repos.containsKey(key(type, repo))) {
            send(
                    ex,
                    409,
                    Map.of(),
                    "{\"error\":\"You already created this model repo\"}".getBytes(StandardCharsets.UTF_8));
            return;
        }
        put(
                type,
                repo,
                HubId.MAIN,
                Map.of(".gitattributes", "*.safetensors filter=lfs\n".getBytes(StandardCharsets.UTF_8)));
        repos.get(key(type, repo)).flags()[0] = body.path("private").asBoolean(false);
        send(ex, 200, Map.of(), ("{\"url\":\"" + endpoint() + "/" + repo + "\"}").getBytes(StandardCharsets.UTF_8));
    }

    private void preupload(HttpExchange ex) throws IOException {
        JsonNode body = JSON.readTree(ex.getRequestBody());
        ObjectNode out = JSON.createObjectNode();
        ArrayNode files = out.putArray("files");
        for (JsonNode f : body.path("files")) {
            String path = f.path("path").asText();
            files.addObject()
                    .put("path", path)
                    .put("uploadMode", isLfs(path) || f.path("size").asLong() > 10_000_000 ? "lfs" : "regular")
                    .put("shouldIgnore", false);
        }
        send(ex, 200, Map.of("Content-Type", "application/json"), JSON.writeValueAsBytes(out));
    }

    private void lfs(HttpExchange ex) throws IOException {
        JsonNode body = JSON.readTree(ex.getRequestBody());
        ObjectNode out = JSON.createObjectNode();
        out.put("transfer", "basic");
        ArrayNode objects = out.putArray("objects");
        for (JsonNode o : body.path("objects")) {
            String oid = o.path("oid").asText();
            ObjectNode r = objects.addObject()
                    .put("oid", oid)
                    .put("size", o.path("size").asLong());
            if (!lfsObjects.containsKey(oid)) {
                r.putObject("actions").putObject("upload").put("href", cdnBase() + "/upload/" + oid);
            }
        }
        send(ex, 200, Map.of("Content-Type", "application/vnd.git-lfs+json"), JSON.writeValueAsBytes(out));
    }

    private void commit(HttpExchange ex, HubId.Type type, String repoId, String rev) throws IOException {
        Repo repo = repos.get(key(type, repoId));
        String parent = repo.refs().get(rev);
        Map<String, byte[]> files =
                new TreeMap<>(parent == null ? Map.of() : repo.commits().get(parent));
        Map<String, byte[]> added = new TreeMap<>();
        String summary = null;
        String ndjson = new String(ex.getRequestBody().readAllBytes(), StandardCharsets.UTF_8);
        for (String line : ndjson.split("\n")) {
            if (line.isBlank()) {
                continue;
            }
            JsonNode n = JSON.readTree(line);
            JsonNode v = n.path("value");
            switch (n.path("key").asText()) {
                case "header" -> summary = v.path("summary").asText();
                case "file" ->
                    added.put(
                            v.path("path").asText(),
                            Base64.getDecoder().decode(v.path("content").asText()));
                case "lfsFile" -> {
                    byte[] data = lfsObjects.get(v.path("oid").asText());
                    if (data == null) {
                        send(
                                ex,
                                400,
                                Map.of(),
                                ("{\"error\":\"LFS object " + v.path("oid").asText() + " was never uploaded\"}")
                                        .getBytes(StandardCharsets.UTF_8));
                        return;
                    }
                    added.put(v.path("path").asText(), data);
                }
                default -> {
                    send(ex, 400, Map.of(), "{\"error\":\"unknown key\"}".getBytes(StandardCharsets.UTF_8));
                    return;
                }
            }
        }
        files.putAll(added);
        String commit = put(type, repoId, rev, files);
        commits.add(new Commit(repoId, summary, added));
        send(
                ex,
                200,
                Map.of("Content-Type", "application/json"),
                ("{\"commitOid\":\"" + commit + "\",\"commitUrl\":\"" + endpoint() + "/" + repoId + "/commit/" + commit
                                + "\"}")
                        .getBytes(StandardCharsets.UTF_8));
    }

    // ------------------------------------------------------------ helpers

    private static void send(HttpExchange ex, int status, Map<String, String> headers, byte[] body) throws IOException {
        headers.forEach((k, v) -> ex.getResponseHeaders().add(k, v));
        if (ex.getRequestMethod().equals("HEAD")) {
            ex.sendResponseHeaders(status, -1);
            return;
        }
        ex.sendResponseHeaders(status, body.length == 0 ? -1 : body.length);
        if (body.length > 0) {
            try (OutputStream out = ex.getResponseBody()) {
                out.write(body);
            }
        }
    }

    /** @param data bytes @return their sha256, hex */
    public static String sha256(byte[] data) {
        return hex("SHA-256", data);
    }

    static String sha1(byte[] data) {
        return hex("SHA-1", data);
    }

    /** @param data a file's bytes @return git's blob hash of it, as the Hub's ETag of a small file */
    public static String gitBlobSha1(byte[] data) {
        byte[] header = ("blob " + data.length + "\0").getBytes(StandardCharsets.US_ASCII);
        byte[] all = new byte[header.length + data.length];
        System.arraycopy(header, 0, all, 0, header.length);
        System.arraycopy(data, 0, all, header.length, data.length);
        return sha1(all);
    }

    private static String hex(String algorithm, byte[] data) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance(algorithm).digest(data));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** @param in a stream @return all of it */
    static byte[] all(InputStream in) throws IOException {
        return in.readAllBytes();
    }

    /** @return the request paths, for messages */
    public List<String> paths() {
        List<String> out = new ArrayList<>();
        requests.forEach(r -> out.add(r.method() + " " + r.host() + r.path()));
        return out;
    }
}
