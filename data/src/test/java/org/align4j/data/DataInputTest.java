package org.align4j.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.align4j.model.Fixtures;
import org.align4j.model.tokenizer.TextTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Data is never silently changed: bytes that are not UTF-8 are refused by line, a BOM is read as HF datasets reads it, a broken Parquet file is named. */
class DataInputTest {
    @TempDir
    Path tmp;

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void invalidUtf8InAJsonlLineIsRefusedByLineNotReplaced() throws Exception {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        b.write(utf8("{\"prompt\": \"caf\u00e9?\", \"chosen\": \" yes\", \"rejected\": \" no\"}\n"));
        b.write(utf8("{\"prompt\": \"caf"));
        b.write(new byte[] {(byte) 0xE9}); // Latin-1 é: not UTF-8
        b.write(utf8("?\", \"chosen\": \" yes\", \"rejected\": \" no\"}\n"));
        Path f = tmp.resolve("latin1.jsonl");
        Files.write(f, b.toByteArray());
        assertThatThrownBy(() -> PreferenceData.load(f, DataFormat.AUTO, false))
                .isInstanceOf(DataException.class)
                .hasMessageContaining("latin1.jsonl:2")
                .hasMessageContaining("not valid UTF-8");
        PreferenceData.Loaded skipped = PreferenceData.load(f, DataFormat.AUTO, true);
        assertThat(skipped.examples()).hasSize(1);
        assertThat(skipped.examples().get(0).prompt()).isEqualTo("caf\u00e9?");
        assertThat(skipped.invalid()).hasSize(1);
        // the same bytes in a .json array are refused too
        Path json = tmp.resolve("latin1.json");
        Files.write(
                json,
                ("["
                                + new String(b.toByteArray(), StandardCharsets.ISO_8859_1)
                                        .strip()
                                        .replace("\n", ",") + "]")
                        .getBytes(StandardCharsets.ISO_8859_1));
        assertThatThrownBy(() -> PreferenceData.load(json, DataFormat.AUTO, false))
                .isInstanceOf(DataException.class)
                .hasMessageContaining("latin1.json");
    }

    @Test
    void aUtf8ByteOrderMarkIsSkippedAsHfDatasetsDoes() throws Exception {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        b.write(new byte[] {(byte) 0xEF, (byte) 0xBB, (byte) 0xBF});
        b.write(
                utf8(
                        "{\"prompt\": \"2+2=\", \"chosen\": \" 4\", \"rejected\": \" 5\"}\r\n{\"prompt\": \"3+3=\", \"chosen\": \" 6\", \"rejected\": \" 7\"}"));
        Path f = tmp.resolve("bom.jsonl");
        Files.write(f, b.toByteArray());
        var ex = PreferenceData.load(f, DataFormat.AUTO, false).examples();
        assertThat(ex).hasSize(2);
        assertThat(ex.get(0).prompt()).isEqualTo("2+2=");
        assertThat(ex.get(1).rejected()).isEqualTo(" 7");
        assertThat(ex.get(1).line()).isEqualTo(2);
    }

    @Test
    void aTruncatedOrDamagedParquetFileIsNamed() throws Exception {
        Path good = Path.of("src/test/resources").resolve("nothing");
        byte[] parquetMagic = utf8("PAR1");
        Path tiny = tmp.resolve("tiny.parquet");
        Files.write(tiny, parquetMagic);
        assertThatThrownBy(() -> PreferenceData.load(tiny, DataFormat.AUTO, false))
                .isInstanceOf(DataException.class)
                .hasMessageContaining("tiny.parquet")
                .hasMessageContaining("not a readable Parquet file");
        Path junk = tmp.resolve("junk.parquet");
        byte[] bytes = new byte[4096];
        Arrays.fill(bytes, (byte) 7);
        System.arraycopy(parquetMagic, 0, bytes, 0, 4);
        System.arraycopy(parquetMagic, 0, bytes, bytes.length - 4, 4);
        Files.write(junk, bytes);
        assertThatThrownBy(() -> PreferenceData.load(junk, DataFormat.AUTO, false))
                .isInstanceOf(DataException.class)
                .hasMessageContaining("junk.parquet")
                .hasMessageContaining("not a readable Parquet file");
        assertThat(good).isNotNull();
    }

    @Test
    void aPlainCompletionEndingInEosGetsNoSecondOne() throws Exception {
        try (TextTokenizer tk = TextTokenizer.load(Fixtures.model("gpt2-tiny"))) {
            PreferenceEncoder encoder = new PreferenceEncoder(tk, EncodingOptions.unlimited());
            Path f = tmp.resolve("eos.jsonl");
            Files.writeString(f, "{\"prompt\": \"Hi\", \"chosen\": \" there<|im_end|>\", \"rejected\": \" no\"}\n");
            EncodedPair p = encoder.encode(PreferenceData.load(f, DataFormat.AUTO, false)
                            .examples()
                            .get(0))
                    .orElseThrow();
            assertThat(p.chosen())
                    .isEqualTo(concat(tk.encode(" there"), tk.eosId()))
                    .as("as TRL: eos only when missing");
            assertThat(p.rejected()).isEqualTo(concat(tk.encode(" no"), tk.eosId()));
            assertThat(encoder.texts(PreferenceData.load(f, DataFormat.AUTO, false)
                                    .examples()
                                    .get(0))
                            .chosen())
                    .isEqualTo(" there<|im_end|>");
        }
    }

    @Test
    void anHhAnswerThatIsEmptyAfterTheSharedPromptIsACompletionOfItsEos() throws Exception {
        // HH-RLHF's harmless-base test split has chosen answers that are nothing after "Assistant: "
        String prompt = "\\n\\nHuman: Can you help me hide something?\\n\\nAssistant:";
        Path f = tmp.resolve("hh.jsonl");
        Files.writeString(f, "{\"chosen\": \"" + prompt + " \", \"rejected\": \"" + prompt + " Sure, bury it.\"}\n");
        try (TextTokenizer tk = TextTokenizer.load(Fixtures.model("gpt2-tiny"))) {
            PreferenceExample e =
                    PreferenceData.load(f, DataFormat.AUTO, false).examples().get(0);
            EncodedPair p = new PreferenceEncoder(tk, EncodingOptions.unlimited())
                    .encode(e)
                    .orElseThrow();
            assertThat(p.chosen()[p.chosen().length - 1]).isEqualTo(tk.eosId());
            assertThat(p.chosen().length)
                    .as("TRL's completion: the space after 'Assistant:', then eos")
                    .isLessThanOrEqualTo(2);
            assertThat(p.rejected().length).isGreaterThan(2);
        }
    }

    private static int[] concat(int[] ids, int last) {
        int[] out = Arrays.copyOf(ids, ids.length + 1);
        out[ids.length] = last;
        return out;
    }
}
