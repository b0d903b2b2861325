package org.align4j.model.hub;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Uploads a folder to a model repository in one commit, through the Hub's commit API as {@code
 * huggingface_hub}'s {@code upload_folder} (and so TRL's {@code push_to_hub}) does: {@code POST
 * /api/repos/create} (an existing repository is fine), {@code POST .../preupload/{rev}} to learn which
 * files go through LFS, the LFS batch API ({@code /{repo}.git/info/lfs/objects/batch}, the {@code basic}
 * transfer: one {@code PUT} per object the Hub does not hold yet, then its {@code verify}), and {@code POST
 * .../commit/{rev}} with NDJSON lines (a header, each small file inline in base64, each LFS file by its
 * sha256).
 */
public final class HubUpload {
    private static final Logger LOG = LoggerFactory.getLogger(HubUpload.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String LFS_JSON = "application/vnd.git-lfs+json";

    private final HubClient client;

    /** @param client the Hub, its token (which must be allowed to write) and its progress listener */
    public HubUpload(HubClient client) {
        this.client = client;
    }

    /**
     * What an upload made.
     *
     * @param commit the new commit's hash
     * @param url the commit's page
     * @param files how many files it holds
     * @param lfsUploaded how many LFS objects were sent (those the Hub already held are not)
     */
    public record Result(String commit, String url, int files, int lfsUploaded) {}

    private record Entry(String path, Path file, long size, String mode, String oid) {}

    /**
     * Uploads every regular file under {@code folder} (hidden files aside) to {@code repo} on {@code main}.
     *
     * @param folder e.g. a run's {@code final/}
     * @param repo {@code owner/name}
     * @param privateRepo create the repository private (an existing one keeps its visibility)
     * @param message the commit's summary
     * @return the commit
     * @throws HubException offline (before anything else is asked of the user), without a token, or when the Hub
     *     refuses the token or the repository
     * @throws UncheckedIOException on a network or disk fault
     */
    public Result upload(Path folder, String repo, boolean privateRepo, String message) {
        HubId id = HubId.parse(repo, HubId.Type.MODEL);
        if (!id.revision().equals(HubId.MAIN)) {
            throw new HubException(repo + ": push goes to main; give the repository without @revision");
        }
        if (client.offline()) { // before the token: offline, no token would help
            throw new HubException(id.repo() + ": cannot push offline (HF_HUB_OFFLINE=1 or --offline): pushing"
                    + " uploads to the Hub; run it again online");
        }
        if (!client.hasToken()) {
            throw new HubException(id.repo() + ": pushing needs a token with write access: set HF_TOKEN or run "
                    + "`hf auth login` (a token from " + client.endpoint() + "/settings/tokens)");
        }
        try {
            List<Entry> entries = list(folder);
            createRepo(id, privateRepo);
            entries = preupload(id, entries);
            int sent = 0;
            List<Entry> lfs =
                    entries.stream().filter(e -> e.mode().equals("lfs")).toList();
            if (!lfs.isEmpty()) {
                sent = lfsUpload(id, lfs);
            }
            return commit(id, entries, message, sent);
        } catch (IOException e) {
            throw new UncheckedIOException(id.repo() + ": push failed: " + e.getMessage(), e);
        }
    }

    private static List<Entry> list(Path folder) throws IOException {
        if (!Files.isDirectory(folder)) {
            throw new HubException(folder + ": not a folder");
        }
        List<Entry> out = new ArrayList<>();
        try (Stream<Path> s = Files.walk(folder)) {
            for (Path p : s.filter(Files::isRegularFile).sorted().toList()) {
                String rel = folder.relativize(p).toString().replace('\\', '/');
                if (Arrays.stream(rel.split("/")).anyMatch(part -> part.startsWith("."))) {
                    continue; // locks, temp files, .cache
                }
                out.add(new Entry(rel, p, Files.size(p), "regular", null));
            }
        }
        if (out.isEmpty()) {
            throw new HubException(folder + ": no files to upload");
        }
        return out;
    }

    private void createRepo(HubId id, boolean privateRepo) throws IOException {
        String[] parts = id.repo().split("/");
        ObjectNode body = JSON.createObjectNode().put("name", parts[1]).put("organization", parts[0]);
        if (privateRepo) {
            body.put("private", true); // as huggingface_hub, visibility is sent only when asked for
        }
        HttpResponse<InputStream> r = post(
                URI.create(client.endpoint() + "/api/repos/create"), "application/json", JSON.writeValueAsBytes(body));
        String text = HubClient.readBody(r);
        if (r.statusCode() == 409) {
            LOG.info("{}: the repository exists; adding a commit", id.repo());
            return;
        }
        check(id, r.statusCode(), text, "create the repository");
        LOG.info("{}: created ({})", id.repo(), privateRepo ? "private" : "the account's default visibility");
    }

    private List<Entry> preupload(HubId id, List<Entry> entries) throws IOException {
        ObjectNode body = JSON.createObjectNode();
        ArrayNode files = body.putArray("files");
        for (Entry e : entries) {
            byte[] sample;
            try (InputStream in = Files.newInputStream(e.file())) {
                sample = in.readNBytes(512);
            }
            files.addObject()
                    .put("path", e.path())
                    .put("sample", Base64.getEncoder().encodeToString(sample))
                    .put("size", e.size());
        }
        HttpResponse<InputStream> r = post(apiUri(id, "preupload"), "application/json", JSON.writeValueAsBytes(body));
        String text = HubClient.readBody(r);
        check(id, r.statusCode(), text, "upload");
        Map<String, String> modes = new HashMap<>();
        for (JsonNode f : JSON.readTree(text).path("files")) {
            if (!f.path("shouldIgnore").asBoolean(false)) {
                modes.put(f.path("path").asText(), f.path("uploadMode").asText("regular"));
            }
        }
        List<Entry> out = new ArrayList<>();
        for (Entry e : entries) {
            String mode = modes.get(e.path());
            if (mode == null) {
                LOG.info("{}: the Hub ignores {} (.gitignore)", id.repo(), e.path());
                continue;
            }
            out.add(new Entry(e.path(), e.file(), e.size(), mode, mode.equals("lfs") ? sha256(e.file()) : null));
        }
        return out;
    }

    private int lfsUpload(HubId id, List<Entry> lfs) throws IOException {
        ObjectNode body = JSON.createObjectNode().put("operation", "upload").put("hash_algo", "sha256");
        body.putArray("transfers").add("basic");
        body.putObject("ref").put("name", HubId.MAIN);
        ArrayNode objects = body.putArray("objects");
        lfs.forEach(e -> objects.addObject().put("oid", e.oid()).put("size", e.size()));
        URI batch = URI.create(client.endpoint() + "/" + id.repo() + ".git/info/lfs/objects/batch");
        HttpResponse<InputStream> r = client.send(
                client.request(batch)
                        .header("Accept", LFS_JSON)
                        .header("Content-Type", LFS_JSON)
                        .POST(HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(body))),
                true);
        String text = HubClient.readBody(r);
        check(id, r.statusCode(), text, "upload LFS files to");
        Map<String, Entry> byOid = new HashMap<>();
        lfs.forEach(e -> byOid.put(e.oid(), e));
        int sent = 0;
        for (JsonNode o : JSON.readTree(text).path("objects")) {
            if (o.has("error")) {
                throw new IOException("LFS object " + o.path("oid").asText() + ": "
                        + o.path("error").path("message").asText());
            }
            JsonNode upload = o.path("actions").path("upload");
            if (upload.isMissingNode()) {
                continue; // the Hub holds it already
            }
            Entry e = byOid.get(o.path("oid").asText());
            if (upload.path("header").has("chunk_size")) {
                throw new IOException(e.path() + ": the Hub asked for a multipart upload, which align4j does not do; "
                        + "upload this file with `hf upload`");
            }
            long start = System.nanoTime();
            HttpRequest.Builder put = client.request(
                            URI.create(upload.path("href").asText()))
                    .timeout(Duration.ofHours(12)) // the answer comes after the whole body: no 30 s limit
                    .PUT(HttpRequest.BodyPublishers.ofFile(e.file()));
            upload.path("header")
                    .properties()
                    .forEach(h -> put.header(h.getKey(), h.getValue().asText()));
            HttpResponse<InputStream> pr = client.send(put, true);
            String ptext = HubClient.readBody(pr);
            if (pr.statusCode() / 100 != 2) {
                throw new IOException(
                        e.path() + ": the LFS store answered HTTP " + pr.statusCode() + " " + firstLine(ptext));
            }
            JsonNode verify = o.path("actions").path("verify");
            if (!verify.isMissingNode()) {
                HttpRequest.Builder vb = client.request(
                                URI.create(verify.path("href").asText()))
                        .header("Content-Type", LFS_JSON)
                        .header("Accept", LFS_JSON)
                        .POST(HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(
                                JSON.createObjectNode().put("oid", e.oid()).put("size", e.size()))));
                verify.path("header")
                        .properties()
                        .forEach(h -> vb.header(h.getKey(), h.getValue().asText()));
                HttpResponse<InputStream> vr = client.send(vb, true);
                String vtext = HubClient.readBody(vr);
                if (vr.statusCode() / 100 != 2) {
                    throw new IOException(
                            e.path() + ": LFS verify answered HTTP " + vr.statusCode() + " " + firstLine(vtext));
                }
            }
            double secs = (System.nanoTime() - start) / 1e9;
            LOG.info(
                    "{}: uploaded {} ({} in {} s)",
                    id.repo(),
                    e.path(),
                    HubClient.human(e.size()),
                    String.format(Locale.ROOT, "%.1f", secs));
            sent++;
        }
        return sent;
    }

    private Result commit(HubId id, List<Entry> entries, String message, int sent) throws IOException {
        StringBuilder nd = new StringBuilder();
        ObjectNode header = JSON.createObjectNode().put("key", "header");
        header.putObject("value").put("summary", message).put("description", "");
        nd.append(JSON.writeValueAsString(header)).append('\n');
        for (Entry e : entries) {
            ObjectNode line = JSON.createObjectNode();
            if (e.mode().equals("lfs")) {
                line.put("key", "lfsFile");
                line.putObject("value")
                        .put("path", e.path())
                        .put("algo", "sha256")
                        .put("oid", e.oid())
                        .put("size", e.size());
            } else {
                line.put("key", "file");
                line.putObject("value")
                        .put("content", Base64.getEncoder().encodeToString(Files.readAllBytes(e.file())))
                        .put("path", e.path())
                        .put("encoding", "base64");
            }
            nd.append(JSON.writeValueAsString(line)).append('\n');
        }
        HttpResponse<InputStream> r =
                post(apiUri(id, "commit"), "application/x-ndjson", nd.toString().getBytes(StandardCharsets.UTF_8));
        String text = HubClient.readBody(r);
        check(id, r.statusCode(), text, "commit to");
        JsonNode out = JSON.readTree(text);
        Result res =
                new Result(out.path("commitOid").asText(), out.path("commitUrl").asText(), entries.size(), sent);
        LOG.info("{}: commit {} with {} files ({} LFS objects sent)", id.repo(), res.commit(), res.files(), sent);
        return res;
    }

    private URI apiUri(HubId id, String verb) {
        return URI.create(client.endpoint() + "/api/models/" + id.repo() + "/" + verb + "/"
                + URLEncoder.encode(id.revision(), StandardCharsets.UTF_8));
    }

    private HttpResponse<InputStream> post(URI uri, String contentType, byte[] body) throws IOException {
        return client.send(
                client.request(uri)
                        .header("Content-Type", contentType)
                        .POST(HttpRequest.BodyPublishers.ofByteArray(body)),
                true);
    }

    private void check(HubId id, int status, String body, String what) {
        if (status / 100 == 2) {
            return;
        }
        if (status == 401 || status == 403) {
            throw new HubException(id.repo() + ": the token given (HF_TOKEN or HF_HOME/token) may not " + what
                    + " this repository: it needs write access"
                    + (id.repo().contains("/") ? " to " + id.repo().split("/")[0] : ""));
        }
        throw new UncheckedIOException(new IOException(
                id.repo() + ": cannot " + what + " the repository: HTTP " + status + " " + firstLine(body)));
    }

    private static String firstLine(String s) {
        return s == null ? "" : s.lines().findFirst().orElse("");
    }

    private static String sha256(Path file) throws IOException {
        MessageDigest md;
        try {
            md = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
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
}
