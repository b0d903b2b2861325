package org.align4j.evaluation.report;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.align4j.model.io.AtomicDirectory;

/**
 * Screenshots of a report page in headless Chromium, to check that it renders. Needs a Chromium
 * binary (Debian: {@code apt-get install chromium}); runs it with a fresh profile and no network
 * chatter.
 */
public final class Chromium {
    private Chromium() {}

    /**
     * @param chromium the browser binary
     * @param html the page
     * @param png where to write the screenshot
     * @param width window width in pixels
     * @param height window height in pixels
     * @return the PNG bytes
     * @throws IOException when Chromium fails or writes nothing (its output is in the message)
     * @throws InterruptedException when interrupted while waiting
     */
    public static byte[] screenshot(Path chromium, Path html, Path png, int width, int height)
            throws IOException, InterruptedException {
        Path profile = Files.createTempDirectory(png.toAbsolutePath().getParent(), ".chromium-profile");
        Path log = profile.resolveSibling(profile.getFileName() + ".log");
        try {
            List<String> cmd = List.of(
                    chromium.toString(),
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--hide-scrollbars",
                    "--user-data-dir=" + profile,
                    "--window-size=" + width + "," + height,
                    "--screenshot=" + png.toAbsolutePath(),
                    html.toAbsolutePath().toUri().toString());
            Process p = new ProcessBuilder(cmd)
                    .redirectErrorStream(true)
                    .redirectOutput(log.toFile())
                    .start();
            if (!p.waitFor(120, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IOException("chromium did not finish within 120 s: " + String.join(" ", cmd));
            }
            if (p.exitValue() != 0 || !Files.isRegularFile(png)) {
                throw new IOException("chromium exited with " + p.exitValue() + " and wrote "
                        + (Files.isRegularFile(png) ? "" : "no ") + "screenshot; its output:\n"
                        + Files.readString(log));
            }
            return Files.readAllBytes(png);
        } finally {
            AtomicDirectory.deleteRecursively(profile);
            Files.deleteIfExists(log);
        }
    }
}
