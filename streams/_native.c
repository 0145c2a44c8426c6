/* A ClickHouse insert block in the Native format, built from the rows a table sink holds
 * (streams/sinks/native.py says which column types it takes and falls back on the driver for
 * the rest).
 *
 * Why: the driver (clickhouse-connect) builds a LowCardinality column's dictionary with a Python
 * step per value, and needs the rows split into columns first, another step per value. A replay's
 * rollups (about one row per event, seven LowCardinality columns each) spent more CPU there than
 * chDB spent storing them. Here each value is read once from its row and written at once.
 *
 * The bytes are those the driver writes (clickhouse_connect/driver/transform.py `build_insert`,
 * datatypes/base.py `_write_column_low_card`): per block the column and row counts (LEB128),
 * then per column its name, its type, and its values. A value the column cannot hold (a number
 * out of range, anything but a str for a String) raises, and the caller lets the driver refuse it,
 * naming the column.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_grow.h"

/* Column kinds, as streams/sinks/native.py numbers them. */
enum { K_STRING = 0, K_LOW_CARDINALITY = 1, K_UNSIGNED = 2, K_SIGNED = 3 };

static int
put_leb128(Grow *b, uint64_t v)
{
    uint8_t out[10];
    int n = 0;
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        out[n++] = byte | (v ? 0x80 : 0);
    } while (v);
    return grow_put(b, out, n);
}

static int
put_le(Grow *b, uint64_t v, int width)
{
    uint8_t out[8];
    for (int i = 0; i < width; i++)
        out[i] = (uint8_t)(v >> (8 * i));
    return grow_put(b, out, width);
}

/* A str as ClickHouse's String: its UTF-8 length, then the bytes. */
static int
put_string(Grow *b, PyObject *value)
{
    if (!PyUnicode_Check(value)) {
        PyErr_Format(PyExc_TypeError, "a String column takes str, not %.100s", Py_TYPE(value)->tp_name);
        return -1;
    }
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(value, &n);
    if (s == NULL || put_leb128(b, (uint64_t)n) < 0)
        return -1;
    return grow_put(b, s, n);
}

static int
put_int(Grow *b, PyObject *value, int kind, int width)
{
    if (!PyLong_Check(value)) {
        PyErr_Format(PyExc_TypeError, "an integer column takes int, not %.100s", Py_TYPE(value)->tp_name);
        return -1;
    }
    uint64_t bits;
    if (kind == K_UNSIGNED) {
        unsigned long long v = PyLong_AsUnsignedLongLong(value);
        if (v == (unsigned long long)-1 && PyErr_Occurred())
            return -1;
        if (width < 8 && v >> (8 * width)) {
            PyErr_SetString(PyExc_OverflowError, "value out of range for its column");
            return -1;
        }
        bits = v;
    } else {
        long long v = PyLong_AsLongLong(value);
        if (v == -1 && PyErr_Occurred())
            return -1;
        long long bound = width < 8 ? 1LL << (8 * width - 1) : 0;
        if (width < 8 && (v < -bound || v >= bound)) {
            PyErr_SetString(PyExc_OverflowError, "value out of range for its column");
            return -1;
        }
        bits = (uint64_t)v;
    }
    return put_le(b, bits, width);
}

/* LowCardinality(String): the serialization version (1), then flags (a new dictionary, keys
 * follow, and the keys' width), the dictionary in first-seen order, and one key per row. */
static int
put_low_cardinality(Grow *b, PyObject **values, Py_ssize_t rows)
{
    int ok = -1;
    PyObject *index = PyDict_New();  /* value -> its key */
    PyObject *order = PyList_New(0); /* the values, in key order */
    uint32_t *keys = PyMem_Malloc(sizeof(uint32_t) * (rows ? rows : 1));
    if (index == NULL || order == NULL || keys == NULL) {
        if (keys == NULL)
            PyErr_NoMemory();
        goto done;
    }
    PyObject *last = NULL; /* the previous row's value: a column repeats it in runs, often the object itself */
    uint32_t last_key = 0;
    for (Py_ssize_t r = 0; r < rows; r++) {
        PyObject *v = values[r];
        if (v == last) {
            keys[r] = last_key;
            continue;
        }
        if (!PyUnicode_Check(v)) {
            PyErr_Format(PyExc_TypeError, "a String column takes str, not %.100s", Py_TYPE(v)->tp_name);
            goto done;
        }
        PyObject *found = PyDict_GetItemWithError(index, v);
        if (found != NULL) {
            keys[r] = last_key = (uint32_t)PyLong_AsSize_t(found);
            last = v;
            continue;
        }
        if (PyErr_Occurred())
            goto done;
        Py_ssize_t key = PyList_GET_SIZE(order);
        PyObject *number = PyLong_FromSsize_t(key);
        if (number == NULL)
            goto done;
        int failed = PyDict_SetItem(index, v, number) < 0 || PyList_Append(order, v) < 0;
        Py_DECREF(number);
        if (failed)
            goto done;
        keys[r] = last_key = (uint32_t)key;
        last = v;
    }
    Py_ssize_t distinct = PyList_GET_SIZE(order);
    /* the driver's width: 2 ** (floor(log2(distinct)) >> 3) bytes */
    int log2 = 0;
    while (((Py_ssize_t)1 << (log2 + 1)) <= distinct)
        log2++;
    int ix_type = log2 >> 3, width = 1 << ix_type;
    if (put_le(b, 1, 8) < 0 || put_le(b, (1u << 9) | (1u << 10) | (uint64_t)ix_type, 8) < 0 ||
        put_le(b, (uint64_t)distinct, 8) < 0)
        goto done;
    for (Py_ssize_t i = 0; i < distinct; i++)
        if (put_string(b, PyList_GET_ITEM(order, i)) < 0)
            goto done;
    if (put_le(b, (uint64_t)rows, 8) < 0)
        goto done;
    for (Py_ssize_t r = 0; r < rows; r++)
        if (put_le(b, keys[r], width) < 0)
            goto done;
    ok = 0;
done:
    PyMem_Free(keys);
    Py_XDECREF(index);
    Py_XDECREF(order);
    return ok;
}

PyDoc_STRVAR(block_doc,
             "block(rows, columns) -> bytes\n\n"
             "One Native block of `rows` (tuples, one value per column). `columns`: per column\n"
             "(name, type, kind, width), kind 0 String, 1 LowCardinality(String), 2 unsigned and\n"
             "3 signed integers of `width` bytes. TypeError or OverflowError for a value its\n"
             "column cannot hold.");

static PyObject *
native_block(PyObject *self, PyObject *args)
{
    PyObject *rows, *columns;
    if (!PyArg_ParseTuple(args, "O!O!", &PyList_Type, &rows, &PyList_Type, &columns))
        return NULL;
    Py_ssize_t nrows = PyList_GET_SIZE(rows), ncols = PyList_GET_SIZE(columns);
    for (Py_ssize_t r = 0; r < nrows; r++) {
        PyObject *row = PyList_GET_ITEM(rows, r);
        if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != ncols) {
            PyErr_Format(PyExc_TypeError, "row %zd is not a tuple of %zd values", r, ncols);
            return NULL;
        }
    }
    Grow b = {NULL, 0, 0};
    PyObject **column = PyMem_Malloc(sizeof(PyObject *) * (nrows ? nrows : 1));
    if (column == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    if (put_leb128(&b, (uint64_t)ncols) < 0 || put_leb128(&b, (uint64_t)nrows) < 0)
        goto fail;
    for (Py_ssize_t c = 0; c < ncols; c++) {
        PyObject *name, *type;
        int kind, width;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(columns, c), "UUii", &name, &type, &kind, &width))
            goto fail;
        if (put_string(&b, name) < 0 || put_string(&b, type) < 0)
            goto fail;
        for (Py_ssize_t r = 0; r < nrows; r++)
            column[r] = PyTuple_GET_ITEM(PyList_GET_ITEM(rows, r), c);
        if (kind == K_LOW_CARDINALITY) {
            if (put_low_cardinality(&b, column, nrows) < 0)
                goto fail;
        } else if (kind == K_STRING) {
            for (Py_ssize_t r = 0; r < nrows; r++)
                if (put_string(&b, column[r]) < 0)
                    goto fail;
        } else if ((kind == K_UNSIGNED || kind == K_SIGNED) && (width == 1 || width == 2 || width == 4 || width == 8)) {
            if (grow_reserve(&b, (Py_ssize_t)width * nrows) < 0)
                goto fail;
            for (Py_ssize_t r = 0; r < nrows; r++)
                if (put_int(&b, column[r], kind, width) < 0)
                    goto fail;
        } else {
            PyErr_Format(PyExc_ValueError, "column kind %d of width %d is not one this encoder writes", kind, width);
            goto fail;
        }
    }
    PyMem_Free(column);
    return grow_bytes(&b);
fail:
    PyMem_Free(column);
    PyMem_Free(b.data);
    return NULL;
}

static PyMethodDef native_methods[] = {
    {"block", native_block, METH_VARARGS, block_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "streams._native",
    "ClickHouse Native insert blocks in C (streams/sinks/native.py).", -1, native_methods,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    return PyModule_Create(&native_module);
}
