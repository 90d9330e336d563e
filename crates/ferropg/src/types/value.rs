//! [`Value`]: any column, decoded by what its type turns out to be at run time.

use std::error::Error as StdError;

use bytes::{BufMut, BytesMut};
use ferropg_core::types::{binary, numeric, record};
use postgres_protocol::types as pg;
use postgres_types::{FromSql, IsNull, Kind, ToSql, Type};

use super::{Geometry, Inet, Interval, Multirange, Numeric, Range};

type BoxError = Box<dyn StdError + Sync + Send>;

/// A value of any type, for columns whose type is only known at run time.
///
/// Built-in scalars decode to their natural variant; arrays (any dimensions,
/// flattened in row-major order), composites, enums and domains follow the type the
/// connection learned from the catalog; anything else keeps its binary form in
/// [`Value::Other`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// `bool`.
    Bool(bool),
    /// `int2`, `int4`, `int8`, `oid` (and `"char"` as its byte).
    Int(i64),
    /// `float4`, `float8`.
    Float(f64),
    /// `numeric`, exactly.
    Numeric(Numeric),
    /// `text`, `varchar`, `bpchar`, `name`, `json`, `jsonb`, `xml`, and enum labels.
    Text(String),
    /// `bytea`.
    Bytes(Vec<u8>),
    /// `uuid`.
    Uuid([u8; 16]),
    /// `date`: days since 2000-01-01.
    Date(i32),
    /// `time`, `timestamp`, `timestamptz`: microseconds (since midnight, or since
    /// 2000-01-01 00:00 UTC).
    Micros(i64),
    /// An array's elements, in row-major order.
    Array(Vec<Value>),
    /// A composite's attributes: name and value, in order.
    Composite(Vec<(String, Value)>),
    /// A range of any range type.
    Range(Box<Range<Value>>),
    /// A multirange of any multirange type: its ranges.
    Multirange(Vec<Range<Value>>),
    /// `interval`.
    Interval(Interval),
    /// `inet` and `cidr`.
    Inet(Inet),
    /// `point`, `line`, `lseg`, `box`, `path`, `polygon`, `circle`.
    Geometry(Geometry),
    /// Any other type: its OID and its binary form.
    Other(u32, Vec<u8>),
}

impl<'a> FromSql<'a> for Value {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Value, BoxError> {
        decode(ty, raw)
    }

    fn from_sql_null(_ty: &Type) -> Result<Value, BoxError> {
        Ok(Value::Null)
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }
}

fn decode(ty: &Type, raw: &[u8]) -> Result<Value, BoxError> {
    match ty.kind() {
        Kind::Domain(base) => return decode(base, raw),
        Kind::Range(_) => return Ok(Value::Range(Box::new(Range::from_sql(ty, raw)?))),
        Kind::Multirange(_) => return Ok(Value::Multirange(Multirange::from_sql(ty, raw)?.0)),
        Kind::Enum(_) => return Ok(Value::Text(binary::decode_text(raw)?.to_owned())),
        Kind::Array(elem) => {
            let array = pg::array_from_sql(raw)?;
            let mut values = Vec::new();
            let mut it = array.values();
            while let Some(v) = fallible_iterator::FallibleIterator::next(&mut it)? {
                values.push(match v {
                    Some(bytes) => decode(elem, bytes)?,
                    None => Value::Null,
                });
            }
            return Ok(Value::Array(values));
        }
        Kind::Composite(fields) => {
            let mut parsed = record::parse(raw)?;
            if parsed.len() != fields.len() {
                return Err(format!(
                    "composite {} has {} attributes, the value {}",
                    ty.name(),
                    fields.len(),
                    parsed.len()
                )
                .into());
            }
            let mut out = Vec::with_capacity(fields.len());
            for field in fields {
                let (_oid, value) = parsed.next().ok_or("composite value ends early")??;
                let value = match value {
                    Some(bytes) => decode(field.type_(), bytes)?,
                    None => Value::Null,
                };
                out.push((field.name().to_owned(), value));
            }
            parsed.finish()?;
            return Ok(Value::Composite(out));
        }
        _ => {}
    }
    Ok(match *ty {
        Type::BOOL => Value::Bool(binary::decode_bool(raw)?),
        Type::CHAR => Value::Int(i64::from(i8::from_sql(ty, raw)?)),
        Type::INT2 => Value::Int(binary::decode_i16(raw)?.into()),
        Type::INT4 => Value::Int(binary::decode_i32(raw)?.into()),
        Type::INT8 => Value::Int(binary::decode_i64(raw)?),
        Type::OID => Value::Int(binary::decode_u32(raw)?.into()),
        Type::FLOAT4 => Value::Float(binary::decode_f32(raw)?.into()),
        Type::FLOAT8 => Value::Float(binary::decode_f64(raw)?),
        Type::NUMERIC => Value::Numeric(Numeric::from_sql(ty, raw)?),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::JSON | Type::XML => {
            Value::Text(binary::decode_text(raw)?.to_owned())
        }
        Type::JSONB => Value::Text(binary::decode_jsonb(raw)?.to_owned()),
        Type::BYTEA => Value::Bytes(raw.to_vec()),
        Type::UUID => Value::Uuid(binary::decode_uuid(raw)?),
        Type::DATE => Value::Date(binary::decode_i32(raw)?),
        Type::TIME | Type::TIMESTAMP | Type::TIMESTAMPTZ => Value::Micros(binary::decode_i64(raw)?),
        Type::INTERVAL => Value::Interval(Interval::from_sql(ty, raw)?),
        Type::INET | Type::CIDR => Value::Inet(Inet::from_sql(ty, raw)?),
        _ if <Geometry as FromSql>::accepts(ty) => Value::Geometry(Geometry::from_sql(ty, raw)?),
        _ => Value::Other(ty.oid(), raw.to_vec()),
    })
}

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        encode(self, ty, out)
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    postgres_types::to_sql_checked!();
}

fn wrong(value: &Value, ty: &Type) -> BoxError {
    format!("cannot send {value:?} as {}", ty.name()).into()
}

fn encode(value: &Value, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
    if *value == Value::Null {
        return Ok(IsNull::Yes);
    }
    match (ty.kind(), value) {
        (Kind::Domain(base), _) => return encode(value, base, out),
        (Kind::Range(_), Value::Range(r)) => return r.to_sql(ty, out),
        (Kind::Multirange(_), Value::Multirange(ranges)) => {
            return super::multirange::encode(ranges, ty, out);
        }
        (Kind::Enum(_), Value::Text(s)) => {
            out.put_slice(s.as_bytes());
            return Ok(IsNull::No);
        }
        (Kind::Array(elem), Value::Array(items)) => {
            let dims = [pg::ArrayDimension {
                len: i32::try_from(items.len())?,
                lower_bound: 1,
            }];
            pg::array_to_sql(
                dims,
                elem.oid(),
                items.iter(),
                |v, buf| match encode(v, elem, buf)? {
                    IsNull::Yes => Ok(postgres_protocol::IsNull::Yes),
                    IsNull::No => Ok(postgres_protocol::IsNull::No),
                },
                out,
            )?;
            return Ok(IsNull::No);
        }
        (Kind::Composite(fields), Value::Composite(values)) => {
            if fields.len() != values.len() {
                return Err(wrong(value, ty));
            }
            let mut w = record::Writer::begin(out, fields.len())?;
            for (field, (_, v)) in fields.iter().zip(values) {
                if *v == Value::Null {
                    w.null(out, field.type_().oid());
                } else {
                    w.start(out, field.type_().oid());
                    encode(v, field.type_(), out)?;
                    w.end(out)?;
                }
            }
            return Ok(IsNull::No);
        }
        _ => {}
    }
    match (value, ty) {
        (Value::Bool(b), &Type::BOOL) => out.put_u8(u8::from(*b)),
        (Value::Int(i), &Type::INT2) => out.put_i16(i16::try_from(*i)?),
        (Value::Int(i), &Type::INT4) => out.put_i32(i32::try_from(*i)?),
        (Value::Int(i), &Type::INT8) => out.put_i64(*i),
        (Value::Int(i), &Type::OID) => out.put_u32(u32::try_from(*i)?),
        (Value::Int(i), &Type::CHAR) => out.put_i8(i8::try_from(*i)?),
        (Value::Float(f), &Type::FLOAT4) => out.put_f32(*f as f32),
        (Value::Float(f), &Type::FLOAT8) => out.put_f64(*f),
        (Value::Numeric(n), &Type::NUMERIC) => numeric::encode_from_str(n.as_str(), out)?,
        (
            Value::Text(s),
            &Type::TEXT | &Type::VARCHAR | &Type::BPCHAR | &Type::NAME | &Type::JSON | &Type::XML,
        ) => out.put_slice(s.as_bytes()),
        (Value::Text(s), &Type::JSONB) => {
            out.put_u8(binary::JSONB_VERSION);
            out.put_slice(s.as_bytes());
        }
        (Value::Bytes(b), &Type::BYTEA) => out.put_slice(b),
        (Value::Uuid(u), &Type::UUID) => out.put_slice(u),
        (Value::Date(d), &Type::DATE) => out.put_i32(*d),
        (Value::Micros(m), &Type::TIME | &Type::TIMESTAMP | &Type::TIMESTAMPTZ) => out.put_i64(*m),
        (Value::Interval(v), &Type::INTERVAL) => return v.to_sql(ty, out),
        (Value::Inet(v), &Type::INET | &Type::CIDR) => return v.to_sql(ty, out),
        (Value::Geometry(g), _) if <Geometry as ToSql>::accepts(ty) => return g.to_sql(ty, out),
        (Value::Other(oid, raw), _) if *oid == ty.oid() => out.put_slice(raw),
        _ => return Err(wrong(value, ty)),
    }
    Ok(IsNull::No)
}
