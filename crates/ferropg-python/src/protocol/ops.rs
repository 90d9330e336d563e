//! The operations a connection has in flight, and what each server message does to
//! the one it belongs to.

use bytes::BytesMut;
use ferropg_core::message::{frontend, DataRow, Message};
use ferropg_core::DbError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyType};

use crate::codecs::{decode_value, Cache, Decoder};
use crate::errors;
use crate::record::RecordBuilder;
use crate::statement::{Described, Statement};

/// What a request is waiting for.
pub(super) enum OpKind {
    /// A simple-protocol script: the status of its last command.
    Script { status: String },
    /// Parse + Describe: resolves to the statement.
    Prepare {
        name: String,
        query: String,
        described: Described,
        record_class: Py<PyType>,
        ignore_custom_codec: bool,
    },
    /// Bind + Execute of a prepared statement.
    Execute {
        stmt: Py<Statement>,
        /// Built as rows arrive: a list that is also the result, so no row vector of
        /// the same size coexists with it at the end.
        rows: Py<PyList>,
        status: String,
        want_rows: bool,
        /// Resolve to `(rows, suspended)`, for cursors reading a portal in steps.
        portal_result: bool,
        suspended: bool,
    },
    /// Commands whose outcome is just success (Bind of a portal, Close, executemany).
    Plain,
    /// COPY ... TO STDOUT: each chunk goes to `sink`; resolves to the command status.
    CopyOut {
        sink: Py<PyAny>,
        /// Data received but not yet handed to the sink: one call per read, not per row.
        pending: Vec<u8>,
        status: String,
    },
    /// COPY ... FROM STDIN: `ready` resolves when the server awaits data; the op itself
    /// resolves to the command status once the client has sent CopyDone.
    CopyIn {
        ready: Option<Py<PyAny>>,
        status: String,
    },
}

/// One request awaiting its ReadyForQuery.
pub(super) struct Op {
    pub waiter: Option<Py<PyAny>>,
    pub error: Option<PyErr>,
    pub query: Option<String>,
    pub kind: OpKind,
}

impl Op {
    pub fn new(waiter: Py<PyAny>, query: Option<String>, kind: OpKind) -> Op {
        Op {
            waiter: Some(waiter),
            error: None,
            query,
            kind,
        }
    }
}

/// Applies one message to the operation it belongs to.
pub(super) fn on_message(
    py: Python<'_>,
    cache: &Cache,
    op: &mut Op,
    msg: Message<'_>,
    out: &mut BytesMut,
) {
    match msg {
        Message::ErrorResponse(fields) => {
            if op.error.is_none() {
                let err = DbError::from_fields(&fields);
                op.error = Some(errors::server_error(py, &err, op.query.as_deref()));
            }
            return;
        }
        Message::CopyInResponse(_) if !matches!(op.kind, OpKind::CopyIn { .. }) => {
            // COPY FROM STDIN outside the copy API: refused, so the server ends it.
            let _ = frontend::refuse_copy_in(
                "COPY FROM STDIN is not supported here; use copy_to_table() or copy_records_to_table()",
                !matches!(op.kind, OpKind::Script { .. }),
                out,
            );
            return;
        }
        _ => {}
    }
    match &mut op.kind {
        OpKind::Script { status } => {
            if let Message::CommandComplete { tag } = msg {
                tag.clone_into(status);
            }
        }
        OpKind::Prepare { described, .. } => match msg {
            Message::ParameterDescription(p) => {
                // A statement past the limit cannot be bound: it fails, the connection
                // goes on to the ReadyForQuery.
                if let Err(e) = frontend::check_parameter_count(p.len()) {
                    op.error
                        .get_or_insert_with(|| errors::client_error(py, "InterfaceError", e.0));
                }
                described.param_types = p.types().collect();
            }
            Message::RowDescription(desc) => described.set_columns(&desc),
            Message::NoData => described.columns = None,
            _ => {}
        },
        OpKind::Execute {
            stmt,
            rows,
            status,
            want_rows,
            suspended,
            ..
        } => match msg {
            Message::DataRow(row) if *want_rows && op.error.is_none() => {
                match decode_row(py, cache, stmt.get(), &row)
                    .and_then(|record| rows.bind(py).append(record))
                {
                    Ok(()) => {}
                    Err(e) => op.error = Some(e),
                }
            }
            Message::CommandComplete { tag } => tag.clone_into(status),
            Message::PortalSuspended => *suspended = true,
            _ => {}
        },
        OpKind::Plain => {}
        OpKind::CopyOut {
            pending, status, ..
        } => match msg {
            Message::CopyData(data) if op.error.is_none() => pending.extend_from_slice(data),
            Message::CommandComplete { tag } => {
                tag.clone_into(status);
                flush_copy_out(py, op);
            }
            _ => {}
        },
        OpKind::CopyIn { status, .. } => {
            if let Message::CommandComplete { tag } = msg {
                tag.clone_into(status);
            }
        }
    }
}

/// Decodes one row into a Record of the statement's record class.
fn decode_row(
    py: Python<'_>,
    cache: &Cache,
    st: &Statement,
    row: &DataRow<'_>,
) -> PyResult<Py<PyAny>> {
    if let Err(e) = row.check_width(st.decoders.len()) {
        return Err(errors::client_error(py, "ProtocolError", e));
    }
    let mut record = RecordBuilder::new(py, st.record_class.bind(py), &st.desc, row.len())?;
    for (value, decoder) in row.values().zip(&st.decoders) {
        let obj = match value {
            None => py.None().into_bound(py),
            Some(bytes) => {
                decode_value(py, cache, decoder.as_ref().unwrap_or(&Decoder::Text), bytes)?
            }
        };
        record.push(obj);
    }
    Ok(record.finish().unbind())
}

/// Hands the COPY data gathered so far to the operation's sink.
pub(super) fn flush_copy_out(py: Python<'_>, op: &mut Op) {
    if let OpKind::CopyOut { sink, pending, .. } = &mut op.kind {
        if pending.is_empty() || op.error.is_some() {
            pending.clear();
            return;
        }
        let chunk = pyo3::types::PyBytes::new(py, pending);
        pending.clear();
        if let Err(e) = sink.bind(py).call1((chunk,)) {
            op.error = Some(e);
        }
    }
}
