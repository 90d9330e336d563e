//! Arrays of the built-in element types: binary framing from
//! `ferropg_core::types::array`, each element through the scalar codecs.
//!
//! Decoding gives (nested) lists; lower bounds are dropped. Encoding takes any sized
//! iterable that is not a str, a bytes-like object or a mapping; inner dimensions are
//! non-tuple iterables (a tuple is a composite element), and the shape is inferred from
//! the nesting.

use bytes::BytesMut;
use ferropg_core::types::array::{self as framing, Elements, Writer, MAX_DIMS};
use ferropg_core::types::DecodeError;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::iter::{BoundListIterator, BoundTupleIterator};
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyFrozenSet, PyInt, PyIterator, PyList,
    PyMemoryView, PySet, PyString, PyTuple,
};

use super::decode::{decode_value, wire, Decoder};
use super::encode::{encode_value, type_name, Encoder};
use super::Cache;

/// Decodes an array whose elements must be of type `elem_oid`, each by `elem`.
pub(super) fn decode<'py>(
    py: Python<'py>,
    cache: &Cache,
    elem_oid: u32,
    elem: &Decoder,
    buf: &[u8],
) -> PyResult<Bound<'py, PyAny>> {
    let (header, mut elements) = framing::parse(buf).map_err(wire)?;
    // Record fields carry their own types, so any composite element decodes as one.
    if header.element_oid() != elem_oid && *elem != Decoder::Record {
        return Err(PyValueError::new_err(format!(
            "malformed value from the server: array elements of type OID {}, expected OID {elem_oid}",
            header.element_oid()
        )));
    }
    let list = if header.is_empty() {
        PyList::empty(py)
    } else {
        build(py, cache, elem, header.dims(), &mut elements)?
    };
    elements.finish().map_err(wire)?;
    Ok(list.into_any())
}

/// One level of the nested lists: `dims[0]` items, each a sub-list or an element.
fn build<'py>(
    py: Python<'py>,
    cache: &Cache,
    elem: &Decoder,
    dims: &[usize],
    elements: &mut Elements<'_>,
) -> PyResult<Bound<'py, PyList>> {
    let len = ffi::Py_ssize_t::try_from(dims[0])
        .map_err(|_| wire(DecodeError("array dimension too large")))?;
    // Filled in place: nothing else refers to the list until it is returned, and the
    // collector skips (and deallocation tolerates) the slots not yet set if an
    // element decoder fails or runs Python code half-way.
    // SAFETY: PyList_New returns a new list of `len` NULL slots, or NULL with an error.
    let list = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyList_New(len))? };
    for i in 0..len {
        let item = if dims.len() > 1 {
            build(py, cache, elem, &dims[1..], elements)?.into_any()
        } else {
            match elements.next() {
                Some(Ok(Some(bytes))) => decode_value(py, cache, elem, bytes)?,
                Some(Ok(None)) => py.None().into_bound(py),
                Some(Err(e)) => return Err(wire(e)),
                None => return Err(wire(DecodeError("array data ends early"))),
            }
        };
        // SAFETY: slot `i` is in range and still NULL; SET_ITEM steals the reference.
        unsafe { ffi::PyList_SET_ITEM(list.as_ptr(), i, item.into_ptr()) };
    }
    Ok(list.cast_into::<PyList>()?)
}

/// Items of a list, a tuple or any other iterable.
enum Items<'py> {
    List(BoundListIterator<'py>),
    Tuple(BoundTupleIterator<'py>),
    Other(Bound<'py, PyIterator>),
}

impl<'py> Items<'py> {
    fn of(obj: &Bound<'py, PyAny>) -> PyResult<Items<'py>> {
        Ok(if let Ok(list) = obj.cast::<PyList>() {
            Items::List(list.iter())
        } else if let Ok(tuple) = obj.cast::<PyTuple>() {
            Items::Tuple(tuple.iter())
        } else {
            Items::Other(obj.try_iter()?)
        })
    }
}

impl<'py> Iterator for Items<'py> {
    type Item = PyResult<Bound<'py, PyAny>>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Items::List(it) => it.next().map(Ok),
            Items::Tuple(it) => it.next().map(Ok),
            Items::Other(it) => it.next(),
        }
    }
}

fn first_item<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    Items::of(obj)?.next().transpose()
}

/// Whether `obj` can be an array: a sized iterable that is neither a str, a bytes-like
/// object nor a mapping (asyncpg's rule).
fn is_array_input(cache: &Cache, obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    if obj.is_instance_of::<PyList>()
        || obj.is_instance_of::<PyTuple>()
        || obj.is_instance_of::<PySet>()
        || obj.is_instance_of::<PyFrozenSet>()
    {
        return Ok(true);
    }
    if obj.is_none()
        || obj.is_instance_of::<PyString>()
        || obj.is_instance_of::<PyBytes>()
        || obj.is_instance_of::<PyByteArray>()
        || obj.is_instance_of::<PyMemoryView>()
        || obj.is_instance_of::<PyDict>()
        || obj.is_instance_of::<PyInt>()
        || obj.is_instance_of::<PyFloat>()
        || obj.is_instance_of::<PyBool>()
    {
        return Ok(false);
    }
    let py = obj.py();
    Ok(obj.is_instance(cache.abc_iterable.bind(py))?
        && obj.is_instance(cache.abc_sized.bind(py))?
        && !obj.is_instance(cache.abc_mapping.bind(py))?)
}

/// Whether `obj` is an inner dimension: array input other than a tuple.
#[inline]
fn is_sub_array(cache: &Cache, obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    if obj.is_instance_of::<PyList>() {
        return Ok(true);
    }
    if obj.is_instance_of::<PyTuple>() {
        return Ok(false);
    }
    is_array_input(cache, obj)
}

fn non_homogeneous() -> PyErr {
    PyValueError::new_err("non-homogeneous array")
}

fn framing_error(e: ferropg_core::types::EncodeError) -> PyErr {
    PyValueError::new_err(e.0)
}

/// Writes `obj` as an array of `elem_oid`, each element by `elem`.
pub(super) fn encode(
    py: Python<'_>,
    cache: &Cache,
    elem_oid: u32,
    elem: &Encoder,
    obj: &Bound<'_, PyAny>,
    buf: &mut BytesMut,
) -> PyResult<()> {
    if !is_array_input(cache, obj)? {
        return Err(PyTypeError::new_err(format!(
            "a sized iterable container expected (got type '{}')",
            type_name(obj)
        )));
    }
    // The shape follows the first item of each level down to the first non-array.
    let mut dims = [0usize; MAX_DIMS];
    let mut ndim = 0;
    let mut level = obj.clone();
    loop {
        if ndim == MAX_DIMS {
            return Err(PyValueError::new_err(format!(
                "number of array dimensions ({}) exceed the maximum expected ({MAX_DIMS})",
                ndim + 1
            )));
        }
        let len = level.len()?;
        dims[ndim] = len;
        ndim += 1;
        if len == 0 {
            break;
        }
        match first_item(&level)? {
            Some(first) if is_sub_array(cache, &first)? => level = first,
            _ => break,
        }
    }
    let dims = &dims[..ndim];
    let mut writer = Writer::begin(buf, elem_oid, dims).map_err(framing_error)?;
    let mut at = Walk {
        py,
        cache,
        elem,
        dims,
        path: [0; MAX_DIMS],
    };
    at.write(obj, 0, &mut writer, buf)?;
    writer.finish(buf).map_err(framing_error)
}

/// The state of one array's encoding walk.
struct Walk<'a> {
    py: Python<'a>,
    cache: &'a Cache,
    elem: &'a Encoder,
    dims: &'a [usize],
    /// The index at each level, for error messages.
    path: [usize; MAX_DIMS],
}

impl Walk<'_> {
    /// Writes the items of `obj`, the array (or sub-array) at depth `level`.
    fn write(
        &mut self,
        obj: &Bound<'_, PyAny>,
        level: usize,
        writer: &mut Writer,
        buf: &mut BytesMut,
    ) -> PyResult<()> {
        let want = self.dims[level];
        let innermost = level + 1 == self.dims.len();
        let mut count = 0usize;
        for item in Items::of(obj)? {
            let item = item?;
            if count == want {
                return Err(changed_size());
            }
            self.path[level] = count;
            count += 1;
            if !innermost {
                if !is_sub_array(self.cache, &item)? || item.len()? != self.dims[level + 1] {
                    return Err(non_homogeneous());
                }
                self.write(&item, level + 1, writer, buf)?;
            } else if item.is_none() {
                writer.null(buf);
            } else if item.is_instance_of::<PyList>() {
                return Err(non_homogeneous());
            } else {
                let at = writer.begin_element(buf);
                if let Err(e) = encode_value(self.py, self.cache, self.elem, &item, buf) {
                    return Err(self.element_error(&item, e, level));
                }
                writer.end_element(buf, at).map_err(framing_error)?;
            }
        }
        if count != want {
            return Err(changed_size());
        }
        Ok(())
    }

    /// An element's encoder failed: name its position, as a ValueError for a TypeError
    /// (as asyncpg), keeping the type of any other error.
    fn element_error(&self, item: &Bound<'_, PyAny>, err: PyErr, level: usize) -> PyErr {
        let py = self.py;
        if err.is_instance_of::<PyTypeError>(py) && is_sub_array(self.cache, item).unwrap_or(false)
        {
            // An array where an element belongs: the nesting is uneven.
            return non_homogeneous();
        }
        let path = &self.path[..=level];
        let index = if let [i] = path {
            i.to_string()
        } else {
            path.iter().map(|i| format!("[{i}]")).collect()
        };
        let reason = err
            .value(py)
            .str()
            .map(|s| s.to_string())
            .unwrap_or_default();
        let msg = format!("invalid array element at index {index}: {reason}");
        let new = if err.is_instance_of::<PyTypeError>(py) {
            PyValueError::new_err(msg)
        } else {
            PyErr::from_type(err.get_type(py), msg)
        };
        new.set_cause(py, Some(err));
        new
    }
}

fn changed_size() -> PyErr {
    PyValueError::new_err("array value changed size while it was being encoded")
}
