package org.align4j.losses;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.loss.Loss;
import java.util.Locale;

/**
 * Contrastive Preference Optimization (Xu et al., 2024, "Contrastive Preference Optimization: Pushing the
 * Boundaries of LLM Performance in Machine Translation", eq. 3 and §2.3): DPO's loss with the reference
 * model dropped, plus a behaviour-cloning term, as TRL 1.13's experimental {@code CPOTrainer} computes it:
 *
 * <pre>  L = mean over pairs of ℓ(m) + α_BC · NLL(chosen)</pre>
 *
 * where m is the policy's margin r_c − r_r between the rewards of the chosen and rejected completions and
 * NLL the mean negative log-likelihood of the chosen completions' tokens ({@code cpo_alpha} = α_BC; 0
 * drops it). ℓ is TRL's {@code loss_type}:
 *
 * <ul>
 *   <li>{@code sigmoid}: −(1 − ε)·log σ(βm) − ε·log σ(−βm) on summed log-probs (CPO; ε is {@code
 *       label_smoothing});
 *   <li>{@code hinge}: relu(1 − βm) on summed log-probs (SLiC's; Zhao et al., 2023);
 *   <li>{@code ipo}: (m − 1/(2β))² on mean log-probs (Azar et al., 2023);
 *   <li>{@code simpo}: the sigmoid loss of m − γ/β on mean log-probs: SimPO (Meng et al., 2024, eq. 6)
 *       when α_BC = 0, CPO-SimPO otherwise.
 * </ul>
 *
 * The rewards are the log-probs (summed, or mean for ipo and simpo), or, with AlphaPO's α ≠ 0 (Gupta et
 * al., 2025, "AlphaPO: Reward Shape Matters for LLM Alignment", eq. 6), r = (1 − p^{−α})/α with p =
 * exp(log-prob), for every loss type; TRL's {@code loss_type: alphapo} is simpo with α_BC = 0. The rewards
 * TRL logs are β·r, detached.
 *
 * <p>As a DJL {@link Loss}: {@code evaluate(labels, predictions)} with predictions {@code [chosen,
 * rejected, nll]} (or {@code [chosen, rejected]} when α_BC = 0) returns the loss.
 */
public final class CpoLoss extends Loss {
    /** TRL 1.13's {@code CPOConfig.loss_type} ({@code alphapo} is {@link #SIMPO} with α_BC = 0). */
    public enum Type {
        /** Label-smoothed sigmoid (CPO, DPO's form). */
        SIGMOID,
        /** SLiC's hinge. */
        HINGE,
        /** IPO's squared loss on mean log-probs. */
        IPO,
        /** SimPO's margin γ on mean log-probs. */
        SIMPO;

        /** @return TRL's spelling */
        @Override
        public String toString() {
            return name().toLowerCase(Locale.ROOT);
        }

        /** @return which log-probs the loss type reads: mean for ipo and simpo, summed for the others */
        public PreferenceLoss.Reduction reduction() {
            return this == IPO || this == SIMPO ? PreferenceLoss.Reduction.MEAN : PreferenceLoss.Reduction.SUM;
        }
    }

    /**
     * What the objective returns for a batch of B pairs.
     *
     * @param loss the batch's loss, a scalar
     * @param losses [B] ℓ per pair
     * @param chosenRewards [B] β·r_c, detached
     * @param rejectedRewards [B] β·r_r, detached
     */
    public record Output(NDArray loss, NDArray losses, NDArray chosenRewards, NDArray rejectedRewards) {}

    private final Type type;
    private final double beta;
    private final double labelSmoothing;
    private final double simpoGamma;
    private final double cpoAlpha;
    private final double alpha;

    /**
     * @param type the loss type
     * @param beta β &gt; 0
     * @param labelSmoothing ε in [0, 0.5), read by sigmoid and simpo
     * @param simpoGamma γ ≥ 0, read by simpo
     * @param cpoAlpha α_BC ≥ 0, the weight of the chosen completions' NLL
     * @param alpha AlphaPO's α (0: rewards are log-probs)
     * @throws IllegalArgumentException naming the parameter out of range
     */
    public CpoLoss(Type type, double beta, double labelSmoothing, double simpoGamma, double cpoAlpha, double alpha) {
        super("cpo-" + type);
        if (!(beta > 0) || Double.isInfinite(beta)) {
            throw new IllegalArgumentException("beta: must be a finite number > 0, got " + beta);
        }
        if (!(labelSmoothing >= 0 && labelSmoothing < 0.5)) {
            throw new IllegalArgumentException("label_smoothing: must lie in [0, 0.5), got " + labelSmoothing);
        }
        if (!(simpoGamma >= 0) || Double.isInfinite(simpoGamma)) {
            throw new IllegalArgumentException("simpo_gamma: must be a finite number >= 0, got " + simpoGamma);
        }
        if (!(cpoAlpha >= 0) || Double.isInfinite(cpoAlpha)) {
            throw new IllegalArgumentException("cpo_alpha: must be a finite number >= 0, got " + cpoAlpha);
        }
        if (!Double.isFinite(alpha)) {
            throw new IllegalArgumentException("alpha: must be a finite number, got " + alpha);
        }
        this.type = type;
        this.beta = beta;
        this.labelSmoothing = labelSmoothing;
        this.simpoGamma = simpoGamma;
        this.cpoAlpha = cpoAlpha;
        this.alpha = alpha;
    }

    /** @return the loss type */
    public Type type() {
        return type;
    }

    /** @return α_BC, the weight of the NLL term (0: the NLL is not computed) */
    public double cpoAlpha() {
        return cpoAlpha;
    }

    /** @return which log-probs {@link #compute} expects */
    public PreferenceLoss.Reduction reduction() {
        return type.reduction();
    }

    /** The reward of a log-prob: itself, or AlphaPO's (1 − exp(−α·logp))/α. */
    private NDArray reward(NDArray logp) {
        if (alpha == 0) {
            return logp;
        }
        return PreferenceLoss.times(
                PreferenceLoss.times(logp, -alpha).exp().neg().add(1), 1 / alpha);
    }

    /**
     * Computes the objective.
     *
     * @param chosen [B] the chosen completions' log-probs ({@link #reduction()})
     * @param rejected [B] the rejected completions'
     * @param nll the chosen completions' mean negative log-likelihood per token (a scalar), or null when α_BC
     *     is 0
     * @return loss and rewards
     * @throws IllegalArgumentException naming the input whose shape is wrong, or the NLL missing
     */
    public Output compute(NDArray chosen, NDArray rejected, NDArray nll) {
        Shape shape = chosen.getShape();
        if (shape.dimension() != 1) {
            throw new IllegalArgumentException("chosen: expected shape [B], got " + shape);
        }
        PreferenceLoss.checkShape("rejected", rejected, shape);
        if (cpoAlpha != 0 && (nll == null || nll.getShape().size() != 1)) {
            throw new IllegalArgumentException("nll: cpo_alpha " + cpoAlpha + " needs the chosen completions' NLL");
        }
        NDArray rc = reward(chosen);
        NDArray rr = reward(rejected);
        NDArray margin = rc.sub(rr);
        NDArray losses = switch (type) {
            case SIGMOID -> smoothedSigmoid(PreferenceLoss.times(margin, beta));
            case SIMPO -> smoothedSigmoid(PreferenceLoss.times(margin, beta).sub(simpoGamma));
            case HINGE -> PreferenceLoss.times(margin, -beta).add(1).maximum(0f);
            case IPO -> margin.sub(1 / (2 * beta)).square();
        };
        NDArray loss = losses.mean();
        if (cpoAlpha != 0) {
            loss = loss.add(PreferenceLoss.times(nll.reshape(new Shape()), cpoAlpha));
        }
        return new Output(
                loss,
                losses,
                PreferenceLoss.times(rc.stopGradient(), beta),
                PreferenceLoss.times(rr.stopGradient(), beta));
    }

    private NDArray smoothedSigmoid(NDArray h) {
        NDArray towardsChosen = PreferenceLoss.negLogSigmoid(h);
        if (labelSmoothing == 0) {
            return towardsChosen;
        }
        return PreferenceLoss.times(towardsChosen, 1 - labelSmoothing)
                .add(PreferenceLoss.times(PreferenceLoss.negLogSigmoid(h.neg()), labelSmoothing));
    }

    @Override
    public NDArray evaluate(NDList labels, NDList predictions) {
        if (predictions.size() != 2 && predictions.size() != 3) {
            throw new IllegalArgumentException(
                    "predictions: expected [chosen, rejected, nll], got " + predictions.size() + " arrays");
        }
        return compute(predictions.get(0), predictions.get(1), predictions.size() == 3 ? predictions.get(2) : null)
                .loss();
    }
}
