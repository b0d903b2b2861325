package org.align4j.data.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Path;
import java.util.function.Consumer;
import org.align4j.data.DataException;
import org.apache.parquet.column.page.PageReadStore;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.convert.GroupRecordConverter;
import org.apache.parquet.hadoop.ParquetFileReader;
import org.apache.parquet.io.ColumnIOFactory;
import org.apache.parquet.io.LocalInputFile;
import org.apache.parquet.io.MessageColumnIO;
import org.apache.parquet.io.RecordReader;
import org.apache.parquet.schema.GroupType;
import org.apache.parquet.schema.LogicalTypeAnnotation;
import org.apache.parquet.schema.PrimitiveType;
import org.apache.parquet.schema.Type;

/**
 * Reads Parquet files (as HF dataset repositories store them) row by row into JSON, nested lists and
 * structs included, so every format the JSON readers accept is accepted from Parquet too.
 */
final class ParquetRecords {
    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;

    private ParquetRecords() {}

    /**
     * Reads every row. A file that is not Parquet, or is cut short or damaged, is a {@link DataException}
     * naming it (and the row reached), whatever the Parquet library throws.
     */
    static void read(Path file, Consumer<RawRecord> onRecord) throws IOException {
        ParquetFileReader reader;
        try {
            reader = ParquetFileReader.open(new LocalInputFile(file));
        } catch (IOException | RuntimeException e) {
            throw damaged(file, 0, e);
        }
        try (reader) {
            var schema = reader.getFooter().getFileMetaData().getSchema();
            MessageColumnIO io = new ColumnIOFactory().getColumnIO(schema);
            long row = 0;
            while (true) {
                PageReadStore pages;
                RecordReader<Group> records;
                try {
                    pages = reader.readNextRowGroup();
                    if (pages == null) {
                        break;
                    }
                    records = io.getRecordReader(pages, new GroupRecordConverter(schema));
                } catch (IOException | RuntimeException e) {
                    throw damaged(file, row + 1, e);
                }
                for (long i = 0; i < pages.getRowCount(); i++) {
                    row++;
                    ObjectNode value;
                    try {
                        value = toJson(records.read());
                    } catch (RuntimeException e) {
                        throw damaged(file, row, e);
                    }
                    onRecord.accept(new RawRecord(value, file, row));
                }
            }
        }
    }

    private static DataException damaged(Path file, long row, Exception e) {
        String what = e.getMessage() == null
                ? e.getClass().getSimpleName()
                : e.getMessage().lines().findFirst().orElse("");
        return new DataException(file, row, null, "not a readable Parquet file (truncated or damaged?): " + what);
    }

    static ObjectNode toJson(Group g) {
        ObjectNode o = NODES.objectNode();
        GroupType type = g.getType();
        for (int f = 0; f < type.getFieldCount(); f++) {
            Type field = type.getType(f);
            int n = g.getFieldRepetitionCount(f);
            if (n == 0) {
                o.putNull(field.getName());
            } else if (field.isRepetition(Type.Repetition.REPEATED)) {
                ArrayNode arr = o.putArray(field.getName());
                for (int i = 0; i < n; i++) {
                    arr.add(value(g, f, i, field));
                }
            } else {
                o.set(field.getName(), value(g, f, 0, field));
            }
        }
        return o;
    }

    private static JsonNode value(Group g, int f, int i, Type field) {
        if (!field.isPrimitive()) {
            Group child = g.getGroup(f, i);
            LogicalTypeAnnotation logical = field.getLogicalTypeAnnotation();
            if (logical instanceof LogicalTypeAnnotation.ListLogicalTypeAnnotation) {
                return listValue(child);
            }
            return toJson(child);
        }
        PrimitiveType p = field.asPrimitiveType();
        switch (p.getPrimitiveTypeName()) {
            case BINARY:
            case FIXED_LEN_BYTE_ARRAY:
                return NODES.textNode(g.getString(f, i));
            case BOOLEAN:
                return NODES.booleanNode(g.getBoolean(f, i));
            case INT32:
                return NODES.numberNode(g.getInteger(f, i));
            case INT64:
                return NODES.numberNode(g.getLong(f, i));
            case FLOAT:
                return NODES.numberNode(g.getFloat(f, i));
            case DOUBLE:
                return NODES.numberNode(g.getDouble(f, i));
            default:
                return NODES.textNode(g.getValueToString(f, i));
        }
    }

    /** A LIST is a group with one repeated field (the element, or a wrapper group holding it). */
    private static ArrayNode listValue(Group list) {
        ArrayNode arr = NODES.arrayNode();
        Type repeated = list.getType().getType(0);
        int n = list.getFieldRepetitionCount(0);
        for (int i = 0; i < n; i++) {
            if (!repeated.isPrimitive()
                    && repeated.asGroupType().getFieldCount() == 1
                    && repeated.getLogicalTypeAnnotation() == null) {
                Group wrapper = list.getGroup(0, i);
                Type element = wrapper.getType().getType(0);
                arr.add(wrapper.getFieldRepetitionCount(0) == 0 ? NODES.nullNode() : value(wrapper, 0, 0, element));
            } else {
                arr.add(value(list, 0, i, repeated));
            }
        }
        return arr;
    }
}
