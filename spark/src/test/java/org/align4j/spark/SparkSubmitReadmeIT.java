package org.align4j.spark;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.File;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import org.align4j.model.Fixtures;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The README's {@code spark-submit} command, as written, against the jar the build made: Spark's own {@code
 * SparkSubmit} runs in a JVM of its own on {@code local[2]} (the {@code MASTER} variable, so the arguments stay
 * the README's), with Spark and the libraries it ships on the class path and nothing of align4j (no module, no
 * library the jar carries, no libtorch): what the jar and {@code --jars} bring is all it has. Bad input stops on
 * the driver with one line and exit status 2.
 */
class SparkSubmitReadmeIT {
    @TempDir
    static Path tmp;

    private static List<String> readmeArgs;
    private static String sparkClassPath;

    @BeforeAll
    static void setUp() throws IOException {
        Path readme = Path.of(System.getProperty("align4j.readme"));
        List<String> commands = Files.readAllLines(readme).stream()
                .filter(l -> l.startsWith("spark-submit "))
                .toList();
        assertThat(commands).as("the README's spark-submit command").hasSize(1);
        readmeArgs = List.of(
                commands.get(0).substring("spark-submit ".length()).strip().split(" +"));
        // the jars the README names, where it runs them from: the working folder
        Path jar = Path.of(System.getProperty("align4j.spark.jar"));
        Path nativeJar = Path.of(System.getProperty("align4j.native.jar"));
        assertThat(readmeArgs).contains(jar.getFileName().toString());
        assertThat(readmeArgs).contains(nativeJar.getFileName().toString());
        Files.createSymbolicLink(tmp.resolve(jar.getFileName()), jar);
        Files.createSymbolicLink(tmp.resolve(nativeJar.getFileName()), nativeJar);
        Path conf = Files.createDirectories(tmp.resolve("conf"));
        Files.writeString(
                conf.resolve("spark-defaults.conf"),
                "spark.ui.enabled false\nspark.local.dir " + tmp.resolve("spark-local") + "\n");
        sparkClassPath = sparkOnly(jar);
    }

    /** This test's class path less align4j's modules, every library the jar carries, and libtorch. */
    private static String sparkOnly(Path appJar) throws IOException {
        Set<String> carried = new HashSet<>();
        try (JarFile j = new JarFile(appJar.toFile())) {
            j.stream().map(JarEntry::getName).forEach(carried::add);
        }
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        List<String> kept = new ArrayList<>();
        for (String entry : cp.split(File.pathSeparator)) {
            Path p = Path.of(entry);
            if (!Files.isRegularFile(p)
                    || p.toString().contains("/org/align4j/")
                    || p.toString().contains("pytorch-native")) {
                continue; // the modules' classes folders, align4j's jars, libtorch
            }
            try (JarFile j = new JarFile(p.toFile())) {
                String firstClass = j.stream()
                        .map(JarEntry::getName)
                        .filter(n -> n.endsWith(".class") && !n.contains("module-info"))
                        .findFirst()
                        .orElse(null);
                if (firstClass == null || !carried.contains(firstClass)) {
                    kept.add(entry);
                }
            }
        }
        return String.join(File.pathSeparator, kept);
    }

    private record Run(int code, String stderr) {}

    private static Run sparkSubmit(List<String> args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-cp");
        cmd.add(sparkClassPath);
        // the JVM options spark-submit gives a Java 17 driver, and this build's offline engine settings
        for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
            if (a.startsWith("--add-opens")
                    || a.startsWith("-D") && !a.startsWith("-Dsurefire")
                    || a.startsWith("-Xmx")) {
                cmd.add(a);
            }
        }
        cmd.add("org.apache.spark.deploy.SparkSubmit");
        cmd.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(tmp.toFile());
        pb.environment().put("MASTER", "local[2]");
        pb.environment().put("SPARK_CONF_DIR", tmp.resolve("conf").toString());
        pb.environment().remove("ALIGN4J_DEBUG");
        Path err = Files.createTempFile(tmp, "stderr", ".txt");
        pb.redirectError(err.toFile()).redirectOutput(ProcessBuilder.Redirect.DISCARD);
        Process p = pb.start();
        if (!p.waitFor(10, TimeUnit.MINUTES)) { // a guard against a hang, not a timing
            p.destroyForcibly();
        }
        return new Run(p.waitFor(), Files.readString(err, StandardCharsets.UTF_8));
    }

    private static String runYaml(String model, String data, String cache) {
        return "model: " + model + "\nreference_model: " + Fixtures.model("gpt2-tiny-ref") + "\ndata: " + data
                + "\noutput: " + tmp.resolve("run") + "\nreference: precomputed\ncache_dir: " + cache
                + "\neval_fraction: 0.25\neval_batch_size: 3\n";
    }

    @Test
    void theReadmesCommandScoresTheRunsReferenceLogProbsOnLocal2() throws Exception {
        Path cache = tmp.resolve("cache");
        Files.writeString(
                tmp.resolve("run.yaml"),
                runYaml(
                        Fixtures.model("gpt2-tiny").toString(),
                        Fixtures.root().resolve("prefs.jsonl").toString(),
                        cache.toString()));
        assertThat(readmeArgs).contains("run.yaml");
        Run r = sparkSubmit(readmeArgs);
        assertThat(r.code()).as(r.stderr()).isZero();
        try (var files = Files.list(cache)) {
            List<String> names =
                    files.map(f -> f.getFileName().toString()).sorted().toList();
            assertThat(names.stream().filter(n -> n.endsWith(".safetensors")))
                    .as("the training split's and the held-out split's cache files")
                    .hasSize(2);
            for (String n : names.stream().filter(n -> n.endsWith(".parquet")).toList()) {
                assertThat(cache.resolve(n).resolve("_SUCCESS")).isRegularFile();
            }
        }
    }

    /** The README's command with another YAML (and partitions). */
    private static List<String> withYaml(Path yaml, String partitions) {
        List<String> a = new ArrayList<>(readmeArgs);
        int i = a.indexOf("run.yaml");
        a.set(i, yaml.toString());
        a.set(i + 1, partitions);
        return a;
    }

    private static void assertOneLine(Run r, String... named) {
        assertThat(r.code()).as(r.stderr()).isEqualTo(2);
        List<String> errors =
                r.stderr().lines().filter(l -> l.startsWith("error: ")).toList();
        assertThat(errors).as(r.stderr()).hasSize(1);
        assertThat(errors.get(0)).contains(named);
        assertThat(r.stderr()).as("no stack trace on the console").doesNotContain("\tat ");
    }

    @Test
    void aYamlThatDoesNotParseIsOneLineNamingTheFileWithExit2() throws Exception {
        Path yaml = Files.writeString(tmp.resolve("broken.yaml"), "model: [unclosed\nbeta: 0.1\n");
        assertOneLine(sparkSubmit(withYaml(yaml, "64")), "broken.yaml");
    }

    @Test
    void aMissingModelFolderIsOneLineNamingItWithExit2() throws Exception {
        Path yaml = Files.writeString(
                tmp.resolve("nomodel.yaml"),
                runYaml(
                        tmp.resolve("no-such-model").toString(),
                        Fixtures.root().resolve("prefs.jsonl").toString(),
                        tmp.resolve("c2").toString()));
        assertOneLine(sparkSubmit(withYaml(yaml, "64")), "no-such-model");
    }

    // found here: partitions that are not a number, and a data file that is not there

    @Test
    void partitionsThatAreNotANumberAreNamedWithExit2() throws Exception {
        Path yaml = Files.writeString(
                tmp.resolve("ok.yaml"),
                runYaml(
                        Fixtures.model("gpt2-tiny").toString(),
                        Fixtures.root().resolve("prefs.jsonl").toString(),
                        tmp.resolve("c3").toString()));
        assertOneLine(sparkSubmit(withYaml(yaml, "many")), "PARTITIONS", "'many'");
    }

    @Test
    void aMissingDataFileIsNamedWithExit2() throws Exception {
        Path yaml = Files.writeString(
                tmp.resolve("nodata.yaml"),
                runYaml(
                        Fixtures.model("gpt2-tiny").toString(),
                        tmp.resolve("no-such-data.jsonl").toString(),
                        tmp.resolve("c4").toString()));
        assertOneLine(sparkSubmit(withYaml(yaml, "64")), "no-such-data.jsonl");
    }
}
