package org.align4j.data.io;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.align4j.data.DataException;
import org.align4j.data.DataFormat;
import org.align4j.data.PreferenceData;
import org.align4j.data.PreferenceExample;
import org.align4j.model.hub.FakeHub;
import org.align4j.model.hub.HubClient;
import org.align4j.model.hub.HubId;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.SimpleGroupFactory;
import org.apache.parquet.hadoop.ParquetWriter;
import org.apache.parquet.hadoop.example.ExampleParquetWriter;
import org.apache.parquet.io.LocalOutputFile;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.MessageTypeParser;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A dataset by Hub id goes through the same readers as a local file: Parquet from the Hub's conversion branch. */
class HubDatasetTest {
    @TempDir
    Path tmp;

    FakeHub hub;

    @BeforeEach
    void start() {
        hub = new FakeHub();
        HubClient.setShared(HubClient.fromEnvironment(
                        Map.of("HF_HUB_CACHE", tmp.resolve("hub").toString(), "HF_ENDPOINT", hub.endpoint()), tmp)
                .build());
    }

    @AfterEach
    void stop() {
        HubClient.setShared(null);
        hub.close();
    }

    @Test
    void aParquetSplitOfTheConversionBranchIsReadByIdAsALocalFileWouldBe() throws IOException {
        MessageType flat = MessageTypeParser.parseMessageType("message pair { required binary prompt (STRING);"
                + " required binary chosen (STRING); required binary rejected (STRING); }");
        Path f = tmp.resolve("0000.parquet");
        try (ParquetWriter<Group> w = ExampleParquetWriter.builder(new LocalOutputFile(f))
                .withType(flat)
                .build()) {
            SimpleGroupFactory g = new SimpleGroupFactory(flat);
            w.write(g.newGroup().append("prompt", "2+2=").append("chosen", " 4").append("rejected", " 5"));
            w.write(g.newGroup().append("prompt", "3+3=").append("chosen", " 6").append("rejected", " 7"));
        }
        hub.put(HubId.Type.DATASET, "team/math", HubId.MAIN, Map.of("loader.py", new byte[] {1}));
        hub.put(
                HubId.Type.DATASET,
                "team/math",
                "refs/convert/parquet",
                Map.of("default/test/0000.parquet", Files.readAllBytes(f)));

        List<PreferenceExample> ex = PreferenceData.load(Path.of("team/math:test"), DataFormat.AUTO, false)
                .examples();

        assertThat(ex).extracting(PreferenceExample::prompt).containsExactly("2+2=", "3+3=");
        assertThat(ex.get(0).file().toString()).contains("datasets--team--math").endsWith("default/test/0000.parquet");
    }

    @Test
    void aMissingLocalDataFileIsNotMistakenForAnId() {
        assertThatThrownBy(() -> RecordReader.files(Path.of("data/missing.jsonl")))
                .isInstanceOf(DataException.class)
                .hasMessageContaining("no such file or folder");
        assertThat(hub.requests()).isEmpty();
    }
}
