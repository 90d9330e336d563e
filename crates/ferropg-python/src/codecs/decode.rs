//! Binary (and text-fallback) wire values to Python objects.

use ferropg_core::types::{array as framing, binary, datetime as dt, numeric, oid, DecodeError};
use pyo3::exceptions::{PyOverflowError, PyValueError};
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDate, PyDateTime, PyDelta, PyTime, PyTzInfo};

use super::dynamic::{self, DynDecoder, Shared};
use super::geometry::{self, Geometry};
use super::ids::{self, Id};
use super::{array, network, Cache};

/// How to turn one column's bytes into a Python object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoder {
    /// `bool`.
    Bool,
    /// `int2`.
    Int2,
    /// `int4`.
    Int4,
    /// `int8`.
    Int8,
    /// `oid`.
    Oid,
    /// `float4`.
    Float4,
    /// `float8`.
    Float8,
    /// `numeric` to `decimal.Decimal`.
    Numeric,
    /// UTF-8 text: text, varchar, bpchar, name, json, xml, and any type sent as text.
    Text,
    /// `jsonb` (version byte, then text).
    Jsonb,
    /// `bytea`.
    Bytea,
    /// `"char"`: one byte, as bytes.
    Char,
    /// `date`.
    Date,
    /// `time`.
    Time,
    /// `timetz`.
    TimeTz,
    /// `timestamp` (naive).
    Timestamp,
    /// `timestamptz` (aware, UTC).
    TimestampTz,
    /// `interval` to `timedelta`.
    Interval,
    /// `uuid`.
    Uuid,
    /// `void`: always None.
    Void,
    /// An anonymous `record`: a tuple of its fields, each decoded by its own type.
    Record,
    /// An array of a built-in element type, to (nested) lists.
    Array {
        /// The element type OID the value's header must name.
        elem_oid: u32,
        /// How each element decodes; never itself an array.
        elem: &'static Decoder,
    },
    /// point, line, lseg, box, path, polygon, circle.
    Geometry(Geometry),
    /// inet (`cidr` false) or cidr.
    Network {
        /// The value is a cidr.
        cidr: bool,
    },
    /// pg_lsn, xid, tid, snapshots, bit strings, jsonpath.
    Id(Id),
    /// A codec built per connection (composites, arrays of them, user codecs).
    Dyn(Shared<DynDecoder>),
}

impl Decoder {
    /// Wraps a per-connection decoder.
    pub fn dynamic(d: DynDecoder) -> Decoder {
        Decoder::Dyn(Shared(std::sync::Arc::new(d)))
    }

    /// The result format to ask the server for: 1 binary, 0 text.
    pub fn format(&self) -> i16 {
        match self {
            Decoder::Dyn(d) => d.0.format(),
            _ => 1,
        }
    }

    /// The binary decoder for a type, or `None` when the column should come as text.
    pub fn binary_for(type_oid: u32) -> Option<Decoder> {
        if let Some(d) = Decoder::scalar(type_oid) {
            return Some(d.clone());
        }
        let elem_oid = framing::wire_element_type(type_oid)?;
        Some(Decoder::Array {
            elem_oid,
            elem: Decoder::scalar(elem_oid)?,
        })
    }

    /// The decoder of a non-array type.
    fn scalar(type_oid: u32) -> Option<&'static Decoder> {
        Some(match type_oid {
            oid::BOOL => &Decoder::Bool,
            oid::INT2 => &Decoder::Int2,
            oid::INT4 => &Decoder::Int4,
            oid::INT8 => &Decoder::Int8,
            oid::OID => &Decoder::Oid,
            oid::FLOAT4 => &Decoder::Float4,
            oid::FLOAT8 => &Decoder::Float8,
            oid::NUMERIC => &Decoder::Numeric,
            oid::TEXT
            | oid::VARCHAR
            | oid::BPCHAR
            | oid::NAME
            | oid::JSON
            | oid::XML
            | oid::UNKNOWN => &Decoder::Text,
            oid::JSONB => &Decoder::Jsonb,
            oid::BYTEA => &Decoder::Bytea,
            oid::CHAR => &Decoder::Char,
            oid::DATE => &Decoder::Date,
            oid::TIME => &Decoder::Time,
            oid::TIMETZ => &Decoder::TimeTz,
            oid::TIMESTAMP => &Decoder::Timestamp,
            oid::TIMESTAMPTZ => &Decoder::TimestampTz,
            oid::INTERVAL => &Decoder::Interval,
            oid::UUID => &Decoder::Uuid,
            oid::VOID => &Decoder::Void,
            oid::RECORD => &Decoder::Record,
            oid::POINT => &Decoder::Geometry(Geometry::Point),
            oid::LINE => &Decoder::Geometry(Geometry::Line),
            oid::LSEG => &Decoder::Geometry(Geometry::Lseg),
            oid::BOX => &Decoder::Geometry(Geometry::Box),
            oid::PATH => &Decoder::Geometry(Geometry::Path),
            oid::POLYGON => &Decoder::Geometry(Geometry::Polygon),
            oid::CIRCLE => &Decoder::Geometry(Geometry::Circle),
            oid::INET => &Decoder::Network { cidr: false },
            oid::CIDR => &Decoder::Network { cidr: true },
            oid::PG_LSN | oid::XID8 => &Decoder::Id(Id::U64),
            oid::XID | oid::CID => &Decoder::Id(Id::U32),
            oid::TID => &Decoder::Id(Id::Tid),
            oid::TXID_SNAPSHOT | oid::PG_SNAPSHOT => &Decoder::Id(Id::Snapshot),
            oid::BIT | oid::VARBIT => &Decoder::Id(Id::Bits),
            oid::JSONPATH => &Decoder::Id(Id::Jsonpath),
            _ => return None,
        })
    }
}

/// A `str` from UTF-8 bytes, validated once (by CPython, as it builds the string).
#[inline]
pub(super) fn str_from_utf8<'py>(py: Python<'py>, buf: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: the pointer and length describe `buf`, which outlives the call; the
    // result is a new reference or NULL with an exception set.
    let obj = unsafe {
        ffi::PyUnicode_DecodeUTF8(
            buf.as_ptr().cast(),
            buf.len() as ffi::Py_ssize_t,
            c"strict".as_ptr(),
        )
    };
    if obj.is_null() {
        let _ = PyErr::fetch(py);
        return Err(wire(DecodeError("text value is not valid UTF-8")));
    }
    // SAFETY: `obj` is the non-NULL new reference just checked.
    Ok(unsafe { Bound::from_owned_ptr(py, obj) })
}

pub(super) fn wire(e: DecodeError) -> PyErr {
    PyValueError::new_err(format!("malformed value from the server: {e}"))
}

/// Decodes one non-NULL value.
#[inline]
pub fn decode_value<'py>(
    py: Python<'py>,
    cache: &Cache,
    decoder: &Decoder,
    buf: &[u8],
) -> PyResult<Bound<'py, PyAny>> {
    Ok(match decoder {
        Decoder::Bool => PyBool::new(py, binary::decode_bool(buf).map_err(wire)?)
            .to_owned()
            .into_any(),
        Decoder::Int2 => binary::decode_i16(buf)
            .map_err(wire)?
            .into_pyobject(py)?
            .into_any(),
        Decoder::Int4 => binary::decode_i32(buf)
            .map_err(wire)?
            .into_pyobject(py)?
            .into_any(),
        Decoder::Int8 => binary::decode_i64(buf)
            .map_err(wire)?
            .into_pyobject(py)?
            .into_any(),
        Decoder::Oid => binary::decode_u32(buf)
            .map_err(wire)?
            .into_pyobject(py)?
            .into_any(),
        Decoder::Float4 => f64::from(binary::decode_f32(buf).map_err(wire)?)
            .into_pyobject(py)?
            .into_any(),
        Decoder::Float8 => binary::decode_f64(buf)
            .map_err(wire)?
            .into_pyobject(py)?
            .into_any(),
        Decoder::Numeric => {
            let text = numeric::decode_to_compact_string(buf).map_err(wire)?;
            cache.decimal.bind(py).call1((text,))?
        }
        Decoder::Text => str_from_utf8(py, buf)?,
        Decoder::Jsonb => str_from_utf8(py, binary::jsonb_body(buf).map_err(wire)?)?,
        Decoder::Bytea | Decoder::Char => PyBytes::new(py, buf).into_any(),
        Decoder::Date => decode_date(py, cache, binary::decode_i32(buf).map_err(wire)?)?,
        Decoder::Time => {
            let t = dt::split_time(binary::decode_i64(buf).map_err(wire)?);
            PyTime::new(py, t.hour, t.minute, t.second, t.microsecond, None)?.into_any()
        }
        Decoder::TimeTz => {
            let (usecs, west) = dt::decode_timetz(buf).map_err(wire)?;
            let t = dt::split_time(usecs);
            let offset = PyDelta::new(py, 0, -west, 0, true)?;
            let tz = PyTzInfo::fixed_offset(py, offset)?;
            PyTime::new(py, t.hour, t.minute, t.second, t.microsecond, Some(&tz))?.into_any()
        }
        Decoder::Timestamp => {
            decode_timestamp(py, cache, binary::decode_i64(buf).map_err(wire)?, false)?
        }
        Decoder::TimestampTz => {
            decode_timestamp(py, cache, binary::decode_i64(buf).map_err(wire)?, true)?
        }
        Decoder::Interval => {
            let iv = dt::decode_interval(buf).map_err(wire)?;
            // Months count as 30 days and years as 365, as asyncpg does.
            let years = iv.months / 12;
            let months = iv.months % 12;
            let days = i64::from(iv.days) + i64::from(months) * 30 + i64::from(years) * 365;
            let secs = iv.microseconds.div_euclid(1_000_000);
            let micros = iv.microseconds.rem_euclid(1_000_000);
            let days = days + secs.div_euclid(86_400);
            let secs = secs.rem_euclid(86_400);
            let days = i32::try_from(days)
                .map_err(|_| PyOverflowError::new_err("interval value out of range"))?;
            PyDelta::new(py, days, secs as i32, micros as i32, false)?.into_any()
        }
        Decoder::Uuid => make_uuid(py, cache, &binary::decode_uuid(buf).map_err(wire)?)?,
        Decoder::Void => py.None().into_bound(py),
        Decoder::Record => decode_record(py, cache, buf)?,
        Decoder::Array { elem_oid, elem } => array::decode(py, cache, *elem_oid, elem, buf)?,
        Decoder::Geometry(kind) => geometry::decode(py, *kind, buf)?,
        Decoder::Network { cidr } => network::decode(py, *cidr, buf)?,
        Decoder::Id(kind) => ids::decode(py, *kind, buf)?,
        Decoder::Dyn(d) => dynamic::decode(py, cache, &d.0, buf)?,
    })
}

/// An anonymous record: Int32 field count, then per field its type OID and value.
fn decode_record<'py>(py: Python<'py>, cache: &Cache, buf: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let malformed = || PyValueError::new_err("malformed record value from the server");
    let (count, mut rest) = buf.split_first_chunk::<4>().ok_or_else(malformed)?;
    let count = i32::from_be_bytes(*count);
    if count < 0 || count as usize > rest.len() / 8 {
        return Err(malformed());
    }
    let mut items = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let (oid, tail) = rest.split_first_chunk::<4>().ok_or_else(malformed)?;
        let (len, tail) = tail.split_first_chunk::<4>().ok_or_else(malformed)?;
        let oid = u32::from_be_bytes(*oid);
        let len = i32::from_be_bytes(*len);
        if len < 0 {
            items.push(py.None().into_bound(py));
            rest = tail;
            continue;
        }
        let value = tail.get(..len as usize).ok_or_else(malformed)?;
        rest = &tail[len as usize..];
        let decoder = Decoder::binary_for(oid).ok_or_else(|| {
            PyValueError::new_err(format!(
                "no binary decoder for a record field of type OID {oid}"
            ))
        })?;
        items.push(decode_value(py, cache, &decoder, value)?);
    }
    if !rest.is_empty() {
        return Err(malformed());
    }
    Ok(pyo3::types::PyTuple::new(py, items)?.into_any())
}

fn decode_date<'py>(py: Python<'py>, cache: &Cache, days: i32) -> PyResult<Bound<'py, PyAny>> {
    match days {
        dt::DATE_INFINITY => return Ok(cache.date_max.bind(py).clone().into_any()),
        dt::DATE_NEG_INFINITY => return Ok(cache.date_min.bind(py).clone().into_any()),
        _ => {}
    }
    let c = dt::pg_days_to_civil(i64::from(days));
    if c.year < 1 {
        return Err(PyValueError::new_err("ordinal must be >= 1"));
    }
    if c.year > 9999 {
        return Err(PyValueError::new_err(format!(
            "year {} is out of range",
            c.year
        )));
    }
    Ok(PyDate::new(py, c.year as i32, c.month, c.day)?.into_any())
}

fn decode_timestamp<'py>(
    py: Python<'py>,
    cache: &Cache,
    usecs: i64,
    utc: bool,
) -> PyResult<Bound<'py, PyAny>> {
    // Infinities come back naive even for timestamptz, as asyncpg returns them.
    match usecs {
        dt::TIMESTAMP_INFINITY => return Ok(cache.datetime_max.bind(py).clone().into_any()),
        dt::TIMESTAMP_NEG_INFINITY => return Ok(cache.datetime_min.bind(py).clone().into_any()),
        _ => {}
    }
    let (days, in_day) = dt::split_timestamp(usecs);
    let c = dt::pg_days_to_civil(days);
    if !(1..=9999).contains(&c.year) {
        return Err(PyOverflowError::new_err("date value out of range"));
    }
    let t = dt::split_time(in_day);
    let tz = if utc { Some(cache.utc.bind(py)) } else { None };
    Ok(PyDateTime::new(
        py,
        c.year as i32,
        c.month,
        c.day,
        t.hour,
        t.minute,
        t.second,
        t.microsecond,
        tz,
    )?
    .into_any())
}

/// Builds an instance of the fast UUID subclass by filling its `int` slot.
pub fn make_uuid<'py>(
    py: Python<'py>,
    cache: &Cache,
    bytes: &[u8; 16],
) -> PyResult<Bound<'py, PyAny>> {
    let ty = cache.uuid.bind(py);
    // SAFETY: the type is a heap type built from uuid.UUID with no extra slots, so
    // PyType_GenericAlloc gives a valid zeroed instance whose `int` slot (at the offset
    // its member descriptor gives) is NULL and ours to fill.
    unsafe {
        let obj = ffi::PyType_GenericAlloc(ty.as_ptr().cast(), 0);
        let obj = Bound::from_owned_ptr_or_err(py, obj)?;
        let int = ffi::_PyLong_FromByteArray(bytes.as_ptr(), 16, 0, 0);
        let int = Bound::from_owned_ptr_or_err(py, int)?;
        match cache.uuid_int_offset {
            Some(offset) => {
                let slot = obj
                    .as_ptr()
                    .cast::<u8>()
                    .offset(offset)
                    .cast::<*mut ffi::PyObject>();
                *slot = int.into_ptr();
                // It holds an int and nothing can be added to it (no __dict__, and
                // uuid.UUID refuses setattr), so it can never be part of a cycle: keep it
                // out of the collector's way, and let the Records holding it stay so.
                if ffi::PyType_IS_GC(ty.as_ptr().cast()) != 0 {
                    ffi::PyObject_GC_UnTrack(obj.as_ptr().cast());
                }
            }
            None => {
                let name = intern!(py, "int").as_ptr();
                if ffi::PyObject_GenericSetAttr(obj.as_ptr(), name, int.as_ptr()) != 0 {
                    return Err(PyErr::fetch(py));
                }
            }
        }
        Ok(obj)
    }
}

/// True for an instance of the fast UUID subclass that [`make_uuid`] untracked.
pub fn is_untracked_uuid(py: Python<'_>, tp: *mut ffi::PyTypeObject) -> bool {
    Cache::get(py).is_ok_and(|c| c.uuid_int_offset.is_some() && c.uuid.as_ptr() == tp.cast())
}
