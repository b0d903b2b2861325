package org.align4j.model.hub;

import java.nio.file.Path;

/** Uploads a folder with {@link HubUpload}, configured from the environment, for {@code hub_interop.py}. */
public final class HubUploadMain {
    private HubUploadMain() {}

    /** @param args the folder and the repository */
    public static void main(String[] args) {
        HubClient client = HubClient.fromEnvironment(System.getenv(), Path.of(System.getProperty("user.home")))
                .build();
        HubUpload.Result r = new HubUpload(client).upload(Path.of(args[0]), args[1], false, "Upload folder");
        System.out.println(r.commit());
    }
}
