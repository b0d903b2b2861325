package org.align4j.distributed;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import java.util.List;

/** One process on its own: rank 0 of 1; every operation leaves its arguments as they are. Loads nothing. */
public final class LocalCollectives implements Collectives {
    @Override
    public int rank() {
        return 0;
    }

    @Override
    public int worldSize() {
        return 1;
    }

    @Override
    public void allReduceSum(List<NDArray> arrays) {
        requireFloat32(arrays);
    }

    @Override
    public double[] allReduceSum(double[] values) {
        return values.clone();
    }

    @Override
    public void broadcast(List<NDArray> arrays, int root) {
        if (root != 0) {
            throw new IllegalArgumentException("broadcast from rank " + root + " in a world of 1");
        }
        requireFloat32(arrays);
    }

    @Override
    public void barrier() {}

    @Override
    public void close() {}

    static void requireFloat32(List<NDArray> arrays) {
        for (NDArray a : arrays) {
            if (a.getDataType() != DataType.FLOAT32) {
                throw new IllegalArgumentException(
                        "collectives take float32 arrays, not " + a.getDataType() + " (" + a.getShape() + ")");
            }
        }
    }
}
