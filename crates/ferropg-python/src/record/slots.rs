//! The Record type's slots and methods: sequence and mapping access, `in` on column
//! names, hashing and comparison as the values tuple, `repr`, `get`, `keys`, `values`,
//! `items`.

use std::ffi::{c_int, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use pyo3::exceptions::{PyIndexError, PyKeyError, PyRuntimeError, PyTypeError};
use pyo3::ffi;
use pyo3::intern;
use pyo3::panic::PanicException;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple, PyType};

use super::iter;
use super::object::{
    self, is_record, items, len, record_clear, record_dealloc, record_traverse, BASIC_SIZE,
};

/// Runs a slot body with the thread's `Python` token, turning an `Err` (or a panic,
/// which must not unwind into C) into a raised exception and the slot's error value.
///
/// # Safety
/// Only for slot and method functions CPython calls, i.e. with the thread attached.
#[inline]
pub(super) unsafe fn trap<R>(error: R, body: impl FnOnce(Python<'_>) -> PyResult<R>) -> R {
    // SAFETY: CPython calls slots and methods with the thread attached.
    let py = unsafe { Python::assume_attached() };
    match catch_unwind(AssertUnwindSafe(|| body(py))) {
        Ok(Ok(value)) => value,
        Ok(Err(err)) => {
            err.restore(py);
            error
        }
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic in ferropg.Record".to_owned());
            PanicException::new_err((msg,)).restore(py);
            error
        }
    }
}

/// A new reference for CPython, or NULL with the error raised.
#[inline]
fn into_ptr(result: PyResult<Bound<'_, PyAny>>) -> PyResult<*mut ffi::PyObject> {
    result.map(Bound::into_ptr)
}

/// Creates the `ferropg.Record` type.
pub(super) fn create_record_type(py: Python<'_>) -> PyResult<Py<PyType>> {
    let methods: &'static mut [ffi::PyMethodDef] = Box::leak(Box::new([
        ffi::PyMethodDef {
            ml_name: c"get".as_ptr(),
            ml_meth: ffi::PyMethodDefPointer {
                PyCFunctionFast: record_get,
            },
            ml_flags: ffi::METH_FASTCALL,
            ml_doc: c"get($self, key, default=None, /)\n--\n\nThe value of column `key`, or `default` when there is no such column.".as_ptr(),
        },
        ffi::PyMethodDef {
            ml_name: c"keys".as_ptr(),
            ml_meth: ffi::PyMethodDefPointer {
                PyCFunction: record_keys,
            },
            ml_flags: ffi::METH_NOARGS,
            ml_doc: c"keys($self, /)\n--\n\nAn iterator over the column names.".as_ptr(),
        },
        ffi::PyMethodDef {
            ml_name: c"values".as_ptr(),
            ml_meth: ffi::PyMethodDefPointer {
                PyCFunction: record_values,
            },
            ml_flags: ffi::METH_NOARGS,
            ml_doc: c"values($self, /)\n--\n\nAn iterator over the values.".as_ptr(),
        },
        ffi::PyMethodDef {
            ml_name: c"items".as_ptr(),
            ml_meth: ffi::PyMethodDefPointer {
                PyCFunction: record_items,
            },
            ml_flags: ffi::METH_NOARGS,
            ml_doc: c"items($self, /)\n--\n\nAn iterator over (name, value) pairs.".as_ptr(),
        },
        ffi::PyMethodDef {
            ml_name: c"__reduce__".as_ptr(),
            ml_meth: ffi::PyMethodDefPointer {
                PyCFunction: record_reduce,
            },
            ml_flags: ffi::METH_NOARGS,
            ml_doc: c"Records cannot be pickled.".as_ptr(),
        },
        ffi::PyMethodDef::zeroed(),
    ]));
    let mut slots = [
        slot(ffi::Py_tp_dealloc, record_dealloc as *mut c_void),
        slot(ffi::Py_tp_traverse, record_traverse as *mut c_void),
        slot(ffi::Py_tp_clear, record_clear as *mut c_void),
        slot(ffi::Py_tp_free, ffi::PyObject_GC_Del as *mut c_void),
        slot(ffi::Py_tp_repr, record_repr as *mut c_void),
        slot(ffi::Py_tp_hash, record_hash as *mut c_void),
        slot(ffi::Py_tp_richcompare, record_richcompare as *mut c_void),
        slot(ffi::Py_tp_iter, record_iter as *mut c_void),
        slot(ffi::Py_tp_new, record_new as *mut c_void),
        slot(ffi::Py_tp_methods, methods.as_mut_ptr().cast()),
        slot(
            ffi::Py_tp_doc,
            c"A row of a query result.".as_ptr() as *mut c_void,
        ),
        slot(ffi::Py_sq_length, record_length as *mut c_void),
        slot(ffi::Py_sq_item, record_sq_item as *mut c_void),
        slot(ffi::Py_sq_contains, record_contains as *mut c_void),
        slot(ffi::Py_mp_length, record_length as *mut c_void),
        slot(ffi::Py_mp_subscript, record_subscript as *mut c_void),
        ffi::PyType_Slot::default(),
    ];
    object::type_from_spec(
        py,
        c"ferropg.Record",
        BASIC_SIZE,
        std::mem::size_of::<*mut ffi::PyObject>(),
        ffi::Py_TPFLAGS_DEFAULT
            | ffi::Py_TPFLAGS_HAVE_GC
            | ffi::Py_TPFLAGS_BASETYPE
            | ffi::Py_TPFLAGS_IMMUTABLETYPE
            | ffi::Py_TPFLAGS_DISALLOW_INSTANTIATION,
        &mut slots,
    )
}

/// One entry of a `PyType_Slot` array.
pub(super) fn slot(slot: c_int, pfunc: *mut c_void) -> ffi::PyType_Slot {
    ffi::PyType_Slot { slot, pfunc }
}

/// `tp_new`, for CPythons without `Py_TPFLAGS_DISALLOW_INSTANTIATION` (which, where
/// it exists, keeps this from ever being called): Records come only from Rust.
unsafe extern "C" fn record_new(
    tp: *mut ffi::PyTypeObject,
    _args: *mut ffi::PyObject,
    _kwargs: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython passes a type object.
    unsafe {
        trap(ptr::null_mut(), |_| {
            let name = CStr::from_ptr((*tp).tp_name).to_string_lossy();
            Err(PyTypeError::new_err(format!(
                "cannot create '{name}' instances"
            )))
        })
    }
}

unsafe extern "C" fn record_length(obj: *mut ffi::PyObject) -> ffi::Py_ssize_t {
    // SAFETY: CPython passes a Record.
    unsafe { len(obj) as ffi::Py_ssize_t }
}

/// The value at position `i` (already made non-negative by the caller), new reference.
///
/// # Safety
/// `obj` must be a live, finished Record.
unsafe fn item_at(obj: *mut ffi::PyObject, i: ffi::Py_ssize_t) -> PyResult<*mut ffi::PyObject> {
    // SAFETY: the caller's contract; the index is checked against the length.
    let items = unsafe { items(obj) };
    if i < 0 || i as usize >= items.len() {
        return Err(PyIndexError::new_err("record index out of range"));
    }
    // SAFETY: a finished record's items are non-NULL strong references.
    unsafe {
        object::hand_out(items[i as usize]);
        Ok(ffi::Py_NewRef(items[i as usize]))
    }
}

unsafe extern "C" fn record_sq_item(
    obj: *mut ffi::PyObject,
    i: ffi::Py_ssize_t,
) -> *mut ffi::PyObject {
    // SAFETY: CPython passes a live Record.
    unsafe { trap(ptr::null_mut(), |_| item_at(obj, i)) }
}

/// Looks `key` up in the descriptor: `Ok(None)` when there is no such column (asyncpg
/// treats an unhashable key the same way), an error when the mapping is inconsistent
/// with the record. Returns a borrowed pointer to the value.
///
/// # Safety
/// `obj` must be a live, finished Record; the pointer is valid while it lives.
pub(super) unsafe fn lookup(
    py: Python<'_>,
    obj: *mut ffi::PyObject,
    key: &Bound<'_, PyAny>,
) -> PyResult<Option<*mut ffi::PyObject>> {
    // SAFETY: the caller's contract.
    let (desc, items) = unsafe { (object::desc(obj), items(obj)) };
    let index = match desc.mapping.bind(py).get_item(key) {
        Ok(Some(index)) => index,
        Ok(None) | Err(_) => return Ok(None),
    };
    let invalid = || PyRuntimeError::new_err("invalid record descriptor");
    // SAFETY: `index` is a live object (we hold a reference).
    if unsafe { ffi::PyIndex_Check(index.as_ptr()) } == 0 {
        return Err(invalid());
    }
    // SAFETY: as above; IndexError stands for an index that does not fit.
    let i = unsafe { ffi::PyNumber_AsSsize_t(index.as_ptr(), ffi::PyExc_IndexError) };
    if i < 0 || i as usize >= items.len() {
        if i == -1 {
            // Drop the IndexError/TypeError, if that is what -1 means.
            let _ = PyErr::take(py);
        }
        return Err(invalid());
    }
    Ok(Some(items[i as usize]))
}

unsafe extern "C" fn record_subscript(
    obj: *mut ffi::PyObject,
    key: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython passes a live Record and a live key.
    unsafe {
        trap(ptr::null_mut(), |py| {
            if ffi::PyLong_CheckExact(key) != 0
                || (ffi::PyUnicode_CheckExact(key) == 0 && ffi::PyIndex_Check(key) != 0)
            {
                let i = ffi::PyNumber_AsSsize_t(key, ffi::PyExc_IndexError);
                if i == -1 && !ffi::PyErr_Occurred().is_null() {
                    return Err(PyErr::fetch(py));
                }
                let i = if i < 0 {
                    i + len(obj) as ffi::Py_ssize_t
                } else {
                    i
                };
                return item_at(obj, i);
            }
            if ffi::PySlice_Check(key) != 0 {
                return slice(py, obj, key);
            }
            let key = Bound::from_borrowed_ptr(py, key);
            match lookup(py, obj, &key)? {
                Some(value) => {
                    object::hand_out(value);
                    Ok(ffi::Py_NewRef(value))
                }
                None => Err(PyKeyError::new_err(key.unbind())),
            }
        })
    }
}

/// `record[start:stop:step]`, as a tuple.
///
/// # Safety
/// `obj` must be a live, finished Record and `key` a slice.
unsafe fn slice(
    py: Python<'_>,
    obj: *mut ffi::PyObject,
    key: *mut ffi::PyObject,
) -> PyResult<*mut ffi::PyObject> {
    let (mut start, mut stop, mut step) = (0, 0, 0);
    // SAFETY: `key` is a slice; the out-pointers are valid.
    if unsafe { ffi::PySlice_Unpack(key, &mut start, &mut stop, &mut step) } < 0 {
        return Err(PyErr::fetch(py));
    }
    // SAFETY: the caller's contract.
    let items = unsafe { items(obj) };
    // SAFETY: plain arithmetic on the indices.
    let n = unsafe {
        ffi::PySlice_AdjustIndices(items.len() as ffi::Py_ssize_t, &mut start, &mut stop, step)
    };
    // SAFETY: a new tuple of `n` NULL slots, each filled once below with a new
    // reference; PySlice_AdjustIndices keeps `start + k * step` within the record.
    unsafe {
        let tuple = ffi::PyTuple_New(n);
        if tuple.is_null() {
            return Err(PyErr::fetch(py));
        }
        for k in 0..n {
            let item = items[(start + k * step) as usize];
            object::hand_out(item);
            ffi::PyTuple_SET_ITEM(tuple, k, ffi::Py_NewRef(item));
        }
        Ok(tuple)
    }
}

unsafe extern "C" fn record_contains(obj: *mut ffi::PyObject, key: *mut ffi::PyObject) -> c_int {
    // SAFETY: CPython passes a live Record and a live key.
    unsafe {
        trap(-1, |py| {
            let desc = object::desc(obj);
            // A str is a column name or nothing: one dict lookup. Anything else is
            // compared with each name, as asyncpg does (never an unhashable error).
            let found = if ffi::PyUnicode_CheckExact(key) != 0 {
                ffi::PyDict_Contains(desc.mapping.as_ptr(), key)
            } else {
                ffi::PySequence_Contains(desc.names.as_ptr(), key)
            };
            if found < 0 {
                return Err(PyErr::fetch(py));
            }
            Ok(found)
        })
    }
}

// CPython's tuple hash (xxHash-based, Objects/tupleobject.c since 3.8), so that a
// Record hashes like the tuple of its values.
#[cfg(target_pointer_width = "64")]
mod xx {
    pub const PRIME_1: u64 = 11400714785074694791;
    pub const PRIME_2: u64 = 14029467366897019727;
    pub const PRIME_5: u64 = 2870177450012600261;
    pub const ROTATE: u32 = 31;
    pub type Uhash = u64;
}
#[cfg(target_pointer_width = "32")]
mod xx {
    pub const PRIME_1: u32 = 2654435761;
    pub const PRIME_2: u32 = 2246822519;
    pub const PRIME_5: u32 = 374761393;
    pub const ROTATE: u32 = 13;
    pub type Uhash = u32;
}

/// The tuple hash's initial accumulator.
pub(super) const TUPLE_HASH_INIT: xx::Uhash = xx::PRIME_5;

/// Mixes one item's hash into the accumulator.
#[inline]
pub(super) fn tuple_hash_lane(acc: xx::Uhash, lane: isize) -> xx::Uhash {
    let acc = acc.wrapping_add((lane as xx::Uhash).wrapping_mul(xx::PRIME_2));
    acc.rotate_left(xx::ROTATE).wrapping_mul(xx::PRIME_1)
}

/// The final hash of `len` items.
#[inline]
pub(super) fn tuple_hash_finish(acc: xx::Uhash, len: usize) -> isize {
    let acc = acc.wrapping_add(len as xx::Uhash ^ (xx::PRIME_5 ^ 3527539));
    if acc == xx::Uhash::MAX {
        1546275796
    } else {
        acc as isize
    }
}

unsafe extern "C" fn record_hash(obj: *mut ffi::PyObject) -> ffi::Py_hash_t {
    // SAFETY: CPython passes a live, finished Record; each item is hashed with a new
    // reference held, as hashing may run Python code.
    unsafe {
        let items = items(obj);
        let mut acc = TUPLE_HASH_INIT;
        for &item in items {
            let item = ffi::Py_NewRef(item);
            let lane = ffi::PyObject_Hash(item);
            ffi::Py_DECREF(item);
            if lane == -1 {
                return -1;
            }
            acc = tuple_hash_lane(acc, lane);
        }
        tuple_hash_finish(acc, items.len())
    }
}

/// The values of a tuple (or tuple subclass) or a Record, else None.
///
/// # Safety
/// `obj` must be live; the slice must not outlive it.
unsafe fn comparable_items<'a>(obj: *mut ffi::PyObject) -> Option<&'a [*mut ffi::PyObject]> {
    // SAFETY: a tuple's `ob_item` holds `ob_size` items; a Record's are inline.
    unsafe {
        if ffi::PyTuple_Check(obj) != 0 {
            let tuple = obj.cast::<ffi::PyTupleObject>();
            let start = ptr::addr_of!((*tuple).ob_item).cast::<*mut ffi::PyObject>();
            Some(std::slice::from_raw_parts(
                start,
                ffi::PyTuple_GET_SIZE(obj) as usize,
            ))
        } else if is_record(obj) {
            Some(items(obj))
        } else {
            None
        }
    }
}

unsafe extern "C" fn record_richcompare(
    v: *mut ffi::PyObject,
    w: *mut ffi::PyObject,
    op: c_int,
) -> *mut ffi::PyObject {
    // SAFETY: CPython passes two live objects, one of them a Record.
    unsafe {
        trap(ptr::null_mut(), |py| {
            let (Some(a), Some(b)) = (comparable_items(v), comparable_items(w)) else {
                return Ok(ffi::Py_NewRef(ffi::Py_NotImplemented()));
            };
            // Comparing hands each value to the other side's __eq__.
            for &x in a.iter().chain(b) {
                object::hand_out(x);
            }
            compare(py, a, b, op)
        })
    }
}

/// Tuple comparison: equal lengths and items for ==, else the first differing items
/// (or the lengths, when one is a prefix of the other) decide.
///
/// # Safety
/// The slices must hold live objects, kept alive by their (immutable) containers.
unsafe fn compare(
    py: Python<'_>,
    a: &[*mut ffi::PyObject],
    b: &[*mut ffi::PyObject],
    op: c_int,
) -> PyResult<*mut ffi::PyObject> {
    let as_bool = |value: bool| {
        // SAFETY: the True/False singletons.
        unsafe {
            ffi::Py_NewRef(if value {
                ffi::Py_True()
            } else {
                ffi::Py_False()
            })
        }
    };
    if a.len() != b.len() && (op == ffi::Py_EQ || op == ffi::Py_NE) {
        return Ok(as_bool(op == ffi::Py_NE));
    }
    for (&x, &y) in a.iter().zip(b) {
        // SAFETY: live items; strong references are held while Python code may run.
        let (x, y) = unsafe {
            (
                Bound::from_borrowed_ptr(py, x),
                Bound::from_borrowed_ptr(py, y),
            )
        };
        // SAFETY: as above.
        let equal = unsafe { ffi::PyObject_RichCompareBool(x.as_ptr(), y.as_ptr(), ffi::Py_EQ) };
        if equal < 0 {
            return Err(PyErr::fetch(py));
        }
        if equal == 0 {
            return match op {
                ffi::Py_EQ => Ok(as_bool(false)),
                ffi::Py_NE => Ok(as_bool(true)),
                // SAFETY: as above.
                _ => unsafe {
                    let r = ffi::PyObject_RichCompare(x.as_ptr(), y.as_ptr(), op);
                    if r.is_null() {
                        Err(PyErr::fetch(py))
                    } else {
                        Ok(r)
                    }
                },
            };
        }
    }
    let (m, n) = (a.len(), b.len());
    Ok(as_bool(match op {
        ffi::Py_LT => m < n,
        ffi::Py_LE => m <= n,
        ffi::Py_EQ => m == n,
        ffi::Py_NE => m != n,
        ffi::Py_GT => m > n,
        _ => m >= n,
    }))
}

/// The class's short name (after the last dot of `tp_name`), as `repr` shows it.
///
/// # Safety
/// `obj` must be live.
unsafe fn type_name(obj: *mut ffi::PyObject) -> String {
    // SAFETY: every type has a NUL-terminated tp_name.
    let name = unsafe { CStr::from_ptr((*ffi::Py_TYPE(obj)).tp_name) }.to_string_lossy();
    name.rsplit('.').next().unwrap_or_default().to_owned()
}

/// Leaves the repr recursion guard on every path out of `record_repr`.
struct ReprGuard(*mut ffi::PyObject);

impl Drop for ReprGuard {
    fn drop(&mut self) {
        // SAFETY: only made after a successful Py_ReprEnter on this live object.
        unsafe { ffi::Py_ReprLeave(self.0) }
    }
}

unsafe extern "C" fn record_repr(obj: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: CPython passes a live, finished Record.
    unsafe {
        trap(ptr::null_mut(), |py| {
            let name = type_name(obj);
            let items = items(obj);
            if items.is_empty() {
                return Ok(PyString::new(py, &format!("<{name}>")).into_ptr());
            }
            match ffi::Py_ReprEnter(obj) {
                0 => {}
                r if r > 0 => return Ok(PyString::new(py, &format!("<{name} ...>")).into_ptr()),
                _ => return Err(PyErr::fetch(py)),
            }
            let _guard = ReprGuard(obj);
            let names = object::desc(obj).names.bind(py);
            if names.len() < items.len() {
                return Err(PyRuntimeError::new_err("invalid record mapping"));
            }
            let parts = PyList::empty(py);
            parts.append(format!("<{name}"))?;
            for (i, &item) in items.iter().enumerate() {
                parts.append(" ")?;
                parts.append(names.get_item(i)?.str()?)?;
                parts.append("=")?;
                parts.append(Bound::from_borrowed_ptr(py, item).repr()?)?;
            }
            parts.append(">")?;
            into_ptr(PyString::new(py, "").call_method1(intern!(py, "join"), (parts,)))
        })
    }
}

unsafe extern "C" fn record_iter(obj: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: CPython passes a live, finished Record.
    unsafe { trap(ptr::null_mut(), |py| iter::new_values_iter(py, obj)) }
}

unsafe extern "C" fn record_values(
    obj: *mut ffi::PyObject,
    _args: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: as `record_iter`.
    unsafe { record_iter(obj) }
}

unsafe extern "C" fn record_items(
    obj: *mut ffi::PyObject,
    _args: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython passes a live, finished Record.
    unsafe { trap(ptr::null_mut(), |py| iter::new_items_iter(py, obj)) }
}

unsafe extern "C" fn record_keys(
    obj: *mut ffi::PyObject,
    _args: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython passes a live, finished Record.
    unsafe {
        trap(ptr::null_mut(), |py| {
            let n = len(obj);
            let names = object::desc(obj).names.bind(py);
            let keys: Bound<'_, PyTuple> = if names.len() <= n {
                names.clone()
            } else {
                names.get_slice(0, n)
            };
            into_ptr(keys.as_any().try_iter().map(Bound::into_any))
        })
    }
}

unsafe extern "C" fn record_get(
    obj: *mut ffi::PyObject,
    args: *mut *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
) -> *mut ffi::PyObject {
    // SAFETY: CPython passes a live Record and `nargs` live positional arguments.
    unsafe {
        trap(ptr::null_mut(), |py| {
            if !(1..=2).contains(&nargs) {
                return Err(PyTypeError::new_err(format!(
                    "get() takes 1 or 2 arguments ({nargs} given)"
                )));
            }
            let key = Bound::from_borrowed_ptr(py, *args);
            match lookup(py, obj, &key)? {
                Some(value) => {
                    object::hand_out(value);
                    Ok(ffi::Py_NewRef(value))
                }
                None if nargs == 2 => Ok(ffi::Py_NewRef(*args.add(1))),
                None => Ok(ffi::Py_NewRef(ffi::Py_None())),
            }
        })
    }
}

unsafe extern "C" fn record_reduce(
    obj: *mut ffi::PyObject,
    _args: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython passes a live Record.
    unsafe {
        trap(ptr::null_mut(), |_| {
            let name = CStr::from_ptr((*ffi::Py_TYPE(obj)).tp_name).to_string_lossy();
            Err(PyTypeError::new_err(format!(
                "cannot pickle '{name}' object"
            )))
        })
    }
}
