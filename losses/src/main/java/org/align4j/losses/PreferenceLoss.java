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
     * The per-pair loss as a function of the scaled margin and the preference probability.
     *
     * @param margin [B] Δ = (π_c − r_c) − (π_r − r_r)
     * @param preference [B] p per pair, or null when the data has none
     * @return [B] loss
     */
    protected abstract NDArray pairLoss(NDArray margin, NDArray preference);

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
        Shape shape = policyChosen.getShape();
        if (shape.dimension() != 1) {
            throw new IllegalArgumentException("policyChosen: expected shape [B], got " + shape);
        }
        checkShape("policyRejected", policyRejected, shape);
        NDArray chosenRatio = policyChosen;
        NDArray rejectedRatio = policyRejected;
        if (usesReference()) {
            checkShape("referenceChosen", referenceChosen, shape);
            checkShape("referenceRejected", referenceRejected, shape);
            chosenRatio = policyChosen.sub(referenceChosen);
            rejectedRatio = policyRejected.sub(referenceRejected);
        }
        if (preference != null) {
            checkShape("preference", preference, shape);
            if (preference.lt(0).any().getBoolean()
                    || preference.gt(1).any().getBoolean()
                    || preference.isNaN().any().getBoolean()) {
                throw new IllegalArgumentException("preference: every p must lie in [0, 1]");
            }
        }
        NDArray loss = pairLoss(chosenRatio.sub(rejectedRatio), preference);
        return new Output(
                loss,
                chosenRatio.stopGradient().mul(beta),
                rejectedRatio.stopGradient().mul(beta));
    }

    private static void checkShape(String name, NDArray a, Shape expected) {
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
    protected static NDArray times(NDArray x, double s) {
        return x.mul(x.getManager().create(s).toType(x.getDataType(), false));
    }

    /** −log σ(x), computed as softplus(−x) so it never overflows. */
    protected static NDArray negLogSigmoid(NDArray x) {
        return Activation.softPlus(x.neg());
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
