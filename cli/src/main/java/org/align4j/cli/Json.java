package org.align4j.cli;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.util.JsonGeneratorDelegate;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;

/**
 * One JSON writer for the CLI's outputs ({@code --json}, JSON lines of scores, labels and log-probs). It
 * refuses NaN and infinities: no output with a non-finite number is ever written (JSON has no such
 * numbers, and a reader would take the string "NaN" for data).
 */
final class Json {
    static final ObjectMapper MAPPER = new ObjectMapper(JsonFactory.builder()
            .addDecorator((factory, generator) -> new FiniteOnly(generator))
            .build());

    private Json() {}

    static String write(Object value) {
        try {
            return MAPPER.writeValueAsString(value);
        } catch (JsonProcessingException e) {
            if (e.getCause() instanceof NonFiniteOutputException n) {
                throw n;
            }
            throw new IllegalStateException(e);
        }
    }

    /** A number that is not finite, met while writing an output; nothing of that output is written. */
    static final class NonFiniteOutputException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        NonFiniteOutputException(String key, double value) {
            super("refusing to write " + value + (key == null ? "" : " as '" + key + "'")
                    + ": the model's output is not finite (are its weights and config in range?); nothing was written");
        }
    }

    /** Passes everything through but a NaN or an infinity. */
    private static final class FiniteOnly extends JsonGeneratorDelegate {
        FiniteOnly(JsonGenerator d) {
            super(d, false);
        }

        private void check(double v) {
            if (!Double.isFinite(v)) {
                throw new NonFiniteOutputException(getOutputContext().getCurrentName(), v);
            }
        }

        @Override
        public void writeNumber(double v) throws IOException {
            check(v);
            super.writeNumber(v);
        }

        @Override
        public void writeNumber(float v) throws IOException {
            check(v);
            super.writeNumber(v);
        }
    }
}
