/* A record's attribute read where the record keeps it: the engine's events are msgspec Structs,
 * whose fields are slots (member descriptors), and PyObject_GetAttr finds one through the type's
 * attribute cache, the descriptor and PyMember_GetOne, about 20 ns; read at the slot's offset, 2.
 * The door's C loops read a dozen attributes of every event (streams/_door.c, streams/_ids.c).
 *
 * A Slot remembers, for one attribute name, the offset found for the last type read: kept while
 * that type's version tag holds (CPython clears it when anything on the type or a base changes).
 * Anything else (a property, a __getattr__, an object with its own getattro, a slot left empty,
 * a slot another type's, a type with no version tag) is read by PyObject_GetAttr, as before. */
#ifndef LIFEMON_SLOTS_H
#define LIFEMON_SLOTS_H

#include <Python.h>
#include <structmember.h>

typedef struct {
    PyTypeObject *type; /* not held: `version` tells whether it is still the type looked at */
    unsigned int version;
    Py_ssize_t offset; /* -1: no slot to read, PyObject_GetAttr */
} Slot;

static void
slot_find(Slot *slot, PyTypeObject *type, PyObject *attr)
{
    slot->type = type;
    slot->offset = -1;
    PyObject *descr = NULL;
    if (type->tp_getattro == PyObject_GenericGetAttr && PyUnicode_CheckExact(attr))
        descr = _PyType_Lookup(type, attr); /* borrowed; gives the type a version tag if it can */
    slot->version = type->tp_version_tag;
    /* a slot's descriptor set on a type whose records lack the slot (`B.x = A.x`) is read by
       PyObject_GetAttr, which refuses it as the descriptor does: its offset is in A's records only */
    if (descr == NULL || !Py_IS_TYPE(descr, &PyMemberDescr_Type)
        || !PyType_HasFeature(type, Py_TPFLAGS_VALID_VERSION_TAG) || !PyType_IsSubtype(type, PyDescr_TYPE(descr)))
        return;
    PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
    if (member->type == T_OBJECT_EX && !(member->flags & PY_AUDIT_READ))
        slot->offset = member->offset;
}

/* obj.attr, a new reference, or NULL with an error; `attr` is the same name at every call with `slot` */
static inline PyObject *
slot_get(Slot *slot, PyObject *obj, PyObject *attr)
{
    PyTypeObject *type = Py_TYPE(obj);
    if (type != slot->type || type->tp_version_tag != slot->version)
        slot_find(slot, type, attr);
    if (slot->offset >= 0) {
        PyObject *value = *(PyObject **)((char *)obj + slot->offset);
        if (value != NULL)
            return Py_NewRef(value);
    }
    return PyObject_GetAttr(obj, attr);
}

/* obj.attr = value, 0 or -1 with an error, where slot_get(slot, obj, attr) has just read it: at the
 * slot's offset when it read there. Only for a value equal to the slot's own (a str for an equal str,
 * streams/_door.c `share`): what a type's own setattr guards (a frozen record, a cached hash, the
 * collector's tracking of a container) cannot tell the two apart. */
static inline int
slot_set(Slot *slot, PyObject *obj, PyObject *attr, PyObject *value)
{
    PyTypeObject *type = Py_TYPE(obj);
    if (type == slot->type && type->tp_version_tag == slot->version && slot->offset >= 0) {
        PyObject **at = (PyObject **)((char *)obj + slot->offset);
        if (*at != NULL) {
            Py_SETREF(*at, Py_NewRef(value));
            return 0;
        }
    }
    return PyObject_SetAttr(obj, attr, value);
}

#endif
