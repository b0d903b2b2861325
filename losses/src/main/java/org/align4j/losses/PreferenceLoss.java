package org.align4j.losses;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.training.loss.Loss;

/**
 * The common shape of every preference objective: from policy and reference log-probs of the chosen
 * and rejected responses (and optionally a per-pair preference probability p = P(chosen ≻
 * rejected)), a per-pair loss and the implicit rewards β(π − r).
 *
 * <p>As a DJL {@link Loss}: {@code evaluate(labels, predictions)} with predictions {@code [policyChosen,
 * policyRejected, referenceChosen, referenceRejected]} and labels {@code []} or {@code [p]} returns the
 * mean loss over the batch, so an objective plugs into DJL's own {@code Trainer}. The trainer calls
 * {@link #compute} directly.
 */
public abstract class PreferenceLoss extends Loss {
    /** Which per-sequence log-probs an objective reads. */
    public enum Reduction {
        /** Σ of token log-probs (DPO and its relatives). */
        SUM,
        /** Σ divided by the number of completion tokens (IPO as its authors and TRL use it; SimPO). */
        MEAN
    }

    /**
     * What an objective returns for a batch of B pairs.
     *
     * @param loss [B] per-pair loss
     * @param chosenRewards [B] β(π_c − r_c) (SimPO: β·π_c)
     * @param rejectedRewards [B] β(π_r − r_r) (SimPO: β·π_r)
     */
    public record Output(NDArray loss, NDArray chosenRewards, NDArray rejectedRewards) {
        /** @return the mean loss over the batch (what is back-propagated) */
        public NDArray meanLoss() {
            return loss.mean();
        }
    }

    /** The inverse temperature β. */
    protected final double beta;

    /**
     * @param name the DJL loss name
     * @param beta β &gt; 0
     */
    protected PreferenceLoss(String name, double beta) {
        super(name);
        if (!(beta > 0) || Double.isInfinite(beta)) {
            throw new IllegalArgumentException("beta: must be a finite number > 0, got " + beta);
        }
        this.beta = beta;
    }

    /** @return β */
    public double beta() {
        return beta;
    }

    /** @return which log-probs (summed or length-averaged) this objective expects */
    public abstract Reduction reduction();

    /** @return whether the objective reads the reference log-probs (false for SimPO) */
    public boolean usesReference() {
        return true;
    }

    /**
     * The per-pair loss as a function of the margin and the preference probability: the hook of the
     * objectives built on the chosen − rejected difference (DPO and most of its relatives).
     * Objectives that read the two log-ratios apart override {@link #pairLoss(NDArray, NDArray,
     * NDArray)} instead, and those that read the four log-probs apart {@link #pairLoss(NDArray,
     * NDArray, NDArray, NDArray, NDArray)}.
     *
     * @param margin [B] Δ = (π_c − r_c) − (π_r − r_r)
     * @param preference [B] p per pair, or null when the data has none
     * @return [B] loss
     */
    protected NDArray pairLoss(NDArray margin, NDArray preference) {
        throw new UnsupportedOperationException(getName() + " reads the chosen and rejected log-ratios apart");
    }

    /**
     * The per-pair loss from the chosen and rejected log-ratios; by default a function of their difference.
     *
     * @param chosenRatio [B] π_c − r_c
     * @param rejectedRatio [B] π_r − r_r
     * @param preference [B] p per pair, or null
     * @return [B] loss
     */
    protected NDArray pairLoss(NDArray chosenRatio, NDArray rejectedRatio, NDArray preference) {
        return pairLoss(chosenRatio.sub(rejectedRatio), preference);
    }

    /**
     * The per-pair loss from the four log-probs (reference ones null without a reference); by default
     * a function of the two log-ratios.
     *
     * @param policyChosen [B] π_c
     * @param policyRejected [B] π_r
     * @param referenceChosen [B] r_c, or null when {@link #usesReference()} is false
     * @param referenceRejected [B] r_r, or null
     * @param preference [B] p per pair, or null
     * @return [B] loss
     */
    protected NDArray pairLoss(
            NDArray policyChosen,
            NDArray policyRejected,
            NDArray referenceChosen,
            NDArray referenceRejected,
            NDArray preference) {
        return usesReference()
                ? pairLoss(policyChosen.sub(referenceChosen), policyRejected.sub(referenceRejected), preference)
                : pairLoss(policyChosen, policyRejected, preference);
    }

    /**
     * Computes the objective.
     *
     * @param policyChosen [B] policy log-probs of the chosen responses (of {@link #reduction()})
     * @param policyRejected [B] policy log-probs of the rejected responses
     * @param referenceChosen [B] reference log-probs of the chosen responses (ignored when {@link
     *     #usesReference()} is false; may then be null)
     * @param referenceRejected [B] reference log-probs of the rejected responses
     * @param preference [B] preference probabilities in [0, 1], or null
     * @return per-pair loss and rewards
     * @throws IllegalArgumentException naming the input whose shape or values are wrong
     */
    public Output compute(
            NDArray policyChosen,
            NDArray policyRejected,
            NDArray referenceChosen,
            NDArray referenceRejected,
            NDArray preference) {
        checkInputs(policyChosen, policyRejected, referenceChosen, referenceRejected, preference);
        NDArray loss = pairLoss(policyChosen, policyRejected, referenceChosen, referenceRejected, preference);
        NDArray chosenRatio = usesReference() ? policyChosen.sub(referenceChosen) : policyChosen;
        NDArray rejectedRatio = usesReference() ? policyRejected.sub(referenceRejected) : policyRejected;
        return new Output(
                loss,
                chosenRatio.stopGradient().mul(beta),
                rejectedRatio.stopGradient().mul(beta));
    }

    /** Checks {@link #compute}'s inputs, naming the one at fault. */
    void checkInputs(
            NDArray policyChosen,
            NDArray policyRejected,
            NDArray referenceChosen,
            NDArray referenceRejected,
            NDArray preference) {
        Shape shape = policyChosen.getShape();
        if (shape.dimension() != 1) {
            throw new IllegalArgumentException("policyChosen: expected shape [B], got " + shape);
        }
        checkShape("policyRejected", policyRejected, shape);
        if (usesReference()) {
            checkShape("referenceChosen", referenceChosen, shape);
            checkShape("referenceRejected", referenceRejected, shape);
        }
        if (preference != null) {
            checkShape("preference", preference, shape);
            if (preference.lt(0).any().getBoolean()
                    || preference.gt(1).any().getBoolean()
                    || preference.isNaN().any().getBoolean()) {
                throw new IllegalArgumentException("preference: every p must lie in [0, 1]");
            }
        }
    }

    static void checkShape(String name, NDArray a, Shape expected) {
        if (a == null) {
            throw new IllegalArgumentException(name + ": missing");
        }
        if (!a.getShape().equals(expected)) {
            throw new IllegalArgumentException(
                    name + ": shape " + a.getShape() + " disagrees with policyChosen " + expected);
        }
    }

    /**
     * x·s for an x that records gradients. DJL 0.36's {@code mul(Number)} frees the scalar tensor that
     * PyTorch keeps for the backward pass, so gradients come out wrong after a garbage collection;
     * here the scalar lives in x's manager until it is closed, after the backward pass.
     *
     * @param x an array
     * @param s a constant
     * @return x·s
     */
    public static NDArray times(NDArray x, double s) {
        return x.mul(x.getManager().create(s).toType(x.getDataType(), false));
    }

    /** −log σ(x), computed as softplus(−x) so it never overflows. */
    protected static NDArray negLogSigmoid(NDArray x) {
        return Activation.softPlus(x.neg());
    }

    /** σ(x). */
    protected static NDArray sigmoid(NDArray x) {
        return Activation.sigmoid(x);
    }

    @Override
    public NDArray evaluate(NDList labels, NDList predictions) {
        if (predictions.size() != 4 && !(predictions.size() == 2 && !usesReference())) {
            throw new IllegalArgumentException(
                    "predictions: expected [policyChosen, policyRejected, referenceChosen, referenceRejected], got "
                            + predictions.size() + " arrays");
        }
        NDArray p = labels == null || labels.isEmpty() ? null : labels.get(0);
        NDArray rc = predictions.size() > 2 ? predictions.get(2) : null;
        NDArray rr = predictions.size() > 3 ? predictions.get(3) : null;
        return compute(predictions.get(0), predictions.get(1), rc, rr, p).meanLoss();
    }
}
