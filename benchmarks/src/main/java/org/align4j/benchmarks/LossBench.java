package org.align4j.benchmarks;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.util.concurrent.TimeUnit;
import org.align4j.losses.LossType;
import org.align4j.losses.PreferenceLoss;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * A preference loss on a batch of sequence log-probs, forward and backward: the cost of the loss
 * itself, which is a few dozen small ops whatever the model (so per-op call overhead, not FLOPs).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 2)
@Fork(1)
public class LossBench {
    /** The objective. */
    @Param({"dpo", "ipo", "robust", "simpo"})
    public String loss;

    /** Pairs in the batch. */
    @Param({"64"})
    public int pairs;

    private NDManager manager;
    private PreferenceLoss objective;
    private NDArray policy;
    private NDArray reference;

    /** Makes the inputs. */
    @Setup(Level.Trial)
    public void setUp() {
        manager = NDManager.newBaseManager(Device.cpu());
        objective = LossType.parse(loss).create(0.1, 0.1, 1, 0.5);
        policy = manager.randomNormal(new Shape(2 * pairs)).sub(20);
        reference = manager.randomNormal(new Shape(2 * pairs)).sub(20);
    }

    /** @return the loss */
    @Benchmark
    public float forwardBackward() {
        try (NDManager step = manager.newSubManager()) {
            NDArray p = policy.duplicate();
            p.attach(step);
            p.setRequiresGradient(true);
            float out;
            try (GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
                NDArray value = objective
                        .compute(
                                p.get("0:" + pairs),
                                p.get(pairs + ":"),
                                reference.get("0:" + pairs),
                                reference.get(pairs + ":"),
                                null)
                        .meanLoss();
                gc.backward(value);
                out = value.getFloat();
            }
            return out + p.getGradient().getFloat(0);
        }
    }

    /** Frees everything. */
    @TearDown(Level.Trial)
    public void tearDown() {
        manager.close();
    }
}
