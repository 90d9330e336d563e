//! Binary COPY: records from Python encoded as `PGCOPY` tuples.

use bytes::BytesMut;
use pyo3::intern;
use pyo3::prelude::*;

use ferropg_core::message::frontend;
use ferropg_core::types::copy_binary;

use crate::codecs::{encode_value, Cache, Encoder, Registry};
use crate::errors::{self, ClientError};
use crate::statement::Statement;

/// The binary encoder of every column, or an error naming one that has none.
pub(super) fn binary_encoders(
    py: Python<'_>,
    st: &Statement,
    registry: &Registry,
) -> PyResult<Vec<Encoder>> {
    let types: Vec<u32> = st.columns.iter().map(|c| c.type_oid).collect();
    let encoders = registry.resolve(py, &types, &[], false)?.encoders;
    for (enc, c) in encoders.iter().zip(&st.columns) {
        if enc.format() != 1 {
            return Err(errors::client_error(
                py,
                ClientError::InternalClient,
                format!(
                    "no binary format encoder for type {} (OID {})",
                    registry.type_name(py, c.type_oid),
                    c.type_oid
                ),
            ));
        }
    }
    Ok(encoders)
}

/// Writes one CopyData message of tuples; returns True while the iterator has more.
/// The trailer follows the last tuple when `last` says no other batch comes.
#[allow(clippy::too_many_arguments)]
pub(super) fn write_records(
    py: Python<'_>,
    cache: &Cache,
    encoders: &[Encoder],
    iterator: &Bound<'_, PyAny>,
    max_bytes: usize,
    first: bool,
    last: bool,
    out: &mut BytesMut,
) -> PyResult<bool> {
    let frame = frontend::begin_copy_data(out);
    if first {
        copy_binary::put_header(out);
    }
    let mut more = true;
    while out.len() - frame < max_bytes {
        let item = match iterator.call_method0(intern!(py, "__next__")) {
            Ok(item) => item,
            Err(e) if e.is_instance_of::<pyo3::exceptions::PyStopIteration>(py) => {
                more = false;
                break;
            }
            Err(e) => return Err(e),
        };
        let count = item.len()?;
        if count != encoders.len() {
            return Err(errors::client_error(
                py,
                ClientError::Interface,
                format!(
                    "the record has {count} values, the table's columns are {}",
                    encoders.len()
                ),
            ));
        }
        copy_binary::begin_tuple(out, count).map_err(|e| encode_error(py, e))?;
        for (i, enc) in encoders.iter().enumerate() {
            let value = item.get_item(i)?;
            let at = copy_binary::begin_field(out);
            if value.is_none() {
                copy_binary::end_field(out, at, true).map_err(|e| encode_error(py, e))?;
                continue;
            }
            encode_value(py, cache, enc, &value, out).map_err(|e| {
                let msg = format!(
                    "invalid input for copy of column {}: {}",
                    i + 1,
                    e.value(py)
                );
                let err = errors::client_error(py, ClientError::Data, msg);
                err.set_cause(py, Some(e));
                err
            })?;
            copy_binary::end_field(out, at, false).map_err(|e| encode_error(py, e))?;
        }
    }
    if !more && last {
        copy_binary::put_trailer(out);
    }
    frontend::end_copy_data(frame, out).map_err(|e| encode_error(py, e))?;
    Ok(more)
}

/// A record the binary COPY format cannot carry (the core's framing refused it).
fn encode_error(py: Python<'_>, e: impl std::fmt::Display) -> PyErr {
    errors::client_error(py, ClientError::Data, e.to_string())
}
