/* Avro bodies read in C, by a program that streams/avro_decode.py compiles once per schema.
 *
 * The program is nested tuples, one per Avro type: (kind, ...), the kinds below. `read` walks it
 * over one body and returns what fastavro's schemaless_reader returns for it (dicts, lists,
 * str, bytes, int, float, bool, None). Anything it does not read exactly as fastavro would (a
 * truncated body, a bad union or enum index, a varint past 64 bits, invalid UTF-8, a block count
 * larger than the body) raises, and the caller asks fastavro, whose error the dead letter carries.
 * Measured per access event, read alone: fastavro 11.5-12.5 µs, the Python code this replaced
 * (generated per schema) 6.9-7.1, this 1.6 (docs/benchmarks.md, tenth stop).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

enum kind { NUL, BOOLEAN, LONG, FLOAT, DOUBLE, STRING, BYTES, ENUM, ARRAY, MAP, UNION, RECORD, FIXED };

typedef struct {
    const unsigned char *b;
    Py_ssize_t p, end;
} Body;

static int
truncated(void)
{
    PyErr_SetString(PyExc_EOFError, "body ends inside a value");
    return -1;
}

/* A zigzag varint, as fastavro reads one of at most 64 bits. */
static int
read_long(Body *body, int64_t *out)
{
    uint64_t n = 0;
    for (int shift = 0;; shift += 7) {
        if (shift > 63) {
            PyErr_SetString(PyExc_ValueError, "varint longer than 10 bytes");
            return -1;
        }
        if (body->p >= body->end)
            return truncated();
        unsigned char c = body->b[body->p++];
        if (shift == 63 && c > 1) { /* past 64 bits, where fastavro drops the excess: it decides */
            PyErr_SetString(PyExc_ValueError, "varint beyond 64 bits");
            return -1;
        }
        n |= (uint64_t)(c & 0x7F) << shift;
        if (c < 0x80) {
            *out = (int64_t)(n >> 1) ^ -(int64_t)(n & 1);
            return 0;
        }
    }
}

/* A length-prefixed run of bytes: its start and length. */
static int
read_span(Body *body, const char **start, Py_ssize_t *len)
{
    int64_t n;
    if (read_long(body, &n) < 0)
        return -1;
    if (n < 0 || n > body->end - body->p)
        return truncated();
    *start = (const char *)body->b + body->p;
    *len = (Py_ssize_t)n;
    body->p += (Py_ssize_t)n;
    return 0;
}

static PyObject *read_value(PyObject *program, Body *body);

/* The item of `choices` (an enum's symbols, a union's branches) an index names; borrowed. */
static PyObject *
read_choice(Body *body, PyObject *choices, const char *what)
{
    int64_t n;
    if (read_long(body, &n) < 0)
        return NULL;
    if (n < 0 || n >= PyTuple_GET_SIZE(choices)) {
        PyErr_Format(PyExc_ValueError, "%s index", what);
        return NULL;
    }
    return PyTuple_GET_ITEM(choices, (Py_ssize_t)n);
}

static int
check_program(PyObject *program)
{
    if (!PyTuple_Check(program) || PyTuple_GET_SIZE(program) < 1 || !PyLong_Check(PyTuple_GET_ITEM(program, 0))) {
        PyErr_SetString(PyExc_TypeError, "an Avro program node must be (kind, ...)");
        return -1;
    }
    return 0;
}

/* An array's or a map's blocks: a count (negative: followed by its size in bytes) until 0. */
static PyObject *
read_blocks(PyObject *item, Body *body, int is_map)
{
    PyObject *out = is_map ? PyDict_New() : PyList_New(0);
    if (out == NULL)
        return NULL;
    for (;;) {
        int64_t n, size;
        if (read_long(body, &n) < 0)
            goto error;
        if (n == 0)
            return out;
        if (n < 0) {
            if (n == INT64_MIN) {
                PyErr_SetString(PyExc_ValueError, "block count out of range");
                goto error;
            }
            n = -n;
            if (read_long(body, &size) < 0)
                goto error;
        }
        /* a count the body cannot hold (its items could take no bytes: nulls): fastavro decides */
        if (n > body->end - body->p) {
            PyErr_SetString(PyExc_ValueError, "block count beyond the body");
            goto error;
        }
        for (int64_t i = 0; i < n; i++) {
            PyObject *key = NULL;
            if (is_map) {
                const char *s;
                Py_ssize_t len;
                if (read_span(body, &s, &len) < 0 || (key = PyUnicode_DecodeUTF8(s, len, NULL)) == NULL)
                    goto error;
            }
            PyObject *value = read_value(item, body);
            int rc = value == NULL ? -1 : is_map ? PyDict_SetItem(out, key, value) : PyList_Append(out, value);
            Py_XDECREF(key);
            Py_XDECREF(value);
            if (rc < 0)
                goto error;
        }
    }
error:
    Py_DECREF(out);
    return NULL;
}

static PyObject *
read_value(PyObject *program, Body *body)
{
    if (check_program(program) < 0)
        return NULL;
    long kind = PyLong_AsLong(PyTuple_GET_ITEM(program, 0));
    Py_ssize_t width = PyTuple_GET_SIZE(program);
    int64_t n;
    const char *s;
    Py_ssize_t len;
    switch (kind) {
    case NUL:
        Py_RETURN_NONE;
    case BOOLEAN: {
        if (body->p >= body->end)
            return truncated(), NULL;
        unsigned char c = body->b[body->p++];
        if (c > 1) {
            PyErr_SetString(PyExc_ValueError, "boolean byte");
            return NULL;
        }
        return PyBool_FromLong(c);
    }
    case LONG:
        return read_long(body, &n) < 0 ? NULL : PyLong_FromLongLong(n);
    case FLOAT:
    case DOUBLE: {
        Py_ssize_t size = kind == FLOAT ? 4 : 8;
        if (size > body->end - body->p)
            return truncated(), NULL;
        const char *at = (const char *)body->b + body->p;
        body->p += size;
        double d = kind == FLOAT ? PyFloat_Unpack4(at, 1) : PyFloat_Unpack8(at, 1);
        if (d == -1.0 && PyErr_Occurred())
            return NULL;
        return PyFloat_FromDouble(d);
    }
    case STRING:
        return read_span(body, &s, &len) < 0 ? NULL : PyUnicode_DecodeUTF8(s, len, NULL);
    case BYTES:
        return read_span(body, &s, &len) < 0 ? NULL : PyBytes_FromStringAndSize(s, len);
    case ENUM:
    case UNION: {
        PyObject *choices = width == 2 ? PyTuple_GET_ITEM(program, 1) : NULL;
        if (choices == NULL || !PyTuple_Check(choices))
            break;
        PyObject *chosen = read_choice(body, choices, kind == ENUM ? "enum" : "union");
        if (chosen == NULL)
            return NULL;
        return kind == ENUM ? Py_NewRef(chosen) : read_value(chosen, body);
    }
    case ARRAY:
    case MAP:
        if (width != 2)
            break;
        return read_blocks(PyTuple_GET_ITEM(program, 1), body, kind == MAP);
    case RECORD: {
        PyObject *names = width == 3 ? PyTuple_GET_ITEM(program, 1) : NULL;
        PyObject *fields = width == 3 ? PyTuple_GET_ITEM(program, 2) : NULL;
        if (names == NULL || !PyTuple_Check(names) || !PyTuple_Check(fields)
            || PyTuple_GET_SIZE(names) != PyTuple_GET_SIZE(fields))
            break;
        PyObject *out = PyDict_New();
        if (out == NULL)
            return NULL;
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(fields); i++) {
            PyObject *value = read_value(PyTuple_GET_ITEM(fields, i), body);
            if (value == NULL || PyDict_SetItem(out, PyTuple_GET_ITEM(names, i), value) < 0) {
                Py_XDECREF(value);
                Py_DECREF(out);
                return NULL;
            }
            Py_DECREF(value);
        }
        return out;
    }
    case FIXED: {
        Py_ssize_t size = width == 2 ? PyLong_AsSsize_t(PyTuple_GET_ITEM(program, 1)) : -1;
        if (size < 0) {
            if (!PyErr_Occurred())
                break;
            return NULL;
        }
        if (size > body->end - body->p)
            return truncated(), NULL;
        PyObject *out = PyBytes_FromStringAndSize((const char *)body->b + body->p, size);
        body->p += size;
        return out;
    }
    }
    if (!PyErr_Occurred())
        PyErr_Format(PyExc_TypeError, "an Avro program node of kind %ld is malformed", kind);
    return NULL;
}

PyDoc_STRVAR(read_doc,
"read(program, body)\n--\n\n"
"The value Avro `body` holds under `program` (streams/avro_decode.py compiles it from a schema).");

static PyObject *
avro_read(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "read(program, body) takes 2 arguments");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[1], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    Body body = {view.buf, 0, view.len};
    PyObject *out = read_value(args[0], &body);
    PyBuffer_Release(&view);
    return out;
}

static PyMethodDef avro_methods[] = {
    {"read", (PyCFunction)(void (*)(void))avro_read, METH_FASTCALL, read_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef avro_module = {
    PyModuleDef_HEAD_INIT, "streams._avro",
    "Avro bodies read in C by a program compiled from the schema (streams/avro_decode.py).", -1,
    avro_methods,
};

PyMODINIT_FUNC
PyInit__avro(void)
{
    return PyModule_Create(&avro_module);
}
