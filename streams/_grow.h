/* A byte buffer that grows as it is written, handed to Python as bytes at the end: the Avro
 * transcoder's msgpack (streams/_avro.c) and the ClickHouse Native blocks (streams/_native.c). */
#ifndef LIFEMON_GROW_H
#define LIFEMON_GROW_H

#include <Python.h>
#include <string.h>

typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Grow;

/* Room for `n` more bytes, doubling from 4 KiB: -1 with MemoryError. */
static inline int
grow_reserve(Grow *g, Py_ssize_t n)
{
    if (g->len + n <= g->cap)
        return 0;
    Py_ssize_t cap = g->cap ? g->cap : 4096;
    while (cap < g->len + n) {
        if (cap > PY_SSIZE_T_MAX / 2) {
            PyErr_NoMemory();
            return -1;
        }
        cap *= 2;
    }
    char *grown = PyMem_Realloc(g->data, (size_t)cap);
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    g->data = grown;
    g->cap = cap;
    return 0;
}

/* `n` bytes from `src` at the end. */
static inline int
grow_put(Grow *g, const void *src, Py_ssize_t n)
{
    if (grow_reserve(g, n) < 0)
        return -1;
    memcpy(g->data + g->len, src, (size_t)n);
    g->len += n;
    return 0;
}

/* The bytes written, as a Python bytes object (NULL with an error), and the buffer freed. */
static inline PyObject *
grow_bytes(Grow *g)
{
    PyObject *bytes = PyBytes_FromStringAndSize(g->data, g->len);
    PyMem_Free(g->data);
    g->data = NULL;
    g->len = g->cap = 0;
    return bytes;
}

#endif
