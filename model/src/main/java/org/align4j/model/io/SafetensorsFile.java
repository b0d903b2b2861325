package org.align4j.model.io;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * One {@code .safetensors} file, read through a memory map tensor by tensor, so files of any size
 * are read without one Java array holding the file.
 *
 * <p>Layout: 8 bytes little-endian header length N, N bytes of JSON header ({@code name → {dtype,
 * shape, data_offsets: [begin, end]}} plus optional {@code __metadata__}), then the data. The header
 * is checked against the file size and every tensor's byte count against its shape and dtype before
 * anything is read.
 *
 * <p>{@code BF16} tensors are widened to FLOAT32 while reading (DJL 0.36 cannot hold bf16), {@code
 * F16} tensors are widened to FLOAT32 unless asked to keep them, integer types are read as they are.
 */
public final class SafetensorsFile implements AutoCloseable {
    /** Duplicate names in a header are an error, not "the last one wins". */
    private static final ObjectMapper JSON = new ObjectMapper().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

    private static final long MAX_HEADER = 100L * 1024 * 1024;
    /** No real tensor has 2^48 elements; beyond it a shape only overflows libtorch's strides. */
    private static final long MAX_ELEMENTS = 1L << 48;

    /**
     * One tensor's entry in the header.
     *
     * @param name the tensor name
     * @param dtype the safetensors dtype string (F32, BF16, ...)
     * @param shape the shape
     * @param begin first data byte, relative to the data section
     * @param end one past the last data byte
     */
    public record TensorInfo(String name, String dtype, long[] shape, long begin, long end) {
        /** @return number of elements */
        public long numel() {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return n;
        }
    }

    private final Path path;
    private final FileChannel channel;
    private final long dataStart;
    private final Map<String, TensorInfo> tensors;
    private final Map<String, String> metadata;

    private SafetensorsFile(
            Path path,
            FileChannel channel,
            long dataStart,
            Map<String, TensorInfo> tensors,
            Map<String, String> metadata) {
        this.path = path;
        this.channel = channel;
        this.dataStart = dataStart;
        this.tensors = tensors;
        this.metadata = metadata;
    }

    /**
     * Opens and validates a file.
     *
     * @param path the file
     * @return the open file; close it when done
     * @throws CheckpointException if the file is missing, truncated, or its header is inconsistent
     */
    public static SafetensorsFile open(Path path) {
        InputFiles.requireRegular(path);
        FileChannel ch;
        try {
            ch = FileChannel.open(path, StandardOpenOption.READ);
        } catch (NoSuchFileException e) {
            throw new CheckpointException(path, "file not found");
        } catch (IOException e) {
            throw new CheckpointException(path, "cannot open: " + e.getMessage(), e);
        }
        try {
            return parse(path, ch);
        } catch (RuntimeException | IOException e) {
            try {
                ch.close();
            } catch (IOException suppressed) {
                e.addSuppressed(suppressed);
            }
            if (e instanceof CheckpointException ce) {
                throw ce;
            }
            throw new CheckpointException(path, "cannot read: " + e.getMessage(), e);
        }
    }

    private static SafetensorsFile parse(Path path, FileChannel ch) throws IOException {
        long size = ch.size();
        if (size < 8) {
            throw new CheckpointException(path, "truncated: " + size + " bytes, shorter than the 8-byte header length");
        }
        ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        readFully(ch, lenBuf, 0);
        long headerLen = lenBuf.getLong(0);
        if (headerLen <= 0 || headerLen > MAX_HEADER || headerLen > size - 8) {
            throw new CheckpointException(
                    path,
                    "header length " + headerLen + " does not fit a file of " + size
                            + " bytes (truncated or not safetensors)");
        }
        ByteBuffer hb = ByteBuffer.allocate((int) headerLen);
        readFully(ch, hb, 8);
        JsonNode header;
        try {
            header = JSON.readTree(new String(hb.array(), StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new CheckpointException(path, "header is not valid JSON: " + e.getMessage());
        }
        if (header == null || !header.isObject()) {
            throw new CheckpointException(path, "header is not a JSON object");
        }
        long dataStart = 8 + headerLen;
        long dataSize = size - dataStart;
        Map<String, TensorInfo> tensors = new LinkedHashMap<>();
        Map<String, String> metadata = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            String name = e.getKey();
            JsonNode v = e.getValue();
            if ("__metadata__".equals(name)) {
                if (!v.isObject()) {
                    throw new CheckpointException(path, "__metadata__: expected an object of strings");
                }
                v.fields()
                        .forEachRemaining(
                                m -> metadata.put(m.getKey(), m.getValue().asText()));
                continue;
            }
            if (!v.isObject()) {
                throw new CheckpointException(path, "tensor '" + name + "': header entry is not an object");
            }
            JsonNode dt = v.get("dtype");
            JsonNode sh = v.get("shape");
            JsonNode off = v.get("data_offsets");
            if (dt == null
                    || sh == null
                    || off == null
                    || !dt.isTextual()
                    || !sh.isArray()
                    || !off.isArray()
                    || off.size() != 2
                    || !off.get(0).canConvertToExactIntegral()
                    || !off.get(1).canConvertToExactIntegral()) {
                throw new CheckpointException(
                        path, "tensor '" + name + "': header entry needs dtype, shape and data_offsets [begin, end]");
            }
            long[] shape = new long[sh.size()];
            long expected = 1;
            long extent = 1; // the product of the non-zero sizes: what strides are made of, even when a size is 0
            for (int i = 0; i < shape.length; i++) {
                shape[i] = sh.get(i).canConvertToExactIntegral() ? sh.get(i).asLong(-1) : -1;
                if (shape[i] < 0) {
                    throw new CheckpointException(path, "tensor '" + name + "': bad shape " + sh);
                }
                expected = saturatedMultiply(expected, shape[i]);
                extent = saturatedMultiply(extent, Math.max(1, shape[i]));
            }
            if (extent > MAX_ELEMENTS) {
                throw new CheckpointException(
                        path, "tensor '" + name + "': shape " + sh + " is too large to be a tensor");
            }
            TensorInfo info = new TensorInfo(
                    name, dt.asText(), shape, off.get(0).asLong(-1), off.get(1).asLong(-1));
            int width = bytesPerElement(path, info);
            expected = saturatedMultiply(expected, width);
            if (info.begin < 0 || info.end < info.begin || info.end - info.begin != expected) {
                throw new CheckpointException(
                        path,
                        "tensor '" + name + "': data_offsets " + off + " hold " + (info.end - info.begin)
                                + " bytes, but " + info.dtype + sh + " needs " + expected);
            }
            if (info.end > dataSize) {
                throw new CheckpointException(
                        path,
                        "tensor '" + name + "': ends at byte " + info.end + " of the data section, which has only "
                                + dataSize + " bytes (file truncated?)");
            }
            tensors.put(name, info);
        }
        checkTiling(path, tensors, dataSize);
        return new SafetensorsFile(
                path, ch, dataStart, Collections.unmodifiableMap(tensors), Collections.unmodifiableMap(metadata));
    }

    /** a·b, or Long.MAX_VALUE when it overflows (a lying shape must not wrap around to a small size). */
    private static long saturatedMultiply(long a, long b) {
        long hi = Math.multiplyHigh(a, b);
        long lo = a * b;
        return hi != 0 || lo < 0 ? Long.MAX_VALUE : lo;
    }

    /**
     * The format requires the tensors' byte ranges to cover the data section exactly, without holes or
     * overlaps; two tensors that share bytes would load with each other's weights.
     */
    private static void checkTiling(Path path, Map<String, TensorInfo> tensors, long dataSize) {
        List<TensorInfo> byOffset = new ArrayList<>(tensors.values());
        byOffset.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end));
        long at = 0;
        TensorInfo previous = null;
        for (TensorInfo t : byOffset) {
            if (t.begin() < at) {
                throw new CheckpointException(
                        path,
                        "tensor '" + t.name() + "': data_offsets [" + t.begin() + ", " + t.end() + "] overlap tensor '"
                                + previous.name() + "' [" + previous.begin() + ", " + previous.end() + "]");
            }
            if (t.begin() > at) {
                throw new CheckpointException(
                        path,
                        "data section has a hole at bytes [" + at + ", " + t.begin() + ") before tensor '" + t.name()
                                + "' (safetensors requires the tensors to cover it exactly)");
            }
            at = t.end();
            previous = t;
        }
        if (at != dataSize) {
            throw new CheckpointException(
                    path,
                    "data section has " + dataSize + " bytes but the tensors cover " + at
                            + " (safetensors requires the tensors to cover it exactly)");
        }
    }

    private static void readFully(FileChannel ch, ByteBuffer buf, long pos) throws IOException {
        while (buf.hasRemaining()) {
            int n = ch.read(buf, pos + buf.position());
            if (n < 0) {
                throw new IOException("unexpected end of file");
            }
        }
    }

    static int bytesPerElement(Path path, TensorInfo info) {
        switch (info.dtype) {
            case "F64":
            case "I64":
            case "U64":
                return 8;
            case "F32":
            case "I32":
            case "U32":
                return 4;
            case "F16":
            case "BF16":
            case "I16":
            case "U16":
                return 2;
            case "I8":
            case "U8":
            case "BOOL":
                return 1;
            default:
                throw new CheckpointException(path, "tensor '" + info.name + "': unsupported dtype " + info.dtype);
        }
    }

    /** @return the file */
    public Path path() {
        return path;
    }

    /** @return tensor entries by name, in header order */
    public Map<String, TensorInfo> tensors() {
        return tensors;
    }

    /** @return the {@code __metadata__} entries */
    public Map<String, String> metadata() {
        return metadata;
    }

    /**
     * Reads one tensor into a new array owned by {@code manager}: float types as FLOAT32 (bf16 and
     * f16 widened), integer types as they are.
     *
     * @param name the tensor
     * @param manager the owner of the new array (its device is used)
     * @return the array
     */
    public NDArray read(String name, NDManager manager) {
        return read(name, manager, false);
    }

    /**
     * Reads one tensor.
     *
     * @param name the tensor
     * @param manager the owner of the new array
     * @param keepFloat16 keep F16 tensors as FLOAT16 instead of widening them
     * @return the array
     */
    public NDArray read(String name, NDManager manager, boolean keepFloat16) {
        TensorInfo info = tensors.get(name);
        if (info == null) {
            throw new CheckpointException(path, "no tensor named '" + name + "'");
        }
        long bytes = info.end - info.begin;
        long outBytes = "BF16".equals(info.dtype) || ("F16".equals(info.dtype) && !keepFloat16) ? bytes * 2 : bytes;
        if (outBytes > Integer.MAX_VALUE) {
            throw new CheckpointException(
                    path, "tensor '" + name + "' is over 2 GiB once widened; DJL cannot create it from one buffer");
        }
        Shape shape = new Shape(info.shape);
        MappedByteBuffer src;
        try {
            src = channel.map(FileChannel.MapMode.READ_ONLY, dataStart + info.begin, bytes);
        } catch (IOException e) {
            throw new CheckpointException(path, "cannot map tensor '" + name + "': " + e.getMessage(), e);
        }
        src.order(ByteOrder.LITTLE_ENDIAN);
        checkFinite(info, src);
        switch (info.dtype) {
            case "BF16":
                return fromScratch(manager, shape, DataType.FLOAT32, (int) outBytes, out -> widenBf16(src, out));
            case "F16":
                if (keepFloat16) {
                    return fromScratch(manager, shape, DataType.FLOAT16, (int) outBytes, out -> out.put(src));
                }
                return fromScratch(manager, shape, DataType.FLOAT32, (int) outBytes, out -> widenF16(src, out));
            default:
                return fromScratch(manager, shape, djlType(info), (int) outBytes, out -> out.put(src));
        }
    }

    /**
     * Refuses a float tensor holding NaN or an infinity, naming the file, the tensor and the first such
     * element: no weight that is not a number is ever loaded (it would only turn every output into NaN).
     */
    private void checkFinite(TensorInfo info, ByteBuffer data) {
        long at = -1;
        float value = 0;
        switch (info.dtype) {
            case "F32":
                for (int i = 0; i + 4 <= data.limit(); i += 4) {
                    float f = data.getFloat(i);
                    if (!Float.isFinite(f)) {
                        at = i / 4;
                        value = f;
                        break;
                    }
                }
                break;
            case "F64":
                for (int i = 0; i + 8 <= data.limit(); i += 8) {
                    double d = data.getDouble(i);
                    if (!Double.isFinite(d)) {
                        at = i / 8;
                        value = (float) d;
                        break;
                    }
                }
                break;
            case "F16":
            case "BF16":
                int expMask = "F16".equals(info.dtype) ? 0x7C00 : 0x7F80;
                for (int i = 0; i + 2 <= data.limit(); i += 2) {
                    short h = data.getShort(i);
                    if ((h & expMask) == expMask) {
                        at = i / 2;
                        value = "F16".equals(info.dtype) ? halfToFloat(h) : Float.intBitsToFloat((h & 0xFFFF) << 16);
                        break;
                    }
                }
                break;
            default:
                return;
        }
        if (at >= 0) {
            throw new CheckpointException(
                    path,
                    "tensor '" + info.name + "': element " + at + " is " + value
                            + "; a checkpoint with non-finite weights cannot be loaded");
        }
    }

    private DataType djlType(TensorInfo info) {
        switch (info.dtype) {
            case "F64":
                return DataType.FLOAT64;
            case "F32":
                return DataType.FLOAT32;
            case "I64":
                return DataType.INT64;
            case "I32":
                return DataType.INT32;
            case "I8":
                return DataType.INT8;
            case "U8":
                return DataType.UINT8;
            case "BOOL":
                return DataType.BOOLEAN;
            default:
                throw new CheckpointException(
                        path, "tensor '" + info.name + "': dtype " + info.dtype + " cannot be read into DJL");
        }
    }

    private static void widenBf16(ByteBuffer src, ByteBuffer out) {
        while (src.remaining() >= 2) {
            out.putInt((src.getShort() & 0xFFFF) << 16);
        }
    }

    private static void widenF16(ByteBuffer src, ByteBuffer out) {
        while (src.remaining() >= 2) {
            out.putFloat(halfToFloat(src.getShort()));
        }
    }

    /** IEEE 754 binary16 to binary32 (Java 17 has no Float.float16ToFloat). */
    static float halfToFloat(short half) {
        int h = half & 0xFFFF;
        int sign = (h & 0x8000) << 16;
        int exp = (h >>> 10) & 0x1F;
        int mant = h & 0x3FF;
        if (exp == 0x1F) {
            return Float.intBitsToFloat(sign | 0x7F800000 | (mant << 13));
        }
        if (exp == 0) {
            float f = mant * 0x1p-24f;
            return sign == 0 ? f : -f;
        }
        return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
    }

    /**
     * Fills a scratch direct buffer and hands the array a copy of it: a CPU tensor made from a
     * direct buffer shares its memory, and the scratch buffer is reused for the next tensor.
     */
    private static NDArray fromScratch(
            NDManager manager, Shape shape, DataType type, int bytes, Consumer<ByteBuffer> fill) {
        ByteBuffer scratch = Scratch.get(bytes);
        fill.accept(scratch);
        scratch.flip();
        try (NDArray view = manager.create(scratch, shape, type)) {
            return view.duplicate();
        }
    }

    @Override
    public void close() {
        try {
            channel.close();
        } catch (IOException e) {
            throw new CheckpointException(path, "cannot close: " + e.getMessage(), e);
        }
    }

    /** A per-thread scratch direct buffer that grows to the largest tensor read. */
    private static final class Scratch {
        private static final ThreadLocal<ByteBuffer> BUF = new ThreadLocal<>();

        static ByteBuffer get(int bytes) {
            ByteBuffer b = BUF.get();
            if (b == null || b.capacity() < bytes) {
                b = ByteBuffer.allocateDirect(Math.max(bytes, 1)).order(ByteOrder.nativeOrder());
                BUF.set(b);
            }
            b.clear();
            b.limit(bytes);
            return b;
        }
    }
}
