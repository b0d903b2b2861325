package org.align4j.model.hub;

import java.nio.file.Path;

/** A second process for {@code HubClientTest}: resolves one model id from the environment and prints the folder. */
public final class HubDownloadMain {
    private HubDownloadMain() {}

    /** @param args the model id */
    public static void main(String[] args) {
        Path dir = HubClient.fromEnvironment(System.getenv(), Path.of(System.getProperty("user.home")))
                .build()
                .model(HubId.parse(args[0], HubId.Type.MODEL));
        System.out.println(dir);
    }
}
