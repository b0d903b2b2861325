package org.align4j.losses;

import ai.djl.ndarray.NDArray;
import java.util.List;
import java.util.stream.Collectors;

/**
 * A weighted sum of preference objectives on the same pairs, with the modifiers TRL 1.13's
 * DPOTrainer applies to every term: TRL's {@code loss_type} as a list with {@code loss_weights}, as in
 * MPO (Wang et al., 2024, "Enhancing the Reasoning Ability of Multimodal Large Language Models via
 * Mixed Preference Optimization": sigmoid 0.8, bco_pair 0.2, sft 1), the f-divergence of f-DPO
 * ({@link FDivergence}) and WPO's per-pair weights (Zhou et al., 2024, "WPO: Enhancing RLHF with
 * Weighted Preference Optimization").
 *
 * <p>L = Σ_k w_k · mean_i(ω_i · L_k,i), where L_k,i is term k on pair i and ω_i the pair's WPO weight (1
 * without). Every term reads summed log-probs; a term on length-averaged log-ratios (ipo,
 * sigmoid-norm) gets each f-divergence score divided by the completion's token count, as TRL divides
 * it. The {@code sft} term is the policy's mean negative log-likelihood of the chosen completions'
 * tokens over the batch, −Σ_i π_c,i / Σ_i n_c,i (TRL's cross-entropy), the same for every pair.
 * Rewards are β(π − π_ref) on the sums, whatever the divergence, as TRL reports them.
 */
public final class CombinedLoss extends PreferenceLoss {
    /**
     * One term of the sum.
     *
     * @param type the objective ({@link LossType#SFT} for the likelihood term)
     * @param loss the objective built (null for {@link LossType#SFT})
     * @param weight w_k
     */
    public record Term(LossType type, PreferenceLoss loss, double weight) {}

    private final List<Term> terms;
    private final FDivergence divergence;
    private final double alpha;

    /**
     * @param beta β of every term
     * @param terms the terms, at least one
     * @param divergence the f-divergence of every term (those without an f-divergence form take only
     *     {@link FDivergence#REVERSE_KL})
     * @param alpha α of {@link FDivergence#ALPHA_DIVERGENCE}
     * @throws IllegalArgumentException naming what cannot be combined
     */
    public CombinedLoss(double beta, List<Term> terms, FDivergence divergence, double alpha) {
        super(terms.stream().map(t -> t.type().toString()).collect(Collectors.joining("+")), beta);
        if (terms.isEmpty()) {
            throw new IllegalArgumentException("loss: at least one objective");
        }
        for (Term t : terms) {
            if (t.type() == LossType.REWARD || !t.type().mixable()) {
                throw new IllegalArgumentException(
                        "loss: " + t.type() + " cannot be a term of a mix (" + LossType.mixableNames() + " can)");
            }
            if ((t.type() == LossType.SFT) != (t.loss() == null)) {
                throw new IllegalArgumentException("loss: the sft term has no PreferenceLoss, the others need one");
            }
            if (divergence != FDivergence.REVERSE_KL && !t.type().hasFDivergenceForm()) {
                throw new IllegalArgumentException("f_divergence_type: " + divergence + " needs objectives built on the"
                        + " chosen - rejected difference; " + t.type() + " is not (" + LossType.fDivergenceNames()
                        + " are)");
            }
            if (!Double.isFinite(t.weight())) {
                throw new IllegalArgumentException("loss_weights: must be finite, got " + t.weight());
            }
        }
        this.terms = List.copyOf(terms);
        this.divergence = divergence;
        this.alpha = alpha;
    }

    /** @return the terms */
    public List<Term> terms() {
        return terms;
    }

    /** @return the f-divergence */
    public FDivergence divergence() {
        return divergence;
    }

    /** @return SUM: every term reads summed log-probs; length-averaged ones are divided here */
    @Override
    public Reduction reduction() {
        return Reduction.SUM;
    }

    /** @return whether a term needs each completion's token count ({@link #compute(NDArray, NDArray, NDArray, NDArray, NDArray, NDArray, NDArray, NDArray)}) */
    public boolean needsTokenCounts() {
        return terms.stream().anyMatch(t -> t.loss() == null || t.loss().reduction() == Reduction.MEAN);
    }

    /**
     * Computes the sum, for terms that need the completions' token counts and with WPO weights.
     *
     * @param policyChosen [B] summed policy log-probs of the chosen completions
     * @param policyRejected [B] of the rejected ones
     * @param referenceChosen [B] summed reference log-probs of the chosen completions
     * @param referenceRejected [B] of the rejected ones
     * @param preference [B] per-pair preference probabilities, or null
     * @param chosenTokens [B] token counts of the chosen completions (null when {@link #needsTokenCounts} is false)
     * @param rejectedTokens [B] of the rejected ones
     * @param pairWeights [B] WPO weights ω_i without gradient, or null for none
     * @return per-pair loss (its mean is L) and rewards
     */
    public Output compute(
            NDArray policyChosen,
            NDArray policyRejected,
            NDArray referenceChosen,
            NDArray referenceRejected,
            NDArray preference,
            NDArray chosenTokens,
            NDArray rejectedTokens,
            NDArray pairWeights) {
        checkInputs(policyChosen, policyRejected, referenceChosen, referenceRejected, preference);
        if (needsTokenCounts()) {
            checkShape("chosenTokens", chosenTokens, policyChosen.getShape());
            checkShape("rejectedTokens", rejectedTokens, policyChosen.getShape());
        }
        if (pairWeights != null) {
            checkShape("pairWeights", pairWeights, policyChosen.getShape());
        }
        NDArray chosenRatio = policyChosen.sub(referenceChosen);
        NDArray rejectedRatio = policyRejected.sub(referenceRejected);
        NDArray total = null;
        for (Term t : terms) {
            NDArray term = term(
                    t,
                    policyChosen,
                    policyRejected,
                    referenceChosen,
                    referenceRejected,
                    chosenRatio,
                    rejectedRatio,
                    preference,
                    chosenTokens,
                    rejectedTokens);
            if (pairWeights != null) {
                term = term.mul(pairWeights);
            }
            term = times(term, t.weight());
            total = total == null ? term : total.add(term);
        }
        return new Output(
                total,
                chosenRatio.stopGradient().mul(beta),
                rejectedRatio.stopGradient().mul(beta));
    }

    private NDArray term(
            Term t,
            NDArray policyChosen,
            NDArray policyRejected,
            NDArray referenceChosen,
            NDArray referenceRejected,
            NDArray chosenRatio,
            NDArray rejectedRatio,
            NDArray preference,
            NDArray chosenTokens,
            NDArray rejectedTokens) {
        if (t.loss() == null) {
            // the batch's mean NLL per chosen token, the same value for every pair (TRL's cross-entropy)
            NDArray nll = policyChosen.sum().neg().div(chosenTokens.sum().maximum(1));
            return policyChosen.onesLike().stopGradient().mul(nll);
        }
        boolean mean = t.loss().reduction() == Reduction.MEAN;
        if (divergence == FDivergence.REVERSE_KL && !mean) {
            return t.loss().pairLoss(policyChosen, policyRejected, referenceChosen, referenceRejected, preference);
        }
        NDArray chosenScore = divergence.score(chosenRatio, alpha);
        NDArray rejectedScore = divergence.score(rejectedRatio, alpha);
        if (mean) {
            chosenScore = chosenScore.div(chosenTokens.maximum(1));
            rejectedScore = rejectedScore.div(rejectedTokens.maximum(1));
        }
        return t.loss().pairLoss(chosenScore, rejectedScore, preference);
    }

    @Override
    protected NDArray pairLoss(
            NDArray policyChosen,
            NDArray policyRejected,
            NDArray referenceChosen,
            NDArray referenceRejected,
            NDArray preference) {
        if (needsTokenCounts()) {
            throw new IllegalArgumentException("chosenTokens: " + getName()
                    + " needs the completions' token counts; call compute(..., chosenTokens, rejectedTokens, weights)");
        }
        return compute(policyChosen, policyRejected, referenceChosen, referenceRejected, preference, null, null, null)
                .loss();
    }
}
