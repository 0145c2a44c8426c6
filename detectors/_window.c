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
/* looks at the window per add_quietly: each look after the first follows a tiers_of call for a
 * category set tier_sets lacked (a window restored after a restart has many: one look each, a look
 * costing the batch and what it evicts); a tiers_of that fills no tier_sets is then left to Python */
#define MAX_LOOKS 64

/* A sum the checks above do not bound (a tiers tuple naming one tier many times, a window's
 * figures near their limit, evictions of a long window) is added with a check: past int64 the
 * call is not the common case (None / False), never undefined behaviour. */
static inline int
add_to(long long *x, long long d)
{
    return !__builtin_add_overflow(*x, d, x);
}

static PyObject *deque_type; /* collections.deque: append and popleft on it run no Python */

static PyObject *s_fields, *s_action, *s_subject_ids, *s_row_count, *s_ts, *s_event_id, *s_entries,
    *s_events, *s_role, *s_total, *s_weights, *s_last_ts, *s_tally, *s_totals, *s_added, *s_chunks,
    *s_append, *s_popleft, *s_maxlen, *s_live, *s_skip;

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

/* The last profile `reads` found, and the fields, action and duty it was found for: a batch's reads
 * repeat a kind, and building, hashing and comparing its key was most of a read's cost here. A
 * profile found stays its key's for the call: BulkQueryDetector._entries only ever adds keys. */
typedef struct {
    PyObject *fields, *action, *profile; /* new references, or NULL */
    int duty;
} Memo;

static void
memo_release(Memo *m)
{
    Py_CLEAR(m->fields);
    Py_CLEAR(m->action);
    Py_CLEAR(m->profile);
}

/* Whether two field lists are equal lists of exact strs: compared so, no Python runs. */
static int
same_fields(PyObject *a, PyObject *b)
{
    if (!PyList_CheckExact(a) || !PyList_CheckExact(b) || PyList_GET_SIZE(a) != PyList_GET_SIZE(b))
        return 0;
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(a); k++) {
        PyObject *x = PyList_GET_ITEM(a, k), *y = PyList_GET_ITEM(b, k);
        if (x != y && (!PyUnicode_CheckExact(x) || !PyUnicode_CheckExact(y) || PyUnicode_Compare(x, y) != 0))
            return 0;
    }
    return 1;
}

/* The profile of an access: profiles[(tuple(fields), action)], or profiles[(tuple(fields), action,
 * True)] for the post's own work (`duty`: bulk_query._duty), a new reference; NULL without an
 * error when there is none (or it is not a profile). `memo`: the last one found (see Memo). */
static PyObject *
profile_of(PyObject *ev, PyObject *profiles, Py_ssize_t ntiers, int duty, Memo *memo)
{
    PyObject *fields = PyObject_GetAttr(ev, s_fields);
    if (fields == NULL)
        return NULL;
    PyObject *action = PyObject_GetAttr(ev, s_action);
    PyObject *key = NULL, *profile = NULL;
    if (action != NULL && memo->profile != NULL && memo->duty == duty && memo->action == action &&
        same_fields(fields, memo->fields)) {
        Py_DECREF(fields);
        Py_DECREF(action);
        return Py_NewRef(memo->profile);
    }
    if (action != NULL && PyList_CheckExact(fields)) {
        PyObject *tuple = PyList_AsTuple(fields);
        if (tuple != NULL) {
            key = duty ? PyTuple_Pack(3, tuple, action, Py_True) : PyTuple_Pack(2, tuple, action);
            Py_DECREF(tuple);
        }
    }
    if (key == NULL) {
        Py_DECREF(fields);
        Py_XDECREF(action);
        return NULL;
    }
    /* held before the key goes: its last reference may be an action whose __del__ (Python) changes
     * `profiles`, and the profile with it */
    profile = Py_XNewRef(PyDict_GetItemWithError(profiles, key));
    Py_DECREF(key);
    /* (class, categories, rank, weight, tiers); the rank is only copied into the entry (CLASS_RANK
     * is 1..3: judging it in [0, 3) sent every C3 read to Python) */
    long long x;
    if (profile != NULL &&
        (!PyTuple_CheckExact(profile) || PyTuple_GET_SIZE(profile) != 5 ||
         !PyTuple_CheckExact(PyTuple_GET_ITEM(profile, 1)) || !int_in(PyTuple_GET_ITEM(profile, 3), 0, LIMIT, &x) ||
         !tiers_ok(PyTuple_GET_ITEM(profile, 4), ntiers)))
        Py_CLEAR(profile);
    if (profile != NULL) { /* the memo takes the references of fields and action */
        memo_release(memo);
        memo->fields = fields;
        memo->action = action;
        memo->profile = Py_NewRef(profile);
        memo->duty = duty;
    } else {
        Py_DECREF(fields);
        Py_DECREF(action);
    }
    return profile;
}

/* The window entry of an access naming one customer: (ts, customer, weight, records, categories,
 * rank), records max(row_count, 1); its tiers in *tiers (new). NULL without an error when the
 * access is not that case. */
static PyObject *
entry_of(PyObject *ev, PyObject *profiles, Py_ssize_t ntiers, int duty, Memo *memo, PyObject **tiers)
{
    PyObject *profile = profile_of(ev, profiles, ntiers, duty, memo);
    if (profile == NULL)
        return NULL;
    /* one after the other: a getter is no call to make with an error pending */
    PyObject *ids = PyObject_GetAttr(ev, s_subject_ids);
    PyObject *ts = ids == NULL ? NULL : PyObject_GetAttr(ev, s_ts);
    PyObject *rows = ts == NULL ? NULL : PyObject_GetAttr(ev, s_row_count);
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
"reads(evs, profiles, tiers, duty=None)\n--\n\n"
"The window entries of a batch of one employee's accesses, each naming one customer, and what\n"
"_quiet judges of them: (entries, tiers of each, sum of weights, sum of each customer's heaviest\n"
"weight, records added per tier). `profiles` maps (tuple(fields), action) to (class, categories,\n"
"rank, weight, tiers); an access `duty` marks True (a list as long as evs, or None) is looked up\n"
"with True added to its key. None when an access is not that case, or its field set has no profile.");

static PyObject *
window_reads(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *duty = nargs == 4 ? args[3] : Py_None;
    if (nargs < 3 || nargs > 4 || !PyList_Check(args[0]) || !PyDict_Check(args[1]) || !PyLong_Check(args[2]) ||
        (duty != Py_None && (!PyList_Check(duty) || PyList_GET_SIZE(duty) != PyList_GET_SIZE(args[0])))) {
        PyErr_SetString(PyExc_TypeError, "reads(evs: list, profiles: dict, tiers: int, duty: list | None = None)");
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
    Memo memo = {0};
    if (entries == NULL || tiers == NULL || heaviest == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(evs); i++) {
        PyObject *ev = Py_NewRef(PyList_GET_ITEM(evs, i)); /* held: a property may change evs */
        PyObject *its = NULL;
        /* a property of an event may shorten `duty`: its size is read again each time */
        int own = duty != Py_None && i < PyList_GET_SIZE(duty) && PyList_GET_ITEM(duty, i) == Py_True;
        PyObject *entry = entry_of(ev, profiles, ntiers, own, &memo, &its);
        Py_DECREF(ev);
        if (entry == NULL) {
            if (!PyErr_Occurred())
                result = Py_NewRef(Py_None);
            goto done;
        }
        int failed = PyList_Append(entries, entry) < 0 || PyList_Append(tiers, its) < 0;
        long long w = PyLong_AsLongLong(PyTuple_GET_ITEM(entry, 2)); /* checked < 2**40 */
        long long n = PyLong_AsLongLong(PyTuple_GET_ITEM(entry, 3));
        int fits = add_to(&weight, w);
        /* a tier named k times counts k times, as in Python: checked, the tuple's length is not bounded */
        for (Py_ssize_t k = 0; fits && k < PyTuple_GET_SIZE(its); k++)
            fits = add_to(&added[PyLong_AsSsize_t(PyTuple_GET_ITEM(its, k))], n);
        /* repeated reads of a customer score once, at the heaviest (cid a str: no Python in the dict) */
        PyObject *cid = PyTuple_GET_ITEM(entry, 1);
        PyObject *before = failed ? NULL : PyDict_GetItemWithError(heaviest, cid);
        long long seen = before == NULL ? 0 : PyLong_AsLongLong(before);
        if (!failed && !PyErr_Occurred() && w > seen) {
            fits = fits && add_to(&fresh, w - seen);
            failed = PyDict_SetItem(heaviest, cid, PyTuple_GET_ITEM(entry, 2)) < 0;
        }
        Py_DECREF(entry);
        Py_DECREF(its);
        if (failed || PyErr_Occurred())
            goto done;
        if (!fits) { /* past int64: Python's ints do it */
            result = Py_NewRef(Py_None);
            goto done;
        }
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
    memo_release(&memo);
    return result;
}

/* An item's event time (item[0], an entry's or an event's) into *ts: 1, or 0 when it is not
 * an in-range int. */
static int
item_ts(PyObject *item, long long *ts)
{
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) < 1)
        return 0;
    return int_in(PyTuple_GET_ITEM(item, 0), -(1LL << 61), 1LL << 61, ts);
}

/* An entry's (ts, customer, weight, records, categories, rank) figures: 1, or 0 when it is not
 * one with figures in range. */
static int
entry_figures(PyObject *e, long long *ts, long long *weight, long long *records)
{
    return item_ts(e, ts) && PyTuple_GET_SIZE(e) == 6 && int_in(PyTuple_GET_ITEM(e, 2), 0, LIMIT, weight) &&
           int_in(PyTuple_GET_ITEM(e, 3), -LIMIT, LIMIT, records);
}

/* The time of the last of a deque's n items, or LLONG_MIN when empty: 1 / 0 / -1 as item_ts. */
static int
tail_ts(PyObject *dq, Py_ssize_t n, long long *ts)
{
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

/* An int attribute of `obj` into *out, within [low, 2**62): 1, 0 (anything else), -1 (error). */
static int
int_attr(PyObject *obj, PyObject *name, long long low, long long *out)
{
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL)
        return -1;
    int ok = int_in(v, low, 1LL << 62, out);
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

/* A deque as ActorWindow keeps it: a collections.deque without maxlen, whose len, [i], append
 * and popleft run no Python (a subclass's may, and a maxlen one drops items by itself): 1, 0
 * (anything else), -1 (error). */
static int
plain_deque(PyObject *dq)
{
    if (!Py_IS_TYPE(dq, (PyTypeObject *)deque_type))
        return 0;
    PyObject *maxlen = PyObject_GetAttr(dq, s_maxlen);
    if (maxlen == NULL)
        return -1;
    int plain = maxlen == Py_None;
    Py_DECREF(maxlen);
    return plain;
}

/* The window being added to: its deques, bound methods and figures, held for one call. */
typedef struct {
    PyObject *win, *entries, *events, *tally, *totals, *added, *append_entry, *append_event, *popleft_entry,
        *popleft_event, *live, *skip;
    /* live and skip: its Chunks' lists, [entries, events] each */
    long long role, total, last_ts, ntiers, sums[MAX_TIERS], adds[MAX_TIERS], lives[2], skips[2];
} Window;

static void
window_release(Window *w)
{
    Py_CLEAR(w->entries);
    Py_CLEAR(w->events);
    Py_CLEAR(w->tally);
    Py_CLEAR(w->totals);
    Py_CLEAR(w->added);
    Py_CLEAR(w->append_entry);
    Py_CLEAR(w->append_event);
    Py_CLEAR(w->popleft_entry);
    Py_CLEAR(w->popleft_event);
    Py_CLEAR(w->live);
    Py_CLEAR(w->skip);
}

/* Load the window: 1, 0 when it is not the common case (no exact score kept, plain deques,
 * figures in range), -1 with an error. */
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
    int ok;
    if ((w->entries = PyObject_GetAttr(win, s_entries)) == NULL ||
        (w->events = PyObject_GetAttr(win, s_events)) == NULL)
        return -1;
    if ((ok = plain_deque(w->entries)) != 1 || (ok = plain_deque(w->events)) != 1)
        return ok;
    if ((w->tally = PyObject_GetAttr(win, s_tally)) == NULL ||
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
    PyObject *chunks = PyObject_GetAttr(win, s_chunks);
    if (chunks == NULL)
        return -1;
    w->live = PyObject_GetAttr(chunks, s_live);
    w->skip = w->live == NULL ? NULL : PyObject_GetAttr(chunks, s_skip);
    Py_DECREF(chunks);
    if (w->skip == NULL)
        return -1;
    if (!load_counts(w->live, 2, w->lives) || !load_counts(w->skip, 2, w->skips))
        return 0;
    /* role an index (Python would read a negative one from the deque's end) */
    if ((ok = int_attr(win, s_role, 0, &w->role)) != 1 || (ok = int_attr(win, s_total, -(1LL << 62), &w->total)) != 1 ||
        (ok = int_attr(win, s_last_ts, -(1LL << 62), &w->last_ts)) != 1)
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

/* What a call does, worked out before anything changes: the reads that join the window (their
 * entries and events), and how many items of each deque the horizon then evicts. */
typedef struct {
    PyObject *entries, *events; /* lists */
    Py_ssize_t popped[2];
} Plan;

/* Item i of a deque of n items followed by the list `more`: a new reference, NULL with an error. */
static PyObject *
nth(PyObject *dq, Py_ssize_t n, PyObject *more, Py_ssize_t i)
{
    return i < n ? PySequence_GetItem(dq, i) : Py_NewRef(PyList_GET_ITEM(more, i - n));
}

/* BulkQueryDetector._add_quietly, ActorWindow.add, evict_role and evict_legal on the figures of
 * *w alone, with the plan in *p: 1, 0 when the call is not the common case (a read out of time
 * order, an item or a figure out of range), -1 with an error, 2 after calling tiers_of for an
 * evicted entry's categories missing from tier_sets: that Python may have changed the window,
 * which must then be read again (the next look finds them, BulkQueryDetector._tiers_of fills
 * tier_sets). The window itself is not changed. `figures`: each read's entry's ts, weight and
 * records, checked by the caller once for every look (its entries are a tuple of tuples: no
 * Python can change them; checked again here, they cost 0.5 % of bulk_query's process). */
static int
plan_add(Window *w, PyObject *entries, const long long (*figures)[3], PyObject *tiers, PyObject *events,
         long long window_ms, long long horizon_ms, PyObject *tier_sets, PyObject *tiers_of, Plan *p)
{
    Py_ssize_t n_e = PyObject_Size(w->entries), n_v = PyObject_Size(w->events);
    if (n_e < 0 || n_v < 0)
        return -1;
    long long tail_e, tail_v, ts, weight, n;
    int ok;
    if ((ok = tail_ts(w->entries, n_e, &tail_e)) != 1 || (ok = tail_ts(w->events, n_v, &tail_v)) != 1)
        return ok;
    /* the reads join at the window's end: each at or after the last item of both deques, once
     * those the law's horizon already passed are skipped (else ActorWindow.add inserts: Python) */
    long long tail = tail_e > tail_v ? tail_e : tail_v;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(entries); i++) {
        PyObject *e = PyTuple_GET_ITEM(entries, i), *its = PyTuple_GET_ITEM(tiers, i);
        if (!tiers_ok(its, w->ntiers))
            return 0;
        ts = figures[i][0], weight = figures[i][1], n = figures[i][2];
        if (ts <= w->last_ts - horizon_ms)
            continue;
        /* a read older than the actor's newest (a read naming no customer may have moved last_ts past
           both deques' tails) is late: Python notes it in win.late for _open_late */
        if (ts < tail || ts < w->last_ts)
            return 0;
        tail = ts;
        if (ts > w->last_ts)
            w->last_ts = ts;
        if (!add_to(&w->total, weight))
            return 0;
        for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(its); k++) {
            Py_ssize_t t = PyLong_AsSsize_t(PyTuple_GET_ITEM(its, k));
            if (!add_to(&w->sums[t], n) || !add_to(&w->adds[t], n))
                return 0;
        }
        if (PyList_Append(p->entries, e) < 0 || PyList_Append(p->events, PyTuple_GET_ITEM(events, i)) < 0)
            return -1;
    }
    /* evicting once, by the newest read, leaves what evicting after each read would */
    Py_ssize_t len = n_e + PyList_GET_SIZE(p->entries);
    long long horizon = w->last_ts - window_ms;
    while (w->role < len) { /* evict_role */
        PyObject *e = nth(w->entries, n_e, p->entries, (Py_ssize_t)w->role);
        if (e == NULL)
            return -1;
        /* the figures of an entry that stays are not judged: only its time is read */
        ok = item_ts(e, &ts) && (ts > horizon || entry_figures(e, &ts, &weight, &n));
        Py_DECREF(e);
        if (!ok)
            return 0;
        if (ts > horizon)
            break;
        if (!add_to(&w->total, -weight))
            return 0;
        w->role += 1;
    }
    horizon = w->last_ts - horizon_ms;
    for (p->popped[0] = 0; p->popped[0] < len; p->popped[0]++) { /* evict_legal */
        PyObject *e = nth(w->entries, n_e, p->entries, p->popped[0]);
        if (e == NULL)
            return -1;
        ok = item_ts(e, &ts) && (ts > horizon || entry_figures(e, &ts, &weight, &n));
        if (!ok || ts > horizon) {
            Py_DECREF(e);
            if (!ok)
                return 0;
            break;
        }
        PyObject *its = Py_XNewRef(PyDict_GetItemWithError(tier_sets, PyTuple_GET_ITEM(e, 4)));
        if (its == NULL) {
            PyObject *found = PyErr_Occurred() ? NULL : PyObject_CallOneArg(tiers_of, PyTuple_GET_ITEM(e, 4));
            Py_DECREF(e); /* held until here: the call may take the entry out of the window */
            ok = found == NULL ? -1 : 2;
            Py_XDECREF(found);
            return ok;
        }
        Py_DECREF(e);
        ok = tiers_ok(its, w->ntiers);
        for (Py_ssize_t k = 0; ok && k < PyTuple_GET_SIZE(its); k++)
            ok = add_to(&w->sums[PyLong_AsSsize_t(PyTuple_GET_ITEM(its, k))], -n);
        Py_DECREF(its);
        if (!ok)
            return 0;
        if (w->role)
            w->role -= 1;
        else if (!add_to(&w->total, -weight))
            return 0;
    }
    Py_ssize_t len_v = n_v + PyList_GET_SIZE(p->events);
    for (p->popped[1] = 0; p->popped[1] < len_v; p->popped[1]++) {
        PyObject *v = nth(w->events, n_v, p->events, p->popped[1]);
        if (v == NULL)
            return -1;
        ok = item_ts(v, &ts);
        Py_DECREF(v);
        if (!ok)
            return 0;
        if (ts > horizon)
            break;
    }
    return 1;
}

/* Carry the plan out. Nothing here runs Python: the deques are plain, the attributes ActorWindow's
 * slots, and what the horizon evicts is let go only at the end (a __del__ of something an item held
 * must find the window whole). */
static int
plan_apply(Window *w, Plan *p)
{
    PyObject *gone = PyList_New(0);
    int rc = gone == NULL ? -1 : 0;
    for (Py_ssize_t i = 0; rc == 0 && i < PyList_GET_SIZE(p->entries); i++) {
        PyObject *r = PyObject_CallOneArg(w->append_event, PyList_GET_ITEM(p->events, i));
        PyObject *s = r == NULL ? NULL : PyObject_CallOneArg(w->append_entry, PyList_GET_ITEM(p->entries, i));
        rc = s == NULL ? -1 : 0;
        Py_XDECREF(r);
        Py_XDECREF(s);
    }
    for (int which = 0; which < 2; which++) {
        PyObject *popleft = which ? w->popleft_event : w->popleft_entry;
        for (Py_ssize_t j = 0; rc == 0 && j < p->popped[which]; j++) {
            PyObject *item = PyObject_CallNoArgs(popleft);
            rc = item == NULL || PyList_Append(gone, item) < 0 ? -1 : 0;
            Py_XDECREF(item);
        }
    }
    if (rc == 0)
        rc = window_store(w);
    if (rc == 0 && (p->popped[0] || p->popped[1])) {
        /* Chunks.popped of each deque, in C: through Python twice it cost 4 000 instructions a
         * call that evicted (0.9 % of bulk_query's process, callgrind) */
        for (int which = 0; which < 2; which++) {
            long long gone = p->popped[which] < w->lives[which] ? p->popped[which] : w->lives[which];
            w->lives[which] -= gone;
            w->skips[which] += gone;
        }
        rc = store_counts(w->live, 2, w->lives) < 0 || store_counts(w->skip, 2, w->skips) < 0 ? -1 : 0;
    }
    Py_XDECREF(gone);
    return rc;
}

PyDoc_STRVAR(add_quietly_doc,
"add_quietly(win, evs, entries, tiers, window_ms, horizon_ms, tier_sets, tiers_of)\n--\n\n"
"BulkQueryDetector._add_quietly for the entries and tiers `reads` gave: each read joins the\n"
"window (one entry and one event each) unless the law's horizon already passed it, then the role\n"
"window and the horizon evict. `tier_sets` caches tiers_of(categories). False, with nothing\n"
"changed, when the window keeps its exact score, a read is out of time order, or an item or a\n"
"figure is not the common case.");

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
    PyObject *tier_sets = args[6], *tiers_of = args[7];
    long long window_ms, horizon_ms;
    if (!int_in(args[4], 0, 1LL << 50, &window_ms) || !int_in(args[5], 0, 1LL << 50, &horizon_ms) ||
        PyList_GET_SIZE(args[1]) != PyList_GET_SIZE(args[2]) || PyList_GET_SIZE(args[3]) != PyList_GET_SIZE(args[2])) {
        PyErr_SetString(PyExc_ValueError, "add_quietly: window_ms, horizon_ms or the list sizes are wrong");
        return NULL;
    }
    if (PyList_GET_SIZE(args[2]) > MAX_READS)
        Py_RETURN_FALSE;
    /* the batch as it is now: an event_id property (Python) may change the lists */
    PyObject *evs = PyList_AsTuple(args[1]), *entries = PyList_AsTuple(args[2]), *tiers = PyList_AsTuple(args[3]);
    PyObject *events = NULL, *result = NULL;
    Window w = {0};
    Plan p = {0};
    long long(*figures)[3] = NULL; /* each read's entry's (ts, weight, records), for plan_add */
    if (evs == NULL || entries == NULL || tiers == NULL || (events = PyTuple_New(PyTuple_GET_SIZE(evs))) == NULL)
        goto done;
    if ((figures = PyMem_Malloc(sizeof *figures * (PyTuple_GET_SIZE(evs) + 1))) == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    /* each read's event, made before the window is read: what Python runs here must not run
     * between reading the window and changing it. A read whose event_id cannot be read is not
     * the common case: Python raises, if the read is one it keeps. */
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(evs); i++) {
        PyObject *e = PyTuple_GET_ITEM(entries, i), *its = PyTuple_GET_ITEM(tiers, i);
        if (!entry_figures(e, &figures[i][0], &figures[i][1], &figures[i][2]) || !PyTuple_CheckExact(its)) {
            result = Py_NewRef(Py_False);
            goto done;
        }
        PyObject *event_id = PyObject_GetAttr(PyTuple_GET_ITEM(evs, i), s_event_id); /* evs holds it */
        if (event_id == NULL) {
            if (PyErr_ExceptionMatches(PyExc_Exception)) {
                PyErr_Clear();
                result = Py_NewRef(Py_False);
            }
            goto done;
        }
        PyObject *event = untracked(PyTuple_Pack(4, PyTuple_GET_ITEM(e, 0), event_id, Py_True,
                                                 PyTuple_GET_SIZE(its) ? Py_True : Py_False));
        Py_DECREF(event_id);
        if (event == NULL)
            goto done;
        PyTuple_SET_ITEM(events, i, event);
    }
    /* a look that called tiers_of looks again; a tiers_of that fills no tier_sets leaves it to Python */
    int ok = 2;
    for (int looks = 0; ok == 2; looks++) {
        window_release(&w);
        Py_CLEAR(p.entries);
        Py_CLEAR(p.events);
        ok = looks == MAX_LOOKS ? 0 : window_load(&w, args[0]);
        if (ok == 1 && ((p.entries = PyList_New(0)) == NULL || (p.events = PyList_New(0)) == NULL))
            ok = -1;
        if (ok == 1)
            ok = plan_add(&w, entries, (const long long(*)[3])figures, tiers, events, window_ms, horizon_ms, tier_sets,
                          tiers_of, &p);
    }
    if (ok != 1) {
        if (ok == 0)
            result = Py_NewRef(Py_False);
        goto done;
    }
    if (plan_apply(&w, &p) == 0)
        result = Py_NewRef(Py_True);
done:
    PyMem_Free(figures);
    window_release(&w);
    Py_XDECREF(p.entries);
    Py_XDECREF(p.events);
    Py_XDECREF(evs);
    Py_XDECREF(entries);
    Py_XDECREF(tiers);
    Py_XDECREF(events);
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
        {&s_maxlen, "maxlen"},     {&s_live, "live"},       {&s_skip, "skip"},
    };
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        if ((*names[k].slot = PyUnicode_InternFromString(names[k].name)) == NULL)
            return NULL;
    PyObject *collections = PyImport_ImportModule("collections");
    if (collections == NULL)
        return NULL;
    deque_type = PyObject_GetAttrString(collections, "deque");
    Py_DECREF(collections);
    if (deque_type == NULL)
        return NULL;
    if (!PyType_Check(deque_type)) {
        PyErr_SetString(PyExc_TypeError, "collections.deque is not a type");
        return NULL;
    }
    return PyModule_Create(&window_module);
}
