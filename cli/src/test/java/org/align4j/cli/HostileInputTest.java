package org.align4j.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.align4j.model.Fixtures;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.Appender;
import org.apache.logging.log4j.core.LoggerContext;
import org.apache.logging.log4j.core.appender.WriterAppender;
import org.apache.logging.log4j.core.layout.PatternLayout;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

/**
 * Replays {@code hostile/cases.txt}: one hostile input per line, with the setup that makes it, the exit
 * status it must give and what the first line of the message must hold. A regression in any of them fails
 * the build.
 *
 * <p>A line is {@code SETUP | EXIT | MESSAGE | COMMAND}. SETUP is steps joined by {@code &&} (see {@link
 * #setUp}); COMMAND is split on spaces, {@code ''} being an empty argument; in SETUP, MESSAGE and COMMAND
 * {@code $CASE} is the case's own folder, {@code $GPT2}, {@code $LLAMA}, {@code $QWEN2} the tiny model
 * fixtures, {@code $PREFS} their preference pairs and {@code $LORA} the PEFT-written adapters. MESSAGE is
 * looked for in the first line of stderr (exit status other than 0) or in stdout (exit status 0; {@code
 * stderr:TEXT} looks in stderr); {@code -} checks nothing more.
 */
class HostileInputTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    static Path tmp;

    @TestFactory
    Stream<DynamicTest> everyHostileInputGivesItsExitStatusAndOneLine() throws IOException {
        List<DynamicTest> tests = new ArrayList<>();
        List<String> lines;
        try (InputStream in = HostileInputTest.class.getResourceAsStream("/hostile/cases.txt")) {
            lines = new String(in.readAllBytes(), StandardCharsets.UTF_8)
                    .lines()
                    .toList();
        }
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i).strip();
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            String[] parts = line.split(" \\| ", 4);
            assertThat(parts)
                    .as("cases.txt:%d: SETUP | EXIT | MESSAGE | COMMAND", i + 1)
                    .hasSize(4);
            int no = i + 1;
            tests.add(DynamicTest.dynamicTest("cases.txt:" + no + ": " + parts[3], () -> replay(no, parts)));
        }
        return tests.stream();
    }

    private static void replay(int no, String[] parts) throws Exception {
        Path dir = tmp.resolve("case-" + no);
        Files.createDirectories(dir);
        for (String step : parts[0].split(" && ")) {
            setUp(dir, expand(step.strip(), dir));
        }
        int exit = Integer.parseInt(parts[1].strip());
        String message = expand(parts[2].strip(), dir);
        List<String> args = new ArrayList<>();
        for (String a : expand(parts[3].strip(), dir).split(" ")) {
            args.add(a.equals("''") ? "" : a);
        }
        // the warnings a command logs are part of what it says (the console shows WARN and above)
        StringWriter logs = new StringWriter();
        LoggerContext ctx = (LoggerContext) LogManager.getContext(false);
        Appender appender = WriterAppender.newBuilder()
                .setName("hostile-" + no)
                .setTarget(logs)
                .setLayout(PatternLayout.newBuilder()
                        .withPattern("%-5level %c{1} - %msg%n")
                        .build())
                .build();
        appender.start();
        ctx.getConfiguration().getRootLogger().addAppender(appender, Level.WARN, null);
        ctx.updateLoggers();
        CliTest.Result r;
        try {
            // a case that blocks (a FIFO read) fails here instead of hanging the build
            r = assertTimeoutPreemptively(Duration.ofSeconds(120), () -> CliTest.run(args.toArray(String[]::new)));
        } finally {
            ctx.getConfiguration().getRootLogger().removeAppender(appender.getName());
            ctx.updateLoggers();
            appender.stop();
        }
        String first =
                r.err().lines().filter(l -> l.startsWith("error: ")).findFirst().orElse("");
        assertThat(r.code())
                .as("cases.txt:%d exit status; stderr: %s", no, r.err())
                .isEqualTo(exit);
        if (exit == 0) {
            if (message.startsWith("stderr:")) {
                assertThat(r.err() + logs)
                        .as("cases.txt:%d stderr", no)
                        .contains(message.substring("stderr:".length()));
            } else if (!message.equals("-")) {
                assertThat(r.out()).as("cases.txt:%d stdout", no).contains(message);
            }
            return;
        }
        assertThat(first).as("cases.txt:%d first line; stderr: %s", no, r.err()).contains(message);
        assertThat(r.err())
                .as("cases.txt:%d: no stack trace on the console", no)
                .doesNotContain("\tat ");
    }

    private static String expand(String s, Path dir) {
        return s.replace("$CASE", dir.toString())
                .replace("$GPT2", Fixtures.model("gpt2-tiny").toString())
                .replace("$LLAMA", Fixtures.model("llama-tiny").toString())
                .replace("$QWEN2", Fixtures.model("qwen2-tiny").toString())
                .replace("$PREFS", Fixtures.root().resolve("prefs.jsonl").toString())
                .replace("$LORA", Fixtures.lora("peft-written").toString())
                .replace("$REWARD", Fixtures.reward("transformers-written").toString());
    }

    /**
     * One setup step, in the case's folder:
     *
     * <ul>
     *   <li>{@code none};
     *   <li>{@code copy:FROM:TO}: a copy of a file or folder (one level deep);
     *   <li>{@code config:FILE:JSON}: the keys of JSON set in the JSON file FILE ({@code null} removes one);
     *   <li>{@code text:FILE:TEXT}: a text file, {@code \n}, {@code \r} and {@code \t} escaped;
     *   <li>{@code fifo:FILE}: a named pipe in place of FILE; {@code link:FILE:TARGET}: a symbolic link;
     *   <li>{@code poke:FILE:TENSOR:VALUE}: the first element of an F32 tensor set to VALUE (NaN, Infinity,
     *       ...); {@code dtype:FILE:TENSOR:DTYPE}: the tensor's values stored as I64, F16 or F64;
     *   <li>{@code replace:FILE:FROM=>TO} (the first occurrence), {@code append:FILE:TEXT}, {@code rm:FILE}.
     * </ul>
     */
    private static void setUp(Path dir, String step) throws Exception {
        String[] p = step.split(":", 4);
        switch (p[0]) {
            case "none" -> {}
            case "copy" -> copy(Path.of(p[1]), dir.resolve(p[2]));
            case "config" -> {
                Path f = dir.resolve(p[1]);
                ObjectNode o = (ObjectNode) JSON.readTree(f.toFile());
                JsonNode patch = JSON.readTree(step.substring(("config:" + p[1] + ":").length()));
                for (Iterator<Map.Entry<String, JsonNode>> it = patch.fields(); it.hasNext(); ) {
                    var e = it.next();
                    if (e.getValue().isNull()) {
                        o.remove(e.getKey());
                    } else {
                        o.set(e.getKey(), e.getValue());
                    }
                }
                Files.writeString(f, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(o));
            }
            case "text" -> {
                String text = step.substring(("text:" + p[1] + ":").length())
                        .replace("\\n", "\n")
                        .replace("\\r", "\r")
                        .replace("\\t", "\t");
                Files.createDirectories(dir.resolve(p[1]).getParent());
                Files.writeString(dir.resolve(p[1]), text);
            }
            case "fifo" -> {
                Path f = dir.resolve(p[1]);
                Files.deleteIfExists(f);
                Process mk = new ProcessBuilder("mkfifo", f.toString()).start();
                assertThat(mk.waitFor(10, TimeUnit.SECONDS) && mk.exitValue() == 0)
                        .as("mkfifo")
                        .isTrue();
            }
            case "link" -> {
                Path f = dir.resolve(p[1]);
                Files.deleteIfExists(f);
                Files.createSymbolicLink(f, Path.of(p[2]));
            }
            case "rm" -> Files.delete(dir.resolve(p[1]));
            case "replace" -> {
                Path f = dir.resolve(p[1]);
                String[] fromTo =
                        step.substring(("replace:" + p[1] + ":").length()).split("=>", 2);
                Files.writeString(f, Files.readString(f).replaceFirst(Pattern.quote(fromTo[0]), fromTo[1]));
            }
            case "append" -> {
                Path f = dir.resolve(p[1]);
                Files.writeString(f, Files.readString(f) + step.substring(("append:" + p[1] + ":").length()));
            }
            case "poke" -> {
                Map<String, Tensor> t = readSafetensors(dir.resolve(p[1]));
                Tensor x = t.get(p[2]);
                ByteBuffer.wrap(x.data).order(ByteOrder.LITTLE_ENDIAN).putFloat(0, Float.parseFloat(p[3]));
                writeSafetensors(dir.resolve(p[1]), t);
            }
            case "dtype" -> {
                Map<String, Tensor> t = readSafetensors(dir.resolve(p[1]));
                Tensor x = t.get(p[2]);
                ByteBuffer in = ByteBuffer.wrap(x.data).order(ByteOrder.LITTLE_ENDIAN);
                int n = x.data.length / 4;
                int width = p[3].equals("F16") ? 2 : 8;
                ByteBuffer out = ByteBuffer.allocate(n * width).order(ByteOrder.LITTLE_ENDIAN);
                for (int i = 0; i < n; i++) {
                    float f = in.getFloat(i * 4);
                    switch (p[3]) {
                        case "I64" -> out.putLong(Math.round(f * 1000));
                        case "F64" -> out.putDouble(f);
                        case "F16" -> out.putShort(Float.isInfinite(f) ? (short) 0x7C00 : (short) 0);
                        default -> throw new IllegalArgumentException(p[3]);
                    }
                }
                t.put(p[2], new Tensor(p[3], x.shape, out.array()));
                writeSafetensors(dir.resolve(p[1]), t);
            }
            default -> throw new IllegalArgumentException("unknown setup step: " + step);
        }
    }

    private static void copy(Path from, Path to) throws IOException {
        if (Files.isDirectory(from)) {
            Files.createDirectories(to);
            try (Stream<Path> s = Files.list(from)) {
                for (Path f : s.toList()) {
                    if (Files.isRegularFile(f)) {
                        Files.copy(f, to.resolve(f.getFileName()));
                    }
                }
            }
        } else {
            Files.createDirectories(to.getParent());
            Files.copy(from, to);
        }
    }

    private record Tensor(String dtype, JsonNode shape, byte[] data) {}

    private static Map<String, Tensor> readSafetensors(Path file) throws IOException {
        byte[] all = Files.readAllBytes(file);
        long n = ByteBuffer.wrap(all, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        JsonNode header = JSON.readTree(new String(all, 8, (int) n, StandardCharsets.UTF_8));
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
            var e = it.next();
            if (e.getKey().equals("__metadata__")) {
                continue;
            }
            int begin = e.getValue().get("data_offsets").get(0).asInt();
            int end = e.getValue().get("data_offsets").get(1).asInt();
            byte[] data = new byte[end - begin];
            System.arraycopy(all, (int) (8 + n + begin), data, 0, data.length);
            out.put(
                    e.getKey(),
                    new Tensor(e.getValue().get("dtype").asText(), e.getValue().get("shape"), data));
        }
        return out;
    }

    /** Writes the tensors as they are, without the checks of the library's writer (which would refuse them). */
    private static void writeSafetensors(Path file, Map<String, Tensor> tensors) throws IOException {
        ObjectNode header = JSON.createObjectNode();
        long offset = 0;
        for (var e : tensors.entrySet()) {
            ObjectNode t = header.putObject(e.getKey());
            t.put("dtype", e.getValue().dtype());
            t.set("shape", e.getValue().shape());
            t.putArray("data_offsets").add(offset).add(offset + e.getValue().data().length);
            offset += e.getValue().data().length;
        }
        byte[] json = JSON.writeValueAsBytes(header);
        ByteBuffer out = ByteBuffer.allocate((int) (8 + json.length + offset)).order(ByteOrder.LITTLE_ENDIAN);
        out.putLong(json.length).put(json);
        for (Tensor t : tensors.values()) {
            out.put(t.data());
        }
        Files.write(file, out.array());
    }
}
