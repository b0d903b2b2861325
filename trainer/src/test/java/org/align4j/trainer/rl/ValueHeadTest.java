package org.align4j.trainer.rl;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.InputStream;
import org.align4j.model.CausalLm;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;

/** PPO's critic: a sequence classifier's score at every position equals transformers' (src/test/python/value_head_fixture.py). */
class ValueHeadTest {
    @Test
    void valuesAtEveryPositionEqualTransformers() throws Exception {
        JsonNode fx;
        try (InputStream in = ValueHeadTest.class.getResourceAsStream("/trl-rl/value-head-gpt2-tiny.json")) {
            fx = new ObjectMapper().readTree(in);
        }
        int b = fx.get("input_ids").size();
        int t = fx.get("input_ids").get(0).size();
        long[] ids = new long[b * t];
        long[] mask = new long[b * t];
        for (int i = 0; i < b; i++) {
            for (int j = 0; j < t; j++) {
                ids[i * t + j] = fx.get("input_ids").get(i).get(j).asLong();
                mask[i * t + j] = fx.get("attention_mask").get(i).get(j).asLong();
            }
        }
        try (CausalLm rm = CausalLm.load(RlTrlParityTest.resource("reward-gpt2-tiny"), Device.cpu());
                NDManager m = rm.manager().newSubManager()) {
            NDArray v = rm.values(m.create(ids, new Shape(b, t)), m.create(mask, new Shape(b, t)), false, true);
            float[] got = v.toFloatArray();
            for (int i = 0; i < b; i++) {
                for (int j = 0; j < t; j++) {
                    if (mask[i * t + j] == 1) {
                        assertThat((double) got[i * t + j])
                                .as("row %d position %d", i, j)
                                .isCloseTo(fx.get("values").get(i).get(j).asDouble(), Offset.offset(1e-4));
                    }
                }
            }
        }
    }
}
