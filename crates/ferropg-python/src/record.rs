//! `ferropg.Record`: a read-only row, indexed by position or column name.
//!
//! Equality, ordering and hashing are those of the values tuple, so a Record
//! equals a tuple with the same values. Column names may repeat; a lookup by
//! name gives the last column of that name, as the descriptor maps it.

use pyo3::exceptions::{PyIndexError, PyKeyError, PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::pyclass::CompareOp;
use pyo3::types::{PyDict, PyInt, PySlice, PyString, PyTuple};

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

/// A row of a query result.
#[pyclass(module = "ferropg", frozen, subclass, name = "Record")]
pub struct Record {
    pub(crate) values: Py<PyTuple>,
    pub(crate) desc: Py<RecordDesc>,
}

fn lookup_index(
    py: Python<'_>,
    desc: &RecordDesc,
    len: usize,
    key: &Bound<'_, PyAny>,
) -> PyResult<Option<usize>> {
    let Some(idx) = desc.mapping.bind(py).get_item(key)? else {
        return Ok(None);
    };
    match idx.extract::<usize>() {
        Ok(i) if i < len => Ok(Some(i)),
        _ => Err(PyRuntimeError::new_err("invalid record descriptor")),
    }
}

#[pymethods]
impl Record {
    fn __len__(&self, py: Python<'_>) -> usize {
        self.values.bind(py).len()
    }

    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let values = self.values.bind(py);
        if let Ok(i) = key.cast::<PyInt>() {
            let len = values.len() as isize;
            let mut i: isize = i.extract()?;
            if i < 0 {
                i += len;
            }
            if i < 0 || i >= len {
                return Err(PyIndexError::new_err("record index out of range"));
            }
            return values.get_item(i as usize);
        }
        if key.is_instance_of::<PySlice>() {
            return values.as_any().get_item(key);
        }
        match lookup_index(py, self.desc.get(), values.len(), key)? {
            Some(i) => values.get_item(i),
            None => Err(PyKeyError::new_err(key.clone().unbind())),
        }
    }

    fn __contains__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.desc.get().mapping.bind(py).contains(key)
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(self.values.bind(py).as_any().try_iter()?.into_any())
    }

    fn __hash__(&self, py: Python<'_>) -> PyResult<isize> {
        self.values.bind(py).as_any().hash()
    }

    fn __richcmp__<'py>(
        &self,
        py: Python<'py>,
        other: &Bound<'py, PyAny>,
        op: CompareOp,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mine = self.values.bind(py);
        let theirs = if let Ok(r) = other.cast::<Record>() {
            r.get().values.bind(py).clone().into_any()
        } else if other.is_instance_of::<PyTuple>() {
            other.clone()
        } else {
            return Ok(py.NotImplemented().into_bound(py));
        };
        mine.as_any().rich_compare(theirs, op)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let values = self.values.bind(py);
        let names = self.desc.get().names.bind(py);
        if names.len() < values.len() {
            return Err(PyRuntimeError::new_err("invalid record mapping"));
        }
        let mut out = String::from("<Record");
        for (i, value) in values.iter().enumerate() {
            out.push(' ');
            out.push_str(&names.get_item(i)?.str()?.to_cow()?);
            out.push('=');
            out.push_str(&value.repr()?.to_cow()?);
        }
        out.push('>');
        Ok(out)
    }

    fn __str__(&self, py: Python<'_>) -> PyResult<String> {
        self.__repr__(py)
    }

    fn __bool__(&self, py: Python<'_>) -> bool {
        !self.values.bind(py).is_empty()
    }

    fn __reduce__(&self) -> PyResult<()> {
        Err(PyTypeError::new_err(
            "cannot pickle 'ferropg.Record' objects",
        ))
    }

    /// The value of column `key`, or `default` when there is no such column.
    #[pyo3(signature = (key, default=None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let values = self.values.bind(py);
        match lookup_index(py, self.desc.get(), values.len(), key)? {
            Some(i) => values.get_item(i),
            None => Ok(default.unwrap_or_else(|| py.None().into_bound(py))),
        }
    }

    /// An iterator over the column names.
    fn keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let values = self.values.bind(py);
        let names = self.desc.get().names.bind(py);
        let names = names.get_slice(0, names.len().min(values.len()));
        Ok(names.as_any().try_iter()?.into_any())
    }

    /// An iterator over the values.
    fn values<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.__iter__(py)
    }

    /// An iterator over `(name, value)` pairs.
    fn items(&self, py: Python<'_>) -> PyResult<RecordItems> {
        let values = self.values.bind(py);
        let names = self.desc.get().names.bind(py);
        Ok(RecordItems {
            names: names.clone().unbind(),
            values: values.clone().unbind(),
            pos: std::sync::atomic::AtomicUsize::new(0),
            len: names.len().min(values.len()),
        })
    }
}

/// The iterator returned by `Record.items()`.
#[pyclass(
    module = "ferropg.protocol.record",
    frozen,
    name = "RecordItemsIterator"
)]
pub struct RecordItems {
    names: Py<PyTuple>,
    values: Py<PyTuple>,
    pos: std::sync::atomic::AtomicUsize,
    len: usize,
}

#[pymethods]
impl RecordItems {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyTuple>>> {
        use std::sync::atomic::Ordering;
        let i = self.pos.load(Ordering::Relaxed);
        if i >= self.len {
            return Ok(None);
        }
        self.pos.store(i + 1, Ordering::Relaxed);
        let name = self.names.bind(py).get_item(i)?;
        let value = self.values.bind(py).get_item(i)?;
        Ok(Some(PyTuple::new(py, [name, value])?))
    }

    fn __length_hint__(&self) -> usize {
        self.len
            - self
                .pos
                .load(std::sync::atomic::Ordering::Relaxed)
                .min(self.len)
    }
}

/// `_create_record(mapping, values)`: builds a Record from a name-to-index mapping
/// (asyncpg's test suite uses it to exercise Record without a server).
#[pyfunction]
pub fn _create_record(
    py: Python<'_>,
    mapping: Option<Bound<'_, PyDict>>,
    values: Bound<'_, PyTuple>,
) -> PyResult<Record> {
    Ok(Record {
        values: values.unbind(),
        desc: RecordDesc::from_mapping(py, mapping.as_ref())?,
    })
}

/// Builds a Record of class `cls` (Record or a subclass) over `values`.
///
/// The decode path calls this for every row; the record type's representation can
/// change behind it.
pub fn new_record<'py>(
    py: Python<'py>,
    _cls: &Bound<'py, pyo3::types::PyType>,
    desc: &Py<RecordDesc>,
    values: Vec<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let record = Record {
        values: PyTuple::new(py, values)?.unbind(),
        desc: desc.clone_ref(py),
    };
    Ok(Bound::new(py, record)?.into_any())
}

/// The base Record type.
pub fn record_type(py: Python<'_>) -> PyResult<Bound<'_, pyo3::types::PyType>> {
    Ok(py.get_type::<Record>())
}
