/* bulk_query's quiet path in C (detectors/bulk_query.py): most batches of an employee's reads
 * cannot open an episode, and all they do is join the window. Python spent ~6 µs per access
 * there, building tuples and walking deques; these two loops do the same in one pass each.
 *
 * No decision is made here. `reads` builds the window entries of a batch and the sums that
 * BulkQueryDetector._quiet judges; `add_quietly` is ActorWindow.add + evict_role + evict_legal for
 * reads judged quiet. Each one returns None / False, having changed nothing, for anything but the
 * common case (a field set not profiled yet, more or fewer than one customer, a read out of time
 * order, a window keeping its exact score, a figure past 2**40): Python then does it as before.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define LIMIT (1LL << 40) /* weights and records below it: a window's sums cannot pass int64 */
#define MAX_TIERS 64
#define MAX_READS (1 << 20) /* per call: 2**20 reads of 2**40 cannot pass a sum's 2**62 headroom */

static PyObject *s_fields, *s_action, *s_subject_ids, *s_row_count, *s_ts, *s_event_id, *s_entries,
    *s_events, *s_role, *s_total, *s_weights, *s_last_ts, *s_tally, *s_totals, *s_added, *s_chunks,
    *s_append, *s_popleft;

/* An exact int in [low, high) into *out; 0 when it is anything else (no error set). */
static int
int_in(PyObject *v, long long low, long long high, long long *out)
{
    if (!PyLong_CheckExact(v))
        return 0;
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow || (x == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 0;
    }
    *out = x;
    return low <= x && x < high;
}

/* Whether `obj` can never be part of a reference cycle: an int, a str, a bool, or a tuple of strs
 * (an entry's categories). */
static int
acyclic(PyObject *obj)
{
    if (PyLong_CheckExact(obj) || PyUnicode_CheckExact(obj) || PyBool_Check(obj))
        return 1;
    if (!PyTuple_CheckExact(obj))
        return 0;
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(obj); k++)
        if (!PyUnicode_CheckExact(PyTuple_GET_ITEM(obj, k)))
            return 0;
    return 1;
}

/* Stop the cycle collector from tracking a tuple that cannot be in a cycle, as it would itself
 * at its first pass over it. A window keeps two tuples per access for a day: every young-generation
 * pass visited each of them once (measured: 6 passes of 25-37 ms per 100 000 accesses). */
static PyObject *
untracked(PyObject *tuple)
{
    if (tuple == NULL || !PyObject_GC_IsTracked(tuple))
        return tuple;
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(tuple); k++)
        if (!acyclic(PyTuple_GET_ITEM(tuple, k)))
            return tuple;
    PyObject_GC_UnTrack(tuple);
    return tuple;
}

/* A tiers tuple: ints in [0, n). */
static int
tiers_ok(PyObject *tiers, Py_ssize_t n)
{
    if (!PyTuple_CheckExact(tiers))
        return 0;
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(tiers); k++) {
        long long t;
        if (!int_in(PyTuple_GET_ITEM(tiers, k), 0, n, &t))
            return 0;
    }
    return 1;
}

/* The profile of an access: profiles[(tuple(fields), action)], a new reference; NULL without an
 * error when there is none (or it is not a profile). */
static PyObject *
profile_of(PyObject *ev, PyObject *profiles, Py_ssize_t ntiers)
{
    PyObject *fields = PyObject_GetAttr(ev, s_fields);
    if (fields == NULL)
        return NULL;
    PyObject *action = PyObject_GetAttr(ev, s_action);
    PyObject *key = NULL, *profile = NULL;
    if (action != NULL && PyList_CheckExact(fields)) {
        PyObject *tuple = PyList_AsTuple(fields);
        if (tuple != NULL) {
            key = PyTuple_Pack(2, tuple, action);
            Py_DECREF(tuple);
        }
    }
    Py_DECREF(fields);
    Py_XDECREF(action);
    if (key == NULL)
        return NULL;
    profile = PyDict_GetItemWithError(profiles, key);
    Py_DECREF(key);
    if (profile == NULL)
        return NULL;
    /* (class, categories, rank, weight, tiers) */
    long long x;
    if (!PyTuple_CheckExact(profile) || PyTuple_GET_SIZE(profile) != 5 ||
        !PyTuple_CheckExact(PyTuple_GET_ITEM(profile, 1)) || !int_in(PyTuple_GET_ITEM(profile, 2), 0, 3, &x) ||
        !int_in(PyTuple_GET_ITEM(profile, 3), 0, LIMIT, &x) || !tiers_ok(PyTuple_GET_ITEM(profile, 4), ntiers))
        return NULL;
    return Py_NewRef(profile);
}

/* The window entry of an access naming one customer: (ts, customer, weight, records, categories,
 * rank), records max(row_count, 1); its tiers in *tiers (new). NULL without an error when the
 * access is not that case. */
static PyObject *
entry_of(PyObject *ev, PyObject *profiles, Py_ssize_t ntiers, PyObject **tiers)
{
    PyObject *profile = profile_of(ev, profiles, ntiers);
    if (profile == NULL)
        return NULL;
    PyObject *ids = PyObject_GetAttr(ev, s_subject_ids);
    PyObject *ts = PyObject_GetAttr(ev, s_ts);
    PyObject *rows = PyObject_GetAttr(ev, s_row_count);
    PyObject *entry = NULL;
    long long t, n;
    if (ids != NULL && ts != NULL && rows != NULL && PyList_CheckExact(ids) && PyList_GET_SIZE(ids) == 1 &&
        PyUnicode_CheckExact(PyList_GET_ITEM(ids, 0)) && int_in(ts, -(1LL << 61), 1LL << 61, &t) &&
        int_in(rows, -LIMIT, LIMIT, &n)) {
        PyObject *records = PyLong_FromLongLong(n > 1 ? n : 1);
        if (records != NULL) {
            entry = untracked(PyTuple_Pack(6, ts, PyList_GET_ITEM(ids, 0), PyTuple_GET_ITEM(profile, 3), records,
                                 PyTuple_GET_ITEM(profile, 1), PyTuple_GET_ITEM(profile, 2)));
            Py_DECREF(records);
        }
        if (entry != NULL)
            *tiers = Py_NewRef(PyTuple_GET_ITEM(profile, 4));
    }
    Py_XDECREF(ids);
    Py_XDECREF(ts);
    Py_XDECREF(rows);
    Py_DECREF(profile);
    return entry;
}

PyDoc_STRVAR(reads_doc,
"reads(evs, profiles, tiers)\n--\n\n"
"The window entries of a batch of one employee's accesses, each naming one customer, and what\n"
"_quiet judges of them: (entries, tiers of each, sum of weights, sum of each customer's heaviest\n"
"weight, records added per tier). `profiles` maps (tuple(fields), action) to (class, categories,\n"
"rank, weight, tiers). None when an access is not that case, or its field set has no profile.");

static PyObject *
window_reads(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyList_Check(args[0]) || !PyDict_Check(args[1]) || !PyLong_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "reads(evs: list, profiles: dict, tiers: int)");
        return NULL;
    }
    PyObject *evs = args[0], *profiles = args[1];
    if (PyList_GET_SIZE(evs) > MAX_READS)
        Py_RETURN_NONE;
    Py_ssize_t ntiers = PyLong_AsSsize_t(args[2]);
    if (ntiers < 0 || ntiers > MAX_TIERS) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "reads: tiers out of range");
        return NULL;
    }
    long long added[MAX_TIERS] = {0}, weight = 0, fresh = 0;
    PyObject *entries = PyList_New(0), *tiers = PyList_New(0), *heaviest = PyDict_New(), *result = NULL;
    if (entries == NULL || tiers == NULL || heaviest == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(evs); i++) {
        PyObject *ev = Py_NewRef(PyList_GET_ITEM(evs, i)); /* held: a property may change evs */
        PyObject *its = NULL;
        PyObject *entry = entry_of(ev, profiles, ntiers, &its);
        Py_DECREF(ev);
        if (entry == NULL) {
            if (!PyErr_Occurred())
                result = Py_NewRef(Py_None);
            goto done;
        }
        int failed = PyList_Append(entries, entry) < 0 || PyList_Append(tiers, its) < 0;
        long long w = PyLong_AsLongLong(PyTuple_GET_ITEM(entry, 2)); /* checked < 2**40 */
        long long n = PyLong_AsLongLong(PyTuple_GET_ITEM(entry, 3));
        weight += w;
        for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(its); k++)
            added[PyLong_AsSsize_t(PyTuple_GET_ITEM(its, k))] += n;
        /* repeated reads of a customer score once, at the heaviest */
        PyObject *cid = PyTuple_GET_ITEM(entry, 1);
        PyObject *before = failed ? NULL : PyDict_GetItemWithError(heaviest, cid);
        long long seen = before == NULL ? 0 : PyLong_AsLongLong(before);
        if (!failed && !PyErr_Occurred() && w > seen) {
            fresh += w - seen;
            failed = PyDict_SetItem(heaviest, cid, PyTuple_GET_ITEM(entry, 2)) < 0;
        }
        Py_DECREF(entry);
        Py_DECREF(its);
        if (failed || PyErr_Occurred())
            goto done;
    }
    PyObject *per_tier = PyList_New(ntiers);
    if (per_tier == NULL)
        goto done;
    for (Py_ssize_t k = 0; k < ntiers; k++) {
        PyObject *v = PyLong_FromLongLong(added[k]);
        if (v == NULL) {
            Py_DECREF(per_tier);
            goto done;
        }
        PyList_SET_ITEM(per_tier, k, v);
    }
    result = Py_BuildValue("(OOLLN)", entries, tiers, weight, fresh, per_tier);
done:
    Py_XDECREF(entries);
    Py_XDECREF(tiers);
    Py_XDECREF(heaviest);
    return result;
}

/* An item's event time (item[0], an entry's or an event's) into *ts: 1, or 0 when it is not
 * an in-range int (no error set), -1 with an error. */
static int
item_ts(PyObject *item, long long *ts)
{
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) < 1)
        return 0;
    return int_in(PyTuple_GET_ITEM(item, 0), -(1LL << 61), 1LL << 61, ts);
}

/* An entry's (ts, customer, weight, records, categories, rank) figures: 1, or 0 when it is not
 * one with figures in range (no error set). */
static int
entry_figures(PyObject *e, long long *ts, long long *weight, long long *records)
{
    return item_ts(e, ts) && PyTuple_GET_SIZE(e) == 6 && int_in(PyTuple_GET_ITEM(e, 2), 0, LIMIT, weight) &&
           int_in(PyTuple_GET_ITEM(e, 3), -LIMIT, LIMIT, records);
}

/* The last item's time of a deque, or LLONG_MIN when empty: 1 / 0 / -1 as item_ts. */
static int
tail_ts(PyObject *dq, long long *ts)
{
    Py_ssize_t n = PyObject_Size(dq);
    if (n < 0)
        return -1;
    if (n == 0) {
        *ts = LLONG_MIN;
        return 1;
    }
    PyObject *last = PySequence_GetItem(dq, n - 1);
    if (last == NULL)
        return -1;
    int ok = item_ts(last, ts);
    Py_DECREF(last);
    return ok;
}

/* An int attribute of `obj` into *out, within [0, 2**62): 1, 0 (anything else), -1 (error). */
static int
int_attr(PyObject *obj, PyObject *name, long long *out)
{
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL)
        return -1;
    int ok = int_in(v, -(1LL << 62), 1LL << 62, out);
    Py_DECREF(v);
    return ok;
}

static int
set_int_attr(PyObject *obj, PyObject *name, long long x)
{
    PyObject *v = PyLong_FromLongLong(x);
    int rc = v == NULL ? -1 : PyObject_SetAttr(obj, name, v);
    Py_XDECREF(v);
    return rc;
}

/* A list of ints (a tally's) into counts[0..n): 1, 0 when it is not n in-range ints. */
static int
load_counts(PyObject *list, Py_ssize_t n, long long *counts)
{
    if (!PyList_CheckExact(list) || PyList_GET_SIZE(list) != n)
        return 0;
    for (Py_ssize_t k = 0; k < n; k++)
        if (!int_in(PyList_GET_ITEM(list, k), -(1LL << 62), 1LL << 62, &counts[k]))
            return 0;
    return 1;
}

static int
store_counts(PyObject *list, Py_ssize_t n, const long long *counts)
{
    for (Py_ssize_t k = 0; k < n && k < PyList_GET_SIZE(list); k++) {
        PyObject *v = PyLong_FromLongLong(counts[k]);
        if (v == NULL || PyList_SetItem(list, k, v) < 0)
            return -1;
    }
    return 0;
}

/* The window being added to: its deques, bound methods and figures, held for one call. */
typedef struct {
    PyObject *win, *entries, *events, *tally, *totals, *added, *append_entry, *append_event, *popleft_entry,
        *popleft_event;
    long long role, total, last_ts, ntiers, sums[MAX_TIERS], adds[MAX_TIERS];
} Window;

static void
window_release(Window *w)
{
    Py_XDECREF(w->entries);
    Py_XDECREF(w->events);
    Py_XDECREF(w->tally);
    Py_XDECREF(w->totals);
    Py_XDECREF(w->added);
    Py_XDECREF(w->append_entry);
    Py_XDECREF(w->append_event);
    Py_XDECREF(w->popleft_entry);
    Py_XDECREF(w->popleft_event);
}

/* Load the window: 1, 0 when it is not the common case (no exact score kept, figures in range),
 * -1 with an error. */
static int
window_load(Window *w, PyObject *win)
{
    w->win = win;
    PyObject *weights = PyObject_GetAttr(win, s_weights);
    if (weights == NULL)
        return -1;
    int kept = weights != Py_None;
    Py_DECREF(weights);
    if (kept)
        return 0;
    if ((w->entries = PyObject_GetAttr(win, s_entries)) == NULL ||
        (w->events = PyObject_GetAttr(win, s_events)) == NULL || (w->tally = PyObject_GetAttr(win, s_tally)) == NULL ||
        (w->totals = PyObject_GetAttr(w->tally, s_totals)) == NULL ||
        (w->added = PyObject_GetAttr(w->tally, s_added)) == NULL ||
        (w->append_entry = PyObject_GetAttr(w->entries, s_append)) == NULL ||
        (w->append_event = PyObject_GetAttr(w->events, s_append)) == NULL ||
        (w->popleft_entry = PyObject_GetAttr(w->entries, s_popleft)) == NULL ||
        (w->popleft_event = PyObject_GetAttr(w->events, s_popleft)) == NULL)
        return -1;
    if (!PyList_CheckExact(w->totals) || PyList_GET_SIZE(w->totals) > MAX_TIERS)
        return 0;
    w->ntiers = PyList_GET_SIZE(w->totals);
    if (!load_counts(w->totals, w->ntiers, w->sums) || !load_counts(w->added, w->ntiers, w->adds))
        return 0;
    int ok;
    if ((ok = int_attr(win, s_role, &w->role)) != 1 || (ok = int_attr(win, s_total, &w->total)) != 1 ||
        (ok = int_attr(win, s_last_ts, &w->last_ts)) != 1)
        return ok;
    return 1;
}

static int
window_store(Window *w)
{
    if (set_int_attr(w->win, s_role, w->role) < 0 || set_int_attr(w->win, s_total, w->total) < 0 ||
        set_int_attr(w->win, s_last_ts, w->last_ts) < 0 || store_counts(w->totals, w->ntiers, w->sums) < 0 ||
        store_counts(w->added, w->ntiers, w->adds) < 0)
        return -1;
    return 0;
}

/* Entries at or before `horizon` leave the role window (ActorWindow.evict_role). */
static int
evict_role(Window *w, long long horizon)
{
    for (;;) {
        Py_ssize_t n = PyObject_Size(w->entries);
        if (n < 0)
            return -1;
        if (w->role >= n)
            return 0;
        PyObject *e = PySequence_GetItem(w->entries, (Py_ssize_t)w->role);
        if (e == NULL)
            return -1;
        long long ts, weight, records;
        int ok = entry_figures(e, &ts, &weight, &records);
        Py_DECREF(e);
        if (!ok) {
            PyErr_SetString(PyExc_TypeError, "add_quietly: a window entry is not (ts, customer, weight, ...)");
            return -1;
        }
        if (ts > horizon)
            return 0;
        w->total -= weight;
        w->role += 1;
    }
}

/* The front item of a deque if it is at or before `horizon`, popped (a new reference); NULL
 * without an error when there is none. */
static PyObject *
pop_due(PyObject *dq, PyObject *popleft, long long horizon)
{
    Py_ssize_t n = PyObject_Size(dq);
    if (n <= 0)
        return NULL;
    PyObject *first = PySequence_GetItem(dq, 0);
    if (first == NULL)
        return NULL;
    long long ts;
    int ok = item_ts(first, &ts);
    Py_DECREF(first);
    if (!ok) {
        PyErr_SetString(PyExc_TypeError, "add_quietly: a window item does not start with its time");
        return NULL;
    }
    return ts <= horizon ? PyObject_CallNoArgs(popleft) : NULL;
}

/* Forget what the law's `horizon` left (ActorWindow.evict_legal); the count of entries and
 * events popped in popped[0], popped[1]. */
static int
evict_legal(Window *w, long long horizon, PyObject *tier_sets, PyObject *tiers_of, long long popped[2])
{
    PyObject *e;
    while ((e = pop_due(w->entries, w->popleft_entry, horizon)) != NULL) {
        long long ts, n, weight;
        if (!entry_figures(e, &ts, &weight, &n)) {
            Py_DECREF(e);
            PyErr_SetString(PyExc_TypeError, "add_quietly: a window entry is not (ts, customer, weight, records, ...)");
            return -1;
        }
        PyObject *cats = PyTuple_GET_ITEM(e, 4);
        PyObject *tiers = PyDict_GetItemWithError(tier_sets, cats);
        if (tiers != NULL)
            Py_INCREF(tiers);
        else if (!PyErr_Occurred())
            tiers = PyObject_CallOneArg(tiers_of, cats); /* fills tier_sets; reads no window */
        Py_DECREF(e);
        if (tiers == NULL)
            return -1;
        int ok = tiers_ok(tiers, w->ntiers);
        for (Py_ssize_t k = 0; ok && k < PyTuple_GET_SIZE(tiers); k++)
            w->sums[PyLong_AsSsize_t(PyTuple_GET_ITEM(tiers, k))] -= n;
        Py_DECREF(tiers);
        if (!ok) {
            PyErr_SetString(PyExc_ValueError, "add_quietly: tiers_of gave tiers the tally does not have");
            return -1;
        }
        if (w->role)
            w->role -= 1;
        else
            w->total -= weight;
        popped[0]++;
    }
    if (PyErr_Occurred())
        return -1;
    while ((e = pop_due(w->events, w->popleft_event, horizon)) != NULL) {
        Py_DECREF(e);
        popped[1]++;
    }
    return PyErr_Occurred() ? -1 : 0;
}

/* Whether reads `entries` (one per access, in order) go in at the window's end: each at or after
 * the last item of both deques, once those older than the law's horizon are skipped. */
static int
in_order(Window *w, PyObject *entries, long long horizon_ms)
{
    long long tail_e, tail_v, last = w->last_ts;
    int ok;
    if ((ok = tail_ts(w->entries, &tail_e)) != 1 || (ok = tail_ts(w->events, &tail_v)) != 1)
        return ok;
    long long tail = tail_e > tail_v ? tail_e : tail_v;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(entries); i++) {
        long long ts;
        if (!item_ts(PyList_GET_ITEM(entries, i), &ts))
            return 0;
        if (ts <= last - horizon_ms)
            continue;
        if (ts < tail)
            return 0;
        tail = ts;
        if (ts > last)
            last = ts;
    }
    return 1;
}

PyDoc_STRVAR(add_quietly_doc,
"add_quietly(win, evs, entries, tiers, window_ms, horizon_ms, tier_sets, tiers_of)\n--\n\n"
"BulkQueryDetector._add_quietly for the entries and tiers `reads` gave: each read joins the\n"
"window (one entry and one event each) unless the law's horizon already passed it, then the role\n"
"window and the horizon evict. `tier_sets` caches tiers_of(categories). False, with nothing\n"
"changed, when the window keeps its exact score or a read is out of time order.");

static PyObject *
window_add_quietly(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 8 || !PyList_Check(args[1]) || !PyList_Check(args[2]) || !PyList_Check(args[3]) ||
        !PyDict_Check(args[6])) {
        PyErr_SetString(PyExc_TypeError,
                        "add_quietly(win, evs: list, entries: list, tiers: list, window_ms, horizon_ms, "
                        "tier_sets: dict, tiers_of)");
        return NULL;
    }
    PyObject *evs = args[1], *entries = args[2], *tiers = args[3], *tier_sets = args[6], *tiers_of = args[7];
    long long window_ms, horizon_ms;
    if (!int_in(args[4], 0, 1LL << 50, &window_ms) || !int_in(args[5], 0, 1LL << 50, &horizon_ms) ||
        PyList_GET_SIZE(evs) != PyList_GET_SIZE(entries) || PyList_GET_SIZE(tiers) != PyList_GET_SIZE(entries)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "add_quietly: window_ms, horizon_ms or the list sizes are wrong");
        return NULL;
    }
    Window w = {0};
    PyObject *result = NULL;
    int ok = window_load(&w, args[0]);
    if (ok == 1)
        ok = in_order(&w, entries, horizon_ms);
    if (ok == 1 && PyList_GET_SIZE(entries) > MAX_READS)
        ok = 0;
    for (Py_ssize_t i = 0; ok == 1 && i < PyList_GET_SIZE(entries); i++) {
        long long ts, weight, n;
        if (!entry_figures(PyList_GET_ITEM(entries, i), &ts, &weight, &n) ||
            !tiers_ok(PyList_GET_ITEM(tiers, i), w.ntiers))
            ok = 0;
    }
    if (ok != 1) {
        if (ok == 0)
            result = Py_NewRef(Py_False);
        goto done;
    }
    /* from here on the window changes: nothing below calls Python but tiers_of (see evict_legal) */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(entries); i++) {
        if (PyList_GET_SIZE(entries) != PyList_GET_SIZE(evs) || PyList_GET_SIZE(tiers) != PyList_GET_SIZE(evs)) {
            PyErr_SetString(PyExc_RuntimeError, "add_quietly: a list changed size during the loop");
            goto done;
        }
        PyObject *e = Py_NewRef(PyList_GET_ITEM(entries, i)), *its = Py_NewRef(PyList_GET_ITEM(tiers, i));
        long long ts, weight, n;
        /* checked above, and again: an event_id property (Python) may have replaced either */
        int failed = !entry_figures(e, &ts, &weight, &n) || !tiers_ok(its, w.ntiers);
        if (failed)
            PyErr_SetString(PyExc_RuntimeError, "add_quietly: an entry or its tiers changed during the loop");
        else if (ts > w.last_ts - horizon_ms) {
            if (ts > w.last_ts)
                w.last_ts = ts;
            PyObject *event_id = PyObject_GetAttr(PyList_GET_ITEM(evs, i), s_event_id);
            PyObject *event = event_id == NULL ? NULL
                                               : untracked(PyTuple_Pack(4, PyTuple_GET_ITEM(e, 0), event_id, Py_True,
                                                                        PyTuple_GET_SIZE(its) ? Py_True : Py_False));
            failed = event == NULL;
            if (!failed) {
                PyObject *r = PyObject_CallOneArg(w.append_event, event);
                PyObject *s = r == NULL ? NULL : PyObject_CallOneArg(w.append_entry, e);
                failed = s == NULL;
                Py_XDECREF(r);
                Py_XDECREF(s);
            }
            Py_XDECREF(event_id);
            Py_XDECREF(event);
            for (Py_ssize_t k = 0; !failed && k < PyTuple_GET_SIZE(its); k++) {
                Py_ssize_t t = PyLong_AsSsize_t(PyTuple_GET_ITEM(its, k));
                w.sums[t] += n;
                w.adds[t] += n;
            }
            w.total += weight;
        }
        Py_DECREF(e);
        Py_DECREF(its);
        if (failed)
            goto done;
    }
    /* evicting once, by the newest read, leaves what evicting after each read would */
    long long popped[2] = {0, 0};
    if (evict_role(&w, w.last_ts - window_ms) < 0 ||
        evict_legal(&w, w.last_ts - horizon_ms, tier_sets, tiers_of, popped) < 0 || window_store(&w) < 0)
        goto done;
    if (popped[0] || popped[1]) {
        PyObject *chunks = PyObject_GetAttr(w.win, s_chunks);
        PyObject *r = chunks == NULL ? NULL : PyObject_CallMethod(chunks, "popped", "iL", 0, popped[0]);
        Py_XDECREF(r);
        r = r == NULL ? NULL : PyObject_CallMethod(chunks, "popped", "iL", 1, popped[1]);
        Py_XDECREF(chunks);
        if (r == NULL)
            goto done;
        Py_DECREF(r);
    }
    result = Py_NewRef(Py_True);
done:
    window_release(&w);
    return result;
}

static PyMethodDef window_methods[] = {
    {"reads", (PyCFunction)(void (*)(void))window_reads, METH_FASTCALL, reads_doc},
    {"add_quietly", (PyCFunction)(void (*)(void))window_add_quietly, METH_FASTCALL, add_quietly_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef window_module = {
    PyModuleDef_HEAD_INIT, "detectors._window",
    "bulk_query's quiet path in C: a batch's window entries, and adding quiet reads (detectors/bulk_query.py).",
    -1, window_methods,
};

PyMODINIT_FUNC
PyInit__window(void)
{
    struct {
        PyObject **slot;
        const char *name;
    } names[] = {
        {&s_fields, "fields"},     {&s_action, "action"},   {&s_subject_ids, "subject_ids"},
        {&s_row_count, "row_count"}, {&s_ts, "ts"},       {&s_event_id, "event_id"},
        {&s_entries, "entries"},   {&s_events, "events"},   {&s_role, "role"},
        {&s_total, "total"},       {&s_weights, "weights"}, {&s_last_ts, "last_ts"},
        {&s_tally, "tally"},       {&s_totals, "totals"},   {&s_added, "added"},
        {&s_chunks, "chunks"},     {&s_append, "append"},   {&s_popleft, "popleft"},
    };
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        if ((*names[k].slot = PyUnicode_InternFromString(names[k].name)) == NULL)
            return NULL;
    return PyModule_Create(&window_module);
}
