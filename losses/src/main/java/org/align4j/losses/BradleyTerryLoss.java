package org.align4j.losses;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.loss.Loss;
import java.util.List;

/**
 * The reward-model objective: Bradley–Terry pairwise classification of scalar rewards, the first stage
 * of RLHF (Bradley and Terry, 1952, "Rank Analysis of Incomplete Block Designs"; Ouyang et al., 2022,
 * "Training language models to follow instructions with human feedback", eq. 1).
 *
 * <p>For a pair with rewards r_c (chosen) and r_r (rejected), an optional margin m (Llama 2's
 * "margin component": how much better the chosen response is) and a centring coefficient c:
 *
 * <pre>  L = −log σ(r_c − r_r − m) + c·(r_c + r_r)²</pre>
 *
 * averaged over the batch. Under the Bradley–Terry model P(chosen ≻ rejected) = σ(r_c − r_r), so the
 * first term is the negative log-likelihood of the label; the second (Eisenstein et al., 2023,
 * "Helping or Herding? Reward Model Ensembles Mitigate but do not Eliminate Reward Hacking", eq. 2)
 * pulls the rewards towards mean zero, which Bradley–Terry alone leaves free. This is TRL 1.13's
 * {@code RewardTrainer.compute_loss} exactly ({@code center_rewards_coefficient}; a {@code margin}
 * column): its batch mean of (r_c + r_r)² is the mean of the per-pair term, so a batch split into
 * micro-batches weighed by pairs gives the same loss.
 *
 * <p>As a DJL {@link Loss}: {@code evaluate(labels, predictions)} with predictions {@code
 * [chosenRewards, rejectedRewards]} and labels {@code []} or {@code [margin]} returns the mean loss.
 */
public final class BradleyTerryLoss extends Loss {
    /**
     * The metric names of {@link #metrics}, in order: TRL 1.13 RewardTrainer's {@code accuracy} (share of
     * pairs with r_c &gt; r_r strictly; a tie counts 0), {@code margin} (mean r_c − r_r), {@code
     * min_reward}, {@code mean_reward}, {@code max_reward} (over the 2B rewards of the batch), then
     * align4j's {@code rewards/chosen} and {@code rewards/rejected} (mean r_c and mean r_r).
     */
    public static final List<String> METRIC_NAMES = List.of(
            "accuracy", "margin", "min_reward", "mean_reward", "max_reward", "rewards/chosen", "rewards/rejected");

    private final double centerCoefficient;

    /**
     * What the objective returns for a batch of B pairs.
     *
     * @param loss [B] per-pair loss
     * @param chosenRewards [B] r_c, detached
     * @param rejectedRewards [B] r_r, detached
     */
    public record Output(NDArray loss, NDArray chosenRewards, NDArray rejectedRewards) {
        /** @return the mean loss over the batch (what is back-propagated) */
        public NDArray meanLoss() {
            return loss.mean();
        }
    }

    /** Plain Bradley–Terry, without centring. */
    public BradleyTerryLoss() {
        this(0);
    }

    /**
     * @param centerCoefficient c ≥ 0, TRL's {@code center_rewards_coefficient} (0: off; its paper
     *     recommends 0.01)
     * @throws IllegalArgumentException when c is negative or not finite
     */
    public BradleyTerryLoss(double centerCoefficient) {
        super("bradley-terry");
        if (!(centerCoefficient >= 0) || Double.isInfinite(centerCoefficient)) {
            throw new IllegalArgumentException(
                    "centerCoefficient: must be a finite number >= 0, got " + centerCoefficient);
        }
        this.centerCoefficient = centerCoefficient;
    }

    /** @return c, the centring coefficient */
    public double centerCoefficient() {
        return centerCoefficient;
    }

    /**
     * Computes the objective.
     *
     * @param chosenRewards [B] r_c, the reward model's scores of the chosen sequences (logits, unbounded)
     * @param rejectedRewards [B] r_r
     * @param margin [B] m per pair (finite), or null for none
     * @return per-pair loss and the rewards
     * @throws IllegalArgumentException naming the input whose shape or values are wrong
     */
    public Output compute(NDArray chosenRewards, NDArray rejectedRewards, NDArray margin) {
        Shape shape = chosenRewards.getShape();
        if (shape.dimension() != 1) {
            throw new IllegalArgumentException("chosenRewards: expected shape [B], got " + shape);
        }
        if (!rejectedRewards.getShape().equals(shape)) {
            throw new IllegalArgumentException(
                    "rejectedRewards: shape " + rejectedRewards.getShape() + " disagrees with chosenRewards " + shape);
        }
        NDArray difference = chosenRewards.sub(rejectedRewards);
        if (margin != null) {
            if (!margin.getShape().equals(shape)) {
                throw new IllegalArgumentException(
                        "margin: shape " + margin.getShape() + " disagrees with chosenRewards " + shape);
            }
            if (margin.isInfinite().any().getBoolean() || margin.isNaN().any().getBoolean()) {
                throw new IllegalArgumentException("margin: every margin must be a finite number");
            }
            difference = difference.sub(margin.toType(difference.getDataType(), false));
        }
        NDArray loss = PreferenceLoss.negLogSigmoid(difference);
        if (centerCoefficient > 0) {
            loss = loss.add(
                    PreferenceLoss.times(chosenRewards.add(rejectedRewards).square(), centerCoefficient));
        }
        return new Output(loss, chosenRewards.stopGradient(), rejectedRewards.stopGradient());
    }

    /**
     * The metrics of a batch as one device array, nothing read to the host.
     *
     * @param chosenRewards [B] r_c
     * @param rejectedRewards [B] r_r
     * @return [7] float64, in the order of {@link #METRIC_NAMES}, without gradient
     */
    public static NDArray metrics(NDArray chosenRewards, NDArray rejectedRewards) {
        NDArray c = chosenRewards.stopGradient().toType(DataType.FLOAT64, false);
        NDArray r = rejectedRewards.stopGradient().toType(DataType.FLOAT64, false);
        NDArray all = NDArrays.concat(new NDList(c, r));
        return NDArrays.stack(new NDList(
                c.gt(r).toType(DataType.FLOAT64, false).mean(),
                c.sub(r).mean(),
                all.min(),
                all.mean(),
                all.max(),
                c.mean(),
                r.mean()));
    }

    /**
     * The same metrics from per-pair rewards already on the host (held-out evaluation, scoring).
     *
     * @param chosenRewards r_c per pair (at least one)
     * @param rejectedRewards r_r per pair
     * @return the values, in the order of {@link #METRIC_NAMES}
     */
    public static double[] metrics(double[] chosenRewards, double[] rejectedRewards) {
        int n = chosenRewards.length;
        if (n == 0 || rejectedRewards.length != n) {
            throw new IllegalArgumentException("rewards: need as many rejected as chosen rewards, at least one; got "
                    + n + " and " + rejectedRewards.length);
        }
        double accuracy = 0;
        double margin = 0;
        double min = Double.POSITIVE_INFINITY;
        double max = Double.NEGATIVE_INFINITY;
        double chosen = 0;
        double rejected = 0;
        for (int i = 0; i < n; i++) {
            accuracy += chosenRewards[i] > rejectedRewards[i] ? 1 : 0;
            margin += chosenRewards[i] - rejectedRewards[i];
            min = Math.min(min, Math.min(chosenRewards[i], rejectedRewards[i]));
            max = Math.max(max, Math.max(chosenRewards[i], rejectedRewards[i]));
            chosen += chosenRewards[i];
            rejected += rejectedRewards[i];
        }
        return new double[] {accuracy / n, margin / n, min, (chosen + rejected) / (2 * n), max, chosen / n, rejected / n
        };
    }

    @Override
    public NDArray evaluate(NDList labels, NDList predictions) {
        if (predictions.size() != 2) {
            throw new IllegalArgumentException(
                    "predictions: expected [chosenRewards, rejectedRewards], got " + predictions.size() + " arrays");
        }
        NDArray m = labels == null || labels.isEmpty() ? null : labels.get(0);
        return compute(predictions.get(0), predictions.get(1), m).meanLoss();
    }
}
