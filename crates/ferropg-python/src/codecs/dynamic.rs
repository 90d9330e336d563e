//! Codecs built per connection from what introspection found and what the user set:
//! composites, arrays of any element, user codecs (`set_type_codec`) and hstore.

use std::fmt;
use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use ferropg_core::types::{begin_length, end_length, record as framing};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyMapping, PyString, PyTuple};

use super::decode::{decode_value, wire, Decoder};
use super::encode::{encode_value, type_name, Encoder};
use super::registry::{CustomCodec, Format};
use super::{array, Cache};
use crate::errors::{self, ClientError};
use crate::record::{record_type, RecordBuilder, RecordDesc};

/// A shared codec, equal only to itself (codecs hold Python objects).
pub struct Shared<T>(pub Arc<T>);

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(self.0.clone())
    }
}

impl<T> PartialEq for Shared<T> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl<T> Eq for Shared<T> {}

impl<T> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Shared(..)")
    }
}

/// A named composite type as the connection knows it.
pub struct Composite {
    /// Its schema, for errors.
    pub schema: String,
    /// Its name, for errors.
    pub name: String,
    /// Attribute type OIDs, in order: the wire value must name the same.
    pub oids: Vec<u32>,
    /// Attribute names, in order.
    pub names: Vec<String>,
    /// The Records' keys.
    pub desc: Py<RecordDesc>,
    /// Decode to a plain tuple (for a `format='tuple'` user codec) instead of a Record.
    pub as_tuple: bool,
}

/// A decoder built per connection.
pub enum DynDecoder {
    /// A named composite, with a decoder per attribute.
    Composite(Composite, Vec<Decoder>),
    /// An array of any element type with a binary decoder.
    Array {
        /// The element type OID the value's header must name.
        elem_oid: u32,
        /// How each element decodes.
        elem: Decoder,
    },
    /// A user codec; `inner` decodes a composite to the tuple a `tuple` codec takes.
    Custom {
        codec: Arc<CustomCodec>,
        inner: Option<Decoder>,
        /// The type's binary form is its text, so a text codec reads it in binary.
        text_like: bool,
    },
    /// contrib's hstore.
    Hstore,
    /// An array in text form, of elements with no binary decoder: each element as
    /// `str`, or through `elem` (a text-format user codec).
    TextArray {
        /// The element separator (`;` for box, `,` otherwise).
        delim: u8,
        /// How each element decodes; `None` = as `str`.
        elem: Option<Decoder>,
    },
    /// A range of `elem` values, to ferropg.types.Range.
    Range(Decoder),
    /// A multirange of `elem` values, to a list of Ranges.
    Multirange(Decoder),
    /// A value the client cannot exchange in the form it would need; the message says
    /// why (raised as UnsupportedClientFeatureError).
    Refused(String),
    /// The wire integers of a date/time value, as a tuple (for `format='tuple'`).
    WireTuple(WireTuple),
}

/// The date/time types whose `format='tuple'` codecs see their wire integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireTuple {
    /// `date`: (days since 2000-01-01,).
    Date,
    /// `time`, `timestamp`, `timestamptz`: (microseconds,).
    Micros,
    /// `timetz`: (microseconds, UTC offset in seconds west).
    TimeTz,
    /// `interval`: (months, days, microseconds).
    Interval,
}

impl WireTuple {
    /// The tuple form of a built-in type, if it has one.
    pub fn for_type(oid: u32) -> Option<WireTuple> {
        use ferropg_core::types::oid as o;
        Some(match oid {
            o::DATE => WireTuple::Date,
            o::TIME | o::TIMESTAMP | o::TIMESTAMPTZ => WireTuple::Micros,
            o::TIMETZ => WireTuple::TimeTz,
            o::INTERVAL => WireTuple::Interval,
            _ => return None,
        })
    }
}

/// An encoder built per connection.
pub enum DynEncoder {
    /// A named composite, from a sequence or a mapping.
    Composite(Composite, Vec<Encoder>),
    /// An array of any element type with a binary encoder.
    Array {
        /// The element type OID to put in the header.
        elem_oid: u32,
        /// How each element is written.
        elem: Encoder,
    },
    /// A user codec; `inner` writes the sequence a `tuple` codec returns.
    Custom {
        codec: Arc<CustomCodec>,
        inner: Option<Encoder>,
        /// The type's binary form is its text, so a text codec writes it in binary.
        text_like: bool,
    },
    /// contrib's hstore, from a mapping of str to str or None.
    Hstore,
    /// An array in text form, each element written by `elem` (which yields text).
    TextArray {
        /// The element separator.
        delim: u8,
        /// How each element is written.
        elem: Encoder,
    },
    /// A range from a Range or a (lower, upper) sequence.
    Range(Encoder),
    /// A multirange from a sequence of ranges.
    Multirange(Encoder),
    /// See [`DynDecoder::Refused`].
    Refused(String),
    /// See [`DynDecoder::WireTuple`].
    WireTuple(WireTuple),
}

impl DynDecoder {
    /// The result format to ask the server for: 1 binary, 0 text.
    pub fn format(&self) -> i16 {
        match self {
            DynDecoder::TextArray { .. } => 0,
            DynDecoder::Custom {
                codec, text_like, ..
            } if codec.format == Format::Text && !text_like => 0,
            _ => 1,
        }
    }
}

impl DynEncoder {
    /// The parameter format to send: 1 binary, 0 text.
    pub fn format(&self) -> i16 {
        match self {
            DynEncoder::TextArray { .. } => 0,
            DynEncoder::Custom {
                codec, text_like, ..
            } if codec.format == Format::Text && !text_like => 0,
            _ => 1,
        }
    }
}

fn outdated(py: Python<'_>, c: &Composite, message: String, position: Option<usize>) -> PyErr {
    let build = || -> PyResult<Bound<'_, PyAny>> {
        let kwargs = PyDict::new(py);
        kwargs.set_item("schema", &c.schema)?;
        kwargs.set_item("data_type", &c.name)?;
        kwargs.set_item("position", position)?;
        py.import("ferropg.exceptions")?
            .getattr("OutdatedSchemaCacheError")?
            .call((message.clone(),), Some(&kwargs))
    };
    match build() {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

fn utf8(buf: &[u8]) -> PyResult<&str> {
    std::str::from_utf8(buf).map_err(|_| PyValueError::new_err("invalid UTF-8 from the server"))
}

/// Decodes one non-NULL value of a per-connection type.
pub fn decode<'py>(
    py: Python<'py>,
    cache: &Cache,
    dec: &DynDecoder,
    buf: &[u8],
) -> PyResult<Bound<'py, PyAny>> {
    match dec {
        DynDecoder::Composite(c, fields) => decode_composite(py, cache, c, fields, buf),
        DynDecoder::Array { elem_oid, elem } => array::decode(py, cache, *elem_oid, elem, buf),
        DynDecoder::Custom { codec, inner, .. } => {
            let arg = match codec.format {
                Format::Text => PyString::new(py, utf8(buf)?).into_any(),
                Format::Binary => PyBytes::new(py, buf).into_any(),
                Format::Tuple => match inner {
                    Some(d) => decode_value(py, cache, d, buf)?,
                    None => PyBytes::new(py, buf).into_any(),
                },
            };
            codec.decoder.bind(py).call1((arg,))
        }
        DynDecoder::Hstore => decode_hstore(py, buf),
        DynDecoder::TextArray { delim, elem } => {
            let node = ferropg_core::types::text_array::parse(utf8(buf)?, *delim).map_err(wire)?;
            text_array_to_py(py, cache, elem.as_ref(), &node)
        }
        DynDecoder::Range(elem) => decode_range(py, cache, elem, buf),
        DynDecoder::Multirange(elem) => {
            let ranges = ferropg_core::types::range::split_multirange(buf).map_err(wire)?;
            let items = ranges
                .into_iter()
                .map(|r| decode_range(py, cache, elem, r))
                .collect::<PyResult<Vec<_>>>()?;
            Ok(PyList::new(py, items)?.into_any())
        }
        DynDecoder::Refused(why) => Err(errors::client_error(
            py,
            ClientError::UnsupportedClientFeature,
            why.clone(),
        )),
        DynDecoder::WireTuple(kind) => decode_wire_tuple(py, *kind, buf),
    }
}

fn decode_wire_tuple<'py>(
    py: Python<'py>,
    kind: WireTuple,
    buf: &[u8],
) -> PyResult<Bound<'py, PyAny>> {
    let bad = || {
        wire(ferropg_core::types::DecodeError(
            "invalid date/time value length",
        ))
    };
    let i32_at = |at: usize| -> PyResult<i32> {
        Ok(i32::from_be_bytes(
            buf.get(at..at + 4)
                .ok_or_else(bad)?
                .try_into()
                .expect("4 bytes"),
        ))
    };
    let i64_at = |at: usize| -> PyResult<i64> {
        Ok(i64::from_be_bytes(
            buf.get(at..at + 8)
                .ok_or_else(bad)?
                .try_into()
                .expect("8 bytes"),
        ))
    };
    let (want, tuple) = match kind {
        WireTuple::Date => (4, (i32_at(0)?,).into_pyobject(py)?.into_any()),
        WireTuple::Micros => (8, (i64_at(0)?,).into_pyobject(py)?.into_any()),
        WireTuple::TimeTz => (12, (i64_at(0)?, i32_at(8)?).into_pyobject(py)?.into_any()),
        WireTuple::Interval => (
            16,
            (i32_at(12)?, i32_at(8)?, i64_at(0)?)
                .into_pyobject(py)?
                .into_any(),
        ),
    };
    if buf.len() != want {
        return Err(bad());
    }
    Ok(tuple)
}

fn encode_wire_tuple(kind: WireTuple, obj: &Bound<'_, PyAny>, buf: &mut BytesMut) -> PyResult<()> {
    let n = match kind {
        WireTuple::Date | WireTuple::Micros => 1,
        WireTuple::TimeTz => 2,
        WireTuple::Interval => 3,
    };
    if obj.len().ok() != Some(n) || obj.is_instance_of::<PyString>() {
        return Err(PyValueError::new_err(format!(
            "expected a tuple of {n} integers (got {})",
            type_name(obj)
        )));
    }
    let item = |i: usize| obj.get_item(i);
    match kind {
        WireTuple::Date => buf.put_i32(item(0)?.extract()?),
        WireTuple::Micros => buf.put_i64(item(0)?.extract()?),
        WireTuple::TimeTz => {
            buf.put_i64(item(0)?.extract()?);
            buf.put_i32(item(1)?.extract()?);
        }
        WireTuple::Interval => {
            let (months, days, micros): (i32, i32, i64) = (
                item(0)?.extract()?,
                item(1)?.extract()?,
                item(2)?.extract()?,
            );
            buf.put_i64(micros);
            buf.put_i32(days);
            buf.put_i32(months);
        }
    }
    Ok(())
}

fn text_array_to_py<'py>(
    py: Python<'py>,
    cache: &Cache,
    elem: Option<&Decoder>,
    node: &ferropg_core::types::text_array::Node,
) -> PyResult<Bound<'py, PyAny>> {
    use ferropg_core::types::text_array::Node;
    Ok(match node {
        Node::Array(items) => {
            let items = items
                .iter()
                .map(|n| text_array_to_py(py, cache, elem, n))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any()
        }
        Node::Elem(None) => py.None().into_bound(py),
        Node::Elem(Some(s)) => match elem {
            Some(d) => decode_value(py, cache, d, s.as_bytes())?,
            None => PyString::new(py, s).into_any(),
        },
    })
}

fn py_to_text_array(
    py: Python<'_>,
    cache: &Cache,
    elem: &Encoder,
    obj: &Bound<'_, PyAny>,
    depth: usize,
) -> PyResult<ferropg_core::types::text_array::Node> {
    use ferropg_core::types::text_array::{Node, MAX_DIMS};
    if depth >= MAX_DIMS {
        return Err(PyValueError::new_err(format!(
            "number of array dimensions exceed the maximum expected ({MAX_DIMS})"
        )));
    }
    let mut items = Vec::new();
    for item in obj.try_iter()? {
        let item = item?;
        items.push(if item.is_none() {
            Node::Elem(None)
        } else if item.is_instance_of::<PyList>() {
            py_to_text_array(py, cache, elem, &item, depth + 1)?
        } else {
            let mut out = BytesMut::new();
            encode_value(py, cache, elem, &item, &mut out)?;
            let text = String::from_utf8(out.to_vec())
                .map_err(|_| PyValueError::new_err("an array element's text is not UTF-8"))?;
            Node::Elem(Some(text))
        });
    }
    Ok(Node::Array(items))
}

fn decode_range<'py>(
    py: Python<'py>,
    cache: &Cache,
    elem: &Decoder,
    buf: &[u8],
) -> PyResult<Bound<'py, PyAny>> {
    use ferropg_core::types::range as r;
    let v = r::decode(buf).map_err(wire)?;
    let bound = |b: Option<&[u8]>| -> PyResult<Bound<'py, PyAny>> {
        match b {
            Some(bytes) => decode_value(py, cache, elem, bytes),
            None => Ok(py.None().into_bound(py)),
        }
    };
    super::pytypes::PyTypes::get(py)?
        .range
        .bind(py)
        .call_method1(
            "_from_parts",
            (
                bound(v.lower)?,
                bound(v.upper)?,
                v.flags & r::LB_INC != 0,
                v.flags & r::UB_INC != 0,
                v.flags & r::EMPTY != 0,
            ),
        )
}

fn decode_composite<'py>(
    py: Python<'py>,
    cache: &Cache,
    c: &Composite,
    decoders: &[Decoder],
    buf: &[u8],
) -> PyResult<Bound<'py, PyAny>> {
    let mut fields = framing::parse(buf).map_err(wire)?;
    if fields.len() != c.oids.len() {
        return Err(outdated(
            py,
            c,
            format!(
                "unexpected number of attributes of composite type: {}, expected {}",
                fields.len(),
                c.oids.len()
            ),
            None,
        ));
    }
    let mut values = Vec::with_capacity(c.oids.len());
    for (i, (expected, decoder)) in c.oids.iter().zip(decoders).enumerate() {
        let (oid, value) = fields
            .next()
            .ok_or_else(|| wire(ferropg_core::types::DecodeError("composite ends early")))?
            .map_err(wire)?;
        if oid != *expected {
            // asyncpg names built-in types and shows other OIDs as numbers.
            let show = |o: u32| match super::registry::builtin_type_name(py, o) {
                Some(name) => format!("'{name}'"),
                None => o.to_string(),
            };
            return Err(outdated(
                py,
                c,
                format!(
                    "unexpected data type of composite type attribute {i}: {}, expected {}",
                    show(oid),
                    show(*expected)
                ),
                Some(i),
            ));
        }
        values.push(match value {
            None => py.None().into_bound(py),
            Some(bytes) => decode_value(py, cache, decoder, bytes)?,
        });
    }
    fields.finish().map_err(wire)?;
    if c.as_tuple {
        return Ok(PyTuple::new(py, values)?.into_any());
    }
    let mut record = RecordBuilder::new(py, &record_type(py)?, &c.desc, values.len())?;
    for v in values {
        record.push(v);
    }
    Ok(record.finish())
}

/// hstore_send: Int32 pair count, then per pair a key (Int32 length, bytes) and a value
/// (Int32 length or -1 for NULL, bytes).
fn decode_hstore<'py>(py: Python<'py>, buf: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let malformed = || PyValueError::new_err("malformed hstore value from the server");
    let mut rest = buf;
    let take_i32 = |rest: &mut &[u8]| -> PyResult<i32> {
        let (n, tail) = rest.split_first_chunk::<4>().ok_or_else(malformed)?;
        *rest = tail;
        Ok(i32::from_be_bytes(*n))
    };
    let count = take_i32(&mut rest)?;
    if count < 0 {
        return Err(malformed());
    }
    let dict = PyDict::new(py);
    for _ in 0..count {
        let klen = usize::try_from(take_i32(&mut rest)?).map_err(|_| malformed())?;
        let (key, tail) = rest.split_at_checked(klen).ok_or_else(malformed)?;
        rest = tail;
        let vlen = take_i32(&mut rest)?;
        let value = if vlen < 0 {
            py.None().into_bound(py)
        } else {
            let (v, tail) = rest.split_at_checked(vlen as usize).ok_or_else(malformed)?;
            rest = tail;
            PyString::new(py, utf8(v)?).into_any()
        };
        dict.set_item(utf8(key)?, value)?;
    }
    if !rest.is_empty() {
        return Err(malformed());
    }
    Ok(dict.into_any())
}

/// Writes one non-None parameter of a per-connection type.
pub fn encode(
    py: Python<'_>,
    cache: &Cache,
    enc: &DynEncoder,
    obj: &Bound<'_, PyAny>,
    buf: &mut BytesMut,
) -> PyResult<()> {
    match enc {
        DynEncoder::Composite(c, fields) => encode_composite(py, cache, c, fields, obj, buf),
        DynEncoder::Array { elem_oid, elem } => array::encode(py, cache, *elem_oid, elem, obj, buf),
        DynEncoder::Custom { codec, inner, .. } => {
            let out = codec.encoder.bind(py).call1((obj,))?;
            match codec.format {
                Format::Text => match out.cast::<PyString>() {
                    Ok(s) => buf.put_slice(s.to_cow()?.as_bytes()),
                    Err(_) => {
                        return Err(PyTypeError::new_err(format!(
                            "the text encoder of a type codec must return str, got {}",
                            type_name(&out)
                        )))
                    }
                },
                Format::Binary => {
                    let bytes: std::borrow::Cow<'_, [u8]> = out.extract().map_err(|_| {
                        PyTypeError::new_err(format!(
                            "the binary encoder of a type codec must return bytes, got {}",
                            type_name(&out)
                        ))
                    })?;
                    buf.put_slice(&bytes);
                }
                Format::Tuple => match inner {
                    Some(e) => encode_value(py, cache, e, &out, buf)?,
                    None => {
                        return Err(errors::client_error(
                            py,
                            ClientError::InternalClient,
                            "no tuple encoder for this type",
                        ))
                    }
                },
            }
            Ok(())
        }
        DynEncoder::Hstore => encode_hstore(obj, buf),
        DynEncoder::TextArray { delim, elem } => {
            if obj.is_instance_of::<PyString>()
                || obj.is_instance_of::<PyBytes>()
                || obj.len().is_err()
            {
                return Err(PyTypeError::new_err(format!(
                    "a sized iterable container expected (got type '{}')",
                    type_name(obj)
                )));
            }
            let node = py_to_text_array(py, cache, elem, obj, 0)?;
            let mut text = String::new();
            ferropg_core::types::text_array::write(&node, *delim, &mut text)
                .map_err(|e| PyValueError::new_err(e.0))?;
            buf.put_slice(text.as_bytes());
            Ok(())
        }
        DynEncoder::Range(elem) => encode_range(py, cache, elem, obj, buf),
        DynEncoder::Multirange(elem) => {
            if obj.is_instance_of::<PyString>() || obj.len().is_err() {
                return Err(PyTypeError::new_err(format!(
                    "expected a sequence (got type {:?})",
                    type_name(obj)
                )));
            }
            let count = i32::try_from(obj.len()?)
                .map_err(|_| PyValueError::new_err("too many elements in multirange value"))?;
            buf.put_i32(count);
            for item in obj.try_iter()? {
                let at = begin_length(buf);
                encode_range(py, cache, elem, &item?, buf)?;
                end_length(buf, at).map_err(|e| PyValueError::new_err(e.0))?;
            }
            Ok(())
        }
        DynEncoder::Refused(why) => Err(errors::client_error(
            py,
            ClientError::UnsupportedClientFeature,
            why.clone(),
        )),
        DynEncoder::WireTuple(kind) => encode_wire_tuple(*kind, obj, buf),
    }
}

fn encode_range(
    py: Python<'_>,
    cache: &Cache,
    elem: &Encoder,
    obj: &Bound<'_, PyAny>,
    buf: &mut BytesMut,
) -> PyResult<()> {
    use ferropg_core::types::range as r;
    let (mut flags, lower, upper) =
        if obj.is_instance_of::<PyTuple>() || obj.is_instance_of::<PyList>() {
            match obj.len()? {
                0 => (r::EMPTY, None, None),
                1 => (r::LB_INC | r::UB_INF, Some(obj.get_item(0)?), None),
                2 => (
                    r::LB_INC | r::UB_INC,
                    Some(obj.get_item(0)?),
                    Some(obj.get_item(1)?),
                ),
                n => {
                    return Err(PyValueError::new_err(format!(
                        "expected 0, 1 or 2 elements in range (got {n})"
                    )))
                }
            }
        } else if obj.is_instance(super::pytypes::PyTypes::get(py)?.range.bind(py))? {
            if obj.getattr("isempty")?.is_truthy()? {
                (r::EMPTY, None, None)
            } else {
                let mut flags = 0;
                if obj.getattr("lower_inc")?.is_truthy()? {
                    flags |= r::LB_INC;
                }
                if obj.getattr("upper_inc")?.is_truthy()? {
                    flags |= r::UB_INC;
                }
                (
                    flags,
                    Some(obj.getattr("lower")?),
                    Some(obj.getattr("upper")?),
                )
            }
        } else {
            return Err(PyTypeError::new_err(format!(
                "list, tuple or Range object expected (got type {})",
                type_name(obj)
            )));
        };
    let lower = lower.filter(|v| !v.is_none());
    let upper = upper.filter(|v| !v.is_none());
    if flags & r::EMPTY == 0 {
        if lower.is_none() {
            flags = (flags | r::LB_INF) & !r::LB_INC;
        }
        if upper.is_none() {
            flags = (flags | r::UB_INF) & !r::UB_INC;
        }
    }
    buf.put_u8(flags);
    for value in [lower, upper].into_iter().flatten() {
        let at = begin_length(buf);
        encode_value(py, cache, elem, &value, buf)?;
        end_length(buf, at).map_err(|e| PyValueError::new_err(e.0))?;
    }
    Ok(())
}

fn encode_composite(
    py: Python<'_>,
    cache: &Cache,
    c: &Composite,
    encoders: &[Encoder],
    obj: &Bound<'_, PyAny>,
    buf: &mut BytesMut,
) -> PyResult<()> {
    let count = c.oids.len();
    let values: Vec<Option<Bound<'_, PyAny>>> = if let Ok(map) = obj.cast::<PyMapping>() {
        if obj.cast::<PyDict>().is_err() && is_record(py, obj) {
            sequence_values(obj)?
        } else {
            for key in map.keys()?.iter() {
                let key: String = key.extract()?;
                if !c.names.contains(&key) {
                    return Err(PyValueError::new_err(format!(
                        "'{key}' is not a valid element of composite type {}",
                        c.name
                    )));
                }
            }
            c.names
                .iter()
                .map(|n| -> PyResult<_> {
                    Ok(if map.contains(n)? {
                        Some(map.get_item(n)?)
                    } else {
                        None
                    })
                })
                .collect::<PyResult<_>>()?
        }
    } else if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBytes>() {
        return Err(PyTypeError::new_err(format!(
            "a sized iterable container or a mapping expected for composite type {} (got type {})",
            c.name,
            type_name(obj)
        )));
    } else {
        sequence_values(obj)?
    };
    if values.len() != count {
        return Err(PyValueError::new_err(format!(
            "expected a sequence of {count} elements for composite type {}, got {}",
            c.name,
            values.len()
        )));
    }
    let mut writer = framing::Writer::begin(buf, count).map_err(|e| PyValueError::new_err(e.0))?;
    for ((value, oid), encoder) in values.iter().zip(&c.oids).zip(encoders) {
        match value {
            Some(v) if !v.is_none() => {
                writer.start(buf, *oid);
                encode_value(py, cache, encoder, v, buf)?;
                writer.end(buf).map_err(|e| PyValueError::new_err(e.0))?;
            }
            _ => writer.null(buf, *oid),
        }
    }
    Ok(())
}

fn is_record(py: Python<'_>, obj: &Bound<'_, PyAny>) -> bool {
    record_type(py).is_ok_and(|t| obj.is_instance(&t).unwrap_or(false))
}

/// The items of a sized iterable, as the attribute values of a composite.
fn sequence_values<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Vec<Option<Bound<'py, PyAny>>>> {
    obj.len().map_err(|_| {
        PyTypeError::new_err(format!(
            "a sized iterable container or a mapping expected (got type {})",
            type_name(obj)
        ))
    })?;
    obj.try_iter()?.map(|item| item.map(Some)).collect()
}

fn encode_hstore(obj: &Bound<'_, PyAny>, buf: &mut BytesMut) -> PyResult<()> {
    let items = if let Ok(map) = obj.cast::<PyMapping>() {
        map.items()?
    } else {
        PyList::new(obj.py(), obj.try_iter()?.collect::<PyResult<Vec<_>>>()?)?
    };
    let count =
        i32::try_from(items.len()).map_err(|_| PyValueError::new_err("hstore too large"))?;
    buf.put_i32(count);
    for item in items.iter() {
        let (key, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
        if key.is_none() {
            return Err(PyValueError::new_err(
                "null value not allowed in hstore key",
            ));
        }
        let key = key
            .cast::<PyString>()
            .map_err(|_| PyTypeError::new_err("hstore keys must be str"))?
            .to_cow()?;
        put_len_bytes(buf, key.as_bytes())?;
        if value.is_none() {
            buf.put_i32(-1);
        } else {
            let value = value
                .cast::<PyString>()
                .map_err(|_| PyTypeError::new_err("hstore values must be str or None"))?
                .to_cow()?;
            put_len_bytes(buf, value.as_bytes())?;
        }
    }
    Ok(())
}

fn put_len_bytes(buf: &mut BytesMut, bytes: &[u8]) -> PyResult<()> {
    let len = i32::try_from(bytes.len()).map_err(|_| PyValueError::new_err("value too large"))?;
    buf.put_i32(len);
    buf.put_slice(bytes);
    Ok(())
}
