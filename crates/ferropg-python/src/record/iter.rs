//! The iterators `iter(record)`/`record.values()` and `record.items()` return.
//!
//! Both hold the record until exhausted, then drop it (so an exhausted iterator stays
//! exhausted). An iterator is GC-tracked only when its record is: one over an
//! untracked record cannot be part of a cycle.

use std::ffi::{c_int, c_void};
use std::ptr;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyType;

use super::object::{self, items, len, type_from_spec};
use super::slots::{slot, trap};

#[repr(C)]
struct RecordIterObject {
    ob_base: ffi::PyObject,
    /// The record (strong reference), NULL once exhausted.
    record: *mut ffi::PyObject,
    next: ffi::Py_ssize_t,
    end: ffi::Py_ssize_t,
}

fn iter_type(
    py: Python<'_>,
    name: &'static std::ffi::CStr,
    next: ffi::iternextfunc,
    doc: &'static std::ffi::CStr,
) -> PyResult<Py<PyType>> {
    let methods: &'static mut [ffi::PyMethodDef] = Box::leak(Box::new([
        ffi::PyMethodDef {
            ml_name: c"__length_hint__".as_ptr(),
            ml_meth: ffi::PyMethodDefPointer {
                PyCFunction: iter_length_hint,
            },
            ml_flags: ffi::METH_NOARGS,
            ml_doc: c"Private method returning an estimate of len(list(it)).".as_ptr(),
        },
        ffi::PyMethodDef::zeroed(),
    ]));
    let mut slots = [
        slot(ffi::Py_tp_dealloc, iter_dealloc as *mut c_void),
        slot(ffi::Py_tp_traverse, iter_traverse as *mut c_void),
        slot(ffi::Py_tp_clear, iter_clear as *mut c_void),
        slot(ffi::Py_tp_free, ffi::PyObject_GC_Del as *mut c_void),
        slot(ffi::Py_tp_iter, ffi::PyObject_SelfIter as *mut c_void),
        slot(ffi::Py_tp_iternext, next as *mut c_void),
        slot(ffi::Py_tp_methods, methods.as_mut_ptr().cast()),
        slot(ffi::Py_tp_doc, doc.as_ptr() as *mut c_void),
        ffi::PyType_Slot::default(),
    ];
    type_from_spec(
        py,
        name,
        std::mem::size_of::<RecordIterObject>(),
        0,
        ffi::Py_TPFLAGS_DEFAULT
            | ffi::Py_TPFLAGS_HAVE_GC
            | ffi::Py_TPFLAGS_IMMUTABLETYPE
            | ffi::Py_TPFLAGS_DISALLOW_INSTANTIATION,
        &mut slots,
    )
}

/// Creates the type of `iter(record)`.
pub(super) fn create_values_iter_type(py: Python<'_>) -> PyResult<Py<PyType>> {
    iter_type(
        py,
        c"ferropg.protocol.record.RecordIterator",
        values_next,
        c"An iterator over a Record's values.",
    )
}

/// Creates the type of `record.items()`.
pub(super) fn create_items_iter_type(py: Python<'_>) -> PyResult<Py<PyType>> {
    iter_type(
        py,
        c"ferropg.protocol.record.RecordItemsIterator",
        items_next,
        c"An iterator over a Record's (name, value) pairs.",
    )
}

/// A new iterator of type `tp` over `end` entries of `record`.
///
/// # Safety
/// `record` must be a live, finished Record and `end <= len(record)`.
unsafe fn new_iter(
    py: Python<'_>,
    tp: &Py<PyType>,
    record: *mut ffi::PyObject,
    end: usize,
) -> PyResult<*mut ffi::PyObject> {
    // SAFETY: `tp` is one of our iterator types (GC, basicsize RecordIterObject); the
    // fields are set before the object is visible, and it is tracked only if the
    // record is (the contract makes `record` live).
    unsafe {
        let it = ffi::PyObject_GC_New::<RecordIterObject>(tp.bind(py).as_type_ptr());
        if it.is_null() {
            return Err(PyErr::fetch(py));
        }
        (*it).record = ffi::Py_NewRef(record);
        (*it).next = 0;
        (*it).end = end as ffi::Py_ssize_t;
        if ffi::PyObject_GC_IsTracked(record) != 0 {
            ffi::PyObject_GC_Track(it.cast());
        }
        Ok(it.cast())
    }
}

/// `iter(record)`.
///
/// # Safety
/// `record` must be a live, finished Record.
pub(super) unsafe fn new_values_iter(
    py: Python<'_>,
    record: *mut ffi::PyObject,
) -> PyResult<*mut ffi::PyObject> {
    let types = object::types(py)?;
    // SAFETY: the caller's contract.
    unsafe { new_iter(py, &types.values_iter, record, len(record)) }
}

/// `record.items()`: pairs while there are both names and values.
///
/// # Safety
/// `record` must be a live, finished Record.
pub(super) unsafe fn new_items_iter(
    py: Python<'_>,
    record: *mut ffi::PyObject,
) -> PyResult<*mut ffi::PyObject> {
    let types = object::types(py)?;
    // SAFETY: the caller's contract.
    unsafe {
        let names = object::desc(record).names.bind(py).len();
        new_iter(py, &types.items_iter, record, names.min(len(record)))
    }
}

/// The next index to yield, or None (and the record released) when exhausted.
///
/// # Safety
/// `it` must be a live iterator of ours.
unsafe fn advance(it: *mut RecordIterObject) -> Option<(*mut ffi::PyObject, usize)> {
    // SAFETY: the caller's contract; the record is released only once, after the
    // field is cleared.
    unsafe {
        let record = (*it).record;
        if record.is_null() {
            return None;
        }
        if (*it).next < (*it).end {
            let i = (*it).next;
            (*it).next += 1;
            return Some((record, i as usize));
        }
        (*it).record = ptr::null_mut();
        ffi::Py_DECREF(record);
        None
    }
}

unsafe extern "C" fn values_next(it: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: CPython passes a live iterator of ours; the record it holds is live and
    // finished, and `i < end <= len`.
    unsafe {
        match advance(it.cast()) {
            Some((record, i)) => {
                let item = items(record)[i];
                object::hand_out(item);
                ffi::Py_NewRef(item)
            }
            None => ptr::null_mut(),
        }
    }
}

unsafe extern "C" fn items_next(it: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: as `values_next`; `i < end <= len(names)` too.
    unsafe {
        trap(ptr::null_mut(), |py| {
            let Some((record, i)) = advance(it.cast()) else {
                return Ok(ptr::null_mut());
            };
            let name = object::desc(record).names.bind(py).get_item(i)?;
            let pair = ffi::PyTuple_New(2);
            if pair.is_null() {
                return Err(PyErr::fetch(py));
            }
            ffi::PyTuple_SET_ITEM(pair, 0, name.into_ptr());
            let item = items(record)[i];
            object::hand_out(item);
            ffi::PyTuple_SET_ITEM(pair, 1, ffi::Py_NewRef(item));
            Ok(pair)
        })
    }
}

unsafe extern "C" fn iter_length_hint(
    it: *mut ffi::PyObject,
    _args: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython passes a live iterator of ours.
    unsafe {
        let it = it.cast::<RecordIterObject>();
        let left = if (*it).record.is_null() {
            0
        } else {
            (*it).end - (*it).next
        };
        ffi::PyLong_FromSsize_t(left)
    }
}

unsafe extern "C" fn iter_dealloc(it: *mut ffi::PyObject) {
    // SAFETY: CPython calls tp_dealloc once, on an iterator of ours with no references
    // left; the type reference is released after the memory.
    unsafe {
        let tp = ffi::Py_TYPE(it);
        ffi::PyObject_GC_UnTrack(it.cast());
        let record = ptr::replace(
            &mut (*it.cast::<RecordIterObject>()).record,
            ptr::null_mut(),
        );
        ffi::Py_XDECREF(record);
        ffi::PyObject_GC_Del(it.cast());
        ffi::Py_DECREF(tp.cast());
    }
}

unsafe extern "C" fn iter_traverse(
    it: *mut ffi::PyObject,
    visit: ffi::visitproc,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: CPython passes a live iterator of ours; its type is a live heap type.
    unsafe {
        let record = (*it.cast::<RecordIterObject>()).record;
        if !record.is_null() {
            let r = visit(record, arg);
            if r != 0 {
                return r;
            }
        }
        visit(ffi::Py_TYPE(it).cast(), arg)
    }
}

unsafe extern "C" fn iter_clear(it: *mut ffi::PyObject) -> c_int {
    // SAFETY: CPython passes a live iterator of ours; clearing it exhausts it.
    unsafe {
        let record = ptr::replace(
            &mut (*it.cast::<RecordIterObject>()).record,
            ptr::null_mut(),
        );
        ffi::Py_XDECREF(record);
    }
    0
}
