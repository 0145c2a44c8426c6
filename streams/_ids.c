/* The engine's duplicates window (streams/engine.py `Engine._first_deliveries`) in C: the newest
 * `capacity` event ids of one topic partition, kept as 16-byte keyed digests in a ring, found
 * through an open-addressing table.
 *
 * Why not a dict of the id strings: a full window of 200 000 ids cost 21 MB that way (the string,
 * its dict slot), and a partition number reading eleven topics 230 MB (a soak's). Here a full
 * window is its ring (16 bytes an id) and table (4 bytes a slot, at most half full): 5.2 MB.
 *
 * The digest is SipHash-2-4 with its 128-bit output under a key the engine draws at random per
 * process: two ids share one with odds of about 2^-128 per pair, and a producer who would make an
 * event's id collide with another's to have it dropped cannot, not knowing the key (an unkeyed hash
 * has collisions that hold whatever the seed). The ids' strings live only until the next checkpoint
 * takes them (`take_fresh`); the state keeps those, so a restore digests them under its own key.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_slots.h"

/* -- SipHash-2-4, 128-bit output (Aumasson and Bernstein's reference algorithm) ---------------- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                    \
    do {                                                                                           \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);                                   \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                                                     \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                                                     \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);                                   \
    } while (0)

static uint64_t
le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

enum { C_ROUNDS = 2, D_ROUNDS = 4 }; /* SipHash-2-4 */

static void
siphash128(const uint8_t *in, size_t len, const uint8_t key[16], uint64_t out[2])
{
    uint64_t k0 = le64(key), k1 = le64(key + 8);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1 ^ 0xee,
             v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    const uint8_t *end = in + len - (len % 8);
    for (; in != end; in += 8) {
        uint64_t m = le64(in);
        v3 ^= m;
        for (int r = 0; r < C_ROUNDS; r++)
            SIPROUND;
        v0 ^= m;
    }
    uint64_t b = ((uint64_t)len) << 56;
    for (int i = (int)(len & 7) - 1; i >= 0; i--)
        b |= ((uint64_t)in[i]) << (8 * i);
    v3 ^= b;
    for (int r = 0; r < C_ROUNDS; r++)
        SIPROUND;
    v0 ^= b;
    v2 ^= 0xee;
    for (int r = 0; r < D_ROUNDS; r++)
        SIPROUND;
    out[0] = v0 ^ v1 ^ v2 ^ v3;
    v1 ^= 0xdd;
    for (int r = 0; r < D_ROUNDS; r++)
        SIPROUND;
    out[1] = v0 ^ v1 ^ v2 ^ v3;
}

/* -- the window -------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    uint8_t key[16];
    Py_ssize_t capacity; /* ids kept at most: the newest */
    uint64_t (*ring)[2]; /* the digest of the id first seen n-th at ring[n % capacity] */
    Py_ssize_t allocated; /* ring entries allocated: grows to `capacity` as ids come, never shrinks */
    long long seen;       /* ids ever added: the ring holds the last min(seen, capacity) */
    uint32_t *table;      /* ring index + 1, or 0 for an empty slot; linear probing */
    size_t mask;          /* table size - 1 (a power of two, at least twice the ids held) */
    PyObject *fresh;      /* the strings of the ids first seen since `take_fresh`, oldest first */
    int keeps_fresh;      /* 0: no checkpoint takes them (a replay, which never restores) */
} IdWindow;

static Py_ssize_t
held(IdWindow *w)
{
    return w->seen < w->capacity ? (Py_ssize_t)w->seen : w->capacity;
}

static size_t
home(IdWindow *w, const uint64_t d[2])
{
    return (size_t)d[0] & w->mask;
}

/* The slot of the table holding `d`, or the empty slot where it would go. */
static size_t
slot_of(IdWindow *w, const uint64_t d[2])
{
    size_t i = home(w, d);
    while (w->table[i]) {
        const uint64_t *there = w->ring[w->table[i] - 1];
        if (there[0] == d[0] && there[1] == d[1])
            return i;
        i = (i + 1) & w->mask;
    }
    return i;
}

/* Empties slot `i` and moves the entries after it that probed past it back (backward-shift
 * deletion: no tombstones, so a long run never slows the lookups that follow). */
static void
empty_slot(IdWindow *w, size_t i)
{
    size_t j = i;
    for (;;) {
        j = (j + 1) & w->mask;
        if (!w->table[j])
            break;
        size_t k = home(w, w->ring[w->table[j] - 1]);
        /* the entry at j stays when its home lies cyclically in (i, j] */
        int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            w->table[i] = w->table[j];
            i = j;
        }
    }
    w->table[i] = 0;
}

/* A table of `size` slots (a power of two) filled from the ring: -1 with MemoryError set. */
static int
rebuild(IdWindow *w, size_t size)
{
    uint32_t *table = PyMem_Calloc(size, sizeof(uint32_t));
    if (table == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    PyMem_Free(w->table);
    w->table = table;
    w->mask = size - 1;
    Py_ssize_t n = held(w);
    for (Py_ssize_t r = 0; r < n; r++)
        w->table[slot_of(w, w->ring[r])] = (uint32_t)(r + 1);
    return 0;
}

/* The digest of a str's characters as the string holds them (1, 2 or 4 bytes each): no encoding,
 * which a lone surrogate in an id would fail, and no UTF-8 copy cached on the string. A string's
 * width is the least that holds its characters, so equal strings are equal bytes; the width goes
 * into the key, so "\u0100" (00 01) and "\x00\x01" differ. */
static int
text_digest(IdWindow *w, PyObject *text, uint64_t d[2])
{
    if (PyUnicode_READY(text) < 0)
        return -1;
    int kind = PyUnicode_KIND(text);
    uint8_t key[16];
    memcpy(key, w->key, 16);
    key[15] ^= (uint8_t)kind;
    siphash128(PyUnicode_DATA(text), (size_t)PyUnicode_GET_LENGTH(text) * (size_t)kind, key, d);
    return 0;
}

/* Adds `text` (a str): 1 when it was new, 0 when the window held it, -1 on an error. */
static int
add(IdWindow *w, PyObject *text)
{
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "an event id key must be a str, not %.100s", Py_TYPE(text)->tp_name);
        return -1;
    }
    uint64_t d[2];
    if (text_digest(w, text, d) < 0)
        return -1;
    size_t i = slot_of(w, d);
    if (w->table[i])
        return 0;
    Py_ssize_t r = (Py_ssize_t)(w->seen % w->capacity);
    if (w->seen >= w->capacity) {
        /* the oldest id leaves its ring entry to this one */
        empty_slot(w, slot_of(w, w->ring[r]));
    } else if (r == w->allocated) {
        Py_ssize_t more = w->allocated ? w->allocated * 2 : 1024;
        if (more > w->capacity)
            more = w->capacity;
        void *ring = PyMem_Realloc(w->ring, (size_t)more * sizeof(w->ring[0]));
        if (ring == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        w->ring = ring;
        w->allocated = more;
    }
    w->ring[r][0] = d[0];
    w->ring[r][1] = d[1];
    w->seen++;
    if ((size_t)held(w) * 2 > w->mask + 1) {
        if (rebuild(w, (w->mask + 1) * 2) < 0) {
            w->seen--;
            return -1;
        }
    } else {
        /* the slot found may have moved while the oldest left: look again */
        w->table[slot_of(w, d)] = (uint32_t)(r + 1);
    }
    return 1;
}

/* Keeps `text` among the ids a checkpoint takes; the oldest beyond the window's size are dropped,
 * in one pass once a quarter more have come (no checkpoint writes more than the window keeps). */
static int
remember(IdWindow *w, PyObject *text)
{
    if (!w->keeps_fresh)
        return 0;
    /* a plain str, never a subclass: it holds no reference back (no cycle the collector, which
     * does not track the window, would have to find) and runs no __del__ when trimmed */
    PyObject *plain = PyUnicode_FromObject(text);
    if (plain == NULL)
        return -1;
    int failed = PyList_Append(w->fresh, plain);
    Py_DECREF(plain);
    if (failed < 0)
        return -1;
    Py_ssize_t n = PyList_GET_SIZE(w->fresh);
    if (n > w->capacity + w->capacity / 4)
        return PyList_SetSlice(w->fresh, 0, n - w->capacity, NULL);
    return 0;
}

static PyObject *
IdWindow_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *names[] = {"capacity", "key", "keeps_fresh", NULL};
    Py_ssize_t capacity;
    Py_buffer key;
    int keeps_fresh = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "ny*|p:IdWindow", names, &capacity, &key, &keeps_fresh))
        return NULL;
    if (capacity < 1 || capacity > (1 << 30) || key.len != 16) {
        PyBuffer_Release(&key);
        PyErr_SetString(PyExc_ValueError, "IdWindow(capacity: 1 to 2**30, key: 16 bytes)");
        return NULL;
    }
    IdWindow *w = (IdWindow *)type->tp_alloc(type, 0);
    if (w == NULL) {
        PyBuffer_Release(&key);
        return NULL;
    }
    memcpy(w->key, key.buf, 16);
    PyBuffer_Release(&key);
    w->capacity = capacity;
    w->keeps_fresh = keeps_fresh;
    w->fresh = PyList_New(0);
    if (w->fresh == NULL || rebuild(w, 2048) < 0) {
        Py_DECREF(w);
        return NULL;
    }
    return (PyObject *)w;
}

static void
IdWindow_dealloc(IdWindow *w)
{
    PyMem_Free(w->ring);
    PyMem_Free(w->table);
    Py_XDECREF(w->fresh);
    Py_TYPE(w)->tp_free((PyObject *)w);
}

static Py_ssize_t
IdWindow_len(IdWindow *w)
{
    return held(w);
}

static int
IdWindow_contains(IdWindow *w, PyObject *text)
{
    uint64_t d[2];
    if (!PyUnicode_Check(text))
        return 0;
    if (text_digest(w, text, d) < 0)
        return -1;
    return w->table[slot_of(w, d)] != 0;
}

/* `v` in decimal at `out` (at least 20 bytes), as str(v) writes it; its length. snprintf's "%lld"
 * read its format anew for each event: a fifth of the key's making. */
static int
decimal(long long v, char *out)
{
    char reversed[20];
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    int n = 0, len = 0;
    do {
        reversed[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        out[len++] = '-';
    while (n)
        out[len++] = reversed[--n];
    return len;
}

/* `id` + "\x1f" + str(ts). Written in place where the id is a str of one byte a character and ts
 * an int of 64 bits, as nearly every event's are: PyUnicode_FromFormat parsed its format and made
 * str(ts) for each event, four fifths of the window's time (0.26 µs an access event, 0.06 without) */
static PyObject *
joined_key(PyObject *id, PyObject *ts)
{
    if (PyUnicode_CheckExact(id) && PyLong_CheckExact(ts) && PyUnicode_READY(id) == 0
        && PyUnicode_KIND(id) == PyUnicode_1BYTE_KIND) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(ts, &overflow);
        if (!overflow && !(v == -1 && PyErr_Occurred())) {
            char digits[24];
            int n = decimal(v, digits);
            Py_ssize_t len = PyUnicode_GET_LENGTH(id);
            /* the id's widest character: the key is as canonical a str as the id */
            PyObject *key = PyUnicode_New(len + 1 + n, PyUnicode_MAX_CHAR_VALUE(id));
            if (key == NULL)
                return NULL;
            Py_UCS1 *out = PyUnicode_1BYTE_DATA(key);
            memcpy(out, PyUnicode_1BYTE_DATA(id), (size_t)len);
            out[len] = 0x1f;
            memcpy(out + len + 1, digits, (size_t)n);
            return key;
        }
        PyErr_Clear();
    }
    return PyUnicode_FromFormat("%S\x1f%S", id, ts);
}

/* "<event_id>\x1f<ts>": a retry repeats both; two systems numbering their events from one counter
 * repeat the id alone (a probe's CRM harvest dropped as core banking's duplicates) */
static PyObject *
event_key(Slot *slots, PyObject *ev, PyObject *id_name, PyObject *ts_name)
{
    PyObject *id = slot_get(&slots[0], ev, id_name);
    if (id == NULL)
        return NULL;
    PyObject *ts = slot_get(&slots[1], ev, ts_name);
    if (ts == NULL) {
        Py_DECREF(id);
        return NULL;
    }
    PyObject *key = joined_key(id, ts);
    Py_DECREF(id);
    Py_DECREF(ts);
    return key;
}

PyDoc_STRVAR(first_doc,
"first(decoded, ids=None)\n--\n\n"
"The (raw, event) pairs whose id the window does not hold yet (the first of a batch's repeats\n"
"included), each such id added (and kept for `take_fresh`); and how many were left out. The id is\n"
"the event's `event_id` and `ts` joined by \\x1f, or `ids[i]` (a str) for the i-th pair when `ids`\n"
"is given.");

static PyObject *
IdWindow_first(IdWindow *w, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *ids = nargs == 2 ? args[1] : Py_None;
    if (nargs < 1 || nargs > 2 || !PyList_Check(args[0])
        || (ids != Py_None && (!PyList_Check(ids) || PyList_GET_SIZE(ids) != PyList_GET_SIZE(args[0])))) {
        PyErr_SetString(PyExc_TypeError, "first(decoded: list, ids: list[str] | None)");
        return NULL;
    }
    PyObject *decoded = args[0];
    PyObject *kept = PyList_New(0), *name = PyUnicode_InternFromString("event_id"),
             *ts_name = PyUnicode_InternFromString("ts");
    Py_ssize_t duplicates = 0;
    Slot slots[2] = {{0}}; /* event_id, ts */
    if (kept == NULL || name == NULL || ts_name == NULL)
        goto error;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(decoded); i++) {
        /* the sizes checked on entry may not hold: an event_id property, or the __del__ of a str
         * subclass's id freed as `fresh` is trimmed (a review's), runs Python that may change
         * either list, and ids[i] past its end is a wild read */
        if (ids != Py_None && PyList_GET_SIZE(ids) != PyList_GET_SIZE(decoded)) {
            PyErr_SetString(PyExc_RuntimeError, "first: decoded or ids changed size during the loop");
            goto error;
        }
        /* held, not borrowed: the same callbacks may take it out of `decoded` before it is kept */
        PyObject *pair = Py_NewRef(PyList_GET_ITEM(decoded, i));
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            Py_DECREF(pair);
            PyErr_SetString(PyExc_TypeError, "first: decoded must hold (raw, event) pairs");
            goto error;
        }
        PyObject *id = ids == Py_None ? event_key(slots, PyTuple_GET_ITEM(pair, 1), name, ts_name)
                                      : Py_NewRef(PyList_GET_ITEM(ids, i));
        if (id == NULL) {
            Py_DECREF(pair);
            goto error;
        }
        int added = add(w, id);
        int failed = added < 0 || (added && (remember(w, id) < 0 || PyList_Append(kept, pair) < 0));
        Py_DECREF(id);
        Py_DECREF(pair);
        if (failed)
            goto error;
        duplicates += !added;
    }
    Py_DECREF(name);
    Py_DECREF(ts_name);
    return Py_BuildValue("(Nn)", kept, duplicates);
error:
    Py_XDECREF(kept);
    Py_XDECREF(name);
    Py_XDECREF(ts_name);
    return NULL;
}

PyDoc_STRVAR(add_saved_doc,
"add_saved(ids)\n--\n\n"
"Adds `ids` (str), oldest first, as ids a checkpoint already holds: a restore's. None is kept for\n"
"`take_fresh`.");

static PyObject *
IdWindow_add_saved(IdWindow *w, PyObject *ids)
{
    PyObject *seq = PySequence_Fast(ids, "add_saved(ids: list[str])");
    if (seq == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        if (add(w, PySequence_Fast_GET_ITEM(seq, i)) < 0) {
            Py_DECREF(seq);
            return NULL;
        }
    }
    Py_DECREF(seq);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(take_fresh_doc,
"take_fresh()\n--\n\n"
"The ids first seen since the last call (the newest `capacity` of them), oldest first.");

static PyObject *
IdWindow_take_fresh(IdWindow *w, PyObject *Py_UNUSED(ignored))
{
    /* what is returned is made before `fresh` is emptied: a MemoryError leaves every id for the
     * next call, none lost to the checkpoint (a review's) */
    Py_ssize_t n = PyList_GET_SIZE(w->fresh);
    PyObject *newest = n > w->capacity ? PyList_GetSlice(w->fresh, n - w->capacity, n) : Py_NewRef(w->fresh);
    if (newest == NULL)
        return NULL;
    PyObject *empty = PyList_New(0);
    if (empty == NULL) {
        Py_DECREF(newest);
        return NULL;
    }
    Py_SETREF(w->fresh, empty);
    return newest;
}

static PyMethodDef IdWindow_methods[] = {
    {"first", (PyCFunction)(void (*)(void))IdWindow_first, METH_FASTCALL, first_doc},
    {"add_saved", (PyCFunction)IdWindow_add_saved, METH_O, add_saved_doc},
    {"take_fresh", (PyCFunction)IdWindow_take_fresh, METH_NOARGS, take_fresh_doc},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods IdWindow_as_sequence = {
    .sq_length = (lenfunc)IdWindow_len,
    .sq_contains = (objobjproc)IdWindow_contains,
};

static PyTypeObject IdWindowType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "streams._ids.IdWindow",
    .tp_basicsize = sizeof(IdWindow),
    .tp_dealloc = (destructor)IdWindow_dealloc,
    .tp_as_sequence = &IdWindow_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = PyDoc_STR("IdWindow(capacity, key, keeps_fresh=True)\n--\n\n"
                        "The newest `capacity` event ids of one topic partition, as keyed digests\n"
                        "(`key`: 16 bytes, drawn at random per process); `keeps_fresh`: the ids first\n"
                        "seen are kept as strings for `take_fresh` (a checkpoint's)."),
    .tp_methods = IdWindow_methods,
    .tp_new = IdWindow_new,
};

PyDoc_STRVAR(digest_doc,
"digest(key, data)\n--\n\n"
"SipHash-2-4's 128-bit digest of `data` under the 16-byte `key`, as the window keeps an id: for\n"
"checking the implementation against the reference's test vectors.");

static PyObject *
ids_digest(PyObject *module, PyObject *args)
{
    Py_buffer key, data;
    if (!PyArg_ParseTuple(args, "y*y*:digest", &key, &data))
        return NULL;
    PyObject *result = NULL;
    if (key.len != 16) {
        PyErr_SetString(PyExc_ValueError, "digest: the key is 16 bytes");
    } else {
        uint64_t d[2];
        uint8_t out[16];
        siphash128(data.buf, (size_t)data.len, key.buf, d);
        for (int i = 0; i < 8; i++) {
            out[i] = (uint8_t)(d[0] >> (8 * i));
            out[8 + i] = (uint8_t)(d[1] >> (8 * i));
        }
        result = PyBytes_FromStringAndSize((const char *)out, 16);
    }
    PyBuffer_Release(&key);
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef ids_methods[] = {
    {"digest", ids_digest, METH_VARARGS, digest_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef ids_module = {
    PyModuleDef_HEAD_INIT, "streams._ids",
    "The engine's duplicates window in C: event ids kept as keyed digests (streams/engine.py).", -1,
    ids_methods,
};

PyMODINIT_FUNC
PyInit__ids(void)
{
    if (PyType_Ready(&IdWindowType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&ids_module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "IdWindow", (PyObject *)&IdWindowType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
