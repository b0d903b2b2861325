package org.align4j.trainer;

import ai.djl.ndarray.NDManager;
import org.align4j.data.PreferenceBatch;
import org.align4j.model.CausalLm;

/** The reference policy as a frozen model, evaluated on every batch. */
public final class FrozenReference implements ReferencePolicy {
    private final CausalLm model;

    /** @param model the reference model (its parameters are frozen here) */
    public FrozenReference(CausalLm model) {
        this.model = model;
        model.setTrainable(false);
    }

    @Override
    public LogProbs logProbs(PreferenceBatch batch, Split split, int[] pairIndices, NDManager scope) {
        var lp = model.completionLogProbs(batch.ids(), batch.attentionMask(), batch.completionMask(), false);
        int b = batch.pairs();
        String chosen = "0:" + b;
        String rejected = b + ":";
        return new LogProbs(
                lp.sum().get(chosen).stopGradient(),
                lp.sum().get(rejected).stopGradient(),
                lp.mean().get(chosen).stopGradient(),
                lp.mean().get(rejected).stopGradient());
    }

    /** @return the frozen model */
    public CausalLm model() {
        return model;
    }

    @Override
    public void close() {
        model.close();
    }
}
