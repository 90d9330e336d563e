//! The operations a connection has in flight, and how the core's events turn into
//! their results: rows decoded straight into Records, statements, command statuses
//! and COPY chunks, each future resolved once its operation ends.

use ferropg_core::conn::{CopyIn, Events, Flow, Outcome};
use ferropg_core::message::frontend::EncodeError;
use ferropg_core::message::{DataRow, ParameterDescription, RowDescription};
use ferropg_core::{pooler, DbError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple, PyType};

use crate::codecs::{decode_value, Cache, Decoder, Registry};
use crate::errors::{self, ClientError};
use crate::record::RecordBuilder;
use crate::statement::{Described, Statement};

/// What an execution resolves to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum ResultShape {
    /// The list of Records.
    Rows,
    /// The command status; rows are not even decoded.
    Status,
    /// `(rows, suspended, status)`, for cursors reading a portal in steps.
    Portal,
}

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
        shape: ResultShape,
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

impl OpKind {
    /// An execution of `stmt` resolving to `shape`.
    pub(super) fn execute(py: Python<'_>, stmt: Py<Statement>, shape: ResultShape) -> OpKind {
        OpKind::Execute {
            stmt,
            rows: PyList::empty(py).unbind(),
            status: String::new(),
            shape,
            suspended: false,
        }
    }
}

/// One request awaiting its ReadyForQuery.
pub(super) struct Op {
    pub waiter: Option<Py<PyAny>>,
    /// The first failure: the server's error, or one while decoding its answer.
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

/// A future to resolve once the borrow of the protocol is released.
pub(super) enum Completion {
    Ok(Py<PyAny>, Py<PyAny>),
    Err(Py<PyAny>, PyErr),
}

/// The protocol's state that events touch, borrowed for one `handle_input`.
pub(super) struct Sink<'a, 'py> {
    pub py: Python<'py>,
    pub cache: &'a Cache,
    pub types: &'a Registry,
    pub done: &'a mut Vec<Completion>,
    pub loop_: &'a Py<PyAny>,
    pub notice_callback: Option<&'a Py<PyAny>>,
    pub notification_callback: Option<&'a Py<PyAny>>,
    /// Set when startup ends successfully.
    pub ready_waiter: Option<&'a Py<PyAny>>,
    pub started: &'a mut bool,
    /// Set when the server said it is going away.
    pub closed: &'a mut bool,
    /// Set when the server lost (26000) or already had (42P05) a statement this client
    /// named and prepared: a sign of a transaction-mode pooler in between.
    pub named_statement_lost: &'a mut bool,
}

impl Sink<'_, '_> {
    /// Runs `callback(*args)` soon on the loop, outside `data_received`.
    fn call_soon(&self, callback: &Py<PyAny>, args: Bound<'_, PyTuple>) {
        let py = self.py;
        let mut all = vec![callback.clone_ref(py).into_bound(py)];
        all.extend(args.iter());
        if let Ok(all) = PyTuple::new(py, all) {
            let _ = self
                .loop_
                .bind(py)
                .call_method1(intern!(py, "call_soon"), all);
        }
    }
}

impl Events<Op> for Sink<'_, '_> {
    fn ready(&mut self) {
        *self.started = true;
        if let Some(w) = self.ready_waiter {
            self.done
                .push(Completion::Ok(w.clone_ref(self.py), self.py.None()));
        }
    }

    fn notice(&mut self, notice: DbError) {
        let Some(cb) = self.notice_callback else {
            return;
        };
        match errors::log_message(self.py, &notice) {
            Ok(msg) => match PyTuple::new(self.py, [msg]) {
                Ok(args) => self.call_soon(cb, args),
                Err(e) => e.write_unraisable(self.py, None),
            },
            Err(e) => e.write_unraisable(self.py, None),
        }
    }

    fn notification(&mut self, process_id: i32, channel: &str, payload: &str) {
        if let Some(cb) = self.notification_callback {
            if let Ok(args) = (process_id, channel, payload).into_pyobject(self.py) {
                self.call_soon(cb, args);
            }
        }
    }

    fn server_error(&mut self, error: DbError) {
        // A FATAL notice before the server hangs up (shutdown, termination).
        if error.is_fatal() {
            *self.closed = true;
        }
    }

    fn parameters(&mut self, op: &mut Op, types: Result<ParameterDescription<'_>, EncodeError>) {
        if let OpKind::Prepare { described, .. } = &mut op.kind {
            match types {
                Ok(types) => described.param_types = types.types().collect(),
                // A statement past the limit cannot be bound: it fails, the connection
                // goes on to the ReadyForQuery.
                Err(e) => {
                    op.error.get_or_insert_with(|| {
                        errors::client_error(self.py, ClientError::Interface, e.0)
                    });
                }
            }
        }
    }

    fn columns(&mut self, op: &mut Op, columns: Option<&RowDescription<'_>>) {
        match &mut op.kind {
            OpKind::Prepare { described, .. } => match columns {
                Some(desc) => described.set_columns(desc),
                None => described.columns = None,
            },
            // A statement parsed again (behind a pooler) describes its portal: rows
            // of other types than the ones described before must not be decoded.
            OpKind::Execute { stmt, .. } => {
                let known = &stmt.get().columns;
                let same = match columns {
                    Some(desc) => {
                        desc.len() == known.len()
                            && desc
                                .fields()
                                .zip(known)
                                .all(|(f, c)| f.type_oid == c.type_oid)
                    }
                    None => known.is_empty(),
                };
                if !same && op.error.is_none() {
                    op.error = Some(errors::client_error(
                        self.py,
                        ClientError::InvalidCachedStatement,
                        "cached statement plan is invalid due to a database schema or \
                         configuration change: its result columns changed",
                    ));
                }
            }
            _ => {}
        }
    }

    fn row(&mut self, op: &mut Op, row: DataRow<'_>) -> Flow {
        if op.error.is_some() {
            return Flow::Continue;
        }
        if let OpKind::Execute {
            stmt, rows, shape, ..
        } = &op.kind
        {
            if *shape == ResultShape::Status {
                return Flow::Continue;
            }
            let decoded = decode_row(self.py, self.cache, stmt.get(), &row)
                .and_then(|record| rows.bind(self.py).append(record));
            if let Err(e) = decoded {
                op.error = Some(e);
            }
        }
        Flow::Continue
    }

    fn copy_in_ready(&mut self, op: &mut Op) -> CopyIn {
        let OpKind::CopyIn { ready, .. } = &mut op.kind else {
            return CopyIn::Abandon;
        };
        let Some(ready) = ready.take() else {
            return CopyIn::Abandon;
        };
        let py = self.py;
        let abandoned = ready
            .bind(py)
            .call_method0(intern!(py, "done"))
            .and_then(|d| d.is_truthy())
            .unwrap_or(true);
        if abandoned {
            return CopyIn::Abandon;
        }
        self.done.push(Completion::Ok(ready, py.None()));
        CopyIn::Feed
    }

    fn copy_data(&mut self, op: &mut Op, data: &[u8]) -> Flow {
        if op.error.is_none() {
            if let OpKind::CopyOut { pending, .. } = &mut op.kind {
                pending.extend_from_slice(data);
            }
        }
        Flow::Continue
    }

    fn command_complete(&mut self, op: &mut Op, tag: &str, _rows: Option<u64>) {
        match &mut op.kind {
            OpKind::Script { status }
            | OpKind::Execute { status, .. }
            | OpKind::CopyIn { status, .. } => tag.clone_into(status),
            OpKind::CopyOut { status, .. } => {
                tag.clone_into(status);
                flush_copy_out(self.py, op);
            }
            OpKind::Prepare { .. } | OpKind::Plain => {}
        }
    }

    fn portal_suspended(&mut self, op: &mut Op) {
        if let OpKind::Execute { suspended, .. } = &mut op.kind {
            *suspended = true;
        }
    }

    fn rejected(&mut self, op: &mut Op, error: &DbError) {
        let named = match &op.kind {
            OpKind::Execute { stmt, .. } => !stmt.get().name.is_empty(),
            OpKind::Prepare { name, .. } => !name.is_empty(),
            _ => false,
        };
        if named && pooler::statement_lost(error.code()) {
            *self.named_statement_lost = true;
        }
    }

    fn error(&mut self, op: &mut Op, error: &DbError) {
        if op.error.is_none() {
            op.error = Some(errors::server_error(self.py, error, op.query.as_deref()));
        }
    }

    fn done(&mut self, mut op: Op, _outcome: Outcome) -> Flow {
        // The outcome's error already reached `op.error` through `error`.
        if let Some(ready) = unstarted_copy(self.py, &mut op, None) {
            self.done.push(ready);
        }
        if let Some(completion) = finish(self.py, self.types, op) {
            self.done.push(completion);
        }
        Flow::Continue
    }
}

/// A COPY FROM STDIN that ended (or whose connection went) before the server asked
/// for data: its `ready` future, which the caller awaits before feeding, gets the
/// operation's error (or `lost`, or an InterfaceError when the statement was no COPY
/// FROM STDIN), so the caller never waits for data the server will not take.
pub(super) fn unstarted_copy(
    py: Python<'_>,
    op: &mut Op,
    lost: Option<&PyErr>,
) -> Option<Completion> {
    let OpKind::CopyIn { ready, .. } = &mut op.kind else {
        return None;
    };
    let ready = ready.take()?;
    let err = match (lost, &op.error) {
        (Some(e), _) | (None, Some(e)) => e.clone_ref(py),
        (None, None) => errors::client_error(
            py,
            ClientError::Interface,
            "the statement did not start a COPY FROM STDIN",
        ),
    };
    Some(Completion::Err(ready, err))
}

/// The result of an operation that has ended, for its waiter.
fn finish(py: Python<'_>, types: &Registry, op: Op) -> Option<Completion> {
    let Op {
        waiter,
        error,
        kind,
        ..
    } = op;
    let waiter = waiter?;
    if let Some(err) = error {
        return Some(Completion::Err(waiter, err));
    }
    let status =
        |s: String| -> PyResult<Py<PyAny>> { Ok(s.into_pyobject(py)?.into_any().unbind()) };
    let outcome: PyResult<Py<PyAny>> = match kind {
        OpKind::Script { status: s }
        | OpKind::CopyOut { status: s, .. }
        | OpKind::CopyIn { status: s, .. } => status(s),
        OpKind::Prepare {
            name,
            query,
            described,
            record_class,
            ignore_custom_codec,
        } => Statement::new(
            py,
            name,
            query,
            described,
            record_class,
            types,
            ignore_custom_codec,
        )
        .and_then(|stmt| Ok(Py::new(py, stmt)?.into_any())),
        OpKind::Execute {
            rows,
            status: s,
            shape,
            suspended,
            ..
        } => match shape {
            ResultShape::Rows => Ok(rows.into_any()),
            ResultShape::Status => status(s),
            ResultShape::Portal => {
                // A suspended portal has no command status yet.
                let s = (!s.is_empty()).then_some(s);
                (rows, suspended, s)
                    .into_pyobject(py)
                    .map(|t| t.into_any().unbind())
            }
        },
        OpKind::Plain => Ok(py.None()),
    };
    Some(match outcome {
        Ok(value) => Completion::Ok(waiter, value),
        Err(e) => Completion::Err(waiter, e),
    })
}

/// Decodes one row into a Record of the statement's record class (the core has
/// checked its width).
fn decode_row(
    py: Python<'_>,
    cache: &Cache,
    st: &Statement,
    row: &DataRow<'_>,
) -> PyResult<Py<PyAny>> {
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
        let chunk = PyBytes::new(py, pending);
        pending.clear();
        if let Err(e) = sink.bind(py).call1((chunk,)) {
            op.error = Some(e);
        }
    }
}
