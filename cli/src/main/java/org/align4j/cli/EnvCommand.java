package org.align4j.cli;

import ai.djl.engine.Engine;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.pytorch.jni.LibUtils;
import ai.djl.util.Utils;
import com.sun.management.OperatingSystemMXBean;
import java.io.IOException;
import java.io.PrintWriter;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.align4j.model.hub.HubClient;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** What a bug report needs: versions, the engine and libtorch it loaded, devices, threads, the machine. */
@Command(
        name = "env",
        mixinStandardHelpOptions = true,
        description = "Print versions, engine, libtorch, devices and threads (for bug reports).")
final class EnvCommand implements Callable<Integer> {
    @Option(names = "--json", description = "Print one JSON object")
    boolean json;

    @Option(
            names = "--threads",
            description = "libtorch intra-op threads to report as the CLI would set them (default: libtorch's)")
    Integer threads;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        Threads.apply(threads, null);
        Map<String, Object> v = new LinkedHashMap<>();
        v.put("align4j", Align4j.VERSION);
        v.put("java", System.getProperty("java.vendor") + " " + Runtime.version());
        v.put(
                "os",
                System.getProperty("os.name") + " " + System.getProperty("os.version") + " "
                        + System.getProperty("os.arch"));
        v.put("cpu", cpuModel());
        v.put("cores", Runtime.getRuntime().availableProcessors());
        if (ManagementFactory.getOperatingSystemMXBean() instanceof OperatingSystemMXBean os) {
            v.put("memory_gib", Math.round(os.getTotalMemorySize() / (double) (1L << 30) * 10) / 10.0);
        }
        v.put("max_heap_gib", Math.round(Runtime.getRuntime().maxMemory() / (double) (1L << 30) * 10) / 10.0);
        v.put("djl", Engine.getDjlVersion());
        Engine engine = Engine.getEngine("PyTorch");
        v.put("engine", engine.getEngineName() + " " + engine.getVersion());
        v.put("libtorch", LibUtils.getLibtorchPath());
        v.put("gpus", engine.getGpuCount());
        v.put("intra_op_threads", JniUtils.getNumThreads());
        v.put("inter_op_threads", JniUtils.getNumInteropThreads());
        v.put("djl_cache", Utils.getEngineCacheDir().toString());
        HubClient hub = HubClient.shared();
        v.put("hf_endpoint", hub.endpoint().toString());
        v.put("hf_hub_cache", hub.cache().root().toString());
        v.put("hf_token", hub.hasToken() ? "set" : "none");
        v.put("hf_hub_offline", hub.offline());
        for (String e : List.of(
                "PYTORCH_LIBRARY_PATH",
                "OMP_NUM_THREADS",
                "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE",
                "CUDA_VISIBLE_DEVICES")) {
            v.put(e, System.getenv(e));
        }
        PrintWriter out = spec.commandLine().getOut();
        if (json) {
            out.println(Json.write(v));
        } else {
            v.forEach((k, x) -> out.printf("%-32s %s%n", k, x == null ? "-" : x));
        }
        out.flush();
        return 0;
    }

    private static String cpuModel() {
        Path info = Path.of("/proc/cpuinfo");
        if (Files.isReadable(info)) {
            try {
                for (String line : Files.readAllLines(info)) {
                    if (line.startsWith("model name")) {
                        return line.substring(line.indexOf(':') + 1).strip();
                    }
                }
            } catch (IOException e) {
                return "unknown (" + e.getMessage() + ")";
            }
        }
        return System.getProperty("os.arch");
    }
}
