package org.align4j.model;

import ai.djl.Device;
import ai.djl.engine.Engine;
import java.util.Locale;

/**
 * Chooses the device a run asked for, and refuses a GPU run that would silently run on the CPU.
 */
public final class Devices {
    private Devices() {}

    /**
     * Resolves {@code cpu}, {@code gpu} (the first GPU) or {@code gpu:N}.
     *
     * @param name the device name from a flag or config
     * @return the device
     * @throws IllegalArgumentException naming {@code device} for a malformed name, a GPU that the loaded
     *     libtorch cannot see (a CPU build, no GPU, an index past the last), or an engine that cannot load
     */
    public static Device resolve(String name) {
        String n = name == null ? "cpu" : name.trim().toLowerCase(Locale.ROOT);
        if ("cpu".equals(n)) {
            return Device.cpu();
        }
        if (!n.matches("gpu(:\\d{1,4})?")) {
            throw new IllegalArgumentException("device: expected cpu, gpu or gpu:N, got '" + name + "'");
        }
        int id = n.length() > 4 ? Integer.parseInt(n.substring(4)) : 0;
        Engine engine;
        try {
            engine = Engine.getEngine("PyTorch");
        } catch (RuntimeException e) {
            throw new IllegalArgumentException(
                    "device: cannot load the PyTorch engine for '" + name + "' (" + e.getMessage() + "); without the "
                            + "CPU jar DJL downloads a CUDA libtorch at first use, which needs the internet: point PYTORCH_LIBRARY_PATH at a CUDA "
                            + "libtorch 2.7.1 lib/ folder instead",
                    e);
        }
        int gpus = engine.getGpuCount();
        if (gpus <= id) {
            throw new IllegalArgumentException(
                    "device: asked for GPU " + id + " but the PyTorch engine sees " + gpus + " GPU(s) (libtorch "
                            + engine.getVersion() + "). The CPU build of libtorch is loaded when the "
                            + "pytorch-native-cpu jar is on the classpath and PYTORCH_LIBRARY_PATH is unset: point "
                            + "PYTORCH_LIBRARY_PATH at a CUDA libtorch 2.7.1 lib/ folder, or build with -Dgpu so "
                            + "DJL fetches its CUDA build. Refusing to fall back to the CPU.");
        }
        return Device.gpu(id);
    }
}
