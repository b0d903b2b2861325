package org.align4j.cli;

import java.io.PrintWriter;
import java.util.Locale;
import java.util.function.Supplier;
import org.align4j.model.hub.DownloadProgress;
import org.align4j.model.hub.HubClient;

/**
 * Draws Hub downloads on the console: on a terminal one line per file redrawn in place (bytes, rate,
 * ETA), elsewhere one line per finished file.
 */
final class DownloadConsole implements DownloadProgress {
    private final Supplier<PrintWriter> err;
    private final boolean terminal;

    DownloadConsole(Supplier<PrintWriter> err, boolean terminal) {
        this.err = err;
        this.terminal = terminal;
    }

    @Override
    public synchronized void update(Transfer t) {
        if (!t.done() && !terminal) {
            return;
        }
        String size = t.total() >= 0
                ? HubClient.human(t.bytes()) + " / " + HubClient.human(t.total())
                : HubClient.human(t.bytes());
        String rate = HubClient.human((long) t.bytesPerSecond()) + "/s";
        String line = t.done()
                ? String.format(Locale.ROOT, "downloaded %s %s: %s, %s", t.repo(), t.file(), size, rate)
                : String.format(
                        Locale.ROOT,
                        "downloading %s %s: %s, %s, ETA %s",
                        t.repo(),
                        t.file(),
                        size,
                        rate,
                        t.etaSeconds() < 0 ? "?" : Math.round(t.etaSeconds()) + " s");
        PrintWriter w = err.get();
        if (terminal) {
            w.print("\r" + line + "\u001b[K" + (t.done() ? "\n" : ""));
        } else {
            w.println(line);
        }
        w.flush();
    }
}
