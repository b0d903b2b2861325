package org.align4j.distributed;

import ai.djl.ndarray.NDArray;
import com.sun.jna.Library;
import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;
import com.sun.jna.Pointer;
import com.sun.jna.ptr.IntByReference;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@link Collectives} over {@code MPI_COMM_WORLD} of Open MPI (4.x or 5.x), whose C API is called through
 * JNA: no compiled code of align4j's. The library is {@code libmpi.so} (Debian's {@code openmpi-bin} /
 * {@code libopenmpi3}, or any Open MPI on the library path); {@code ALIGN4J_MPI_LIBRARY} names another file.
 * It is identified with {@code MPI_Get_library_version} before anything else is called: MPICH and its
 * derivatives (Intel MPI, Cray MPICH, MVAPICH) use integer handles where Open MPI uses pointers to global
 * objects, so they are refused by name.
 *
 * <p>Arrays are packed into flat float32 buckets of at most {@value #BUCKET_FLOATS} elements (direct
 * buffers, kept between calls with the same shapes), reduced in place ({@code MPI_IN_PLACE}) with one
 * {@code MPI_Allreduce} (or {@code MPI_Bcast}) each, and unpacked. On the CPU an array is read and written
 * through DJL's view of its own memory ({@code toByteBuffer(true)}), so packing is one copy each way; on a GPU
 * through a host copy ({@code set(Buffer)} on the way back). Sums of floats are exact only up to rounding:
 * Open MPI adds the same values in the same order on every rank, so every rank gets the same result.
 *
 * <p>MPI is initialised with {@code MPI_THREAD_SERIALIZED}: calls may come from any one thread at a time.
 * An error of a call ends the job (Open MPI's default handler, {@code MPI_ERRORS_ARE_FATAL}); a process
 * that stops answering blocks the others forever, which is what {@link Watchdog} is for.
 *
 * <p>Sources: the MPI 3.1 standard (sections 5.9.6 in-place reductions, 8.1.1 {@code
 * MPI_Get_library_version}, 12.4 {@code MPI_Init_thread}); Open MPI's {@code mpi.h} for the handles ({@code
 * ompi_mpi_comm_world}, {@code ompi_mpi_float}, {@code ompi_mpi_double}, {@code ompi_mpi_op_sum}) and
 * {@code MPI_IN_PLACE} ({@code (void *) 1}).
 */
public final class MpiCollectives implements Collectives {
    private static final Logger LOG = LoggerFactory.getLogger(MpiCollectives.class);

    /** The largest bucket, in float32 elements (256 MiB): far below MPI's int count limit. */
    public static final int BUCKET_FLOATS = 64 << 20;

    /** Open MPI's {@code MPI_THREAD_SERIALIZED}. */
    private static final int MPI_THREAD_SERIALIZED = 2;

    private static final int RTLD_NOW = 0x2;
    private static final int RTLD_GLOBAL = 0x100;
    private static final Pointer MPI_IN_PLACE = new Pointer(1);

    /** The C functions used (MPI 3.1, as Open MPI declares them). */
    interface Mpi extends Library {
        int MPI_Get_library_version(byte[] version, IntByReference length);

        int MPI_Init_thread(Pointer argc, Pointer argv, int required, IntByReference provided);

        int MPI_Initialized(IntByReference flag);

        int MPI_Finalized(IntByReference flag);

        int MPI_Comm_rank(Pointer comm, IntByReference rank);

        int MPI_Comm_size(Pointer comm, IntByReference size);

        int MPI_Allreduce(Pointer sendbuf, Pointer recvbuf, int count, Pointer datatype, Pointer op, Pointer comm);

        int MPI_Bcast(Pointer buffer, int count, Pointer datatype, int root, Pointer comm);

        int MPI_Barrier(Pointer comm);

        int MPI_Error_string(int code, byte[] text, IntByReference length);

        int MPI_Finalize();
    }

    private final Mpi mpi;
    private final Pointer commWorld;
    private final Pointer mpiFloat;
    private final Pointer mpiDouble;
    private final Pointer opSum;
    private final int rank;
    private final int size;
    private final String version;
    private final Map<List<Long>, Buckets> buckets = new HashMap<>();
    private boolean closed;

    private MpiCollectives(Mpi mpi, NativeLibrary lib, String version) {
        this.mpi = mpi;
        this.version = version;
        this.commWorld = lib.getGlobalVariableAddress("ompi_mpi_comm_world");
        this.mpiFloat = lib.getGlobalVariableAddress("ompi_mpi_float");
        this.mpiDouble = lib.getGlobalVariableAddress("ompi_mpi_double");
        this.opSum = lib.getGlobalVariableAddress("ompi_mpi_op_sum");
        IntByReference provided = new IntByReference();
        long t0 = System.nanoTime();
        check(mpi.MPI_Init_thread(null, null, MPI_THREAD_SERIALIZED, provided), "MPI_Init_thread");
        if (provided.getValue() < MPI_THREAD_SERIALIZED) {
            LOG.warn(
                    "MPI gives thread level {} where {} (serialized) was asked: call collectives from one thread only",
                    provided.getValue(),
                    MPI_THREAD_SERIALIZED);
        }
        IntByReference r = new IntByReference();
        check(mpi.MPI_Comm_rank(commWorld, r), "MPI_Comm_rank");
        IntByReference s = new IntByReference();
        check(mpi.MPI_Comm_size(commWorld, s), "MPI_Comm_size");
        this.rank = r.getValue();
        this.size = s.getValue();
        LOG.info(
                "MPI rank {} of {} ({}), initialised in {} ms",
                rank,
                size,
                version,
                (System.nanoTime() - t0) / 1_000_000);
    }

    /**
     * Loads Open MPI and initialises it.
     *
     * @param launch what the environment says (its rank and size are checked against MPI's)
     * @return the collectives of this process
     * @throws MpiException when the library cannot be loaded, is not Open MPI, or disagrees with the
     *     environment
     */
    public static MpiCollectives start(Launch launch) {
        NativeLibrary lib = load();
        Mpi mpi = Native.load(lib.getName(), Mpi.class, options());
        String version = libraryVersion(mpi);
        String first = version.lines().findFirst().orElse("").strip();
        if (!isOpenMpi(first)) {
            throw new MpiException("MPI library " + lib.getFile() + " is '" + first
                    + "': align4j supports Open MPI only (MPICH-family libraries use other handles); install Open MPI"
                    + " (Debian: apt-get install openmpi-bin) or point ALIGN4J_MPI_LIBRARY at its libmpi.so");
        }
        MpiCollectives c = new MpiCollectives(mpi, lib, first);
        if (c.rank != launch.rank() || c.size != launch.worldSize()) {
            throw new MpiException("MPI says rank " + c.rank + " of " + c.size + " but the " + launch.launcher()
                    + " environment says " + launch.rank() + " of " + launch.worldSize());
        }
        return c;
    }

    /**
     * @param text the first line of {@code MPI_Get_library_version}
     * @return whether it names Open MPI
     */
    static boolean isOpenMpi(String text) {
        return text.strip().startsWith("Open MPI");
    }

    private static Map<String, Object> options() {
        return Map.of(Library.OPTION_OPEN_FLAGS, RTLD_NOW | RTLD_GLOBAL);
    }

    /** Open MPI's components are loaded later by libmpi and need its symbols: RTLD_GLOBAL. */
    private static NativeLibrary load() {
        String given = System.getenv("ALIGN4J_MPI_LIBRARY");
        List<String> names = given != null && !given.isBlank()
                ? List.of(given.strip())
                : List.of("mpi", "libmpi.so.40", "libmpi.so.12");
        List<String> errors = new ArrayList<>();
        for (String name : names) {
            try {
                return NativeLibrary.getInstance(name, options());
            } catch (UnsatisfiedLinkError e) {
                errors.add(name);
            }
        }
        throw new MpiException(
                "this process was started by an MPI launcher but no MPI library could be loaded ("
                        + String.join(", ", errors) + (given != null ? ", from ALIGN4J_MPI_LIBRARY" : "")
                        + "): install Open MPI (Debian: apt-get install openmpi-bin) or set ALIGN4J_MPI_LIBRARY to its libmpi.so");
    }

    private static String libraryVersion(Mpi mpi) {
        byte[] text = new byte[8192]; // MPI_MAX_LIBRARY_VERSION_STRING: 256 in Open MPI, 8192 in MPICH
        IntByReference len = new IntByReference();
        if (mpi.MPI_Get_library_version(text, len) != 0) {
            return "unknown";
        }
        int n = Math.max(0, Math.min(len.getValue(), text.length));
        while (n > 0 && text[n - 1] == 0) {
            n--;
        }
        return new String(text, 0, n, StandardCharsets.UTF_8);
    }

    /** @return the library's own description (the first line of {@code MPI_Get_library_version}) */
    public String libraryVersion() {
        return version;
    }

    @Override
    public int rank() {
        return rank;
    }

    @Override
    public int worldSize() {
        return size;
    }

    @Override
    public void allReduceSum(List<NDArray> arrays) {
        if (arrays.isEmpty()) {
            return;
        }
        Buckets b = bucketsOf(arrays);
        b.pack(arrays);
        for (ByteBuffer bucket : b.buffers) {
            check(
                    mpi.MPI_Allreduce(
                            MPI_IN_PLACE,
                            Native.getDirectBufferPointer(bucket),
                            bucket.capacity() / Float.BYTES,
                            mpiFloat,
                            opSum,
                            commWorld),
                    "MPI_Allreduce");
        }
        b.unpack(arrays);
    }

    @Override
    public double[] allReduceSum(double[] values) {
        requireOpen();
        if (values.length == 0) {
            return new double[0];
        }
        ByteBuffer buf = ByteBuffer.allocateDirect(values.length * Double.BYTES).order(ByteOrder.nativeOrder());
        buf.asDoubleBuffer().put(values);
        check(
                mpi.MPI_Allreduce(
                        MPI_IN_PLACE, Native.getDirectBufferPointer(buf), values.length, mpiDouble, opSum, commWorld),
                "MPI_Allreduce");
        double[] out = new double[values.length];
        buf.asDoubleBuffer().get(out);
        return out;
    }

    @Override
    public void broadcast(List<NDArray> arrays, int root) {
        if (root < 0 || root >= size) {
            throw new IllegalArgumentException("broadcast from rank " + root + " in a world of " + size);
        }
        if (arrays.isEmpty()) {
            return;
        }
        if (arrays.size() == 1 && !arrays.get(0).getDevice().isGpu()) {
            // one CPU array (a checkpoint's moments, one at a time): sent from and received into its own memory,
            // with no bucket kept
            NDArray a = arrays.get(0);
            LocalCollectives.requireFloat32(arrays);
            requireOpen();
            ByteBuffer view = a.toByteBuffer(true);
            if (view.isDirect() && a.size() <= Integer.MAX_VALUE) {
                check(
                        mpi.MPI_Bcast(
                                Native.getDirectBufferPointer(view).share(view.position()),
                                (int) a.size(),
                                mpiFloat,
                                root,
                                commWorld),
                        "MPI_Bcast");
                return;
            }
        }
        Buckets b = bucketsOf(arrays);
        b.pack(arrays);
        for (ByteBuffer bucket : b.buffers) {
            check(
                    mpi.MPI_Bcast(
                            Native.getDirectBufferPointer(bucket),
                            bucket.capacity() / Float.BYTES,
                            mpiFloat,
                            root,
                            commWorld),
                    "MPI_Bcast");
        }
        b.unpack(arrays);
    }

    @Override
    public void barrier() {
        requireOpen();
        check(mpi.MPI_Barrier(commWorld), "MPI_Barrier");
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        buckets.clear();
        IntByReference done = new IntByReference();
        mpi.MPI_Finalized(done);
        if (done.getValue() == 0) {
            check(mpi.MPI_Finalize(), "MPI_Finalize");
        }
    }

    private void requireOpen() {
        if (closed) {
            throw new IllegalStateException("MPI was finalized");
        }
    }

    private Buckets bucketsOf(List<NDArray> arrays) {
        requireOpen();
        LocalCollectives.requireFloat32(arrays);
        List<Long> sizes = new ArrayList<>(arrays.size());
        for (NDArray a : arrays) {
            sizes.add(a.size());
        }
        return buckets.computeIfAbsent(List.copyOf(sizes), Buckets::new);
    }

    private void check(int code, String call) {
        if (code != 0) {
            byte[] text = new byte[1024];
            IntByReference len = new IntByReference();
            String msg = mpi.MPI_Error_string(code, text, len) == 0
                    ? new String(text, 0, Math.max(0, Math.min(len.getValue(), text.length)), StandardCharsets.UTF_8)
                    : "error " + code;
            throw new MpiException(call + " failed on rank " + rank + ": " + msg);
        }
    }

    /** Where each array of one list of sizes lies in the flat buckets. */
    private static final class Buckets {
        private final List<ByteBuffer> buffers = new ArrayList<>();
        private final int[] bucket;
        private final int[] offset;
        private final int[] bytes;

        Buckets(List<Long> sizes) {
            bucket = new int[sizes.size()];
            offset = new int[sizes.size()];
            bytes = new int[sizes.size()];
            List<Integer> lengths = new ArrayList<>();
            long used = 0;
            for (int i = 0; i < sizes.size(); i++) {
                long n = sizes.get(i);
                if (n > BUCKET_FLOATS) {
                    throw new IllegalArgumentException(
                            "an array of " + n + " elements is larger than a bucket (" + BUCKET_FLOATS + ")");
                }
                if (lengths.isEmpty() || used + n > BUCKET_FLOATS) {
                    if (!lengths.isEmpty()) {
                        lengths.set(lengths.size() - 1, (int) used);
                    }
                    lengths.add(0);
                    used = 0;
                }
                bucket[i] = lengths.size() - 1;
                offset[i] = (int) used * Float.BYTES;
                bytes[i] = (int) n * Float.BYTES;
                used += n;
            }
            if (!lengths.isEmpty()) {
                lengths.set(lengths.size() - 1, (int) used);
            }
            for (int n : lengths) {
                buffers.add(
                        ByteBuffer.allocateDirect(Math.max(1, n) * Float.BYTES).order(ByteOrder.nativeOrder()));
            }
        }

        void pack(List<NDArray> arrays) {
            for (int i = 0; i < arrays.size(); i++) {
                ByteBuffer src = arrays.get(i).toByteBuffer(true); // the CPU tensor's own memory
                buffers.get(bucket[i]).put(offset[i], src, src.position(), bytes[i]);
            }
        }

        void unpack(List<NDArray> arrays) {
            for (int i = 0; i < arrays.size(); i++) {
                NDArray a = arrays.get(i);
                ByteBuffer from =
                        buffers.get(bucket[i]).slice(offset[i], bytes[i]).order(ByteOrder.nativeOrder());
                if (a.getDevice().isGpu()) {
                    a.set(from);
                } else {
                    ByteBuffer view = a.toByteBuffer(true);
                    if (view.isDirect()) {
                        view.put(view.position(), from, 0, bytes[i]);
                    } else {
                        a.set(from);
                    }
                }
            }
        }
    }
}
