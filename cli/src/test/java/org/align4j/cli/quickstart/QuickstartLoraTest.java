package org.align4j.cli.quickstart;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The quickstart with LoRA adapters for DPO and IPO, shortened: adapters train, the SFT model stays the reference. */
class QuickstartLoraTest {
    @Test
    void shortQuickstartWithLoraTrainsAdaptersOnTheSftModel(@TempDir Path tmp) throws Exception {
        Map<String, Quickstart.Row> rows = Quickstart.run(new Quickstart.Settings(tmp, 10, 4, 20, 7, 4), null);
        assertThat(rows).containsOnlyKeys("sft", "dpo", "ipo");
        for (String name : new String[] {"dpo", "ipo"}) {
            Path last = tmp.resolve(name).resolve("final");
            assertThat(last.resolve("adapter_config.json")).as(name).exists();
            assertThat(last.resolve("adapter_model.safetensors")).as(name).exists();
            assertThat(last.resolve("model.safetensors"))
                    .as(name + " saves the adapter only")
                    .doesNotExist();
            // the adapters moved the policy away from the SFT model it started from
            assertThat(rows.get(name).klToReference()).as(name).isPositive();
        }
        assertThat(rows.get("sft").klToReference()).isZero();
    }
}
