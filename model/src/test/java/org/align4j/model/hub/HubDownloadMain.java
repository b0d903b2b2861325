package org.align4j.model.hub;

import java.nio.file.Path;

/**
 * A second process for {@code HubClientTest} (and the writer of a cache for {@code hub_interop.py}):
 * resolves a model id, or with {@code --dataset} a dataset id, from the environment and prints the paths.
 */
public final class HubDownloadMain {
    private HubDownloadMain() {}

    /** @param args a model id, or {@code --dataset} and a dataset id */
    public static void main(String[] args) {
        HubClient client = HubClient.fromEnvironment(System.getenv(), Path.of(System.getProperty("user.home")))
                .build();
        if (args[0].equals("--dataset")) {
            client.dataset(HubId.parse(args[1], HubId.Type.DATASET)).forEach(System.out::println);
        } else {
            System.out.println(client.model(HubId.parse(args[0], HubId.Type.MODEL)));
        }
    }
}
