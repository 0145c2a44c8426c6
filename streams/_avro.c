/* Avro bodies read in C, by a program that streams/avro_decode.py compiles once per schema.
 *
 * The program is nested tuples, one per Avro type: (kind, ...), the kinds below. `transcode` walks
 * it over a batch of bodies and writes their values as one msgpack array, which msgspec decodes
 * into the stream's Structs in one call: no dict, str or list per value between the bytes and the
 * event (the dict reader this replaced built them, and msgspec.convert then read them again).
 * Decoded without a type, the msgpack gives what fastavro's schemaless_reader returns (dicts,
 * lists, str, bytes, int, float, bool, None). Anything it does not read exactly as fastavro would
 * (a truncated body, a bad union or enum index, a varint past 64 bits, a block count larger than
 * the body; invalid UTF-8, which msgspec refuses) raises, and the caller asks fastavro, whose error
 * the dead letter carries. Measured per access event: docs/benchmarks.md, tenth and twelfth stops.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_grow.h"

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

static void
put_be(char *at, uint64_t v, int size)
{
    for (int i = size - 1; i >= 0; i--, v >>= 8)
        at[i] = (char)(v & 0xFF);
}

/* One msgpack tag byte followed by `size` big-endian bytes of `v`. */
static int
put_tagged(Grow *out, unsigned char tag, uint64_t v, int size)
{
    if (grow_reserve(out, 1 + size) < 0)
        return -1;
    out->data[out->len] = (char)tag;
    put_be(out->data + out->len + 1, v, size);
    out->len += 1 + size;
    return 0;
}

/* A str (0xdb) or bin (0xc6) of 32-bit length: msgspec checks a str's UTF-8 as PyUnicode_DecodeUTF8 does. */
static int
put_span(Grow *out, unsigned char tag, const char *s, Py_ssize_t len)
{
    if ((uint64_t)len > UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "value longer than msgpack holds");
        return -1;
    }
    if (put_tagged(out, tag, (uint64_t)len, 4) < 0)
        return -1;
    return grow_put(out, s, len);
}

static int
put_name(Grow *out, PyObject *name)
{
    Py_ssize_t len;
    const char *s = PyUnicode_AsUTF8AndSize(name, &len);
    return s == NULL ? -1 : put_span(out, 0xdb, s, len);
}

static int transcode_value(PyObject *program, Body *body, Grow *out);

/* An array's or a map's blocks (a count, negative: followed by its size in bytes, until 0), as one
 * msgpack array or map of 32-bit length: the length is written once every block is read. */
static int
transcode_blocks(PyObject *item, Body *body, Grow *out, int is_map)
{
    Py_ssize_t header = out->len;
    if (put_tagged(out, is_map ? 0xdf : 0xdd, 0, 4) < 0)
        return -1;
    uint64_t total = 0;
    for (;;) {
        int64_t n, size;
        if (read_long(body, &n) < 0)
            return -1;
        if (n == 0)
            break;
        if (n < 0) {
            if (n == INT64_MIN) {
                PyErr_SetString(PyExc_ValueError, "block count out of range");
                return -1;
            }
            n = -n;
            if (read_long(body, &size) < 0)
                return -1;
        }
        /* a count the body cannot hold (its items could take no bytes: nulls): fastavro decides */
        if (n > body->end - body->p) {
            PyErr_SetString(PyExc_ValueError, "block count beyond the body");
            return -1;
        }
        for (int64_t i = 0; i < n; i++) {
            const char *s;
            Py_ssize_t len;
            if (is_map && (read_span(body, &s, &len) < 0 || put_span(out, 0xdb, s, len) < 0))
                return -1;
            if (transcode_value(item, body, out) < 0)
                return -1;
        }
        total += (uint64_t)n;
        if (total > UINT32_MAX) {
            PyErr_SetString(PyExc_ValueError, "more items than msgpack holds");
            return -1;
        }
    }
    put_be(out->data + header + 1, total, 4);
    return 0;
}

/* One value of `program` read from the body and written as msgpack. */
static int
transcode_value(PyObject *program, Body *body, Grow *out)
{
    if (check_program(program) < 0)
        return -1;
    long kind = PyLong_AsLong(PyTuple_GET_ITEM(program, 0));
    Py_ssize_t width = PyTuple_GET_SIZE(program);
    int64_t n;
    const char *s;
    Py_ssize_t len;
    switch (kind) {
    case NUL:
        return put_tagged(out, 0xc0, 0, 0);
    case BOOLEAN: {
        if (body->p >= body->end)
            return truncated();
        unsigned char c = body->b[body->p++];
        if (c > 1) {
            PyErr_SetString(PyExc_ValueError, "boolean byte");
            return -1;
        }
        return put_tagged(out, c ? 0xc3 : 0xc2, 0, 0);
    }
    case LONG:
        return read_long(body, &n) < 0 ? -1 : put_tagged(out, 0xd3, (uint64_t)n, 8);
    case FLOAT:
    case DOUBLE: { /* Avro's little-endian IEEE bits, as msgpack's big-endian float32 / float64 */
        int size = kind == FLOAT ? 4 : 8;
        if (size > body->end - body->p)
            return truncated();
        uint64_t bits = 0;
        for (int i = size - 1; i >= 0; i--)
            bits = (bits << 8) | body->b[body->p + i];
        body->p += size;
        return put_tagged(out, kind == FLOAT ? 0xca : 0xcb, bits, size);
    }
    case STRING:
    case BYTES:
        return read_span(body, &s, &len) < 0 ? -1 : put_span(out, kind == STRING ? 0xdb : 0xc6, s, len);
    case ENUM:
    case UNION: {
        PyObject *choices = width == 2 ? PyTuple_GET_ITEM(program, 1) : NULL;
        if (choices == NULL || !PyTuple_Check(choices))
            break;
        PyObject *chosen = read_choice(body, choices, kind == ENUM ? "enum" : "union");
        if (chosen == NULL)
            return -1;
        if (kind == UNION)
            return transcode_value(chosen, body, out);
        if (!PyUnicode_Check(chosen))
            break;
        return put_name(out, chosen);
    }
    case ARRAY:
    case MAP:
        if (width != 2)
            break;
        return transcode_blocks(PyTuple_GET_ITEM(program, 1), body, out, kind == MAP);
    case RECORD: {
        PyObject *names = width == 3 ? PyTuple_GET_ITEM(program, 1) : NULL;
        PyObject *fields = width == 3 ? PyTuple_GET_ITEM(program, 2) : NULL;
        if (names == NULL || !PyTuple_Check(names) || !PyTuple_Check(fields)
            || PyTuple_GET_SIZE(names) != PyTuple_GET_SIZE(fields))
            break;
        if (put_tagged(out, 0xdf, (uint64_t)PyTuple_GET_SIZE(fields), 4) < 0)
            return -1;
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(fields); i++) {
            PyObject *name = PyTuple_GET_ITEM(names, i);
            if (!PyUnicode_Check(name)) {
                PyErr_SetString(PyExc_TypeError, "a record's field names must be str");
                return -1;
            }
            if (put_name(out, name) < 0 || transcode_value(PyTuple_GET_ITEM(fields, i), body, out) < 0)
                return -1;
        }
        return 0;
    }
    case FIXED: {
        Py_ssize_t size = width == 2 ? PyLong_AsSsize_t(PyTuple_GET_ITEM(program, 1)) : -1;
        if (size < 0) {
            if (!PyErr_Occurred())
                break;
            return -1;
        }
        if (size > body->end - body->p)
            return truncated();
        body->p += size;
        return put_span(out, 0xc6, (const char *)body->b + body->p - size, size);
    }
    }
    if (!PyErr_Occurred())
        PyErr_Format(PyExc_TypeError, "an Avro program node of kind %ld is malformed", kind);
    return -1;
}

PyDoc_STRVAR(transcode_doc,
"transcode(program, bodies, skip)\n--\n\n"
"The Avro `bodies` (each read from byte `skip` on) under `program` (streams/avro_decode.py compiles\n"
"it from a schema) as one msgpack array of their values: msgspec decodes it, into Structs when\n"
"given their type, without a Python object per value in between.");

static PyObject *
avro_transcode(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyList_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "transcode(program, bodies, skip) takes a program, a list and an int");
        return NULL;
    }
    PyObject *program = args[0], *bodies = args[1];
    Py_ssize_t skip = PyLong_AsSsize_t(args[2]);
    if (skip < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "skip must not be negative");
        return NULL;
    }
    if ((uint64_t)PyList_GET_SIZE(bodies) > UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "more bodies than a msgpack array holds");
        return NULL;
    }
    Grow out = {NULL, 0, 0};
    if (put_tagged(&out, 0xdd, (uint64_t)PyList_GET_SIZE(bodies), 4) < 0)
        goto error;
    /* the list is not changed meanwhile: nothing here calls back into Python */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(bodies); i++) {
        Py_buffer view;
        if (PyObject_GetBuffer(PyList_GET_ITEM(bodies, i), &view, PyBUF_SIMPLE) < 0)
            goto error;
        int rc = -1;
        if (view.len < skip)
            truncated();
        else {
            Body body = {view.buf, skip, view.len};
            rc = transcode_value(program, &body, &out);
            /* bytes past the value: a body of a longer (newer) schema under an older id would lose
               its last fields silently */
            if (rc == 0 && body.p != body.end) {
                PyErr_Format(PyExc_ValueError, "%zd bytes after the value", body.end - body.p);
                rc = -1;
            }
        }
        PyBuffer_Release(&view);
        if (rc < 0)
            goto error;
    }
    return grow_bytes(&out);
error:
    PyMem_Free(out.data);
    return NULL;
}

static PyMethodDef avro_methods[] = {
    {"transcode", (PyCFunction)(void (*)(void))avro_transcode, METH_FASTCALL, transcode_doc},
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
