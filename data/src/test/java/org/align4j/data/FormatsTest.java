package org.align4j.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.zip.GZIPOutputStream;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.SimpleGroupFactory;
import org.apache.parquet.hadoop.ParquetWriter;
import org.apache.parquet.hadoop.example.ExampleParquetWriter;
import org.apache.parquet.hadoop.metadata.CompressionCodecName;
import org.apache.parquet.io.LocalOutputFile;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.MessageTypeParser;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FormatsTest {
    @TempDir
    Path tmp;

    Path write(String name, String... lines) throws IOException {
        Path f = tmp.resolve(name);
        Files.createDirectories(f.getParent());
        Files.writeString(f, String.join("\n", lines) + "\n");
        return f;
    }

    static List<PreferenceExample> load(Path p) {
        return PreferenceData.load(p, DataFormat.AUTO, false).examples();
    }

    @Test
    void standardFormat() throws IOException {
        Path f = write(
                "std.jsonl",
                "{\"prompt\": \"2+2=\", \"chosen\": \" 4\", \"rejected\": \" 5\"}",
                "",
                "{\"prompt\": \"Capital of Italy?\", \"chosen\": \" Rome\", \"rejected\": \" Milan\", \"extra\": 1}");
        List<PreferenceExample> ex = load(f);
        assertThat(ex).hasSize(2);
        assertThat(ex.get(1).prompt()).isEqualTo("Capital of Italy?");
        assertThat(ex.get(1).chosen()).isEqualTo(" Rome");
        assertThat(ex.get(1).line()).isEqualTo(3);
        assertThat(ex.get(0).conversational()).isFalse();
        assertThat(ex.get(0).preference()).isNull();
    }

    @Test
    void conversationalFormat() throws IOException {
        Path f = write(
                "conv.jsonl",
                "{\"prompt\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"2+2?\"}],"
                        + " \"chosen\": [{\"role\": \"assistant\", \"content\": \"4\"}], \"rejected\": [{\"role\": \"assistant\", \"content\": \"5\"}]}");
        PreferenceExample e = load(f).get(0);
        assertThat(e.conversational()).isTrue();
        assertThat(e.promptMessages()).containsExactly(new Message("system", "Be brief."), new Message("user", "2+2?"));
        assertThat(e.chosenMessages()).containsExactly(new Message("assistant", "4"));
    }

    @Test
    void messageFieldsBeyondRoleAndContentAndTheRecordsTemplateArgsAreKept() throws IOException {
        Path f = write(
                "fields.jsonl",
                "{\"prompt\": [{\"role\": \"user\", \"content\": \"Weather?\"},"
                        + " {\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"type\": \"function\", \"function\": {\"name\": \"w\", \"arguments\": {\"c\": 1}}}]},"
                        + " {\"role\": \"tool\", \"content\": \"21\", \"tool_call_id\": \"a1\"}],"
                        + " \"chosen\": [{\"role\": \"assistant\", \"content\": \"21 C\", \"reasoning_content\": \"read it\"}],"
                        + " \"rejected\": [{\"role\": \"assistant\", \"content\": \"cold\"}],"
                        + " \"tools\": \"[{\\\"type\\\": \\\"function\\\"}]\", \"chat_template_kwargs\": {\"enable_thinking\": false}}",
                "{\"prompt\": [{\"role\": \"user\", \"content\": \"a\"}], \"chosen\": [{\"role\": \"assistant\", \"content\": \"b\"}],"
                        + " \"rejected\": [{\"role\": \"assistant\", \"content\": \"c\"}], \"tools\": \"not json\"}");
        assertThatThrownBy(() -> load(f))
                .isInstanceOf(DataException.class)
                .hasMessageContaining("fields.jsonl:2")
                .hasMessageContaining("field 'tools'");
        PreferenceExample e =
                PreferenceData.load(f, DataFormat.AUTO, true).examples().get(0);
        Message call = e.promptMessages().get(1);
        assertThat(call.content()).isNull();
        assertThat(call.toTemplate())
                .containsEntry(
                        "tool_calls",
                        List.of(Map.of(
                                "type", "function", "function", Map.of("name", "w", "arguments", Map.of("c", 1L)))));
        assertThat(e.promptMessages().get(2).fields()).containsEntry("tool_call_id", "a1");
        assertThat(e.chosenMessages().get(0).toTemplate()).containsEntry("reasoning_content", "read it");
        assertThat(e.templateArgs())
                .containsEntry("tools", List.of(Map.of("type", "function")))
                .containsEntry("enable_thinking", false);
    }

    @Test
    void hhDialoguesSplitAtTheLastSharedAssistantTurn() throws IOException {
        String shared =
                "\\n\\nHuman: Hi there\\n\\nAssistant: Hello! How can I help?\\n\\nHuman: What is 2+2?\\n\\nAssistant:";
        Path f = write(
                "hh.jsonl", "{\"chosen\": \"" + shared + " It is 4.\", \"rejected\": \"" + shared + " It is 5.\"}");
        PreferenceExample e = load(f).get(0);
        assertThat(e.prompt())
                .isEqualTo(
                        "\n\nHuman: Hi there\n\nAssistant: Hello! How can I help?\n\nHuman: What is 2+2?\n\nAssistant:");
        assertThat(e.chosen()).isEqualTo(" It is 4.");
        assertThat(e.rejected()).isEqualTo(" It is 5.");
    }

    @Test
    void hhResponsesThatShareTheirFirstWordsStillSplitAtTheTurn() throws IOException {
        String shared = "\\n\\nHuman: Name a fruit.\\n\\nAssistant:";
        Path f = write(
                "hh2.jsonl", "{\"chosen\": \"" + shared + " An apple.\", \"rejected\": \"" + shared + " An onion.\"}");
        PreferenceExample e = load(f).get(0);
        assertThat(e.chosen()).isEqualTo(" An apple.");
        assertThat(e.rejected()).isEqualTo(" An onion.");
    }

    @Test
    void implicitConversationsAndScoresAsInUltraFeedback() throws IOException {
        Path f = write(
                "uf.jsonl",
                "{\"prompt\": \"2+2?\", \"chosen\": [{\"role\": \"user\", \"content\": \"2+2?\"}, {\"role\": \"assistant\", \"content\": \"4\"}],"
                        + " \"rejected\": [{\"role\": \"user\", \"content\": \"2+2?\"}, {\"role\": \"assistant\", \"content\": \"5\"}],"
                        + " \"score_chosen\": 8.0, \"score_rejected\": 6.0}");
        PreferenceExample e = load(f).get(0);
        assertThat(e.promptMessages()).containsExactly(new Message("user", "2+2?"));
        assertThat(e.chosenMessages()).containsExactly(new Message("assistant", "4"));
        assertThat(e.preference()).isCloseTo(1 / (1 + Math.exp(-2.0)), Offset.offset(1e-12));
    }

    @Test
    void preferenceProbabilityFields() throws IOException {
        Path f = write(
                "p.jsonl",
                "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\", \"preference\": 0.7}",
                "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\", \"p\": 1}");
        assertThat(load(f)).extracting(PreferenceExample::preference).containsExactly(0.7, 1.0);
    }

    @Test
    void gzipJsonlJsonArrayAndAFolderOfShards() throws IOException {
        Path dir = tmp.resolve("shards");
        Files.createDirectories(dir);
        try (OutputStream out = new GZIPOutputStream(Files.newOutputStream(dir.resolve("a-000.jsonl.gz")))) {
            out.write("{\"prompt\": \"p1\", \"chosen\": \"c1\", \"rejected\": \"r1\"}\n"
                    .getBytes(StandardCharsets.UTF_8));
        }
        Files.writeString(
                dir.resolve("b-001.json"),
                "[{\"prompt\": \"p2\", \"chosen\": \"c2\", \"rejected\": \"r2\"},"
                        + " {\"prompt\": \"p3\", \"chosen\": \"c3\", \"rejected\": \"r3\"}]");
        Files.writeString(dir.resolve("README.md"), "not data");
        List<PreferenceExample> ex = load(dir);
        assertThat(ex).extracting(PreferenceExample::prompt).containsExactly("p1", "p2", "p3");
        assertThat(ex.get(2).line()).isEqualTo(2);
        assertThat(ex.get(0).file().getFileName().toString()).isEqualTo("a-000.jsonl.gz");
    }

    @Test
    void parquetWrittenByTheTestReadsBackFlatAndNested() throws IOException {
        MessageType flat = MessageTypeParser.parseMessageType("message pair { required binary prompt (STRING);"
                + " required binary chosen (STRING); required binary rejected (STRING); optional double preference; }");
        Path f = tmp.resolve("flat.parquet");
        try (ParquetWriter<Group> w = ExampleParquetWriter.builder(new LocalOutputFile(f))
                .withType(flat)
                .withCompressionCodec(CompressionCodecName.SNAPPY)
                .build()) {
            SimpleGroupFactory g = new SimpleGroupFactory(flat);
            w.write(g.newGroup()
                    .append("prompt", "2+2=")
                    .append("chosen", " 4")
                    .append("rejected", " 5")
                    .append("preference", 0.9));
            w.write(g.newGroup().append("prompt", "3+3=").append("chosen", " 6").append("rejected", " 7"));
        }
        List<PreferenceExample> ex = load(f);
        assertThat(ex).extracting(PreferenceExample::prompt).containsExactly("2+2=", "3+3=");
        assertThat(ex).extracting(PreferenceExample::preference).containsExactly(0.9, null);
        assertThat(ex.get(1).line()).isEqualTo(2);

        MessageType nested = MessageTypeParser.parseMessageType(
                "message conv {"
                        + " required group prompt (LIST) { repeated group list { required group element { required binary role (STRING); required binary content (STRING); } } }"
                        + " required group chosen (LIST) { repeated group list { required group element { required binary role (STRING); required binary content (STRING); } } }"
                        + " required group rejected (LIST) { repeated group list { required group element { required binary role (STRING); required binary content (STRING); } } } }");
        Path n = tmp.resolve("conv.parquet");
        try (ParquetWriter<Group> w = ExampleParquetWriter.builder(new LocalOutputFile(n))
                .withType(nested)
                .withCompressionCodec(CompressionCodecName.ZSTD)
                .build()) {
            Group row = new SimpleGroupFactory(nested).newGroup();
            row.addGroup("prompt")
                    .addGroup("list")
                    .addGroup("element")
                    .append("role", "user")
                    .append("content", "2+2?");
            row.addGroup("chosen")
                    .addGroup("list")
                    .addGroup("element")
                    .append("role", "assistant")
                    .append("content", "4");
            row.addGroup("rejected")
                    .addGroup("list")
                    .addGroup("element")
                    .append("role", "assistant")
                    .append("content", "5");
            w.write(row);
        }
        PreferenceExample c = load(n).get(0);
        assertThat(c.promptMessages()).containsExactly(new Message("user", "2+2?"));
        assertThat(c.rejectedMessages()).containsExactly(new Message("assistant", "5"));
    }

    @Test
    void corruptLineIsReportedWithFileAndLine() throws IOException {
        Path f = write(
                "bad.jsonl",
                "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\"}",
                "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": ",
                "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"d\"}");
        assertThatThrownBy(() -> load(f))
                .isInstanceOf(DataException.class)
                .hasMessageContaining("bad.jsonl:2")
                .hasMessageContaining("not valid JSON");
        PreferenceData.Loaded skipped = PreferenceData.load(f, DataFormat.AUTO, true);
        assertThat(skipped.examples()).hasSize(2);
        assertThat(skipped.invalid()).hasSize(1);
        assertThat(skipped.invalid().get(0).line()).isEqualTo(2);
    }

    @Test
    void badRecordsNameTheirField() throws IOException {
        assertBad("{\"prompt\": \"a\", \"chosen\": \"b\"}", "rejected", "missing");
        assertBad("{\"prompt\": \"\", \"chosen\": \"b\", \"rejected\": \"c\"}", "prompt", "empty");
        assertBad("{\"prompt\": 3, \"chosen\": \"b\", \"rejected\": \"c\"}", "prompt", "expected a string");
        assertBad("{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"b\"}", "rejected", "identical to chosen");
        assertBad("{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\", \"p\": 1.5}", "p", "[0, 1]");
        assertBad(
                "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\", \"score_chosen\": 1}",
                "score_rejected",
                "missing");
        assertBad(
                "{\"prompt\": [{\"role\": \"user\", \"content\": \"a\"}], \"chosen\": [{\"role\": \"user\", \"content\": \"b\"}],"
                        + " \"rejected\": [{\"role\": \"assistant\", \"content\": \"c\"}]}",
                "chosen[0].role",
                "assistant");
        assertBad(
                "{\"prompt\": [{\"content\": \"a\"}], \"chosen\": [{\"role\": \"assistant\", \"content\": \"b\"}],"
                        + " \"rejected\": [{\"role\": \"assistant\", \"content\": \"c\"}]}",
                "prompt[0].role",
                "missing");
        assertBad("[1, 2]", null, "expected a JSON object");
        assertBad("{\"chosen\": \"no marker\", \"rejected\": \"no marker here\"}", "chosen", "no shared prompt");
    }

    void assertBad(String line, String field, String message) throws IOException {
        Path f = write(
                "bad-" + Math.abs(line.hashCode()) + ".jsonl",
                "{\"prompt\": \"ok\", \"chosen\": \"x\", \"rejected\": \"y\"}",
                line);
        var thrown = assertThatThrownBy(() -> load(f))
                .isInstanceOf(DataException.class)
                .hasMessageContaining(":2")
                .hasMessageContaining(message);
        if (field != null) {
            thrown.hasMessageContaining("field '" + field + "'");
        }
    }

    @Test
    void missingPathIsNamed() {
        assertThatThrownBy(() -> load(tmp.resolve("nope.jsonl")))
                .isInstanceOf(DataException.class)
                .hasMessageContaining("nope.jsonl");
    }

    @Test
    void jsonFileThatIsNotAnArrayIsExplained() throws IOException {
        Path f = write("obj.json", "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\"}");
        assertThatThrownBy(() -> load(f)).hasMessageContaining("one JSON array");
    }
}
