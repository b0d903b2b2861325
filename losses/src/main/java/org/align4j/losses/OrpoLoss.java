package org.align4j.losses;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.loss.Loss;

/**
 * Odds Ratio Preference Optimization (Hong et al., 2024, "ORPO: Monolithic Preference Optimization
 * without Reference Model", eqs. 4–7): supervised fine-tuning and a preference term in one loss, with no
 * reference model, as TRL 1.13's experimental {@code ORPOTrainer} computes it.
 *
 * <p>With P(y|x) = exp(π̄), π̄ the mean log-prob of a completion's tokens, the odds of a completion are
 * P/(1 − P), and
 *
 * <pre>
 *   log OR = (π̄_c − π̄_r) − (log(1 − exp π̄_c) − log(1 − exp π̄_r))
 *   L = L_SFT − λ · mean over pairs of log σ(log OR)
 * </pre>
 *
 * where L_SFT is the negative log-likelihood of the chosen sequences (TRL's: the mean over every token of
 * the chosen rows, prompt included, that has a token before it) and λ is TRL's {@code beta}. log(1 − P)
 * is computed as TRL's {@code log1mexp}, accurate where π̄ is near 0. The rewards TRL logs are β·π̄, detached; it also logs the mean of log σ(log OR) ({@code
 * log_odds_ratio}) and of log OR ({@code log_odds_chosen}).
 *
 * <p>As a DJL {@link Loss}: {@code evaluate(labels, predictions)} with predictions {@code [chosenMean,
 * rejectedMean, nll]} returns the loss.
 */
public final class OrpoLoss extends Loss {
    /**
     * What the objective returns for a batch of B pairs.
     *
     * @param loss the batch's loss, a scalar (what is back-propagated)
     * @param logSigmoidOdds [B] log σ(log OR) per pair
     * @param logOdds [B] log OR per pair, detached
     * @param chosenRewards [B] β·π̄_c, detached
     * @param rejectedRewards [B] β·π̄_r, detached
     */
    public record Output(
            NDArray loss, NDArray logSigmoidOdds, NDArray logOdds, NDArray chosenRewards, NDArray rejectedRewards) {}

    private final double beta;

    /** @param beta λ &gt; 0, the weight of the odds-ratio term (TRL's {@code beta}) */
    public OrpoLoss(double beta) {
        super("orpo");
        if (!(beta > 0) || Double.isInfinite(beta)) {
            throw new IllegalArgumentException("beta: must be a finite number > 0, got " + beta);
        }
        this.beta = beta;
    }

    /** @return λ */
    public double beta() {
        return beta;
    }

    /**
     * log(1 − exp x) for x ≤ 0, in x's type and differentiable, accurate at both ends as TRL's {@code
     * log1mexp}: below −ln 2, log(1 − exp x) (1 − exp x lies in (½, 1): nothing cancels); above, log(−expm1
     * x) with expm1 x = tanh(x/2)·(1 + exp x), which keeps x's relative accuracy where exp x is near 1.
     *
     * @param x log-probs, ≤ 0
     * @return log(1 − exp x)
     */
    static NDArray log1mexp(NDArray x) {
        NDArray e = x.exp();
        NDArray far = e.neg().add(1).log();
        NDArray near = PreferenceLoss.times(x, 0.5).tanh().neg().mul(e.add(1)).log();
        return NDArrays.where(x.lt(-Math.log(2)), far, near);
    }

    /**
     * Computes the objective.
     *
     * @param chosenMean [B] π̄_c, the mean log-prob of each chosen completion's tokens
     * @param rejectedMean [B] π̄_r
     * @param nll the chosen sequences' negative log-likelihood, a scalar
     * @return loss and metrics
     * @throws IllegalArgumentException naming the input whose shape is wrong
     */
    public Output compute(NDArray chosenMean, NDArray rejectedMean, NDArray nll) {
        Shape shape = chosenMean.getShape();
        if (shape.dimension() != 1) {
            throw new IllegalArgumentException("chosenMean: expected shape [B], got " + shape);
        }
        PreferenceLoss.checkShape("rejectedMean", rejectedMean, shape);
        if (nll == null || nll.getShape().size() != 1) {
            throw new IllegalArgumentException("nll: expected a scalar");
        }
        NDArray logOdds = chosenMean.sub(rejectedMean).sub(log1mexp(chosenMean).sub(log1mexp(rejectedMean)));
        NDArray ratio = PreferenceLoss.negLogSigmoid(logOdds).neg();
        NDArray loss =
                nll.reshape(new Shape()).sub(PreferenceLoss.times(ratio, beta).mean());
        return new Output(
                loss,
                ratio,
                logOdds.stopGradient(),
                PreferenceLoss.times(chosenMean.stopGradient(), beta),
                PreferenceLoss.times(rejectedMean.stopGradient(), beta));
    }

    @Override
    public NDArray evaluate(NDList labels, NDList predictions) {
        if (predictions.size() != 3) {
            throw new IllegalArgumentException(
                    "predictions: expected [chosenMean, rejectedMean, nll], got " + predictions.size() + " arrays");
        }
        return compute(predictions.get(0), predictions.get(1), predictions.get(2))
                .loss();
    }
}
