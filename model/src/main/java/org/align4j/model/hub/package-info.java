/**
 * Models and datasets by Hugging Face Hub id ({@code owner/name[@revision]}, {@code
 * owner/name[@revision]:split} for data), in the cache {@code huggingface_hub} keeps, so that Python and
 * align4j share one copy: {@code HF_HUB_CACHE}, else {@code HF_HOME/hub}, else {@code
 * ~/.cache/huggingface/hub}, with {@code models--owner--name/{blobs, snapshots/<commit>, refs/<rev>}}.
 * Downloads fetch only the files a run needs, follow redirects to other hosts, resume partial blobs, check
 * the checksum the Hub reports before a blob is used, and lock each blob against a second process. Uploads
 * use the Hub's commit API. The HTTP layer is the JDK's {@code java.net.http.HttpClient}.
 */
package org.align4j.model.hub;
