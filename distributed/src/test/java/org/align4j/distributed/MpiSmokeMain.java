package org.align4j.distributed;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.Arrays;
import java.util.List;

/** Run under mpirun by {@link MpiCollectivesTest}: every collective once, with values that sum exactly. */
public final class MpiSmokeMain {
    private MpiSmokeMain() {}

    /** @param args unused */
    public static void main(String[] args) {
        Collectives c = Collectives.fromEnvironment();
        int r = c.rank();
        try (NDManager m = NDManager.newBaseManager()) {
            // two arrays of different shapes, one of them a view of a larger tensor's memory
            NDArray a = m.arange(6f).reshape(2, 3).add(r * 10);
            NDArray b = m.create(new float[] {r + 0.5f});
            for (int i = 0; i < 2; i++) { // the second call reuses the buckets
                c.allReduceSum(List.of(a, b));
            }
            NDArray w = m.create(new float[] {r + 1f, r + 2f});
            c.broadcast(List.of(w));
            NDArray x = m.create(new float[] {r * 3f, r * 4f});
            NDArray y = m.create(new float[] {r * 5f});
            c.broadcast(List.of(x, y), 1); // rank 1's, through a bucket
            NDArray z = m.create(new float[] {r + 7f, r + 8f, r + 9f});
            c.broadcast(List.of(z), 1); // rank 1's, in place
            double[] s = c.allReduceSum(new double[] {r, 1});
            c.barrier();
            System.out.println("rank " + r + " of " + c.worldSize() + ": a " + Arrays.toString(a.toFloatArray())
                    + " b " + Arrays.toString(b.toFloatArray()) + " w " + Arrays.toString(w.toFloatArray()) + " x "
                    + Arrays.toString(x.toFloatArray())
                    + Arrays.toString(y.toFloatArray()) + " z " + Arrays.toString(z.toFloatArray()) + " s "
                    + Arrays.toString(s));
        }
        c.close();
    }
}
