package org.align4j.evaluation;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.util.ArrayList;
import java.util.List;
import org.align4j.losses.LossType;
import org.align4j.losses.PreferenceLoss;

/**
 * The IPO paper's bandit (Azar et al., 2023, Figure 1): a tabular softmax policy over three actions
 * a, b, c with logits θ (starting at 0, so π = π_ref = uniform), trained on the deterministic
 * preferences {a≻b, b≻c, a≻c} by full-batch gradient descent through the project's own loss classes.
 *
 * <p>What it shows. With a uniform reference the log-ratio margin of a pair is a difference of
 * logits, Δ(y, y') = θ_y − θ_y'. DPO's loss −log σ(βΔ) decreases for ever as the margins grow, so π(a)
 * tends to 1 for every β: the regularisation towards π_ref has no effect on deterministic
 * preferences. IPO's loss (Δ − 1/(2β))² has a minimiser: with x = θ_a − θ_b and y = θ_b − θ_c,
 * minimising (x − τ)² + (y − τ)² + (x + y − τ)² with τ = 1/(2β) gives x = y = 2τ/3 = 1/(3β), so π(a) :
 * π(b) : π(c) = e^{2/(3β)} : e^{1/(3β)} : 1. A larger β keeps the policy closer to the reference.
 *
 * <p>How long it trains. Each run stops at a criterion, not after a number of steps chosen to make a
 * picture: when the gradient's norm falls below {@link #TOLERANCE} (a minimum is reached: IPO's loss is
 * a quadratic in θ, so this happens at any β) or after {@code maxSteps}. DPO's gradient, β·σ(−βΔ),
 * never vanishes at a finite margin, so a DPO run never meets the criterion: it ends at {@code
 * maxSteps} with π(a) still rising, for every β (how far it got depends on β and the step budget).
 */
public final class Bandit {
    /** Index of a, b, c. */
    private static final long[] CHOSEN = {0, 1, 0};

    private static final long[] REJECTED = {1, 2, 2};

    /**
     * One learning curve.
     *
     * @param method the loss name ({@code dpo} or {@code ipo}, or any name {@link LossType#parse} knows)
     * @param beta β
     * @param steps the steps at which π was recorded (0 = the start)
     * @param probabilities π(a), π(b), π(c) at each recorded step
     * @param converged whether the gradient's norm fell below {@link #TOLERANCE} (the run stopped at a minimum)
     * @param gradientNorm the gradient's norm at the last step
     */
    public record Curve(
            String method, double beta, int[] steps, double[][] probabilities, boolean converged, double gradientNorm) {
        /** @return π at the last recorded step */
        public double[] last() {
            return probabilities[probabilities.length - 1];
        }
    }

    /** The step budget: IPO meets the criterion well within it for every β; DPO never does. */
    public static final int DEFAULT_STEPS = 2000;
    /** A run has reached a minimum when the gradient's norm falls below this (float64). */
    public static final double TOLERANCE = 1e-12;
    /** Step size of plain gradient descent on the logits. */
    public static final double DEFAULT_LEARNING_RATE = 0.1;

    private Bandit() {}

    /**
     * IPO's minimiser for a uniform reference.
     *
     * @param beta β
     * @return π(a), π(b), π(c) at the minimum of the IPO loss
     */
    public static double[] ipoClosedForm(double beta) {
        double x = 1 / (3 * beta);
        double z = Math.exp(2 * x) + Math.exp(x) + 1;
        return new double[] {Math.exp(2 * x) / z, Math.exp(x) / z, 1 / z};
    }

    /**
     * Trains one policy until its gradient vanishes ({@link #TOLERANCE}) or for {@code steps} steps.
     *
     * @param method loss name
     * @param beta β
     * @param steps the most gradient steps
     * @param learningRate step size of plain gradient descent on θ
     * @param recordEvery record π every this many steps (and at the end)
     * @return the learning curve
     */
    public static Curve train(String method, double beta, int steps, double learningRate, int recordEvery) {
        if (steps <= 0 || recordEvery <= 0) {
            throw new IllegalArgumentException(
                    "steps and recordEvery: must be > 0, got " + steps + " and " + recordEvery);
        }
        PreferenceLoss loss = LossType.parse(method).create(beta);
        List<Integer> at = new ArrayList<>();
        List<double[]> probs = new ArrayList<>();
        boolean converged = false;
        double gradientNorm = Double.NaN;
        try (NDManager m = NDManager.newBaseManager(Device.cpu(), "PyTorch")) {
            NDArray theta = m.zeros(new Shape(3), DataType.FLOAT64);
            NDArray chosen = m.create(CHOSEN);
            NDArray rejected = m.create(REJECTED);
            NDArray reference = m.create(new double[] {Math.log(1.0 / 3), Math.log(1.0 / 3), Math.log(1.0 / 3)});
            NDArray lr = m.create(learningRate);
            at.add(0);
            probs.add(theta.softmax(0).toDoubleArray());
            for (int step = 1; step <= steps; step++) {
                try (NDManager s = m.newSubManager()) {
                    theta.setRequiresGradient(true);
                    try (GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
                        NDArray logPi = theta.logSoftmax(0);
                        gc.backward(loss.compute(
                                        logPi.get(chosen),
                                        logPi.get(rejected),
                                        reference.get(chosen),
                                        reference.get(rejected),
                                        null)
                                .meanLoss());
                    }
                    gradientNorm = theta.getGradient().norm().getDouble();
                    converged = gradientNorm < TOLERANCE;
                    NDArray next = theta.sub(theta.getGradient().mul(lr));
                    next.attach(m);
                    theta.close();
                    theta = next;
                }
                if (step % recordEvery == 0 || step == steps || converged) {
                    at.add(step);
                    probs.add(theta.softmax(0).toDoubleArray());
                }
                if (converged) {
                    break;
                }
            }
        }
        return new Curve(
                method,
                beta,
                at.stream().mapToInt(Integer::intValue).toArray(),
                probs.toArray(new double[0][]),
                converged,
                gradientNorm);
    }
}
