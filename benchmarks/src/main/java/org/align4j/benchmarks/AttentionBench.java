package org.align4j.benchmarks;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.util.concurrent.TimeUnit;
import org.align4j.model.nn.Compute;
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

/** Causal attention, forward and backward, over B × H × T × D: DJL ops against the SDPA kernel. */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 3)
@Fork(1)
public class AttentionBench {
    /** eager (DJL ops), sdpa (fp32 kernel) or sdpa-bf16. */
    @Param({"eager", "sdpa", "sdpa-bf16"})
    public String impl;

    /** Sequence length. */
    @Param({"256"})
    public int length;

    private NDManager manager;
    private Compute compute;
    private NDArray q;
    private NDArray k;
    private NDArray v;
    private NDArray attention;

    /** Makes the inputs. */
    @Setup(Level.Trial)
    public void setUp() {
        manager = NDManager.newBaseManager(Device.cpu());
        compute = switch (impl) {
            case "eager" -> Compute.EAGER;
            case "sdpa" -> Compute.of(Compute.Attention.SDPA, Compute.Precision.FP32, Device.cpu());
            default -> Compute.of(Compute.Attention.SDPA, Compute.Precision.BF16, Device.cpu());
        };
        Shape s = new Shape(4, 8, length, 64);
        q = manager.randomNormal(s);
        k = manager.randomNormal(s);
        v = manager.randomNormal(s);
        attention = manager.ones(new Shape(4, length), DataType.INT64);
        q.setRequiresGradient(true);
        k.setRequiresGradient(true);
        v.setRequiresGradient(true);
    }

    /** @return the output's sum (so nothing is optimised away) */
    @Benchmark
    public float forwardBackward() {
        try (NDManager step = manager.newSubManager()) {
            NDArray qs = q.duplicate();
            qs.attach(step);
            qs.setRequiresGradient(true);
            float out;
            try (GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
                NDArray mask = compute == Compute.EAGER ? Compute.mask(attention, length, 0) : null;
                NDArray o = compute.attend(qs, k, v, mask, 0.125, true);
                NDArray sum = o.sum();
                gc.backward(sum);
                out = sum.getFloat();
            }
            return out + qs.getGradient().getFloat(0, 0, 0, 0);
        }
    }

    /** Frees the inputs and kernels. */
    @TearDown(Level.Trial)
    public void tearDown() {
        compute.close();
        manager.close();
    }
}
