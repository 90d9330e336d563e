//! Python objects to binary (or text-fallback) parameter values.
//!
//! The parameter type always comes from the server's ParameterDescription; the Python
//! value is checked against it, never used to guess it.

use bytes::{BufMut, BytesMut};
use ferropg_core::types::{array as framing, binary, datetime as dt, numeric, oid};
use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDate, PyDateAccess, PyDateTime, PyDelta, PyDeltaAccess,
    PyFloat, PyInt, PyMemoryView, PyString, PyTime, PyTimeAccess, PyTzInfoAccess,
};

use super::dynamic::{self, DynEncoder, Shared};
use super::geometry::{self, Geometry};
use super::ids::{self, Id};
use super::network;
use super::{array, Cache};

/// How to write one parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encoder {
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
    /// `numeric`.
    Numeric,
    /// Text-like types sent in binary (which for them is just UTF-8).
    Text,
    /// `jsonb`.
    Jsonb,
    /// `bytea`.
    Bytea,
    /// `"char"`.
    Char,
    /// `date`.
    Date,
    /// `time`.
    Time,
    /// `timetz`.
    TimeTz,
    /// `timestamp`.
    Timestamp,
    /// `timestamptz`.
    TimestampTz,
    /// `interval`.
    Interval,
    /// `uuid`.
    Uuid,
    /// An array of a built-in element type, from a (nested) sized iterable.
    Array {
        /// The element type OID to put in the header: the server checks it.
        elem_oid: u32,
        /// How each element is written; never itself an array.
        elem: &'static Encoder,
    },
    /// Any other type: a `str`, sent in text format for the server to parse.
    TextFallback,
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
    Dyn(Shared<DynEncoder>),
}

impl Encoder {
    /// The encoder for a parameter type.
    pub fn for_type(type_oid: u32) -> Encoder {
        if let Some(e) = Encoder::scalar(type_oid) {
            return e.clone();
        }
        let array = framing::wire_element_type(type_oid)
            .and_then(|elem_oid| Some((elem_oid, Encoder::scalar(elem_oid)?)));
        match array {
            Some((elem_oid, elem)) => Encoder::Array { elem_oid, elem },
            None => Encoder::TextFallback,
        }
    }

    /// The binary encoder of a non-array type, if it has one.
    fn scalar(type_oid: u32) -> Option<&'static Encoder> {
        Some(match type_oid {
            oid::BOOL => &Encoder::Bool,
            oid::INT2 => &Encoder::Int2,
            oid::INT4 => &Encoder::Int4,
            oid::INT8 => &Encoder::Int8,
            oid::OID => &Encoder::Oid,
            oid::FLOAT4 => &Encoder::Float4,
            oid::FLOAT8 => &Encoder::Float8,
            oid::NUMERIC => &Encoder::Numeric,
            oid::TEXT
            | oid::VARCHAR
            | oid::BPCHAR
            | oid::NAME
            | oid::JSON
            | oid::XML
            | oid::UNKNOWN => &Encoder::Text,
            oid::JSONB => &Encoder::Jsonb,
            oid::BYTEA => &Encoder::Bytea,
            oid::CHAR => &Encoder::Char,
            oid::DATE => &Encoder::Date,
            oid::TIME => &Encoder::Time,
            oid::TIMETZ => &Encoder::TimeTz,
            oid::TIMESTAMP => &Encoder::Timestamp,
            oid::TIMESTAMPTZ => &Encoder::TimestampTz,
            oid::INTERVAL => &Encoder::Interval,
            oid::UUID => &Encoder::Uuid,
            oid::POINT => &Encoder::Geometry(Geometry::Point),
            oid::LINE => &Encoder::Geometry(Geometry::Line),
            oid::LSEG => &Encoder::Geometry(Geometry::Lseg),
            oid::BOX => &Encoder::Geometry(Geometry::Box),
            oid::PATH => &Encoder::Geometry(Geometry::Path),
            oid::POLYGON => &Encoder::Geometry(Geometry::Polygon),
            oid::CIRCLE => &Encoder::Geometry(Geometry::Circle),
            oid::INET => &Encoder::Network { cidr: false },
            oid::CIDR => &Encoder::Network { cidr: true },
            oid::PG_LSN | oid::XID8 => &Encoder::Id(Id::U64),
            oid::XID | oid::CID => &Encoder::Id(Id::U32),
            oid::TID => &Encoder::Id(Id::Tid),
            oid::TXID_SNAPSHOT | oid::PG_SNAPSHOT => &Encoder::Id(Id::Snapshot),
            oid::BIT | oid::VARBIT => &Encoder::Id(Id::Bits),
            oid::JSONPATH => &Encoder::Id(Id::Jsonpath),
            _ => return None,
        })
    }

    /// Wraps a per-connection encoder.
    pub fn dynamic(e: DynEncoder) -> Encoder {
        Encoder::Dyn(Shared(std::sync::Arc::new(e)))
    }

    /// The format code to send: 1 (binary), or 0 for the text fallback.
    pub fn format(&self) -> i16 {
        match self {
            Encoder::TextFallback => 0,
            Encoder::Dyn(e) => e.0.format(),
            _ => 1,
        }
    }
}

pub(super) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

fn expected(what: &str, obj: &Bound<'_, PyAny>) -> PyErr {
    PyTypeError::new_err(format!("expected {what}, got {}", type_name(obj)))
}

fn int_in_range(obj: &Bound<'_, PyAny>, min: i64, max: i64, name: &str) -> PyResult<i64> {
    let py = obj.py();
    let int = if obj.is_instance_of::<PyInt>() {
        obj.clone()
    } else if !obj.is_instance_of::<PyString>() && obj.hasattr(intern!(py, "__int__"))? {
        // Floats and Decimals are taken when they hold a whole number (asyncpg takes any
        // __int__, truncating); a fractional part would be lost silently, so it is refused.
        // The range is checked first: Decimal('1e1000000').__int__() takes a minute.
        if obj.lt(min).unwrap_or(false) || obj.gt(max).unwrap_or(false) {
            return Err(PyOverflowError::new_err(format!(
                "value out of {name} range"
            )));
        }
        let int = obj.call_method0(intern!(py, "__int__"))?;
        if !int.eq(obj)? {
            return Err(PyValueError::new_err(format!(
                "an integer is required (got {} with a fractional part)",
                type_name(obj)
            )));
        }
        int
    } else {
        return Err(PyTypeError::new_err(format!(
            "an integer is required (got type {})",
            type_name(obj)
        )));
    };
    let v: i64 = int
        .extract()
        .map_err(|_| PyOverflowError::new_err(format!("value out of {name} range")))?;
    if v < min || v > max {
        return Err(PyOverflowError::new_err(format!(
            "value out of {name} range"
        )));
    }
    Ok(v)
}

fn text_of<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<std::borrow::Cow<'a, str>> {
    match obj.cast::<PyString>() {
        Ok(s) => Ok(s.to_cow()?),
        Err(_) => Err(expected("str", obj)),
    }
}

/// Writes one non-None parameter value.
pub fn encode_value(
    py: Python<'_>,
    cache: &Cache,
    encoder: &Encoder,
    obj: &Bound<'_, PyAny>,
    buf: &mut BytesMut,
) -> PyResult<()> {
    match encoder {
        Encoder::Bool => match obj.cast::<PyBool>() {
            Ok(b) => buf.put_u8(u8::from(b.is_true())),
            Err(_) => {
                return Err(PyTypeError::new_err(format!(
                    "a boolean is required (got type {})",
                    type_name(obj)
                )))
            }
        },
        Encoder::Int2 => {
            buf.put_i16(int_in_range(obj, i16::MIN.into(), i16::MAX.into(), "int16")? as i16)
        }
        Encoder::Int4 => {
            buf.put_i32(int_in_range(obj, i32::MIN.into(), i32::MAX.into(), "int32")? as i32)
        }
        Encoder::Int8 => buf.put_i64(int_in_range(obj, i64::MIN, i64::MAX, "int64")?),
        Encoder::Oid => buf.put_u32(int_in_range(obj, 0, u32::MAX.into(), "uint32")? as u32),
        Encoder::Float4 | Encoder::Float8 => {
            let v: f64 = if obj.is_instance_of::<PyFloat>() || obj.is_instance_of::<PyInt>() {
                obj.extract()?
            } else if obj.hasattr(intern!(py, "__float__"))? {
                obj.call_method0(intern!(py, "__float__"))?.extract()?
            } else {
                return Err(PyTypeError::new_err(format!(
                    "must be real number, not {}",
                    type_name(obj)
                )));
            };
            if *encoder == Encoder::Float4 {
                let f = v as f32;
                if f.is_infinite() && v.is_finite() {
                    return Err(PyOverflowError::new_err("value out of float32 range"));
                }
                buf.put_f32(f);
            } else {
                buf.put_f64(v);
            }
        }
        Encoder::Numeric => {
            let text = if obj.is_instance_of::<PyString>() {
                obj.cast::<PyString>()?.to_cow()?.into_owned()
            } else if obj.is_instance_of::<PyInt>()
                || obj.is_instance_of::<PyFloat>()
                || obj.is_instance(cache.decimal.bind(py))?
            {
                obj.str()?.to_cow()?.into_owned()
            } else {
                return Err(PyTypeError::new_err(format!(
                    "invalid numeric value: expected Decimal, int, float or str, got {}",
                    type_name(obj)
                )));
            };
            numeric::encode_from_str(&text, buf).map_err(|e| PyValueError::new_err(e.0))?;
        }
        Encoder::Text => buf.put_slice(text_of(obj)?.as_bytes()),
        Encoder::TextFallback => buf.put_slice(text_of(obj)?.as_bytes()),
        Encoder::Jsonb => {
            let text = text_of(obj)?;
            buf.put_u8(binary::JSONB_VERSION);
            buf.put_slice(text.as_bytes());
        }
        Encoder::Bytea => {
            if let Ok(b) = obj.cast::<PyBytes>() {
                buf.put_slice(b.as_bytes());
            } else if let Ok(b) = obj.cast::<PyByteArray>() {
                buf.put_slice(&b.to_vec());
            } else if obj.is_instance_of::<PyMemoryView>() {
                let bytes = obj.call_method0(intern!(py, "tobytes"))?;
                buf.put_slice(bytes.cast::<PyBytes>()?.as_bytes());
            } else {
                return Err(PyTypeError::new_err(format!(
                    "a bytes-like object is required, not '{}'",
                    type_name(obj)
                )));
            }
        }
        Encoder::Char => {
            if let Ok(b) = obj.cast::<PyBytes>() {
                buf.put_slice(b.as_bytes());
            } else {
                buf.put_slice(text_of(obj)?.as_bytes());
            }
        }
        Encoder::Date => {
            let d = obj.cast::<PyDate>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "expected a datetime.date or datetime.datetime instance, got '{}'",
                    type_name(obj)
                ))
            })?;
            buf.put_i32(encode_date(py, cache, d)?);
        }
        Encoder::Time => {
            let t = obj
                .cast::<PyTime>()
                .map_err(|_| expected("a datetime.time instance", obj))?;
            buf.put_i64(time_usecs(t));
        }
        Encoder::TimeTz => {
            let t = obj
                .cast::<PyTime>()
                .map_err(|_| expected("a datetime.time instance", obj))?;
            let offset = match t.get_tzinfo() {
                Some(tz) => tz.call_method1(intern!(py, "utcoffset"), (py.None(),))?,
                None => py.None().into_bound(py),
            };
            let offset_secs = if offset.is_none() {
                0
            } else {
                let d = offset.cast::<PyDelta>()?;
                d.get_days() * 86_400 + d.get_seconds()
            };
            buf.put_i64(time_usecs(t));
            // PostgreSQL counts the offset west of UTC, Python east.
            buf.put_i32(-offset_secs);
        }
        Encoder::Timestamp => buf.put_i64(encode_timestamp(py, cache, obj, false)?),
        Encoder::TimestampTz => buf.put_i64(encode_timestamp(py, cache, obj, true)?),
        Encoder::Interval => {
            let d = obj
                .cast::<PyDelta>()
                .map_err(|_| expected("a datetime.timedelta instance", obj))?;
            let usecs = i64::from(d.get_seconds()) * 1_000_000 + i64::from(d.get_microseconds());
            buf.put_i64(usecs);
            buf.put_i32(d.get_days());
            buf.put_i32(0);
        }
        Encoder::Uuid => {
            let bytes: [u8; 16] = if obj.is_instance(cache.std_uuid.bind(py))? {
                let int: u128 = obj.getattr(intern!(py, "int"))?.extract()?;
                int.to_be_bytes()
            } else if let Ok(s) = obj.cast::<PyString>() {
                binary::parse_uuid(&s.to_cow()?)
                    .ok_or_else(|| PyValueError::new_err("badly formed hexadecimal UUID string"))?
            } else if let Ok(b) = obj.cast::<PyBytes>() {
                b.as_bytes()
                    .try_into()
                    .map_err(|_| PyValueError::new_err("bytes is not a 16-char string"))?
            } else {
                return Err(expected("uuid.UUID, str or bytes", obj));
            };
            buf.put_slice(&bytes);
        }
        Encoder::Array { elem_oid, elem } => array::encode(py, cache, *elem_oid, elem, obj, buf)?,
        Encoder::Geometry(kind) => geometry::encode(*kind, obj, buf)?,
        Encoder::Network { cidr } => network::encode(*cidr, obj, buf)?,
        Encoder::Id(kind) => ids::encode(*kind, obj, buf)?,
        Encoder::Dyn(e) => dynamic::encode(py, cache, &e.0, obj, buf)?,
    }
    Ok(())
}

fn time_usecs(t: &Bound<'_, PyTime>) -> i64 {
    dt::join_time(dt::TimeOfDay {
        hour: t.get_hour(),
        minute: t.get_minute(),
        second: t.get_second(),
        microsecond: t.get_microsecond(),
    })
}

fn encode_date(py: Python<'_>, cache: &Cache, d: &Bound<'_, PyDate>) -> PyResult<i32> {
    if d.is_exact_instance_of::<PyDate>() {
        if d.eq(cache.date_max.bind(py))? {
            return Ok(dt::DATE_INFINITY);
        }
        if d.eq(cache.date_min.bind(py))? {
            return Ok(dt::DATE_NEG_INFINITY);
        }
    }
    let days = dt::civil_to_pg_days(dt::Civil {
        year: i64::from(d.get_year()),
        month: d.get_month(),
        day: d.get_day(),
    });
    Ok(days as i32)
}

fn encode_timestamp(
    py: Python<'_>,
    cache: &Cache,
    obj: &Bound<'_, PyAny>,
    with_tz: bool,
) -> PyResult<i64> {
    let owned;
    let dtm: &Bound<'_, PyDateTime> = if let Ok(d) = obj.cast::<PyDateTime>() {
        d
    } else if let Ok(d) = obj.cast::<PyDate>() {
        // A plain date means its midnight (local midnight for timestamptz, as asyncpg).
        let midnight = PyDateTime::new(
            py,
            d.get_year(),
            d.get_month(),
            d.get_day(),
            0,
            0,
            0,
            0,
            None,
        )?;
        owned = if with_tz {
            midnight
                .call_method0(intern!(py, "astimezone"))?
                .cast_into::<PyDateTime>()?
        } else {
            midnight
        };
        &owned
    } else {
        return Err(PyTypeError::new_err(format!(
            "expected a datetime.date or datetime.datetime instance, got '{}'",
            type_name(obj)
        )));
    };
    let aware = dtm.get_tzinfo().is_some();
    if !aware {
        if dtm.eq(cache.datetime_max.bind(py))? {
            return Ok(dt::TIMESTAMP_INFINITY);
        }
        if dtm.eq(cache.datetime_min.bind(py))? {
            return Ok(dt::TIMESTAMP_NEG_INFINITY);
        }
    }
    let utc_owned;
    let dtm = if with_tz {
        // Naive values are local time, as Python's astimezone() reads them.
        utc_owned = dtm
            .call_method1(intern!(py, "astimezone"), (cache.utc.bind(py),))?
            .cast_into::<PyDateTime>()?;
        &utc_owned
    } else if aware {
        return Err(PyTypeError::new_err(
            "can't subtract offset-naive and offset-aware datetimes",
        ));
    } else {
        dtm
    };
    let days = dt::civil_to_pg_days(dt::Civil {
        year: i64::from(dtm.get_year()),
        month: dtm.get_month(),
        day: dtm.get_day(),
    });
    let in_day = dt::join_time(dt::TimeOfDay {
        hour: dtm.get_hour(),
        minute: dtm.get_minute(),
        second: dtm.get_second(),
        microsecond: dtm.get_microsecond(),
    });
    Ok(days * dt::USECS_PER_DAY + in_day)
}
