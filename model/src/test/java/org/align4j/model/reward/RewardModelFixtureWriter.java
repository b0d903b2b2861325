package org.align4j.model.reward;

import ai.djl.Device;
import java.io.IOException;
import java.nio.file.Path;
import org.align4j.model.CausalLm;
import org.align4j.model.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * Writes the align4j-written reward models of {@code src/test/resources/reward/align4j-written}, which
 * {@code trainer/src/test/python/reward_fixtures.py} then loads with transformers (see REWARD.md).
 * Not a test: it runs only when asked, {@code -Dalign4j.writeRewardFixtures=true}.
 */
class RewardModelFixtureWriter {
    /** The pad id of the fixtures' tokenizer ({@code <|pad|>}), and the seed of the new score heads. */
    static final int PAD = 3;

    static final long SEED = 17;

    /**
     * @param name a fixture causal LM
     * @return the reward model align4j makes from it: its decoder and a new score head
     */
    static CausalLm fromCausalLm(String name) {
        return CausalLm.loadRewardModel(Fixtures.model(name), Device.cpu(), PAD, SEED);
    }

    @Test
    @EnabledIfSystemProperty(named = "align4j.writeRewardFixtures", matches = "true")
    void write() throws IOException {
        for (String name : RewardModels.MODELS) {
            try (CausalLm rm = fromCausalLm(name)) {
                rm.save(Path.of("src/test/resources/reward/align4j-written").resolve(name), Fixtures.model(name));
            }
        }
    }
}
