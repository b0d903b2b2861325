package org.align4j.losses;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.training.loss.Loss;
import java.util.Locale;

/**
 * Kahneman–Tversky Optimization on unpaired feedback (Ethayarajh et al., 2024, "KTO: Model Alignment as
 * Prospect Theoretic Optimization", eq. 7), and the unpaired APO-zero (D'Oosterlinck et al., 2024,
 * "Anchored Preference Optimization and Contrastive Revisions", the unpaired form of eq. 7), as TRL
 * 1.13's {@code KTOTrainer} computes them.
 *
 * <p>Each example is one completion y of a prompt x with a label: desirable (a thumbs up) or undesirable.
 * With its log-ratio q = log π(y|x) − log π_ref(y|x) (summed over the completion's tokens) and the batch's
 * reference point z₀:
 *
 * <pre>
 *   desirable:    λ_D · (1 − σ(β(q − z₀)))
 *   undesirable:  λ_U · (1 − σ(β(z₀ − q)))
 * </pre>
 *
 * and the batch's loss is the mean over its examples (TRL's {@code losses.nanmean()}, desirable and
 * undesirable together). The reference point is the paper's estimate of KL(π ‖ π_ref), made as TRL makes
 * it ({@link #referencePoint}): the mean over the batch of the log-ratios of mismatched pairs (x, y') — each
 * prompt with the completion of the previous example of the same batch — clamped at 0 and without
 * gradient. APO-zero unpaired is the same loss with z₀ = 0 (desirable: 1 − σ(βq), undesirable: σ(βq)):
 * it pushes desirable completions up and undesirable ones down against the reference, with no KL
 * estimate. λ_D and λ_U ({@code desirable_weight}, {@code undesirable_weight}) rebalance unequal numbers
 * of desirable and undesirable examples (the paper's eq. 8 suggests λ_D·n_D / (λ_U·n_U) in [1, 4/3]).
 *
 * <p>The implicit rewards are β·q, detached. As a DJL {@link Loss}: {@code evaluate(labels,
 * predictions)} with predictions {@code [policy, reference]} or {@code [policy, reference, z₀]} and
 * labels {@code [desirable]} returns the mean loss.
 */
public final class KtoLoss extends Loss {
    /** TRL 1.13's {@code KTOConfig.loss_type}. */
    public enum Type {
        /** KTO with the KL reference point. */
        KTO,
        /** APO-zero on unpaired examples: no reference point. */
        APO_ZERO_UNPAIRED;

        /** @return TRL's spelling ({@code apo_zero_unpaired}) */
        @Override
        public String toString() {
            return name().toLowerCase(Locale.ROOT);
        }

        /** @return whether the loss reads the reference point z₀ (and so the mismatched pairs) */
        public boolean usesReferencePoint() {
            return this == KTO;
        }
    }

    /**
     * What the objective returns for a batch of B examples.
     *
     * @param loss [B] each example's weighted loss
     * @param rewards [B] β·q, detached
     */
    public record Output(NDArray loss, NDArray rewards) {
        /** @return the mean loss over the batch (what is back-propagated) */
        public NDArray meanLoss() {
            return loss.mean();
        }
    }

    private final Type type;
    private final double beta;
    private final double desirableWeight;
    private final double undesirableWeight;

    /**
     * @param type kto or apo_zero_unpaired
     * @param beta β &gt; 0
     * @param desirableWeight λ_D &gt; 0
     * @param undesirableWeight λ_U &gt; 0
     * @throws IllegalArgumentException naming the parameter out of range
     */
    public KtoLoss(Type type, double beta, double desirableWeight, double undesirableWeight) {
        super(type.toString());
        if (!(beta > 0) || Double.isInfinite(beta)) {
            throw new IllegalArgumentException("beta: must be a finite number > 0, got " + beta);
        }
        if (!(desirableWeight > 0) || Double.isInfinite(desirableWeight)) {
            throw new IllegalArgumentException("desirable_weight: must be a finite number > 0, got " + desirableWeight);
        }
        if (!(undesirableWeight > 0) || Double.isInfinite(undesirableWeight)) {
            throw new IllegalArgumentException(
                    "undesirable_weight: must be a finite number > 0, got " + undesirableWeight);
        }
        this.type = type;
        this.beta = beta;
        this.desirableWeight = desirableWeight;
        this.undesirableWeight = undesirableWeight;
    }

    /** @return kto or apo_zero_unpaired */
    public Type type() {
        return type;
    }

    /** @return β */
    public double beta() {
        return beta;
    }

    /**
     * The reference point z₀ of a batch, as TRL 1.13's KTOTrainer estimates KL(π ‖ π_ref): the mean over
     * the batch's mismatched pairs of their log-ratio, clamped at 0, without gradient.
     *
     * @param policy [B] Σ log π(y'|x) of each mismatched pair
     * @param reference [B] Σ log π_ref(y'|x)
     * @return a scalar
     */
    public static NDArray referencePoint(NDArray policy, NDArray reference) {
        return policy.stopGradient().sub(reference).mean().maximum(0f);
    }

    /**
     * Computes the objective.
     *
     * @param policy [B] Σ log π(y|x) over each example's completion tokens
     * @param reference [B] Σ log π_ref(y|x)
     * @param desirable [B] the labels: true (or 1) for desirable, false (or 0) for undesirable
     * @param referencePoint z₀ (a scalar from {@link #referencePoint}), or null for apo_zero_unpaired
     * @return per-example loss and rewards
     * @throws IllegalArgumentException naming the input whose shape is wrong, or a reference point missing
     *     for kto
     */
    public Output compute(NDArray policy, NDArray reference, NDArray desirable, NDArray referencePoint) {
        Shape shape = policy.getShape();
        if (shape.dimension() != 1) {
            throw new IllegalArgumentException("policy: expected shape [B], got " + shape);
        }
        PreferenceLoss.checkShape("reference", reference, shape);
        PreferenceLoss.checkShape("desirable", desirable, shape);
        if (type.usesReferencePoint() && referencePoint == null) {
            throw new IllegalArgumentException("referencePoint: kto needs the batch's KL estimate");
        }
        NDArray label = desirable.toType(policy.getDataType(), false);
        NDArray sign = label.mul(2).sub(1); // +1 desirable, −1 undesirable
        NDArray q = policy.sub(reference);
        NDArray shifted = type.usesReferencePoint() ? q.sub(referencePoint.toType(q.getDataType(), false)) : q;
        NDArray h = PreferenceLoss.times(shifted.mul(sign), beta);
        NDArray weight = label.mul(desirableWeight - undesirableWeight).add(undesirableWeight);
        NDArray loss = Activation.sigmoid(h.neg()).mul(weight);
        return new Output(loss, PreferenceLoss.times(q.stopGradient(), beta));
    }

    @Override
    public NDArray evaluate(NDList labels, NDList predictions) {
        if (labels == null || labels.size() != 1) {
            throw new IllegalArgumentException("labels: expected [desirable]");
        }
        if (predictions.size() < 2 || predictions.size() > 3) {
            throw new IllegalArgumentException(
                    "predictions: expected [policy, reference] or [policy, reference, referencePoint], got "
                            + predictions.size() + " arrays");
        }
        NDArray z = predictions.size() == 3 ? predictions.get(2) : null;
        return compute(predictions.get(0), predictions.get(1), labels.get(0), z).meanLoss();
    }
}
