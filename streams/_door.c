/* The engine's door in C: what every source record goes through once, whoever reads it
 * (streams/engine.py, Engine.ingest). Python did these in C-level map() passes, one pass and one
 * list per column; the record loop here does each in one pass with no list per column: measured
 * 4.7 -> 1.0 µs per access event (docs/benchmarks.md, "tenth stop").
 *
 * Each function takes the engine's own objects (msgspec Structs, dicts, the Labels caches) and
 * leave every decision that is not a lookup to Python: a pseudonym not cached yet is computed by
 * the callable passed in, a label not cached yet by the Labels' __missing__.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#include "_slots.h"

/* The pseudonym of `id`: the cache's, else compute(id). A new reference, or NULL with an error. */
static PyObject *
pseudonym_of(PyObject *cache, PyObject *compute, PyObject *id)
{
    PyObject *found = PyDict_GetItemWithError(cache, id);
    if (found != NULL) {
        Py_INCREF(found);
        return found;
    }
    if (PyErr_Occurred())
        return NULL;
    return PyObject_CallOneArg(compute, id);
}

/* Whether `value`, a record's customer ids as pseudonymized, may name a customer twice or none: a
 * list of more than one, or of the `blank` one alone; the `blank` one itself. 1, 0, or -1 with an error. */
static int
may_name_twice_or_none(PyObject *value, PyObject *blank)
{
    if (!PyList_Check(value))
        return PyObject_RichCompareBool(value, blank, Py_EQ);
    if (PyList_GET_SIZE(value) != 1)
        return PyList_GET_SIZE(value) > 1;
    PyObject *only = Py_NewRef(PyList_GET_ITEM(value, 0)); /* its __eq__ may change the list */
    int same = PyObject_RichCompareBool(only, blank, Py_EQ);
    Py_DECREF(only);
    return same;
}

PyDoc_STRVAR(pseudonymize_doc,
"pseudonymize(records, attr, cache, compute, blank=None)\n--\n\n"
"Replace each record's `attr` (a customer id, or a list of them) by its pseudonym: `cache[id]`,\n"
"else `compute(id)`. A list is changed in place; None stays None. With `blank` (an empty id's\n"
"pseudonym), returns the records whose `attr` may then name a customer twice or none (a list of\n"
"more than one, or of `blank` alone; `blank` itself), for the engine to look at again; else None.");

static PyObject *
door_pseudonymize(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 && nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "pseudonymize(records, attr, cache, compute, blank=None) takes 4 or 5 arguments");
        return NULL;
    }
    PyObject *records = args[0], *attr = args[1], *cache = args[2], *compute = args[3];
    PyObject *blank = nargs == 5 ? args[4] : Py_None;
    if (!PyList_Check(records) || !PyUnicode_Check(attr) || !PyDict_Check(cache)) {
        PyErr_SetString(PyExc_TypeError, "pseudonymize: records must be a list, attr a str, cache a dict");
        return NULL;
    }
    PyObject *named = blank == Py_None ? Py_NewRef(Py_None) : PyList_New(0);
    if (named == NULL)
        return NULL;
    Slot slot = {0};
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(records); i++) {
        /* held, not borrowed: compute (Python) may change `records` before the record is set */
        PyObject *record = Py_NewRef(PyList_GET_ITEM(records, i));
        PyObject *value = slot_get(&slot, record, attr);
        if (value == NULL) {
            Py_DECREF(record);
            Py_DECREF(named);
            return NULL;
        }
        int failed = 0;
        if (PyList_Check(value)) {
            for (Py_ssize_t j = 0; j < PyList_GET_SIZE(value); j++) {
                PyObject *id = PyList_GET_ITEM(value, j);
                if (id == Py_None)
                    continue;
                /* held too: the cache's __eq__ or compute may take it out of the list */
                Py_INCREF(id);
                PyObject *pseudonym = pseudonym_of(cache, compute, id);
                Py_DECREF(id);
                if (pseudonym == NULL || PyList_SetItem(value, j, pseudonym) < 0) {
                    failed = 1;
                    break;
                }
            }
        }
        else if (value != Py_None) {
            PyObject *pseudonym = pseudonym_of(cache, compute, value);
            failed = pseudonym == NULL || PyObject_SetAttr(record, attr, pseudonym) < 0;
            if (!failed)
                Py_SETREF(value, pseudonym);
            else
                Py_XDECREF(pseudonym);
        }
        if (!failed && blank != Py_None && value != Py_None) {
            int again = may_name_twice_or_none(value, blank);
            failed = again < 0 || (again && PyList_Append(named, record) < 0);
        }
        Py_DECREF(value);
        Py_DECREF(record);
        if (failed) {
            Py_DECREF(named);
            return NULL;
        }
    }
    return named;
}

PyDoc_STRVAR(distinct_doc,
"distinct(records, attr, items=False)\n--\n\n"
"The set of the records' `attr` values, set(map(attrgetter(attr), records)); with `items`, of the\n"
"items of each (an iterable), set(chain.from_iterable(...)). The door's folds look at a batch's few\n"
"distinct values (streams/engine.py `fold`, `read_statements`), read here at the Structs' slots.");

static PyObject *
door_distinct(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 2 || nargs > 3 || !PyList_Check(args[0]) || !PyUnicode_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "distinct(records: list, attr: str, items: bool = False)");
        return NULL;
    }
    int items = nargs == 3 ? PyObject_IsTrue(args[2]) : 0;
    PyObject *found = items < 0 ? NULL : PySet_New(NULL);
    if (found == NULL)
        return NULL;
    Slot slot = {0};
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(args[0]); i++) {
        /* held: a getter written in Python, or an item's __hash__, may change the list */
        PyObject *record = Py_NewRef(PyList_GET_ITEM(args[0], i));
        PyObject *value = slot_get(&slot, record, args[1]);
        Py_DECREF(record);
        int failed = value == NULL;
        if (!failed && !items)
            failed = PySet_Add(found, value) < 0;
        else if (!failed) {
            PyObject *seq = PySequence_Fast(value, "distinct: an attr's value with items must be iterable");
            for (Py_ssize_t j = 0; seq != NULL && j < PySequence_Fast_GET_SIZE(seq) && !failed; j++) {
                PyObject *item = Py_NewRef(PySequence_Fast_GET_ITEM(seq, j)); /* its __hash__ may drop it */
                failed = PySet_Add(found, item) < 0;
                Py_DECREF(item);
            }
            failed |= seq == NULL;
            Py_XDECREF(seq);
        }
        Py_XDECREF(value);
        if (failed) {
            Py_DECREF(found);
            return NULL;
        }
    }
    return found;
}

/* set.add(value), or each of its items' with `items`: 0, -1 with an error */
static int
add_distinct(PyObject *found, PyObject *value, int items)
{
    if (!items)
        return PySet_Add(found, value);
    PyObject *seq = PySequence_Fast(value, "distinct: an attr's value with items must be iterable");
    int failed = seq == NULL;
    for (Py_ssize_t j = 0; !failed && j < PySequence_Fast_GET_SIZE(seq); j++) {
        PyObject *item = Py_NewRef(PySequence_Fast_GET_ITEM(seq, j)); /* its __hash__ may drop it */
        failed = PySet_Add(found, item) < 0;
        Py_DECREF(item);
    }
    Py_XDECREF(seq);
    return failed ? -1 : 0;
}

PyDoc_STRVAR(distinct_each_doc,
"distinct_each(records, attrs)\n--\n\n"
"[distinct(records, attr, items) for attr, items in attrs] in one pass over the records: a batch's\n"
"events are read once for all the folds' columns, not once a column (each a walk of the batch's\n"
"memory, which the cache no longer holds). At most 16 attrs.");

static PyObject *
door_distinct_each(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyList_Check(args[0]) || !PyTuple_Check(args[1]) || PyTuple_GET_SIZE(args[1]) > 16) {
        PyErr_SetString(PyExc_TypeError, "distinct_each(records: list, attrs: tuple of at most 16 (str, bool))");
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(args[1]);
    PyObject *names[16];
    int items[16];
    Slot slots[16] = {{0}};
    for (Py_ssize_t a = 0; a < n; a++) {
        PyObject *spec = PyTuple_GET_ITEM(args[1], a);
        if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) != 2 || !PyUnicode_Check(PyTuple_GET_ITEM(spec, 0))) {
            PyErr_SetString(PyExc_TypeError, "distinct_each: each attr is (str, bool)");
            return NULL;
        }
        names[a] = PyTuple_GET_ITEM(spec, 0);
        if ((items[a] = PyObject_IsTrue(PyTuple_GET_ITEM(spec, 1))) < 0)
            return NULL;
    }
    PyObject *sets = PyList_New(n);
    for (Py_ssize_t a = 0; sets != NULL && a < n; a++) {
        PyObject *found = PySet_New(NULL);
        if (found == NULL)
            Py_CLEAR(sets);
        else
            PyList_SET_ITEM(sets, a, found);
    }
    for (Py_ssize_t i = 0; sets != NULL && i < PyList_GET_SIZE(args[0]); i++) {
        /* held: a getter written in Python, or an item's __hash__, may change the list */
        PyObject *record = Py_NewRef(PyList_GET_ITEM(args[0], i));
        int failed = 0;
        for (Py_ssize_t a = 0; a < n && !failed; a++) {
            PyObject *value = slot_get(&slots[a], record, names[a]);
            failed = value == NULL || add_distinct(PyList_GET_ITEM(sets, a), value, items[a]) < 0;
            Py_XDECREF(value);
        }
        Py_DECREF(record);
        if (failed)
            Py_CLEAR(sets);
    }
    return sets;
}

PyDoc_STRVAR(misrouted_doc,
"misrouted(decoded, attr)\n--\n\n"
"How many (raw, event) pairs' Kafka key is not the event's `attr` (a str) in UTF-8:\n"
"sum(map(ne, keys, map(str.encode, values))), a missing key counted (streams/runtime.py\n"
"`Monitor._check_keys`). Read at the Structs' slots and compared in place, a str's UTF-8 held by it.");

static PyObject *
door_misrouted(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyList_Check(args[0]) || !PyUnicode_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "misrouted(decoded: list, attr: str)");
        return NULL;
    }
    PyObject *key_name = PyUnicode_InternFromString("key");
    if (key_name == NULL)
        return NULL;
    Slot key_slot = {0}, value_slot = {0};
    Py_ssize_t wrong = 0;
    int failed = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(args[0]) && !failed; i++) {
        /* held: a getter written in Python may change the list */
        PyObject *pair = Py_NewRef(PyList_GET_ITEM(args[0], i));
        PyObject *key = NULL, *value = NULL;
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            PyErr_SetString(PyExc_TypeError, "misrouted: decoded must hold (raw, event) pairs");
            failed = 1;
        }
        else if ((key = slot_get(&key_slot, PyTuple_GET_ITEM(pair, 0), key_name)) == NULL
                 || (value = slot_get(&value_slot, PyTuple_GET_ITEM(pair, 1), args[1])) == NULL)
            failed = 1;
        else if (!PyUnicode_Check(value)) { /* as str.encode says it */
            PyErr_Format(PyExc_TypeError, "misrouted: the event's %U is a %s, not a str", args[1],
                         Py_TYPE(value)->tp_name);
            failed = 1;
        }
        else {
            Py_ssize_t len;
            const char *utf8 = PyUnicode_AsUTF8AndSize(value, &len);
            if (utf8 == NULL)
                failed = 1;
            else if (PyBytes_CheckExact(key))
                wrong += PyBytes_GET_SIZE(key) != len || memcmp(PyBytes_AS_STRING(key), utf8, (size_t)len) != 0;
            else { /* None, or another type: Python's own != */
                PyObject *encoded = PyBytes_FromStringAndSize(utf8, len);
                int ne = encoded == NULL ? -1 : PyObject_RichCompareBool(key, encoded, Py_NE);
                Py_XDECREF(encoded);
                failed = ne < 0;
                wrong += ne > 0;
            }
        }
        Py_XDECREF(key);
        Py_XDECREF(value);
        Py_DECREF(pair);
    }
    Py_DECREF(key_name);
    return failed ? NULL : PyLong_FromSsize_t(wrong);
}

PyDoc_STRVAR(any_blank_doc,
"any_blank(decoded, attr)\n--\n\n"
"Whether an (raw, event) pair's event `attr` is blank, not str.strip(): empty or whitespace only\n"
"(str.isspace), or no str (str.strip would raise on it): the caller's own loop then looks at each\n"
"(streams/codecs.py `Decoder._check_keys`). Read at the Structs' slots.");

static PyObject *
door_any_blank(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyList_Check(args[0]) || !PyUnicode_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "any_blank(decoded: list, attr: str)");
        return NULL;
    }
    Slot slot = {0};
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(args[0]); i++) {
        /* held: a getter written in Python may change the list */
        PyObject *pair = Py_NewRef(PyList_GET_ITEM(args[0], i));
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            Py_DECREF(pair);
            PyErr_SetString(PyExc_TypeError, "any_blank: decoded must hold (raw, event) pairs");
            return NULL;
        }
        PyObject *value = slot_get(&slot, PyTuple_GET_ITEM(pair, 1), args[1]);
        Py_DECREF(pair);
        if (value == NULL)
            return NULL;
        int blank = 1; /* no str, or one not ready: the caller's loop says why */
        if (PyUnicode_Check(value) && PyUnicode_READY(value) == 0) {
            int kind = PyUnicode_KIND(value);
            const void *data = PyUnicode_DATA(value);
            Py_ssize_t n = PyUnicode_GET_LENGTH(value), k = 0;
            while (k < n && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, k)))
                k++;
            blank = k == n;
        }
        Py_DECREF(value);
        PyErr_Clear();
        if (blank)
            Py_RETURN_TRUE;
    }
    Py_RETURN_FALSE;
}

PyDoc_STRVAR(newest_doc,
"newest(events)\n--\n\n"
"max(map(attrgetter('ts'), events)) where every `ts` is an int of 64 bits, read at the Structs'\n"
"slots; None otherwise (no events, or a time only Python compares), for the caller's max.");

static PyObject *
door_newest(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 1 || !PyList_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "newest(events: list)");
        return NULL;
    }
    PyObject *ts_name = PyUnicode_InternFromString("ts");
    if (ts_name == NULL)
        return NULL;
    Slot slot = {0};
    long long most = 0;
    int exact = PyList_GET_SIZE(args[0]) > 0;
    for (Py_ssize_t i = 0; exact && i < PyList_GET_SIZE(args[0]); i++) {
        /* held: a getter written in Python may change the list */
        PyObject *ev = Py_NewRef(PyList_GET_ITEM(args[0], i));
        PyObject *ts = slot_get(&slot, ev, ts_name);
        Py_DECREF(ev);
        if (ts == NULL) {
            Py_DECREF(ts_name);
            return NULL;
        }
        int overflow = 0;
        long long v = PyLong_CheckExact(ts) ? PyLong_AsLongLongAndOverflow(ts, &overflow) : 0;
        exact = PyLong_CheckExact(ts) && !overflow && !(v == -1 && PyErr_Occurred());
        Py_DECREF(ts);
        if (exact && (i == 0 || v > most))
            most = v;
    }
    Py_DECREF(ts_name);
    PyErr_Clear();
    if (!exact)
        Py_RETURN_NONE;
    return PyLong_FromLongLong(most);
}

/* Whether `labels` is a dict whose class keeps dict's own __getitem__ (the engine's Labels add only
 * __missing__): 1, 0, or -1 with an error. A dict subclass's [] from C calls its __getitem__ as a
 * method (CPython's slot for it), about 40 ns a look-up; four an access event were a third of
 * count_rollup. */
static int
plain_getitem(PyObject *labels)
{
    if (PyDict_CheckExact(labels))
        return 1;
    if (!PyDict_Check(labels))
        return 0;
    PyObject *name = PyUnicode_InternFromString("__getitem__");
    if (name == NULL)
        return -1;
    PyObject *own = _PyType_Lookup(Py_TYPE(labels), name), *dicts = _PyType_Lookup(&PyDict_Type, name);
    Py_DECREF(name);
    return own != NULL && own == dicts;
}

/* labels[value]: where `plain` (plain_getitem), the dict's own look-up, and the [] of its class only
 * for a value not there (its __missing__ makes the label). A new reference, or NULL with an error. */
static PyObject *
label_get(PyObject *labels, int plain, PyObject *value)
{
    if (plain) {
        PyObject *found = PyDict_GetItemWithError(labels, value);
        if (found != NULL)
            return Py_NewRef(found);
        if (PyErr_Occurred())
            return NULL;
    }
    return PyObject_GetItem(labels, value);
}

/* attr's value of `record` looked up in `labels` (a dict subclass whose __missing__ makes the
 * label), or `none` when attr is None. A new reference, or NULL with an error. */
static PyObject *
label_of(Slot *slot, PyObject *record, PyObject *attr, PyObject *labels, int plain, PyObject *none)
{
    if (attr == Py_None) {
        Py_INCREF(none);
        return none;
    }
    PyObject *value = slot_get(slot, record, attr);
    if (value == NULL)
        return NULL;
    PyObject *label = label_get(labels, plain, value);
    Py_DECREF(value);
    return label;
}

/* counted[cell] += 1, a new int each time the count passes the small-int cache. A count that is
 * not an int, or that would pass a C long (n + 1 would overflow: undefined, in practice a negative
 * count), takes Python's own +, as `counted[cell] += 1` would. */
static int
count_cell(PyObject *counted, PyObject *cell)
{
    /* hashed once for the look-up and the store: a fresh tuple's hash is not kept */
    Py_hash_t hash = PyObject_Hash(cell);
    if (hash == -1)
        return -1;
    PyObject *before = _PyDict_GetItem_KnownHash(counted, cell, hash);
    if (before == NULL && PyErr_Occurred())
        return -1;
    long n = 0;
    int overflow = 0;
    if (before != NULL && PyLong_CheckExact(before))
        n = PyLong_AsLongAndOverflow(before, &overflow); /* an exact int: no __index__, no error */
    PyObject *after;
    if (before == NULL || (PyLong_CheckExact(before) && !overflow && n < LONG_MAX))
        after = PyLong_FromLong(n + 1);
    else {
        /* held: its __add__ may be Python, and may change `counted` */
        PyObject *one = PyLong_FromLong(1);
        Py_INCREF(before);
        after = one == NULL ? NULL : PyNumber_Add(before, one);
        Py_DECREF(before);
        Py_XDECREF(one);
    }
    if (after == NULL)
        return -1;
    int rc = _PyDict_SetItem_KnownHash(counted, cell, after, hash);
    Py_DECREF(after);
    return rc;
}

/* One cell per distinct item of the event's last `attrs` value (a list or a tuple), in its order:
 * labels[(the other attrs' values..., item)], counted under (its bucket's start in s, *cell). */
static int
count_extra(PyObject *counted, PyObject *ev, PyObject *minute, PyObject *attrs, PyObject *labels)
{
    Py_ssize_t n = PyTuple_GET_SIZE(attrs);
    if (n < 1) {
        PyErr_SetString(PyExc_TypeError, "count_rollup: extra attrs must name the items' attribute");
        return -1;
    }
    PyObject *key = PyTuple_New(n), *items = NULL, *done = NULL;
    if (key == NULL)
        return -1;
    int rc = -1;
    for (Py_ssize_t k = 0; k < n - 1; k++) {
        PyObject *value = PyObject_GetAttr(ev, PyTuple_GET_ITEM(attrs, k));
        if (value == NULL)
            goto out;
        PyTuple_SET_ITEM(key, k, value);
    }
    items = PyObject_GetAttr(ev, PyTuple_GET_ITEM(attrs, n - 1));
    if (items == NULL)
        goto out;
    if (!PyList_Check(items) && !PyTuple_Check(items)) {
        PyErr_SetString(PyExc_TypeError, "count_rollup: the extra cells' items must be a list or a tuple");
        goto out;
    }
    /* a tuple of them, held: a label's __missing__ (Python) may change the list meanwhile */
    Py_SETREF(items, PySequence_Tuple(items));
    if (items == NULL || (done = PySet_New(NULL)) == NULL)
        goto out;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(items); i++) {
        PyObject *item = PyTuple_GET_ITEM(items, i);
        int seen = PySet_Contains(done, item);
        if (seen < 0 || (!seen && PySet_Add(done, item) < 0))
            goto out;
        if (seen)
            continue;
        /* the key is fresh each time: the labels may keep the one they were given */
        PyObject *item_key = PyTuple_New(n);
        if (item_key == NULL)
            goto out;
        for (Py_ssize_t k = 0; k < n - 1; k++)
            PyTuple_SET_ITEM(item_key, k, Py_NewRef(PyTuple_GET_ITEM(key, k)));
        PyTuple_SET_ITEM(item_key, n - 1, Py_NewRef(item));
        PyObject *cell = PyObject_GetItem(labels, item_key);
        Py_DECREF(item_key);
        if (cell == NULL)
            goto out;
        if (!PyTuple_Check(cell)) {
            Py_DECREF(cell);
            PyErr_SetString(PyExc_TypeError, "count_rollup: a cell must be a tuple");
            goto out;
        }
        Py_ssize_t width = PyTuple_GET_SIZE(cell);
        PyObject *full = PyTuple_New(width + 1);
        if (full == NULL) {
            Py_DECREF(cell);
            goto out;
        }
        PyTuple_SET_ITEM(full, 0, Py_NewRef(minute));
        for (Py_ssize_t k = 0; k < width; k++)
            PyTuple_SET_ITEM(full, k + 1, Py_NewRef(PyTuple_GET_ITEM(cell, k)));
        Py_DECREF(cell);
        int counted_rc = count_cell(counted, full);
        Py_DECREF(full);
        if (counted_rc < 0)
            goto out;
    }
    rc = 0;
out:
    Py_DECREF(key);
    Py_XDECREF(items);
    Py_XDECREF(done);
    return rc;
}

PyDoc_STRVAR(count_rollup_doc,
"count_rollup(events, stream, fields_attr, org_attr, outcome_attr, action_attr, coverage, orgs, outcomes,\n"
"             counted, extra=None)\n--\n\n"
"Count each event in `counted` under its cell (minute in s, stream, class, org, outcome, action):\n"
"the minute of `ts`; the class from `coverage[tuple(fields)]`, a (class, unknown field ids) pair;\n"
"`orgs[org]` ('' when org_attr is None); `outcomes[outcome]`, `outcomes[action]` ('' when its attr\n"
"is None). Returns [(minute, unknown ids)]\n"
"of the events whose fields the catalog does not all know, in order. `extra`, (attrs, labels,\n"
"bucket): each event also counts, for each distinct item of its last attr's value (a list or a\n"
"tuple), the cell `labels[(its other attrs' values..., item)]` under (start of its `bucket` of\n"
"seconds, a whole number of minutes, *cell).");

static PyObject *
door_count_rollup(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 10 && nargs != 11) {
        PyErr_SetString(PyExc_TypeError, "count_rollup takes 10 or 11 arguments");
        return NULL;
    }
    PyObject *extra = nargs == 11 ? args[10] : Py_None, *extra_attrs = NULL, *extra_labels = NULL;
    long long extra_bucket = 0; /* seconds */
    if (extra != Py_None) {
        if (!PyTuple_Check(extra) || PyTuple_GET_SIZE(extra) != 3 || !PyTuple_Check(PyTuple_GET_ITEM(extra, 0))) {
            PyErr_SetString(PyExc_TypeError, "count_rollup: extra must be (attrs tuple, labels, bucket seconds)");
            return NULL;
        }
        extra_attrs = PyTuple_GET_ITEM(extra, 0);
        extra_labels = PyTuple_GET_ITEM(extra, 1);
        extra_bucket = PyLong_AsLongLong(PyTuple_GET_ITEM(extra, 2));
        if (extra_bucket == -1 && PyErr_Occurred())
            return NULL;
        if (extra_bucket <= 0 || extra_bucket % 60 != 0 || extra_bucket > 1000000000LL) {
            PyErr_SetString(PyExc_ValueError, "count_rollup: the extra cells' bucket must be whole minutes");
            return NULL;
        }
    }
    PyObject *events = args[0], *stream = args[1], *fields_attr = args[2], *org_attr = args[3];
    PyObject *outcome_attr = args[4], *action_attr = args[5], *coverage = args[6], *orgs = args[7];
    PyObject *outcomes = args[8], *counted = args[9];
    if (!PyList_Check(events) || !PyDict_Check(counted)) {
        PyErr_SetString(PyExc_TypeError, "count_rollup: events must be a list, counted a dict");
        return NULL;
    }
    int plain_coverage = plain_getitem(coverage), plain_orgs = plain_getitem(orgs);
    int plain_outcomes = plain_getitem(outcomes);
    if (plain_coverage < 0 || plain_orgs < 0 || plain_outcomes < 0)
        return NULL;
    PyObject *last_minute = NULL; /* the minute of the event before, and its quotient */
    long long last_q = 0;
    PyObject *gaps = PyList_New(0), *empty = PyUnicode_FromString("");
    PyObject *ts_name = PyUnicode_InternFromString("ts");
    if (gaps == NULL || empty == NULL || ts_name == NULL)
        goto error;
    Slot ts_slot = {0}, fields_slot = {0}, org_slot = {0}, outcome_slot = {0}, action_slot = {0};
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(events); i++) {
        /* held, not borrowed: a label's __missing__ (Python) may change `events` while ev is used */
        PyObject *ev = Py_NewRef(PyList_GET_ITEM(events, i));
        PyObject *ts = NULL, *minute = NULL, *fields = NULL, *key = NULL, *cover = NULL;
        PyObject *org = NULL, *outcome = NULL, *action = NULL, *cell = NULL;
        int ok = 0;
        ts = slot_get(&ts_slot, ev, ts_name);
        if (ts == NULL)
            goto next;
        long long ms = PyLong_AsLongLong(ts);
        if (ms == -1 && PyErr_Occurred())
            goto next;
        long long q = ms / 60000;
        if (ms % 60000 < 0)
            q -= 1; /* floor, as Python's // */
        /* a batch's events share a few minutes: one int object each, while they run */
        if (last_minute == NULL || q != last_q) {
            Py_XSETREF(last_minute, PyLong_FromLongLong(q * 60));
            last_q = q;
        }
        minute = Py_XNewRef(last_minute);
        if (minute == NULL)
            goto next;
        fields = slot_get(&fields_slot, ev, fields_attr);
        if (fields == NULL)
            goto next;
        key = PySequence_Tuple(fields);
        if (key == NULL)
            goto next;
        cover = label_get(coverage, plain_coverage, key);
        if (cover == NULL)
            goto next;
        if (!PyTuple_Check(cover) || PyTuple_GET_SIZE(cover) != 2) {
            PyErr_SetString(PyExc_TypeError, "count_rollup: coverage labels must be (class, unknown ids)");
            goto next;
        }
        org = label_of(&org_slot, ev, org_attr, orgs, plain_orgs, empty);
        outcome = org == NULL ? NULL : label_of(&outcome_slot, ev, outcome_attr, outcomes, plain_outcomes, empty);
        action = outcome == NULL ? NULL : label_of(&action_slot, ev, action_attr, outcomes, plain_outcomes, empty);
        if (action == NULL)
            goto next;
        cell = PyTuple_Pack(6, minute, stream, PyTuple_GET_ITEM(cover, 0), org, outcome, action);
        if (cell == NULL || count_cell(counted, cell) < 0)
            goto next;
        if (extra_attrs != NULL) {
            long long minutes = extra_bucket / 60, m = q % minutes;
            PyObject *bucket = PyLong_FromLongLong((q - (m < 0 ? m + minutes : m)) * 60);
            int extra_rc = bucket == NULL ? -1 : count_extra(counted, ev, bucket, extra_attrs, extra_labels);
            Py_XDECREF(bucket);
            if (extra_rc < 0)
                goto next;
        }
        PyObject *unknown = PyTuple_GET_ITEM(cover, 1);
        int has_unknown = PyObject_IsTrue(unknown);
        if (has_unknown < 0)
            goto next;
        if (has_unknown) {
            PyObject *gap = PyTuple_Pack(2, minute, unknown);
            if (gap == NULL || PyList_Append(gaps, gap) < 0) {
                Py_XDECREF(gap);
                goto next;
            }
            Py_DECREF(gap);
        }
        ok = 1;
    next:
        Py_DECREF(ev);
        Py_XDECREF(ts);
        Py_XDECREF(minute);
        Py_XDECREF(fields);
        Py_XDECREF(key);
        Py_XDECREF(cover);
        Py_XDECREF(org);
        Py_XDECREF(outcome);
        Py_XDECREF(action);
        Py_XDECREF(cell);
        if (!ok)
            goto error;
    }
    Py_DECREF(empty);
    Py_DECREF(ts_name);
    Py_XDECREF(last_minute);
    return gaps;
error:
    Py_XDECREF(gaps);
    Py_XDECREF(empty);
    Py_XDECREF(ts_name);
    Py_XDECREF(last_minute);
    return NULL;
}

PyDoc_STRVAR(group_slots_doc,
"group_slots(cells, slots, slot_s)\n--\n\n"
"A rollup block's cells {(minute in s, *labels): count} of the given slots (starts, in s, of\n"
"`slot_s` seconds each) as {slot: (labels, flat)}: `labels` maps each distinct labels tuple to\n"
"its index, in order of first appearance, and `flat` holds per cell its minute's offset in the\n"
"slot, its labels' index and its count. Cells of other slots are left out.");

static PyObject *
door_group_slots(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyDict_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "group_slots(cells dict, slots, slot_s)");
        return NULL;
    }
    PyObject *cells = args[0];
    long long slot_s = PyLong_AsLongLong(args[2]);
    if (slot_s == -1 && PyErr_Occurred())
        return NULL;
    if (slot_s <= 0) {
        PyErr_SetString(PyExc_ValueError, "group_slots: slot_s must be positive");
        return NULL;
    }
    PyObject *out = PyDict_New(), *iter = PyObject_GetIter(args[1]), *slot;
    if (out == NULL || iter == NULL)
        goto error;
    while ((slot = PyIter_Next(iter)) != NULL) {
        PyObject *group = Py_BuildValue("(NN)", PyDict_New(), PyList_New(0));
        int rc = group == NULL ? -1 : PyDict_SetItem(out, slot, group);
        Py_DECREF(slot);
        Py_XDECREF(group);
        if (rc < 0)
            goto error;
    }
    if (PyErr_Occurred())
        goto error;
    /* a block's cells come in about the order they were counted, minute after minute: the slot
     * of the last minute seen is looked up once for its run of cells */
    long long last_minute = 0, start = 0;
    PyObject *group = NULL; /* borrowed from `out`; NULL: the last minute's slot is not asked for */
    int known = 0;
    Py_ssize_t pos = 0;
    PyObject *cell, *count;
    while (PyDict_Next(cells, &pos, &cell, &count)) {
        if (!PyTuple_Check(cell) || PyTuple_GET_SIZE(cell) < 1) {
            PyErr_SetString(PyExc_TypeError, "group_slots: a cell must be a tuple (minute, *labels)");
            goto error;
        }
        long long minute = PyLong_AsLongLong(PyTuple_GET_ITEM(cell, 0));
        if (minute == -1 && PyErr_Occurred())
            goto error;
        if (!known || minute != last_minute) {
            long long m = minute % slot_s;
            start = minute - (m < 0 ? m + slot_s : m); /* floor, as Python's % */
            PyObject *key = PyLong_FromLongLong(start);
            if (key == NULL)
                goto error;
            group = PyDict_GetItemWithError(out, key);
            Py_DECREF(key);
            if (group == NULL && PyErr_Occurred())
                goto error;
            last_minute = minute;
            known = 1;
        }
        if (group == NULL)
            continue;
        PyObject *labels = PyTuple_GET_ITEM(group, 0), *flat = PyTuple_GET_ITEM(group, 1);
        PyObject *label = PyTuple_GetSlice(cell, 1, PyTuple_GET_SIZE(cell));
        if (label == NULL)
            goto error;
        PyObject *index = PyDict_GetItemWithError(labels, label); /* borrowed */
        if (index == NULL && !PyErr_Occurred()) {
            PyObject *fresh = PyLong_FromSsize_t(PyDict_GET_SIZE(labels));
            if (fresh != NULL && PyDict_SetItem(labels, label, fresh) == 0)
                index = fresh; /* the dict holds it now */
            Py_XDECREF(fresh);
        }
        Py_DECREF(label);
        if (index == NULL)
            goto error;
        PyObject *offset = PyLong_FromLongLong(minute - start);
        int rc = offset == NULL ? -1 : PyList_Append(flat, offset);
        Py_XDECREF(offset);
        if (rc < 0 || PyList_Append(flat, index) < 0 || PyList_Append(flat, count) < 0)
            goto error;
    }
    Py_DECREF(iter);
    return out;
error:
    Py_XDECREF(out);
    Py_XDECREF(iter);
    return NULL;
}

/* Append (raw, decode(raw.value)) to `ok`: 0. 1 when the record is for the caller to decode (see
 * decode_json), -1 on an error. */
static int
decode_one(PyObject *raw, PyObject *decode, Py_ssize_t max_bytes, PyObject *value_name, PyObject *headers_name,
           PyObject *ok, Slot slots[2])
{
    PyObject *headers = slot_get(&slots[0], raw, headers_name);
    if (headers == NULL)
        return -1;
    int has_headers = headers == Py_None ? 0 : PyObject_IsTrue(headers); /* -1: its __bool__ raised */
    Py_DECREF(headers);
    if (has_headers)
        return has_headers < 0 ? -1 : 1;
    PyObject *value = slot_get(&slots[1], raw, value_name);
    if (value == NULL)
        return -1;
    if (!PyBytes_Check(value) || PyBytes_GET_SIZE(value) == 0 || PyBytes_GET_SIZE(value) > max_bytes
        || PyBytes_AS_STRING(value)[0] == 0) {
        Py_DECREF(value);
        return 1;
    }
    PyObject *ev = PyObject_CallOneArg(decode, value);
    Py_DECREF(value);
    if (ev == NULL) {
        /* the caller decodes it again and names the reason; an interrupt or an exit goes on up */
        if (!PyErr_ExceptionMatches(PyExc_Exception))
            return -1;
        PyErr_Clear();
        return 1;
    }
    PyObject *pair = PyTuple_Pack(2, raw, ev);
    Py_DECREF(ev);
    int rc = pair == NULL ? -1 : PyList_Append(ok, pair);
    Py_XDECREF(pair);
    return rc;
}

PyDoc_STRVAR(decode_json_doc,
"decode_json(raws, decode, max_bytes)\n--\n\n"
"([(raw, decode(raw.value))...], stop): the records decoded in order, up to the first one that is\n"
"not a plain JSON record this call may take (no value, empty, over `max_bytes`, Avro's leading\n"
"zero byte, any headers) or that `decode` refuses; `stop` is its index (len(raws) if none).\n"
"The caller decodes from `stop` on record by record, and so gives each refusal its reason.");

static PyObject *
door_decode_json(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "decode_json(raws, decode, max_bytes) takes 3 arguments");
        return NULL;
    }
    PyObject *raws = args[0], *decode = args[1];
    Py_ssize_t max_bytes = PyLong_AsSsize_t(args[2]);
    if (max_bytes == -1 && PyErr_Occurred())
        return NULL;
    if (!PyList_Check(raws)) {
        PyErr_SetString(PyExc_TypeError, "decode_json: raws must be a list");
        return NULL;
    }
    PyObject *value_name = PyUnicode_InternFromString("value");
    PyObject *headers_name = PyUnicode_InternFromString("headers");
    PyObject *ok = PyList_New(0);
    if (value_name == NULL || headers_name == NULL || ok == NULL)
        goto error;
    Py_ssize_t i = 0;
    Slot slots[2] = {{0}}; /* headers, value */
    for (; i < PyList_GET_SIZE(raws); i++) {
        /* held, not borrowed: `decode` may be Python and change the list */
        PyObject *raw = Py_NewRef(PyList_GET_ITEM(raws, i));
        int stop = decode_one(raw, decode, max_bytes, value_name, headers_name, ok, slots);
        Py_DECREF(raw);
        if (stop < 0)
            goto error;
        if (stop)
            break;
    }
    Py_DECREF(value_name);
    Py_DECREF(headers_name);
    return Py_BuildValue("(Nn)", ok, i);
error:
    Py_XDECREF(value_name);
    Py_XDECREF(headers_name);
    Py_XDECREF(ok);
    return NULL;
}

PyDoc_STRVAR(doubtful_times_doc,
"doubtful_times(pairs, low, high, ahead, behind, reference)\n--\n\n"
"The (raw, event) pairs whose event's `ts` is not certainly in time: outside [low, high), or\n"
"(unless `reference`) without a Kafka timestamp (raw.timestamp > 0), more than `ahead` ms after\n"
"it or `behind` ms before it. A value C cannot compare exactly (beyond 64 bits) is doubtful too:\n"
"the caller judges every doubtful pair.");

/* v as a long long in `out`; 0 when it is not an int that fits (then no error is left set). */
static int
exact_ll(PyObject *v, long long *out)
{
    if (!PyLong_Check(v))
        return 0;
    int overflow = 0;
    *out = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (*out == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return !overflow;
}

/* 1 when the pair's event time is certainly in time (see doubtful_times), 0 when doubtful, -1 on an
 * error. */
static int
in_time(PyObject *pair, PyObject *ts_name, PyObject *stamp_name, int bounded, long long low, long long high,
        long long ahead, long long behind, int reference, Slot slots[2])
{
    const long long LIMIT = 1LL << 62;
    if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
        PyErr_SetString(PyExc_TypeError, "doubtful_times: each pair must be (raw, event)");
        return -1;
    }
    long long ts, stamp;
    PyObject *v = slot_get(&slots[0], PyTuple_GET_ITEM(pair, 1), ts_name);
    if (v == NULL)
        return -1;
    int exact = exact_ll(v, &ts);
    Py_DECREF(v);
    if (!(bounded && exact && low <= ts && ts < high))
        return 0;
    if (reference)
        return 1;
    v = slot_get(&slots[1], PyTuple_GET_ITEM(pair, 0), stamp_name);
    if (v == NULL)
        return -1;
    exact = exact_ll(v, &stamp);
    Py_DECREF(v);
    /* ts and stamp both inside +-2**62: their differences fit in a long long */
    return exact && stamp > 0 && stamp < LIMIT && ts - stamp <= ahead && stamp - ts <= behind;
}

static PyObject *
door_doubtful_times(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "doubtful_times(pairs, low, high, ahead, behind, reference) takes 6 arguments");
        return NULL;
    }
    PyObject *pairs = args[0];
    long long low, high, ahead, behind;
    /* bounds past +-2**62 would let the differences in in_time overflow: every pair is then doubtful */
    const long long LIMIT = 1LL << 62;
    int bounded = exact_ll(args[1], &low) && exact_ll(args[2], &high) && exact_ll(args[3], &ahead)
                  && exact_ll(args[4], &behind) && low > -LIMIT && high < LIMIT;
    int reference = PyObject_IsTrue(args[5]);
    if (reference < 0)
        return NULL;
    if (!PyList_Check(pairs)) {
        PyErr_SetString(PyExc_TypeError, "doubtful_times: pairs must be a list");
        return NULL;
    }
    PyObject *ts_name = PyUnicode_InternFromString("ts");
    PyObject *stamp_name = PyUnicode_InternFromString("timestamp");
    PyObject *doubtful = PyList_New(0);
    if (ts_name == NULL || stamp_name == NULL || doubtful == NULL)
        goto error;
    Slot slots[2] = {{0}}; /* the event's ts, the record's timestamp */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(pairs); i++) {
        /* held, not borrowed: a `ts` or `timestamp` property (Python) may change the list */
        PyObject *pair = Py_NewRef(PyList_GET_ITEM(pairs, i));
        int sure = in_time(pair, ts_name, stamp_name, bounded, low, high, ahead, behind, reference, slots);
        int rc = sure < 0 || (!sure && PyList_Append(doubtful, pair) < 0);
        Py_DECREF(pair);
        if (rc)
            goto error;
    }
    Py_DECREF(ts_name);
    Py_DECREF(stamp_name);
    return doubtful;
error:
    Py_XDECREF(ts_name);
    Py_XDECREF(stamp_name);
    Py_XDECREF(doubtful);
    return NULL;
}

/* Whether `text` holds a run a personal number may hide in (streams/personal_numbers.py `RUN`): at
 * least 11 digits, of any script, with at most three separators between any two of them. It finds
 * every run `RUN` does and a few more (a client's IPv4 address, which `RUN` then passes over):
 * looking at every name of every event, this is the door's widest loop, a code point at a time. */
static int
is_separator(Py_UCS4 c)
{
    switch (c) {
    case ' ': case '\t': case '.': case '_': case '/': case '\\': case '-':
    case 0xa0: case 0x3000: case 0xff0d: case 0xff0e: case 0xff0f: case 0xff3f:
    case 0x2010: case 0x2011: case 0x2012: case 0x2013: case 0x2014: case 0x2212:
    case ',': case '|': case ':': case '+': case 0xff0c: case 0xff5c: case 0xff1a: case 0xff0b:
        return 1;
    default:
        return 0;
    }
}

/* One group of ASCII digits (an X after them possibly) read as personal_numbers.py `_within` reads
 * a group: a card (scheme prefix and length, Luhn digit) or resident ID (birth date's digits, ISO
 * 7064 check character) that is the group or sits anywhere in it, or a mobile number, IMEI or
 * first-generation resident ID that is the group, a mobile behind 86 or 0086 or not. A superset: a resident ID's date is not checked to the day.
 * A group none of these can be read in is no name to look at: a snowflake or timestamped id costs
 * no Python (about 6 µs a name there). */
static int
luhn(const char *d, Py_ssize_t n)
{
    int total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int v = d[n - 1 - i] - '0';
        total += i % 2 == 0 ? v : (v > 4 ? v * 2 - 9 : v * 2);
    }
    return total % 10 == 0;
}

static int
all_digits(const char *d, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++)
        if (d[i] < '0' || d[i] > '9')
            return 0;
    return 1;
}

static int
card_at(const char *d, Py_ssize_t n)
{
    if (!all_digits(d, n))
        return 0;
    int scheme = (d[0] == '6' && d[1] == '2' && n >= 16 && n <= 19)
                 || (n == 16 && (d[0] == '4' || (d[0] == '5' && d[1] >= '1' && d[1] <= '5')
                                 || (d[0] == '2' && d[1] >= '2' && d[1] <= '7') || (d[0] == '3' && d[1] == '5')));
    return scheme && luhn(d, n);
}

static int
ric_at(const char *d, Py_ssize_t n)
{
    static const int weights[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    if (n != 18 || !all_digits(d, 17))
        return 0;
    if (memcmp(d + 6, "18", 2) < 0 || memcmp(d + 6, "21", 2) > 0 || memcmp(d + 10, "01", 2) < 0
        || memcmp(d + 10, "12", 2) > 0 || memcmp(d + 12, "01", 2) < 0 || memcmp(d + 12, "31", 2) > 0)
        return 0;
    int sum = 0;
    for (int i = 0; i < 17; i++)
        sum += (d[i] - '0') * weights[i];
    int check = (12 - sum % 11) % 11;
    char last = d[17] == 'x' ? 'X' : d[17];
    return last == (check == 10 ? 'X' : '0' + check);
}

static int
checked_at(const char *d, Py_ssize_t n)
{
    return ric_at(d, n) || card_at(d, n);
}

static int
mobile_at(const char *d, Py_ssize_t n)
{
    Py_ssize_t code = n == 13 && d[0] == '8' && d[1] == '6' ? 2 : n == 15 && !memcmp(d, "0086", 4) ? 4 : 0;
    return n - code == 11 && all_digits(d, n) && d[code] == '1' && d[code + 1] >= '3';
}

/* an IMEI: 15 digits and a Luhn check digit (personal_numbers._whole) */
static int
imei_at(const char *d, Py_ssize_t n)
{
    return n == 15 && all_digits(d, n) && luhn(d, n);
}

/* a first-generation resident ID: 15 digits, a province's code, a birth date's month and day
 * (personal_numbers.is_old_ric; a superset: the province is a range, the day not checked to the month) */
static int
old_ric_at(const char *d, Py_ssize_t n)
{
    return n == 15 && all_digits(d, n) && d[0] >= '1' && d[0] <= '8' && memcmp(d + 8, "01", 2) >= 0
           && memcmp(d + 8, "12", 2) <= 0 && memcmp(d + 10, "01", 2) >= 0 && memcmp(d + 10, "31", 2) <= 0;
}

static int
may_hold_number(const char *d, Py_ssize_t n)
{
    if (mobile_at(d, n) || checked_at(d, n) || imei_at(d, n) || old_ric_at(d, n))
        return 1;
    for (Py_ssize_t a = 0; a + 16 <= n; a++)
        for (Py_ssize_t w = 16; w <= 19 && a + w <= n; w++) {
            /* away from the ends, a resident ID or a UnionPay card only (personal_numbers._within) */
            int end = a == 0 || a + w == n;
            if ((end || ric_at(d + a, w) || (d[a] == '6' && d[a + 1] == '2')) && checked_at(d + a, w))
                return 1;
        }
    return 0;
}

#define LONGEST_GROUP 64 /* a longer group of digits is looked at in Python */

/* Whether the `len` characters at `first` (a run's digits, up to its last) are a dotted IPv4 address:
 * four groups of one to three ASCII digits parted by single dots. No personal number is read in one
 * (personal_numbers._whole: a card or resident ID has 15 digits or more, a mobile number a group of
 * four at least, 3-4-4, 3-8 or whole), and a client's address of 11 or 12 digits (10.250.190.244)
 * sent one name in twenty of the workload's to Python for nothing. */
static int
is_ipv4(int kind, const void *data, Py_ssize_t first, Py_ssize_t len)
{
    int groups = 1, width = 0;
    for (Py_ssize_t k = first; k < first + len; k++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, k);
        if (c >= '0' && c <= '9') {
            if (++width > 3)
                return 0;
        }
        else if (c == '.' && width > 0 && ++groups <= 4)
            width = 0;
        else
            return 0;
    }
    return groups == 4 && width > 0;
}

static int
holds_long_number(PyObject *text)
{
    if (PyUnicode_READY(text) < 0)
        return -1;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text), digits = 0, gap = 0, groups = 0, first = 0;
    if (kind == PyUnicode_1BYTE_KIND) {
        /* most names: a run needs 11 digits, and Latin-1 has no digit but ASCII's, so a name with
           fewer in all is passed by one count (about a third of the door's scan of access names) */
        const Py_UCS1 *d = data;
        Py_ssize_t all = 0;
        for (Py_ssize_t i = 0; i < n; i++)
            all += d[i] >= '0' && d[i] <= '9';
        if (all < 11)
            return 0;
    }
    int ascii = 1;
    for (Py_ssize_t i = 0; i <= n; i++) {
        Py_UCS4 c = i < n ? PyUnicode_READ(kind, data, i) : 0;
        int plain = c >= '0' && c <= '9';
        if (plain || (c > 127 && Py_UNICODE_ISDECIMAL(c))) {
            if (digits == 0) {
                first = i;
                groups = 1;
                ascii = 1;
            }
            else if (gap)
                groups++;
            ascii &= plain;
            digits++;
            gap = 0;
            continue;
        }
        if (digits > 0 && gap < 3 && is_separator(c)) {
            gap++;
            continue;
        }
        if (digits >= 11) {
            /* the run `RUN` matches ends here: groups parted by separators, or other scripts' digits,
               are looked at in Python; one group of ASCII digits (and an X right after) here. An X
               in full width is Python's too (it reads it as X), and an X is looked at as the
               group's and not: a mobile number's `13812345678x.push.example` is no resident ID */
            int x = gap == 0 && (c == 'X' || c == 'x' || c == 0xff38 || c == 0xff58);
            Py_ssize_t len = digits + x;
            if (groups == 4 && is_ipv4(kind, data, first, i - gap - first)) {
                digits = gap = 0;
                continue;
            }
            if (groups > 1 || !ascii || (x && c > 127) || len > LONGEST_GROUP)
                return 1;
            char group[LONGEST_GROUP];
            for (Py_ssize_t k = 0; k < len; k++)
                group[k] = (char)PyUnicode_READ(kind, data, first + k);
            if (may_hold_number(group, len) || (x && may_hold_number(group, digits)))
                return 1;
        }
        digits = gap = 0;
    }
    return 0;
}

/* The words for a secret (streams/secret_words.py `STEMS`), as its rule reads them: a character
 * typed in full width (Chinese input mode) as its ASCII one, ASCII letters in any case. The rule
 * is a regular expression, about 130 ns a character over a batch's names and words joined (3 s of
 * the mixed day's 2.8); this finds every name it can change, and a few more, at a few ns. */
#define MOST_WORDS 64
#define LONGEST_WORD 24
typedef struct {
    Py_ssize_t count, len[MOST_WORDS];
    Py_UCS4 word[MOST_WORDS][LONGEST_WORD]; /* ASCII letters in lower case */
    char first[256];                        /* the ASCII characters a word starts with, in either case */
    /* the words by their first character: head[c] is the first of those starting with ASCII c
       (head[128]: with another), next[w] the one after w; -1 ends. A name's word starts try the
       two or three words of their letter, not all of them (a fifth of the scan) */
    signed char head[129], next[MOST_WORDS];
} Words;

static inline Py_UCS4
folded(Py_UCS4 c)
{
    /* half_width's ranges (letters and digits): full-width punctuation stays itself, as in the rule,
       where `＿` is no word character and a word may start after it */
    if ((c >= 0xff10 && c <= 0xff19) || (c >= 0xff21 && c <= 0xff3a) || (c >= 0xff41 && c <= 0xff5a))
        c -= 0xfee0;
    /* the non-ASCII letters Python's (?i) takes for an ASCII one */
    else if (c == 0x17f)
        c = 's';
    else if (c == 0x130 || c == 0x131)
        c = 'i';
    else if (c == 0x212a)
        c = 'k';
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* a character a word for a secret may not follow (the rule's `(?<![^\W_])`, as folded): an ASCII
 * letter or digit; an `_` starts a word (a producer's snake-case key, `db_password=hunter2`) */
static int
in_word(Py_UCS4 c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* An ASCII letter's case as typed, in either width (half_width's): a word starting with an upper-case
 * letter right after a lower-case one starts there too (the rule's camel case, `loginPwd=hunter2`) */
static int
camel(Py_UCS4 before, Py_UCS4 c)
{
    return ((before >= 'a' && before <= 'z') || (before >= 0xff41 && before <= 0xff5a))
           && ((c >= 'A' && c <= 'Z') || (c >= 0xff21 && c <= 0xff3a));
}

static int
word_at(const Words *words, int kind, const void *data, Py_ssize_t n, Py_ssize_t i)
{
    Py_UCS4 c = folded(PyUnicode_READ(kind, data, i));
    for (Py_ssize_t w = words->head[c < 128 ? c : 128]; w >= 0; w = words->next[w]) {
        Py_ssize_t len = words->len[w], k = 1;
        if (words->word[w][0] != c || i + len > n)
            continue;
        while (k < len && folded(PyUnicode_READ(kind, data, i + k)) == words->word[w][k])
            k++;
        if (k == len)
            return 1;
    }
    return 0;
}

/* Whether `text` holds a word for a secret: for a name wider than a byte a character (scan_narrow
 * reads the others) */
static int
holds_word(PyObject *text, const void *what)
{
    const Words *words = what;
    if (PyUnicode_READY(text) < 0)
        return -1;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    Py_UCS4 before = 0, typed = 0; /* the character before, folded and as typed */
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 raw = PyUnicode_READ(kind, data, i), c = folded(raw);
        /* an ASCII word only where a word starts (the rule's lookbehind), another anywhere */
        int looked = c < 128 ? words->first[c] && (!in_word(before) || camel(typed, raw)) : 1;
        before = c;
        typed = raw;
        if (looked && word_at(words, kind, data, n, i))
            return 1;
    }
    return 0;
}

/* A customer id's form of letters then digits (organisation.yaml `customer_id_form`, `C[0-9]{7}`), as
 * personal_numbers.CustomerIdSeal reads it: its letters in any case or width (folded as above, Python's
 * (?i) on half_width), then at least `digits` digits, ASCII or full width, anywhere in a name. Its
 * search over a batch's names joined, lowered, was about 0.13 µs an access event; a table look a
 * character here. */
typedef struct {
    Py_ssize_t len, digits;
    Py_UCS4 letters[LONGEST_WORD]; /* ASCII, lower case */
    char first[256];               /* the Latin-1 characters the letters start with, in either case */
} Form;

/* Whether the form's letters and digits start at `i` of the `n` characters at `data` */
static int
form_at(const Form *form, int kind, const void *data, Py_ssize_t n, Py_ssize_t i)
{
    Py_ssize_t need = form->len + form->digits, k = 0;
    if (i + need > n)
        return 0;
    while (k < form->len && folded(PyUnicode_READ(kind, data, i + k)) == form->letters[k])
        k++;
    if (k < form->len)
        return 0;
    while (k < need) {
        Py_UCS4 d = folded(PyUnicode_READ(kind, data, i + k));
        if (d < '0' || d > '9')
            return 0;
        k++;
    }
    return 1;
}

static int
holds_form(PyObject *text, const Form *form)
{
    if (PyUnicode_READY(text) < 0)
        return -1;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    for (Py_ssize_t i = 0; i + form->len + form->digits <= n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if ((c < 256 ? form->first[c] : folded(c) == form->letters[0]) && form_at(form, kind, data, n, i))
            return 1;
    }
    return 0;
}

/* What a Latin-1 character is to the searches above, for their one pass over a 1-byte name
 * (`scan_narrow`): most names are ASCII, and three loops over each, one per search, were a third
 * of the scan (a table look a character for all three, here). */
enum { DIGIT = 1, IN_WORD = 2, WORD_START = 4, FORM_START = 8, AT_SIGN = 16, LOWER = 32, UPPER = 64 };

typedef struct {
    unsigned char of[256];
} Classes;

static void
read_classes(Classes *classes, const Words *words, const Form *form)
{
    for (int c = 0; c < 256; c++)
        classes->of[c] = (c >= '0' && c <= '9' ? DIGIT : 0) | (in_word(folded(c)) ? IN_WORD : 0)
                         | (words->first[c] ? WORD_START : 0) | (form != NULL && form->first[c] ? FORM_START : 0)
                         | (c == '@' ? AT_SIGN : 0) | (c >= 'a' && c <= 'z' ? LOWER : 0) | (c >= 'A' && c <= 'Z' ? UPPER : 0);
}

/* One pass over a 1-byte name for holds_word's and holds_form's finds (each unless already found)
 * and an `@`; returns its count of digits, holds_long_number's own first look: fewer than 11, no run */
static Py_ssize_t
scan_narrow(const Py_UCS1 *d, Py_ssize_t n, const Classes *classes, const Words *words, const Form *form,
            int *secret, int *customer, int *at)
{
    Py_ssize_t digits = 0;
    unsigned char before = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char k = classes->of[d[i]];
        digits += k & DIGIT;
        if (k & (WORD_START | FORM_START | AT_SIGN)) {
            /* an ASCII word only where a word starts (the rule's lookbehind), as holds_word */
            if ((k & WORD_START) && (!(before & IN_WORD) || ((before & LOWER) && (k & UPPER))) && !*secret)
                *secret = word_at(words, PyUnicode_1BYTE_KIND, d, n, i);
            if ((k & FORM_START) && !*customer)
                *customer = form_at(form, PyUnicode_1BYTE_KIND, d, n, i);
            *at |= (k & AT_SIGN) != 0;
        }
        before = k;
    }
    return digits;
}

/* The form read from `spec`: None (no form: 0), or (letters, digits), letters lower-case ASCII of 1
 * to 24, digits at least 1 (1); -1 with an error */
static int
read_form(Form *form, PyObject *spec)
{
    if (spec == Py_None)
        return 0;
    PyObject *letters = PyTuple_Check(spec) && PyTuple_GET_SIZE(spec) == 2 ? PyTuple_GET_ITEM(spec, 0) : NULL;
    if (letters == NULL || !PyUnicode_Check(letters) || PyUnicode_READY(letters) < 0
        || PyUnicode_GET_LENGTH(letters) < 1 || PyUnicode_GET_LENGTH(letters) > LONGEST_WORD
        || !PyLong_Check(PyTuple_GET_ITEM(spec, 1))) {
        PyErr_SetString(PyExc_ValueError, "names_scan: form is None or (letters, digits)");
        return -1;
    }
    form->digits = PyLong_AsSsize_t(PyTuple_GET_ITEM(spec, 1));
    if (form->digits < 1) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "names_scan: a form's digits are at least 1");
        return -1;
    }
    form->len = PyUnicode_GET_LENGTH(letters);
    for (Py_ssize_t k = 0; k < form->len; k++) {
        Py_UCS4 c = PyUnicode_READ_CHAR(letters, k);
        if (c < 'a' || c > 'z') {
            PyErr_SetString(PyExc_ValueError, "names_scan: a form's letters are lower-case ASCII");
            return -1;
        }
        form->letters[k] = c;
    }
    form->first[form->letters[0]] = form->first[form->letters[0] - 32] = 1;
    return 1;
}

/* A name found holding what a seal looks for: (index, attr) appended to `found` */
static int
found_at(PyObject *found, Py_ssize_t i, PyObject *attr)
{
    PyObject *pair = Py_BuildValue("(nO)", i, attr);
    int failed = pair == NULL || PyList_Append(found, pair) < 0;
    Py_XDECREF(pair);
    return failed ? -1 : 0;
}

/* The words for a secret read from `words` (a tuple of lower-case ASCII str), or -1 with an error */
static int
read_words(Words *words, PyObject *tuple)
{
    if (PyTuple_GET_SIZE(tuple) > MOST_WORDS) {
        PyErr_SetString(PyExc_ValueError, "names_scan: at most 64 words");
        return -1;
    }
    words->count = PyTuple_GET_SIZE(tuple);
    memset(words->head, -1, sizeof words->head);
    for (Py_ssize_t w = words->count - 1; w >= 0; w--) { /* from the last: each head's chain in order */
        PyObject *word = PyTuple_GET_ITEM(tuple, w);
        if (!PyUnicode_Check(word) || PyUnicode_READY(word) < 0 || PyUnicode_GET_LENGTH(word) == 0
            || PyUnicode_GET_LENGTH(word) > LONGEST_WORD) {
            PyErr_SetString(PyExc_ValueError, "names_scan: each word is a str of 1 to 24 characters");
            return -1;
        }
        words->len[w] = PyUnicode_GET_LENGTH(word);
        for (Py_ssize_t k = 0; k < words->len[w]; k++)
            words->word[w][k] = PyUnicode_READ_CHAR(word, k);
        Py_UCS4 c = words->word[w][0];
        if (c < 128)
            words->first[c] = words->first[c >= 'a' && c <= 'z' ? c - 32 : c] = 1;
        words->next[w] = words->head[c < 128 ? c : 128];
        words->head[c < 128 ? c : 128] = (signed char)w;
    }
    return 0;
}

/* What one name's strings (a str, or a list's str items) hold: a long number (`*number`), a word for a
 * secret (`*secret`), the form's letters and digits (`*customer`), an `@` (`*at`); each string into
 * `parts` unless it is NULL. -1 with an error */
typedef struct {
    const Words *words;
    const Form *form; /* NULL: no form */
    const Classes *classes;
    PyObject *parts;  /* NULL: the text is not asked for */
} Look;

static int
scan_value(PyObject *value, const Look *look, int *number, int *secret, int *customer, int *at)
{
    Py_ssize_t n = PyList_Check(value) ? PyList_GET_SIZE(value) : 1;
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *item = PyList_Check(value) ? PyList_GET_ITEM(value, j) : value;
        if (!PyUnicode_Check(item))
            continue;
        if ((look->parts != NULL && PyList_Append(look->parts, item) < 0) || PyUnicode_READY(item) < 0)
            return -1;
        int hit;
        if (PyUnicode_KIND(item) == PyUnicode_1BYTE_KIND) {
            /* without a form no character is FORM_START: `*customer` stays 0 */
            Py_ssize_t digits = scan_narrow(PyUnicode_1BYTE_DATA(item), PyUnicode_GET_LENGTH(item), look->classes,
                                            look->words, look->form, secret, customer, at);
            hit = *number || digits < 11 ? *number : holds_long_number(item);
        }
        else {
            hit = *secret ? 1 : holds_word(item, look->words);
            if (hit < 0)
                return -1;
            *secret = hit;
            hit = *customer || look->form == NULL ? *customer : holds_form(item, look->form);
            if (hit < 0)
                return -1;
            *customer = hit;
            *at |= PyUnicode_FindChar(item, '@', 0, PyUnicode_GET_LENGTH(item), 1) >= 0;
            hit = *number ? 1 : holds_long_number(item);
        }
        if (hit < 0)
            return -1;
        *number = hit;
    }
    return 0;
}

/* names_scan's loop: the finds into `found` (numbers, secrets, customers or NULL, emails), and
 * with the text asked for, `parts` gets every string, then each record's end mark */
static int
scan_records(PyObject *records, PyObject *attrs, const Look *look, PyObject *end, PyObject *found[4], Slot *slots)
{
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(records); i++) {
        /* held: a getter written in Python may drop it from the list */
        PyObject *record = Py_NewRef(PyList_GET_ITEM(records, i));
        int failed = 0;
        for (Py_ssize_t a = 0; a < PyTuple_GET_SIZE(attrs) && !failed; a++) {
            PyObject *attr = PyTuple_GET_ITEM(attrs, a);
            PyObject *value = slot_get(&slots[a], record, attr);
            if (value == NULL) {
                failed = 1;
                break;
            }
            int hits[4] = {0, 0, 0, 0};
            failed = scan_value(value, look, &hits[0], &hits[1], &hits[2], &hits[3]) < 0;
            for (int f = 0; f < 4 && !failed; f++)
                failed = hits[f] && found_at(found[f], i, attr) < 0;
            Py_DECREF(value);
        }
        Py_DECREF(record);
        if (failed || (look->parts != NULL && PyList_Append(look->parts, end) < 0))
            return -1;
    }
    return 0;
}

PyDoc_STRVAR(names_scan_doc,
"names_scan(records, attrs, words, form=None, joined=True)\n--\n\n"
"One pass over the records' `attrs` (a str, a list of str, or None) for the door's seals: (text,\n"
"numbers, secrets, customers, emails). `text` (None unless `joined`) is every name in one str, joined by\n"
"\\x1f, each record's ended by \\x1e: one search of it tells whether any name of the batch holds a form\n"
"(a customer id's, say), and where it found one tells which record holds it, unless a name holds\n"
"\\x1e. `numbers` is the (index, attr) of each name holding a run of 11 digits or more where a card,\n"
"resident ID, mobile number or IMEI may hide (a run that is one group of ASCII digits is one only if\n"
"such a number can be read in it); `secrets` of each holding one of `words` (at most 64 str of 1 to 24\n"
"characters, ASCII letters in lower case): an ASCII one in any case or width where a word starts,\n"
"another anywhere. `customers`, with `form` (letters, digits), of each holding those letters\n"
"(lower-case ASCII, 1 to 24) in any case or width and that many digits after them, anywhere; None\n"
"without. `emails` of each holding an `@`.");

static PyObject *
door_names_scan(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 3 || nargs > 5 || !PyList_Check(args[0]) || !PyTuple_Check(args[1]) || !PyTuple_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError,
                        "names_scan(records: list, attrs: tuple, words: tuple, form=None, joined=True)");
        return NULL;
    }
    int joined = nargs == 5 ? PyObject_IsTrue(args[4]) : 1;
    if (joined < 0)
        return NULL;
    /* one per call, off the stack (6 kB): a getter run by the scan may call this again */
    Words *words = PyMem_Calloc(1, sizeof *words);
    Form *form = PyMem_Calloc(1, sizeof *form);
    Classes *classes = PyMem_Calloc(1, sizeof *classes);
    Slot *slots = PyMem_Calloc(PyTuple_GET_SIZE(args[1]) + 1, sizeof *slots);
    if (words == NULL || form == NULL || classes == NULL || slots == NULL) {
        PyMem_Free(words);
        PyMem_Free(form);
        PyMem_Free(classes);
        PyMem_Free(slots);
        return PyErr_NoMemory();
    }
    PyObject *result = NULL, *separator = NULL, *text = NULL;
    PyObject *parts = joined ? PyList_New(0) : NULL, *end = PyUnicode_FromString("\x1e");
    PyObject *found[4] = {PyList_New(0), PyList_New(0), NULL, PyList_New(0)}; /* numbers, secrets, customers, emails */
    int formed = (joined && parts == NULL) || end == NULL || found[0] == NULL || found[1] == NULL || found[3] == NULL
                         || read_words(words, args[2]) < 0
                     ? -1
                     : read_form(form, nargs >= 4 ? args[3] : Py_None);
    if (formed < 0 || (formed && (found[2] = PyList_New(0)) == NULL))
        goto done;
    read_classes(classes, words, formed ? form : NULL);
    Look look = {words, formed ? form : NULL, classes, parts};
    if (scan_records(args[0], args[1], &look, end, found, slots) < 0)
        goto done;
    if (joined) {
        separator = PyUnicode_FromString("\x1f");
        text = separator == NULL ? NULL : PyUnicode_Join(separator, parts);
        if (text == NULL)
            goto done;
    }
    result = PyTuple_Pack(5, joined ? text : Py_None, found[0], found[1], formed ? found[2] : Py_None, found[3]);
done:
    PyMem_Free(words);
    PyMem_Free(form);
    PyMem_Free(classes);
    PyMem_Free(slots);
    Py_XDECREF(parts);
    Py_XDECREF(end);
    for (int f = 0; f < 4; f++)
        Py_XDECREF(found[f]);
    Py_XDECREF(separator);
    Py_XDECREF(text);
    return result;
}

PyDoc_STRVAR(share_doc,
"share(decoded, attrs, pool, most, longest)\n--\n\n"
"Each (raw, event) pair's event `attrs` (a str, or a list of them, its items replaced in place) made\n"
"the pool's equal str, read and written at the Structs' slots: a bank's few hundred systems,\n"
"purposes and field ids come out as one object each, hashed once, compared by identity in every\n"
"dict downstream (streams/codecs.py `Decoder.decode`). Only an exact str of up to `longest` code\n"
"points is pooled, and only while the pool holds fewer than `most`: past that, strings stay as\n"
"decoded, so junk input cannot grow it. Anything else (None, an enum, a number) is left alone.");

/* `value`'s equal in the pool, a borrowed reference: `value` itself once pooled, or NULL (not pooled:
 * no exact str, too long, the pool full; or an error, set) */
static PyObject *
pooled(PyObject *pool, PyObject *value, Py_ssize_t most, Py_ssize_t longest)
{
    if (!PyUnicode_CheckExact(value) || PyUnicode_GET_LENGTH(value) > longest)
        return NULL;
    PyObject *found = PyDict_GetItemWithError(pool, value);
    if (found != NULL || PyErr_Occurred() || PyDict_GET_SIZE(pool) >= most)
        return found;
    return PyDict_SetItem(pool, value, value) < 0 ? NULL : value;
}

/* The pool's strings a call has met, held, at a slot a cheap key of their bytes picks: the pool's
 * dict hashes each fresh string whole (SipHash: ~370 instructions a lookup, as much as the sharing
 * saves downstream), where a batch repeats a few hundred values. A slot another value took is a
 * miss, and the dict answers. */
#define SEEN_BITS 10

static size_t
seen_at(PyObject *value)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(value) * PyUnicode_KIND(value);
    const char *data = PyUnicode_DATA(value);
    uint64_t head = 0, tail = 0;
    memcpy(&head, data, n < 8 ? (size_t)n : 8);
    if (n > 8)
        memcpy(&tail, data + n - 8, 8);
    uint64_t key = (head ^ (tail * 0x9E3779B97F4A7C15ULL) ^ (uint64_t)n) * 0x9E3779B97F4A7C15ULL;
    return (size_t)(key >> (64 - SEEN_BITS));
}

/* pooled(), asking `seen` first: equal exact strs have the same kind, length and bytes */
static PyObject *
pooled_seen(PyObject **seen, PyObject *pool, PyObject *value, Py_ssize_t most, Py_ssize_t longest)
{
    if (!PyUnicode_CheckExact(value) || PyUnicode_READY(value) < 0 || PyUnicode_GET_LENGTH(value) > longest)
        return NULL;
    size_t at = seen_at(value);
    PyObject *known = seen[at];
    if (known != NULL && PyUnicode_GET_LENGTH(known) == PyUnicode_GET_LENGTH(value)
        && PyUnicode_KIND(known) == PyUnicode_KIND(value)
        && memcmp(PyUnicode_DATA(known), PyUnicode_DATA(value),
                  PyUnicode_GET_LENGTH(value) * PyUnicode_KIND(value)) == 0)
        return known;
    PyObject *found = pooled(pool, value, most, longest);
    if (found != NULL)
        Py_XSETREF(seen[at], Py_NewRef(found));
    return found;
}

static PyObject *
door_share(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t most, longest;
    if (nargs != 5 || !PyList_Check(args[0]) || !PyTuple_Check(args[1]) || !PyDict_CheckExact(args[2])
        || (most = PyLong_AsSsize_t(args[3])) < 0 || (longest = PyLong_AsSsize_t(args[4])) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError,
                            "share(decoded: list, attrs: tuple, pool: dict, most: int, longest: int)");
        return NULL;
    }
    PyObject *attrs = args[1], *pool = args[2];
    Py_ssize_t n_attrs = PyTuple_GET_SIZE(attrs);
    for (Py_ssize_t a = 0; a < n_attrs; a++)
        if (!PyUnicode_CheckExact(PyTuple_GET_ITEM(attrs, a))) {
            PyErr_SetString(PyExc_TypeError, "share: attrs must be names");
            return NULL;
        }
    Slot *slots = PyMem_Calloc(n_attrs ? n_attrs : 1, sizeof(Slot));
    PyObject **seen = PyMem_Calloc((size_t)1 << SEEN_BITS, sizeof(PyObject *));
    PyObject *result = NULL;
    if (slots == NULL || seen == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(args[0]); i++) {
        /* held: a getter written in Python may change the list */
        PyObject *pair = Py_NewRef(PyList_GET_ITEM(args[0], i));
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            Py_DECREF(pair);
            PyErr_SetString(PyExc_TypeError, "share: decoded must hold (raw, event) pairs");
            goto done;
        }
        PyObject *ev = PyTuple_GET_ITEM(pair, 1);
        for (Py_ssize_t a = 0; a < n_attrs; a++) {
            PyObject *attr = PyTuple_GET_ITEM(attrs, a);
            PyObject *value = slot_get(&slots[a], ev, attr), *found = NULL;
            int failed = value == NULL;
            if (!failed && PyList_CheckExact(value)) {
                /* no Python code runs below (exact str keys hash and compare in C): the list holds */
                for (Py_ssize_t j = 0; j < PyList_GET_SIZE(value); j++) {
                    PyObject *item = PyList_GET_ITEM(value, j);
                    found = pooled_seen(seen, pool, item, most, longest);
                    if (found != NULL && found != item) {
                        PyList_SET_ITEM(value, j, Py_NewRef(found));
                        Py_DECREF(item);
                    }
                    else if (found == NULL && (failed = PyErr_Occurred() != NULL))
                        break;
                }
            }
            else if (!failed) {
                found = pooled_seen(seen, pool, value, most, longest);
                if (found != NULL && found != value)
                    failed = slot_set(&slots[a], ev, attr, found) < 0;
                else if (found == NULL)
                    failed = PyErr_Occurred() != NULL;
            }
            Py_XDECREF(value);
            if (failed) {
                Py_DECREF(pair);
                goto done;
            }
        }
        Py_DECREF(pair);
    }
    result = Py_NewRef(Py_None);
done:
    for (size_t k = 0; seen != NULL && k < ((size_t)1 << SEEN_BITS); k++)
        Py_XDECREF(seen[k]);
    PyMem_Free(seen);
    PyMem_Free(slots);
    return result;
}

static PyMethodDef door_methods[] = {
    {"pseudonymize", (PyCFunction)(void (*)(void))door_pseudonymize, METH_FASTCALL, pseudonymize_doc},
    {"count_rollup", (PyCFunction)(void (*)(void))door_count_rollup, METH_FASTCALL, count_rollup_doc},
    {"group_slots", (PyCFunction)(void (*)(void))door_group_slots, METH_FASTCALL, group_slots_doc},
    {"decode_json", (PyCFunction)(void (*)(void))door_decode_json, METH_FASTCALL, decode_json_doc},
    {"doubtful_times", (PyCFunction)(void (*)(void))door_doubtful_times, METH_FASTCALL, doubtful_times_doc},
    {"names_scan", (PyCFunction)(void (*)(void))door_names_scan, METH_FASTCALL, names_scan_doc},
    {"distinct", (PyCFunction)(void (*)(void))door_distinct, METH_FASTCALL, distinct_doc},
    {"distinct_each", (PyCFunction)(void (*)(void))door_distinct_each, METH_FASTCALL, distinct_each_doc},
    {"misrouted", (PyCFunction)(void (*)(void))door_misrouted, METH_FASTCALL, misrouted_doc},
    {"any_blank", (PyCFunction)(void (*)(void))door_any_blank, METH_FASTCALL, any_blank_doc},
    {"newest", (PyCFunction)(void (*)(void))door_newest, METH_FASTCALL, newest_doc},
    {"share", (PyCFunction)(void (*)(void))door_share, METH_FASTCALL, share_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef door_module = {
    PyModuleDef_HEAD_INIT, "streams._door",
    "The engine's door in C: decoding, event-time checks, pseudonyms, long numbers and\n"
    "words for secrets in names, and rollup counts of a batch (streams/codecs.py, streams/engine.py).", -1,
    door_methods,
};

PyMODINIT_FUNC
PyInit__door(void)
{
    return PyModule_Create(&door_module);
}
