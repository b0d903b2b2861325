package org.align4j.data;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.align4j.model.Fixtures;
import org.align4j.model.tokenizer.TextTokenizer;
import org.junit.jupiter.api.Test;

class EncodingParityTest {
    @Test
    void firstFourPairsReproduceTheFixtureBatchExactly() {
        PreferenceData.Loaded loaded =
                PreferenceData.load(Fixtures.root().resolve("prefs.jsonl"), DataFormat.AUTO, false);
        try (TextTokenizer tk = TextTokenizer.load(Fixtures.model("gpt2-tiny"));
                NDManager m = NDManager.newBaseManager(Device.cpu())) {
            PreferenceEncoder encoder = new PreferenceEncoder(tk, EncodingOptions.unlimited());
            List<EncodedPair> pairs = new ArrayList<>();
            for (PreferenceExample e : loaded.examples().subList(0, 4)) {
                pairs.add(encoder.encode(e).orElseThrow());
            }
            PreferenceBatch batch = PreferenceBatch.of(m, pairs, tk.padId());
            Map<String, NDArray> ref = Fixtures.reference("gpt2-tiny", m);
            assertThat(batch.ids().toLongArray())
                    .containsExactly(ref.get("pref_input_ids").toLongArray());
            assertThat(batch.ids().getShape())
                    .isEqualTo(ref.get("pref_input_ids").getShape());
            assertThat(batch.attentionMask().toLongArray())
                    .containsExactly(ref.get("pref_attention_mask").toLongArray());
            assertThat(batch.completionMask().toLongArray())
                    .containsExactly(ref.get("pref_completion_mask").toLongArray());
            assertThat(batch.preference()).isNull();
            assertThat(batch.pairs()).isEqualTo(4);
            assertThat(batch.tokens())
                    .isEqualTo(ref.get("pref_attention_mask").sum().getLong());
        }
    }
}
