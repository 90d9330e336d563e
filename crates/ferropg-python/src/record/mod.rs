//! `ferropg.Record`: a read-only row, indexed by position or column name.
//!
//! A Record is a variable-size object written against the C API (`object.rs`): the
//! values sit inline after a small header, as a tuple's do, and all the Records of one
//! result share one [`RecordDesc`] (column names and the name-to-index mapping).
//! Equality, ordering and hashing are those of the values tuple, so a Record equals a
//! tuple with the same values. Column names may repeat; a lookup by name gives the last
//! column of that name, as the descriptor maps it.
//!
//! Unlike asyncpg's, a Record is tracked by the cyclic GC only when one of its values
//! can take part in a reference cycle (a list, a dict, a tracked tuple, ...): a row of
//! ints, strings, Decimals and datetimes costs the collector nothing.
//!
//! Build Records with [`RecordBuilder`]: one value at a time, no intermediate `Vec`.

mod iter;
mod object;
mod slots;

use std::mem::ManuallyDrop;
use std::ptr::NonNull;

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple, PyType};

/// Column names shared by every Record of one result: `names` in column order and
/// `mapping` from a name to its (last) index.
#[pyclass(module = "ferropg.protocol.record", frozen, name = "RecordDescriptor")]
pub struct RecordDesc {
    pub(crate) names: Py<PyTuple>,
    pub(crate) mapping: Py<PyDict>,
}

impl RecordDesc {
    /// A descriptor for these column names.
    pub fn from_names(py: Python<'_>, names: &[String]) -> PyResult<Py<RecordDesc>> {
        let mapping = PyDict::new(py);
        let mut keys = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let key = PyString::new(py, name);
            mapping.set_item(&key, i)?;
            keys.push(key);
        }
        Py::new(
            py,
            RecordDesc {
                names: PyTuple::new(py, keys)?.unbind(),
                mapping: mapping.unbind(),
            },
        )
    }

    /// A descriptor from a user mapping of name to index (for `_create_record`).
    pub fn from_mapping(
        py: Python<'_>,
        mapping: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<RecordDesc>> {
        let mapping = match mapping {
            Some(m) => m.clone(),
            None => PyDict::new(py),
        };
        let names = PyTuple::new(py, mapping.keys())?;
        Py::new(
            py,
            RecordDesc {
                names: names.unbind(),
                mapping: mapping.unbind(),
            },
        )
    }
}

/// The base `Record` type (`ferropg.Record`), created once per interpreter.
pub fn record_type(py: Python<'_>) -> PyResult<Bound<'_, PyType>> {
    Ok(object::types(py)?.record.bind(py).clone())
}

/// Builds one Record of `len` values, pushed in column order.
///
/// The record stays invisible to Python (and to the cyclic GC) until [`finish`]; a
/// builder dropped before that frees what it holds. `finish` starts GC tracking only if
/// a pushed value can take part in a reference cycle (or the class gives instances a
/// `__dict__`).
///
/// [`finish`]: RecordBuilder::finish
pub struct RecordBuilder<'py> {
    py: Python<'py>,
    /// The record under construction: owned, untracked, `pos` of `len` items set and
    /// the rest NULL.
    obj: NonNull<ffi::PyObject>,
    len: usize,
    pos: usize,
    track: bool,
}

impl<'py> RecordBuilder<'py> {
    /// Starts a record of class `cls` (the Record type or a subclass of it) over `desc`.
    pub fn new(
        py: Python<'py>,
        cls: &Bound<'py, PyType>,
        desc: &Py<RecordDesc>,
        len: usize,
    ) -> PyResult<Self> {
        let (obj, track) = object::alloc(py, cls, desc, len)?;
        Ok(RecordBuilder {
            py,
            obj,
            len,
            pos: 0,
            track,
        })
    }

    /// Appends the next value (the reference is moved into the record).
    ///
    /// # Panics
    /// When more values are pushed than the `len` given to [`RecordBuilder::new`].
    #[inline]
    pub fn push(&mut self, value: Bound<'py, PyAny>) {
        assert!(
            self.pos < self.len,
            "RecordBuilder::push: more than {} values",
            self.len
        );
        if object::hide_list(&value) {
            // The record stays tracked: see `object::hide_list`.
            self.track = true;
        } else if !self.track {
            self.track = object::may_be_in_cycle(&value);
        }
        // SAFETY: `obj` is our record of `len` item slots and `pos < len`; the slot is
        // still NULL, so nothing is overwritten, and the record takes the reference.
        unsafe { object::set_item(self.obj.as_ptr(), self.pos, value.into_ptr()) };
        self.pos += 1;
    }

    /// The finished record. Slots never pushed hold None.
    pub fn finish(self) -> Bound<'py, PyAny> {
        let this = ManuallyDrop::new(self);
        let obj = this.obj.as_ptr();
        for i in this.pos..this.len {
            // SAFETY: `i < len` and the slot is NULL; None gets a new strong reference.
            unsafe { object::set_item(obj, i, ffi::Py_NewRef(ffi::Py_None())) };
        }
        if this.track {
            // SAFETY: the record was allocated untracked (see `object::alloc`) and every
            // item is set, so the collector may traverse it from now on.
            unsafe { ffi::PyObject_GC_Track(obj.cast()) };
        }
        // SAFETY: we own the one reference to `obj`; `this` is not dropped, so it is
        // handed over exactly once.
        unsafe { Bound::from_owned_ptr(this.py, obj) }
    }
}

impl Drop for RecordBuilder<'_> {
    fn drop(&mut self) {
        // SAFETY: an unfinished record is ours alone; its deallocator accepts NULL
        // items (the slots not pushed yet).
        unsafe { ffi::Py_DECREF(self.obj.as_ptr()) };
    }
}

/// `_create_record(mapping, values, cls=None)`: builds a Record from a name-to-index
/// mapping (asyncpg's test suite uses it to exercise Record without a server); `cls`, a
/// Record subclass, is for our own tests.
#[pyfunction]
#[pyo3(signature = (mapping, values, cls=None))]
pub fn _create_record<'py>(
    py: Python<'py>,
    mapping: Option<Bound<'py, PyDict>>,
    values: Bound<'py, PyTuple>,
    cls: Option<Bound<'py, PyType>>,
) -> PyResult<Bound<'py, PyAny>> {
    let desc = RecordDesc::from_mapping(py, mapping.as_ref())?;
    let cls = match cls {
        Some(cls) => cls,
        None => record_type(py)?,
    };
    let mut builder = RecordBuilder::new(py, &cls, &desc, values.len())?;
    for value in values.iter() {
        builder.push(value);
    }
    Ok(builder.finish())
}

/// `_record_freelist_counts()`: how many spare Records of each size (0 to 19 values)
/// this thread's freelist holds. For tests.
#[pyfunction]
pub fn _record_freelist_counts(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    PyList::new(py, object::freelist_counts())
}

/// Raised by `RecordBuilder::new` for a class that is not a Record type.
fn not_a_record_class(cls: &Bound<'_, PyType>) -> PyErr {
    PyTypeError::new_err(format!(
        "record class must be ferropg.Record or a subclass of it, not {}",
        cls.name().map(|n| n.to_string()).unwrap_or_default()
    ))
}

#[cfg(test)]
mod tests {
    use super::slots::{tuple_hash_finish, tuple_hash_lane, TUPLE_HASH_INIT};

    fn tuple_hash(lanes: &[isize]) -> isize {
        let mut acc = TUPLE_HASH_INIT;
        for &lane in lanes {
            acc = tuple_hash_lane(acc, lane);
        }
        tuple_hash_finish(acc, lanes.len())
    }

    /// Values printed by CPython 3.11 (64-bit): `hash(())`, `hash((1,))`,
    /// `hash((1, 2))`, `hash((-2, 0))` (hash(-1) is -2 in CPython).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn hash_matches_cpython_tuples() {
        assert_eq!(tuple_hash(&[]), 5740354900026072187);
        assert_eq!(tuple_hash(&[1]), -6644214454873602895);
        assert_eq!(tuple_hash(&[1, 2]), -3550055125485641917);
        assert_eq!(tuple_hash(&[-2, 0]), 2575514064802888272);
    }
}
