//! point, line, lseg, box, path, polygon and circle as ferropg.types objects.

use bytes::{BufMut, BytesMut};
use ferropg_core::types::geometry as g;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use super::decode::wire;
use super::encode::type_name;
use super::pytypes::PyTypes;

/// Which geometric type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Geometry {
    /// `point`.
    Point,
    /// `line` {A, B, C}.
    Line,
    /// `lseg`.
    Lseg,
    /// `box`.
    Box,
    /// `path`.
    Path,
    /// `polygon`.
    Polygon,
    /// `circle`.
    Circle,
}

fn xy(py: Python<'_>, x: f64, y: f64) -> PyResult<Bound<'_, PyTuple>> {
    PyTuple::new(py, [x, y])
}

/// Decodes one value.
pub fn decode<'py>(py: Python<'py>, kind: Geometry, buf: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let t = PyTypes::get(py)?;
    Ok(match kind {
        Geometry::Point => {
            let [x, y] = g::decode_f64s::<2>(buf).map_err(wire)?;
            t.point.bind(py).call1((x, y))?
        }
        Geometry::Line => {
            let [a, b, c] = g::decode_f64s::<3>(buf).map_err(wire)?;
            t.line.bind(py).call1((a, b, c))?
        }
        Geometry::Lseg | Geometry::Box => {
            let [x1, y1, x2, y2] = g::decode_f64s::<4>(buf).map_err(wire)?;
            let cls = if kind == Geometry::Lseg {
                &t.lseg
            } else {
                &t.box_
            };
            cls.bind(py).call1((xy(py, x1, y1)?, xy(py, x2, y2)?))?
        }
        Geometry::Circle => {
            let [x, y, r] = g::decode_f64s::<3>(buf).map_err(wire)?;
            t.circle.bind(py).call1((xy(py, x, y)?, r))?
        }
        Geometry::Path | Geometry::Polygon => {
            let (closed, points) = if kind == Geometry::Path {
                g::decode_path(buf).map_err(wire)?
            } else {
                (true, g::decode_points(buf).map_err(wire)?)
            };
            let points = points
                .into_iter()
                .map(|(x, y)| xy(py, x, y))
                .collect::<PyResult<Vec<_>>>()?;
            let args = PyTuple::new(py, points)?;
            if kind == Geometry::Path {
                let kwargs = PyDict::new(py);
                kwargs.set_item("is_closed", closed)?;
                t.path.bind(py).call(args, Some(&kwargs))?
            } else {
                t.polygon.bind(py).call1(args)?
            }
        }
    })
}

fn floats<const N: usize>(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<[f64; N]> {
    if obj.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(format!(
            "a sequence of {N} numbers expected for {what} (got type {})",
            type_name(obj)
        )));
    }
    let len = obj.len().map_err(|_| {
        PyTypeError::new_err(format!(
            "a sequence of {N} numbers expected for {what} (got type {})",
            type_name(obj)
        ))
    })?;
    if len != N {
        return Err(PyValueError::new_err(format!(
            "{what} expects {N} elements, got {len}"
        )));
    }
    let mut out = [0f64; N];
    for (i, v) in out.iter_mut().enumerate() {
        *v = obj.get_item(i)?.extract()?;
    }
    Ok(out)
}

fn points(obj: &Bound<'_, PyAny>) -> PyResult<Vec<(f64, f64)>> {
    obj.try_iter()?
        .map(|p| {
            let [x, y] = floats::<2>(&p?, "a point")?;
            Ok((x, y))
        })
        .collect()
}

/// Writes one value from a ferropg.types object or a plain sequence.
pub fn encode(kind: Geometry, obj: &Bound<'_, PyAny>, buf: &mut BytesMut) -> PyResult<()> {
    let mut out = Vec::new();
    match kind {
        Geometry::Point => g::encode_f64s(&floats::<2>(obj, "a point")?, &mut out),
        Geometry::Line => g::encode_f64s(&floats::<3>(obj, "a line")?, &mut out),
        Geometry::Lseg | Geometry::Box => {
            let what = if kind == Geometry::Lseg {
                "a line segment"
            } else {
                "a box"
            };
            let [a, b] = two(obj, what)?;
            g::encode_f64s(&[a[0], a[1], b[0], b[1]], &mut out);
        }
        Geometry::Circle => {
            let [center, radius] = two_items(obj, "a circle")?;
            let [x, y] = floats::<2>(&center, "a circle's center")?;
            g::encode_f64s(&[x, y, radius.extract()?], &mut out);
        }
        Geometry::Path => {
            // A Path says whether it is closed; otherwise, as asyncpg: a tuple is closed,
            // a list is open.
            let closed = match obj.getattr("is_closed") {
                Ok(v) => v.is_truthy()?,
                Err(_) if obj.is_instance_of::<PyTuple>() => true,
                Err(_) if obj.is_instance_of::<PyList>() => false,
                Err(_) => {
                    return Err(PyTypeError::new_err(format!(
                        "a Path, list or tuple expected (got type {})",
                        type_name(obj)
                    )))
                }
            };
            out.push(u8::from(closed));
            g::encode_points(&points(obj)?, &mut out).map_err(|e| PyValueError::new_err(e.0))?;
        }
        Geometry::Polygon => {
            g::encode_points(&points(obj)?, &mut out).map_err(|e| PyValueError::new_err(e.0))?
        }
    }
    buf.put_slice(&out);
    Ok(())
}

fn two_items<'py>(obj: &Bound<'py, PyAny>, what: &str) -> PyResult<[Bound<'py, PyAny>; 2]> {
    let len = obj.len().map_err(|_| {
        PyTypeError::new_err(format!(
            "a sequence of 2 elements expected for {what} (got type {})",
            type_name(obj)
        ))
    })?;
    if len != 2 || obj.is_instance_of::<PyString>() {
        return Err(PyValueError::new_err(format!("{what} expects 2 elements")));
    }
    Ok([obj.get_item(0)?, obj.get_item(1)?])
}

fn two(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<[[f64; 2]; 2]> {
    let [a, b] = two_items(obj, what)?;
    Ok([floats::<2>(&a, "a point")?, floats::<2>(&b, "a point")?])
}
