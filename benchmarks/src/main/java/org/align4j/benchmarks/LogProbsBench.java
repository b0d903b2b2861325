package org.align4j.benchmarks;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.util.concurrent.TimeUnit;
import org.align4j.model.LogProbs;
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

/**
 * Sequence log-probs from final hidden states, forward and backward: the LM head over every
 * position then {@link LogProbs#of} ("all"), against the head only at completion positions with DJL
 * ops ("completion") or with the fused token log-prob kernel ("completion-kernel"). 8 rows of 256
 * tokens, the last 192 completion, width 256, vocabulary 16,384.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 3)
@Fork(1)
public class LogProbsBench {
    /** all, completion or completion-kernel. */
    @Param({"all", "completion", "completion-kernel"})
    public String variant;

    private NDManager manager;
    private Compute kernels;
    private NDArray hidden;
    private NDArray head;
    private NDArray ids;
    private NDArray completion;

    /** Makes the inputs. */
    @Setup(Level.Trial)
    public void setUp() {
        manager = NDManager.newBaseManager(Device.cpu());
        kernels = Compute.of(Compute.Attention.SDPA, Compute.Precision.FP32, Device.cpu());
        int rows = 8;
        int t = 256;
        hidden = manager.randomNormal(new Shape(rows, t, 256));
        head = manager.randomNormal(0, 0.02f, new Shape(16384, 256), DataType.FLOAT32);
        head.setRequiresGradient(true);
        ids = manager.randomInteger(0, 16384, new Shape(rows, t), DataType.INT64);
        long[] cm = new long[rows * t];
        for (int r = 0; r < rows; r++) {
            for (int j = t / 4; j < t; j++) {
                cm[r * t + j] = 1;
            }
        }
        completion = manager.create(cm, new Shape(rows, t));
    }

    /** @return the summed log-probs */
    @Benchmark
    public float forwardBackward() {
        try (NDManager step = manager.newSubManager()) {
            NDArray h = hidden.duplicate();
            h.attach(step);
            h.setRequiresGradient(true);
            float out;
            try (GradientCollector gc = Engine.getEngine("PyTorch").newGradientCollector()) {
                LogProbs lp = switch (variant) {
                    case "all" -> LogProbs.of(h.matMul(head.transpose()), ids, completion);
                    case "completion" -> LogProbs.fromHidden(h, x -> x.matMul(head.transpose()), ids, completion);
                    default ->
                        LogProbs.fromHidden(
                                h, x -> x.matMul(head.transpose()), kernels::tokenLogProbs, ids, completion);
                };
                NDArray sum = lp.sum().sum();
                gc.backward(sum);
                out = sum.getFloat();
            }
            return out + h.getGradient().getFloat(0, 0, 0);
        }
    }

    /** Frees everything. */
    @TearDown(Level.Trial)
    public void tearDown() {
        kernels.close();
        manager.close();
    }
}
