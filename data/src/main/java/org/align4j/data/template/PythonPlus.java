package org.align4j.data.template;

import com.hubspot.jinjava.el.ExtendedSyntaxBuilder;
import com.hubspot.jinjava.el.ext.AdditionOperator;
import com.hubspot.jinjava.el.ext.ExtendedParser;
import com.hubspot.jinjava.objects.SafeString;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import jinjava.de.odysseus.el.misc.NumberOperations;
import jinjava.de.odysseus.el.misc.TypeConverter;
import jinjava.de.odysseus.el.tree.impl.Builder;
import jinjava.de.odysseus.el.tree.impl.Parser;
import jinjava.de.odysseus.el.tree.impl.ast.AstBinary;
import jinjava.de.odysseus.el.tree.impl.ast.AstNode;

/**
 * Python's {@code +} in place of Jinjava's: str + str, list + list and number + number only; anything
 * else raises as Python's {@code TypeError} does ({@code 'text' + message.content} where the content is a
 * list of typed parts, {@code 'text' + none}, {@code dict + dict}). Jinjava's own operator turns either
 * side into text when the other is a string and appends a non-list to a list, so such a template renders
 * where jinja2 (and with it transformers' {@code apply_chat_template}) raises. Follows the Python 3 data
 * model ({@code __add__} of str, list, int, float and bool).
 */
final class PythonPlus extends AstBinary.SimpleOperator {
    /** The operator. */
    static final PythonPlus OP = new PythonPlus();

    /** What the operator throws: Python's TypeError, with Python's message. */
    static final class PythonTypeError extends RuntimeException {
        private static final long serialVersionUID = 1L;

        PythonTypeError(String message) {
            super(message, null, false, false);
        }
    }

    private PythonPlus() {}

    @Override
    protected Object apply(TypeConverter converter, Object a, Object b) {
        Object x = a instanceof SafeString s ? s.toString() : a;
        Object y = b instanceof SafeString s ? s.toString() : b;
        if (x instanceof String s && y instanceof String t) {
            return s + t;
        }
        if (isList(x) && isList(y)) {
            List<Object> out = new ArrayList<>((Collection<?>) x);
            out.addAll((Collection<?>) y);
            return out;
        }
        if (isNumber(x) && isNumber(y)) {
            return NumberOperations.add(converter, number(x), number(y));
        }
        if (x instanceof String) {
            throw new PythonTypeError("TypeError: can only concatenate str (not \"" + type(y) + "\") to str");
        }
        if (isList(x)) {
            throw new PythonTypeError("TypeError: can only concatenate list (not \"" + type(y) + "\") to list");
        }
        throw new PythonTypeError(
                "TypeError: unsupported operand type(s) for +: '" + type(x) + "' and '" + type(y) + "'");
    }

    private static boolean isList(Object o) {
        return o instanceof Collection<?>;
    }

    private static boolean isNumber(Object o) {
        return o instanceof Number || o instanceof Boolean;
    }

    private static Number number(Object o) {
        return o instanceof Boolean b ? (Number) (b ? 1L : 0L) : (Number) o;
    }

    /** Python's name of a value's type. */
    static String type(Object o) {
        if (o == null) {
            return "NoneType";
        }
        if (o instanceof String || o instanceof SafeString) {
            return "str";
        }
        if (o instanceof Boolean) {
            return "bool";
        }
        if (o instanceof Double || o instanceof Float) {
            return "float";
        }
        if (o instanceof Number) {
            return "int";
        }
        if (o instanceof Map<?, ?>) {
            return "dict";
        }
        if (o instanceof Collection<?> || o instanceof Object[]) {
            return "list";
        }
        return o.getClass().getSimpleName();
    }

    @Override
    public String toString() {
        return "+";
    }

    /**
     * Jinjava's expression syntax with this {@code +}, and the features Jinjava's own builder gets (JUEL's
     * JEE6 profile: method invocations and varargs).
     */
    static final class SyntaxBuilder extends ExtendedSyntaxBuilder {
        private static final long serialVersionUID = 1L;

        SyntaxBuilder() {
            super(Builder.Feature.METHOD_INVOCATIONS, Builder.Feature.VARARGS);
        }

        @Override
        protected Parser createParser(String expression) {
            return new ExtendedParser(this, expression) {
                @Override
                protected AstBinary createAstBinary(AstNode left, AstNode right, AstBinary.Operator operator) {
                    return super.createAstBinary(left, right, operator == AdditionOperator.OP ? OP : operator);
                }
            };
        }
    }
}
