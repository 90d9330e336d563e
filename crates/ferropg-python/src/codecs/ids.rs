//! Small system types: pg_lsn and xid8 (int), xid/cid (int), tid (block, offset),
//! txid_snapshot/pg_snapshot (xmin, xmax, (xip, ...)), bit/varbit (BitString) and
//! jsonpath (str).

use bytes::{BufMut, BytesMut};
use ferropg_core::types::{binary, DecodeError};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyMemoryView, PyString, PyTuple};

use super::decode::wire;
use super::encode::type_name;
use super::pytypes::PyTypes;

/// Which type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Id {
    /// pg_lsn, xid8: unsigned 64-bit.
    U64,
    /// xid, cid: unsigned 32-bit.
    U32,
    /// tid: (block number, offset).
    Tid,
    /// txid_snapshot, pg_snapshot.
    Snapshot,
    /// bit, varbit.
    Bits,
    /// jsonpath: a version byte, then the text.
    Jsonpath,
}

fn take<const N: usize>(rest: &mut &[u8]) -> Result<[u8; N], DecodeError> {
    let (v, tail) = rest
        .split_first_chunk::<N>()
        .ok_or(DecodeError("value too short"))?;
    *rest = tail;
    Ok(*v)
}

/// Decodes one value.
pub fn decode<'py>(py: Python<'py>, kind: Id, buf: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    Ok(match kind {
        Id::U64 => u64::from_be_bytes(binary::fixed(buf, "invalid length").map_err(wire)?)
            .into_pyobject(py)?
            .into_any(),
        Id::U32 => binary::decode_u32(buf)
            .map_err(wire)?
            .into_pyobject(py)?
            .into_any(),
        Id::Tid => {
            let mut rest = buf;
            let block = u32::from_be_bytes(take::<4>(&mut rest).map_err(wire)?);
            let offset = u16::from_be_bytes(take::<2>(&mut rest).map_err(wire)?);
            if !rest.is_empty() {
                return Err(wire(DecodeError("invalid tid length")));
            }
            (block, offset).into_pyobject(py)?.into_any()
        }
        Id::Snapshot => {
            let mut rest = buf;
            let n = u32::from_be_bytes(take::<4>(&mut rest).map_err(wire)?) as usize;
            let xmin = u64::from_be_bytes(take::<8>(&mut rest).map_err(wire)?);
            let xmax = u64::from_be_bytes(take::<8>(&mut rest).map_err(wire)?);
            if rest.len() != n.saturating_mul(8) {
                return Err(wire(DecodeError("invalid snapshot length")));
            }
            let xips = rest
                .chunks_exact(8)
                .map(|c| u64::from_be_bytes(c.try_into().expect("8 bytes")));
            (xmin, xmax, PyTuple::new(py, xips)?)
                .into_pyobject(py)?
                .into_any()
        }
        Id::Bits => {
            let mut rest = buf;
            let bits = i32::from_be_bytes(take::<4>(&mut rest).map_err(wire)?);
            let bits =
                usize::try_from(bits).map_err(|_| wire(DecodeError("invalid bit length")))?;
            if rest.len() != bits.div_ceil(8) {
                return Err(wire(DecodeError("invalid bit string length")));
            }
            // The server zero-pads the last byte, which is what _from_parts trusts.
            PyTypes::get(py)?
                .bitstring
                .bind(py)
                .call_method1("_from_parts", (PyBytes::new(py, rest), bits))?
        }
        Id::Jsonpath => match buf.split_first() {
            Some((1, text)) => PyString::new(
                py,
                std::str::from_utf8(text).map_err(|_| wire(DecodeError("invalid UTF-8")))?,
            )
            .into_any(),
            _ => return Err(wire(DecodeError("unsupported jsonpath version"))),
        },
    })
}

/// Writes one value.
pub fn encode(kind: Id, obj: &Bound<'_, PyAny>, buf: &mut BytesMut) -> PyResult<()> {
    let py = obj.py();
    match kind {
        Id::U64 => buf.put_u64(obj.extract()?),
        Id::U32 => buf.put_u32(obj.extract()?),
        Id::Tid => {
            if !(obj.is_instance_of::<PyTuple>() || obj.is_instance_of::<pyo3::types::PyList>()) {
                return Err(PyTypeError::new_err(format!(
                    "list or tuple expected (got type {})",
                    type_name(obj)
                )));
            }
            if obj.len()? != 2 {
                return Err(PyValueError::new_err(
                    "invalid number of elements in tid tuple, expecting 2",
                ));
            }
            let block: u32 = obj.get_item(0)?.extract().map_err(|_| {
                pyo3::exceptions::PyOverflowError::new_err(
                    "tuple id block value out of uint32 range",
                )
            })?;
            let offset: u16 = obj.get_item(1)?.extract().map_err(|_| {
                pyo3::exceptions::PyOverflowError::new_err(
                    "tuple id offset value out of uint16 range",
                )
            })?;
            buf.put_u32(block);
            buf.put_u16(offset);
        }
        Id::Snapshot => {
            let (xmin, xmax, xips): (u64, u64, Vec<u64>) = obj.extract().map_err(|_| {
                PyTypeError::new_err(format!(
                    "a (xmin, xmax, xip_list) tuple expected for a snapshot (got type {})",
                    type_name(obj)
                ))
            })?;
            let n = u32::try_from(xips.len())
                .map_err(|_| PyValueError::new_err("too many transaction ids"))?;
            buf.put_u32(n);
            buf.put_u64(xmin);
            buf.put_u64(xmax);
            for x in xips {
                buf.put_u64(x);
            }
        }
        Id::Bits => {
            let t = PyTypes::get(py)?;
            // bytes-like input is whole bytes (8 bits each), as asyncpg takes it.
            let bits = if obj.is_instance(t.bitstring.bind(py))? {
                obj.clone()
            } else if obj.is_instance_of::<PyBytes>()
                || obj.is_instance_of::<PyByteArray>()
                || obj.is_instance_of::<PyMemoryView>()
            {
                let raw = py.get_type::<PyBytes>().call1((obj,))?;
                let n = raw.len()? * 8;
                t.bitstring.bind(py).call_method1("frombytes", (raw, n))?
            } else {
                t.bitstring.bind(py).call1((obj,))?
            };
            let bytes: Vec<u8> = bits.getattr("bytes")?.extract()?;
            let len: usize = bits.len()?;
            if bytes.len() != len.div_ceil(8) {
                return Err(PyValueError::new_err("inconsistent BitString"));
            }
            let len =
                i32::try_from(len).map_err(|_| PyValueError::new_err("bit string too long"))?;
            buf.put_i32(len);
            buf.put_slice(&bytes);
        }
        Id::Jsonpath => {
            let s = obj.cast::<PyString>().map_err(|_| {
                PyTypeError::new_err(format!("expected str, got {}", type_name(obj)))
            })?;
            buf.put_u8(1);
            buf.put_slice(s.to_cow()?.as_bytes());
        }
    }
    Ok(())
}
