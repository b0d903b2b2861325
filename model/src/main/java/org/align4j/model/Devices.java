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
     * @throws IllegalStateException if a GPU is asked for and the loaded libtorch has no CUDA, or no
     *     GPU is visible
     */
    public static Device resolve(String name) {
        String n = name == null ? "cpu" : name.trim().toLowerCase(Locale.ROOT);
        if ("cpu".equals(n)) {
            return Device.cpu();
        }
        if (!n.startsWith("gpu")) {
            throw new IllegalArgumentException("device: expected cpu, gpu or gpu:N, got '" + name + "'");
        }
        int id = n.length() > 4 && n.charAt(3) == ':' ? Integer.parseInt(n.substring(4)) : 0;
        Engine engine = Engine.getEngine("PyTorch");
        int gpus = engine.getGpuCount();
        if (gpus <= id) {
            throw new IllegalStateException(
                    "device: asked for GPU " + id + " but the PyTorch engine sees " + gpus + " GPU(s) (libtorch "
                            + engine.getVersion() + "). The CPU build of libtorch is loaded when the "
                            + "pytorch-native-cpu jar is on the classpath and PYTORCH_LIBRARY_PATH is unset: point "
                            + "PYTORCH_LIBRARY_PATH at a CUDA libtorch 2.7.1 lib/ folder, or build with -Dgpu so "
                            + "DJL fetches its CUDA build. Refusing to fall back to the CPU.");
        }
        return Device.gpu(id);
    }
}
