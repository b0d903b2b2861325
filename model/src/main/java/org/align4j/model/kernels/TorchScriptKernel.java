package org.align4j.model.kernels;

import ai.djl.Device;
import ai.djl.MalformedModelException;
import ai.djl.Model;
import ai.djl.engine.EngineException;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Block;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.engine.PtNDManager;
import ai.djl.pytorch.engine.PtSymbolBlock;
import ai.djl.pytorch.jni.IValue;
import ai.djl.training.ParameterStore;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/**
 * A libtorch function written as TorchScript source text, packed into a TorchScript archive in memory
 * at run time and loaded through DJL as a block. No Python is involved: the archive is the handful of
 * entries libtorch's loader reads ({@code code/__torch__.py}, {@code data.pkl}, {@code constants.pkl},
 * {@code version}).
 *
 * <p>Why: DJL 0.36 has no fused attention and no bfloat16, and its casts cut autograd. Inside a kernel
 * all of libtorch is available: {@code torch.scaled_dot_product_attention}, and casts to bf16 that
 * autograd differentiates, so bf16 arrays never cross into Java. Gradients flow through a kernel to
 * its inputs like through any DJL op.
 *
 * <p>A kernel has no parameters: every tensor it needs is an input. Numbers that are not tensors (a
 * scale, a flag) are written into the source, one kernel per value.
 */
public final class TorchScriptKernel implements AutoCloseable {
    private static final Pattern NAME = Pattern.compile("[A-Z][A-Za-z0-9_]*");

    private final String name;
    private final Model model;
    private final Block block;
    private final ParameterStore store;

    private TorchScriptKernel(String name, Model model) {
        this.name = name;
        this.model = model;
        this.block = model.getBlock();
        this.store = new ParameterStore(model.getNDManager(), false);
    }

    /**
     * The TorchScript source of a module class {@code name} with the given methods.
     *
     * @param name the class name (a Python identifier starting with a capital)
     * @param methods method definitions, each starting {@code def forward(self: __torch__.NAME, ...)}
     *     and indented by two spaces inside the class (pass them unindented: this indents them)
     * @return the module source
     */
    public static String moduleSource(String name, String methods) {
        checkName(name);
        StringBuilder sb = new StringBuilder();
        sb.append("class ")
                .append(name)
                .append("(Module):\n")
                .append("  __parameters__ = []\n")
                .append("  __buffers__ = []\n")
                .append("  training : bool\n")
                .append("  _is_full_backward_hook : Optional[bool]\n");
        for (String line :
                methods.replace("__torch__.SELF", "__torch__." + name).split("\n", -1)) {
            sb.append(line.isEmpty() ? "" : "  " + line).append('\n');
        }
        return sb.toString();
    }

    /**
     * Packs a TorchScript archive.
     *
     * @param name the class name
     * @param methods the methods (see {@link #moduleSource}); {@code __torch__.SELF} stands for the class
     * @return the archive bytes, loadable with {@code torch.jit.load} or DJL
     */
    public static byte[] archive(String name, String methods) {
        checkName(name);
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ZipOutputStream zip = new ZipOutputStream(bytes)) {
            stored(zip, name + "/code/__torch__.py", moduleSource(name, methods).getBytes(StandardCharsets.UTF_8));
            stored(zip, name + "/data.pkl", modulePickle(name));
            stored(zip, name + "/constants.pkl", new byte[] {(byte) 0x80, 2, ')', 'q', 0, '.'});
            stored(zip, name + "/version", "10\n".getBytes(StandardCharsets.US_ASCII));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return bytes.toByteArray();
    }

    /**
     * Loads a kernel.
     *
     * @param name the class name
     * @param methods the methods (see {@link #archive})
     * @param device where it runs
     * @return the kernel; close it to free the module
     * @throws IllegalArgumentException when libtorch rejects the source (its message says where)
     */
    public static TorchScriptKernel load(String name, String methods, Device device) {
        Model model = Model.newInstance("kernel-" + name, device, "PyTorch");
        try {
            model.load(new ByteArrayInputStream(archive(name, methods)), Map.of("mapLocation", "true"));
        } catch (IOException | MalformedModelException | EngineException e) {
            model.close();
            throw new IllegalArgumentException(
                    "TorchScript kernel " + name + " does not compile: " + e.getMessage() + "\nsource:\n"
                            + moduleSource(name, methods),
                    e);
        }
        return new TorchScriptKernel(name, model);
    }

    /**
     * Runs {@code forward}.
     *
     * @param training whether autograd should record (as for any DJL block; a kernel has no dropout)
     * @param inputs the tensors, in the order of {@code forward}'s parameters
     * @return the outputs, attached to the first input's manager
     */
    public NDList forward(boolean training, NDArray... inputs) {
        NDList in = new NDList(inputs.length);
        List<NDArray> views = new ArrayList<>();
        for (NDArray a : inputs) {
            // DJL passes a named array whose name has a dot (a parameter's) as an entry of a dict
            // input; an unnamed view (which autograd follows) goes as a plain tensor
            if (a.getName() == null || a.getName().indexOf('.') < 0) {
                in.add(a);
            } else {
                NDArray view = a.reshape(a.getShape());
                views.add(view);
                in.add(view);
            }
        }
        try {
            NDList out = block.forward(store, in, training);
            out.attach(inputs[0].getManager());
            return out;
        } finally {
            // the views belong to the parameter's manager, which lives as long as the model: close
            // them now (autograd holds its own reference to what it needs), or every call leaks one
            views.forEach(NDArray::close);
        }
    }

    /**
     * Runs {@code forward} with arguments of any TorchScript type DJL can pass: tensors, lists of
     * tensors ({@code List[Tensor]}), floats, ints and booleans. Tensors go by reference, so a kernel
     * may update them in place (an optimizer does, outside a gradient collector).
     *
     * @param manager owner of the returned tensors
     * @param args {@link NDArray}, {@code List<NDArray>}, {@link Double}, {@link Long} or {@link Boolean}
     * @return the returned tensors: none for {@code -> None}, one for a tensor, several for a tuple or list
     */
    public NDArray[] call(NDManager manager, Object... args) {
        List<IValue> values = new ArrayList<>(args.length);
        IValue result = null;
        try {
            for (Object a : args) {
                values.add(toValue(a));
            }
            result = ((PtSymbolBlock) block).forward(values.toArray(new IValue[0]));
            PtNDManager m = (PtNDManager) manager;
            if (result.isTensor()) {
                return new NDArray[] {result.toTensor(m)};
            }
            if (result.isTuple() || result.isList() || result.isTensorList()) {
                return result.toTensorArray(m);
            }
            return new NDArray[0];
        } finally {
            values.forEach(IValue::close);
            if (result != null) {
                result.close();
            }
        }
    }

    private static IValue toValue(Object a) {
        if (a instanceof NDArray n) {
            return IValue.from((PtNDArray) n);
        } else if (a instanceof List<?> list) {
            PtNDArray[] arrays = new PtNDArray[list.size()];
            for (int i = 0; i < arrays.length; i++) {
                arrays[i] = (PtNDArray) list.get(i);
            }
            return IValue.listFrom(arrays);
        } else if (a instanceof Double d) {
            return IValue.from(d.doubleValue());
        } else if (a instanceof Long l) {
            return IValue.from(l.longValue());
        } else if (a instanceof Boolean b) {
            return IValue.from(b.booleanValue());
        }
        throw new IllegalArgumentException("kernel argument: unsupported type "
                + (a == null ? "null" : a.getClass().getName()));
    }

    /** @return the class name */
    public String name() {
        return name;
    }

    @Override
    public void close() {
        model.close();
    }

    private static void checkName(String name) {
        if (!NAME.matcher(name).matches()) {
            throw new IllegalArgumentException(
                    "kernel name '" + name + "': use letters, digits and '_', starting with a capital");
        }
    }

    /**
     * Pickle protocol 2 of one {@code __torch__.NAME} object whose state is {@code {training: True,
     * _is_full_backward_hook: None}}: GLOBAL, EMPTY_TUPLE, NEWOBJ, EMPTY_DICT, MARK, two key/value
     * pairs, SETITEMS, BUILD, STOP.
     */
    static byte[] modulePickle(String name) {
        ByteArrayOutputStream p = new ByteArrayOutputStream();
        p.write(0x80);
        p.write(2);
        p.writeBytes(("c__torch__\n" + name + "\n").getBytes(StandardCharsets.US_ASCII));
        p.writeBytes(new byte[] {'q', 0, ')', (byte) 0x81, '}', '('});
        unicode(p, "training");
        p.writeBytes(new byte[] {'q', 1, (byte) 0x88});
        unicode(p, "_is_full_backward_hook");
        p.writeBytes(new byte[] {'q', 2, 'N', 'u', 'b', '.'});
        return p.toByteArray();
    }

    private static void unicode(ByteArrayOutputStream p, String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        p.write('X');
        p.write(b.length & 0xff);
        p.write((b.length >> 8) & 0xff);
        p.write((b.length >> 16) & 0xff);
        p.write((b.length >> 24) & 0xff);
        p.writeBytes(b);
    }

    private static void stored(ZipOutputStream zip, String path, byte[] data) throws IOException {
        ZipEntry e = new ZipEntry(path);
        e.setMethod(ZipEntry.STORED);
        e.setSize(data.length);
        e.setCompressedSize(data.length);
        CRC32 crc = new CRC32();
        crc.update(data);
        e.setCrc(crc.getValue());
        zip.putNextEntry(e);
        zip.write(data);
        zip.closeEntry();
    }
}
