//! `CoreProtocol`: the asyncio protocol, written in Rust, that drives the sans-IO core
//! on the event-loop thread.
//!
//! Every request writes its messages, queues an operation in the core and returns a
//! loop future. `data_received` parses the server's messages, decodes rows straight into
//! Python objects and, once it has let go of its borrow of `self`, writes any replies and
//! resolves the finished futures. Letting go first matters: `transport.write` may call
//! `pause_writing`, and resolving a future may run Python code.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::BytesMut;
use ferropg_core::conn::{Connection, Phase, Routed, StartupParams};
use ferropg_core::message::{frontend, parse_message, Message, TransactionStatus};
use ferropg_core::DbError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use crate::codecs::{decode_value, encode_value, Cache};
use crate::errors;
use crate::record::Record;
use crate::statement::{Described, Statement};

/// How many prepared statements a connection keeps before closing the oldest.
const STATEMENT_CACHE_SIZE: usize = 100;

static STATEMENT_IDS: AtomicU64 = AtomicU64::new(1);

/// What to do with a statement once it is prepared.
struct Execution {
    args: Py<PyTuple>,
    limit: i32,
    want_rows: bool,
}

enum OpKind {
    /// A simple-protocol script: the status of its last command.
    Script { status: String },
    /// Parse + Describe; then either hand back the statement or execute it.
    Prepare {
        name: String,
        query: String,
        described: Described,
        cache: bool,
        then: Option<Execution>,
    },
    /// Bind + Execute of a prepared statement.
    Execute {
        stmt: Py<Statement>,
        rows: Vec<Py<PyAny>>,
        status: String,
        want_rows: bool,
    },
}

struct Op {
    waiter: Option<Py<PyAny>>,
    error: Option<PyErr>,
    query: Option<String>,
    kind: OpKind,
}

/// A future to resolve once the borrow of the protocol is released.
enum Completion {
    Ok(Py<PyAny>, Py<PyAny>),
    Err(Py<PyAny>, PyErr),
}

/// The asyncio protocol of one PostgreSQL connection.
#[pyclass(subclass, module = "ferropg._native")]
pub struct CoreProtocol {
    conn: Connection<Op>,
    loop_: Py<PyAny>,
    transport: Option<Py<PyAny>>,
    inbuf: Vec<u8>,
    out: BytesMut,
    /// Resolved once, when startup ends either way; kept so late callers see the outcome.
    ready_waiter: Py<PyAny>,
    /// Startup and authentication finished successfully.
    started: bool,
    statements: HashMap<String, Py<Statement>>,
    statement_order: VecDeque<String>,
    to_close: Vec<String>,
    closed: bool,
    lost: bool,
    writing_paused: bool,
    notice_callback: Option<Py<PyAny>>,
    notification_callback: Option<Py<PyAny>>,
    queries_count: u64,
}

fn status_char(s: TransactionStatus) -> &'static str {
    match s {
        TransactionStatus::Idle => "I",
        TransactionStatus::InTransaction => "T",
        TransactionStatus::Failed => "E",
    }
}

impl CoreProtocol {
    fn new_future(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(self
            .loop_
            .bind(py)
            .call_method0(intern!(py, "create_future"))?
            .unbind())
    }

    fn ensure_open(&self, py: Python<'_>) -> PyResult<()> {
        if self.closed || self.lost || self.conn.phase() != Phase::Ready {
            return Err(errors::client_error(
                py,
                "InterfaceError",
                "connection is closed",
            ));
        }
        Ok(())
    }

    fn queue_closes(&mut self) -> PyResult<()> {
        for name in self.to_close.drain(..) {
            frontend::close(b'S', &name, &mut self.out).map_err(enc_err)?;
        }
        Ok(())
    }

    fn cache_statement(&mut self, py: Python<'_>, stmt: &Py<Statement>) {
        let name = stmt.get().query.clone();
        if let Some(old) = self.statements.insert(name.clone(), stmt.clone_ref(py)) {
            self.to_close.push(old.get().name.clone());
            self.statement_order.retain(|q| q != &name);
        }
        self.statement_order.push_back(name);
        while self.statement_order.len() > STATEMENT_CACHE_SIZE {
            if let Some(q) = self.statement_order.pop_front() {
                if let Some(old) = self.statements.remove(&q) {
                    self.to_close.push(old.get().name.clone());
                }
            }
        }
    }

    /// Writes Parse + Describe + Sync and queues the preparation.
    fn start_prepare(
        &mut self,
        waiter: Py<PyAny>,
        query: &str,
        name: Option<String>,
        then: Option<Execution>,
    ) -> PyResult<()> {
        let cache = name.is_none();
        let name = name.unwrap_or_else(|| {
            format!(
                "__ferropg_stmt_{}__",
                STATEMENT_IDS.fetch_add(1, Ordering::Relaxed)
            )
        });
        self.queue_closes()?;
        let start = self.out.len();
        let written = frontend::parse(&name, query, std::iter::empty(), &mut self.out)
            .and_then(|()| frontend::describe(b'S', &name, &mut self.out));
        if let Err(e) = written {
            self.out.truncate(start);
            return Err(enc_err(e));
        }
        frontend::sync(&mut self.out);
        self.conn.push(Op {
            waiter: Some(waiter),
            error: None,
            query: Some(query.to_owned()),
            kind: OpKind::Prepare {
                name,
                query: query.to_owned(),
                described: Described::default(),
                cache,
                then,
            },
        });
        Ok(())
    }

    /// Writes Bind + Execute + Sync for a prepared statement and queues the execution.
    /// Encoding errors come back before anything is written.
    fn start_execute(
        &mut self,
        py: Python<'_>,
        waiter: Py<PyAny>,
        stmt: Py<Statement>,
        exec: Execution,
    ) -> PyResult<()> {
        let st = stmt.get();
        let args = exec.args.bind(py);
        if args.len() != st.param_types.len() {
            let (x, y) = (st.param_types.len(), args.len());
            return Err(errors::client_error(
                py,
                "InterfaceError",
                format!(
                    "the server expects {x} argument{} for this query, {y} {} passed",
                    if x == 1 { "" } else { "s" },
                    if y == 1 { "was" } else { "were" }
                ),
            ));
        }
        let cache = Cache::get(py)?;
        self.queue_closes()?;
        let mut failed_at = 0usize;
        let result = frontend::bind(
            "",
            &st.name,
            st.param_formats.iter().copied(),
            st.param_types.len(),
            |i, buf| -> PyResult<bool> {
                failed_at = i;
                let value = args.get_item(i)?;
                if value.is_none() {
                    return Ok(true);
                }
                encode_value(py, cache, st.encoders[i], &value, buf)?;
                Ok(false)
            },
            st.result_formats.iter().copied(),
            &mut self.out,
        );
        match result {
            Ok(()) => {}
            Err(frontend::BindFailure::Param(e)) => {
                let value = args.get_item(failed_at)?;
                let mut repr = value.repr()?.to_string();
                if repr.chars().count() > 40 {
                    repr = repr.chars().take(40).collect::<String>() + "...";
                }
                let msg = format!(
                    "invalid input for query argument ${}: {} ({})",
                    failed_at + 1,
                    repr,
                    e.value(py).str()?
                );
                let data_error = errors::client_error(py, "DataError", msg);
                data_error.set_cause(py, Some(e));
                return Err(data_error);
            }
            Err(frontend::BindFailure::Encode(e)) => {
                return Err(errors::client_error(py, "InterfaceError", e.0));
            }
        }
        frontend::execute("", exec.limit, &mut self.out).map_err(enc_err)?;
        frontend::sync(&mut self.out);
        self.queries_count += 1;
        let query = st.query.clone();
        self.conn.push(Op {
            waiter: Some(waiter),
            error: None,
            query: Some(query),
            kind: OpKind::Execute {
                stmt,
                rows: Vec::new(),
                status: String::new(),
                want_rows: exec.want_rows,
            },
        });
        Ok(())
    }

    /// Handles the messages in the input buffer. Returns the futures to resolve.
    fn process_input(&mut self, py: Python<'_>, done: &mut Vec<Completion>) -> Result<(), PyErr> {
        let cache = Cache::get(py)?;
        let mut consumed = 0;
        let inbuf = std::mem::take(&mut self.inbuf);
        let result = loop {
            let parsed = match parse_message(&inbuf[consumed..]) {
                Ok(Some(p)) => p,
                Ok(None) => break Ok(()),
                Err(e) => break Err(ferropg_core::Error::Parse(e)),
            };
            let (msg, len) = parsed;
            consumed += len;
            let routed = match self.conn.process(msg, &mut self.out) {
                Ok(r) => r,
                Err(e) => break Err(e),
            };
            if let Err(e) = self.route(py, cache, routed, done) {
                break Err(e);
            }
        };
        self.inbuf = inbuf;
        self.inbuf.drain(..consumed);
        if let Err(err) = result {
            self.fail_all(py, &err, done);
        }
        Ok(())
    }

    fn fail_all(&mut self, py: Python<'_>, err: &ferropg_core::Error, done: &mut Vec<Completion>) {
        if !self.started {
            let w = self.ready_waiter.clone_ref(py);
            done.push(Completion::Err(w, errors::core_error(py, err, None)));
        }
        for op in self.conn.take_pending() {
            if let Some(w) = op.waiter {
                done.push(Completion::Err(
                    w,
                    errors::core_error(py, err, op.query.as_deref()),
                ));
            }
        }
        self.conn.mark_closed();
        self.closed = true;
        if let Some(t) = &self.transport {
            let _ = t.bind(py).call_method0(intern!(py, "abort"));
        }
    }

    fn route(
        &mut self,
        py: Python<'_>,
        cache: &Cache,
        routed: Routed<'_, Op>,
        done: &mut Vec<Completion>,
    ) -> Result<(), ferropg_core::Error> {
        match routed {
            Routed::Handled | Routed::ParameterChanged { .. } => {}
            Routed::StartupDone => {
                self.started = true;
                done.push(Completion::Ok(self.ready_waiter.clone_ref(py), py.None()));
            }
            Routed::Op(msg) => {
                if let Some(op) = self.conn.head_mut() {
                    on_op_message(py, cache, op, msg, &mut self.out);
                }
            }
            Routed::OpDone(op) => self.finish(py, op, done),
            Routed::Notice(fields) => {
                if let Some(cb) = &self.notice_callback {
                    let err = DbError::from_fields(&fields);
                    let cb = cb.clone_ref(py);
                    match errors::log_message(py, &err) {
                        Ok(msg) => {
                            let _ = self
                                .loop_
                                .bind(py)
                                .call_method1(intern!(py, "call_soon"), (cb, msg));
                        }
                        Err(e) => e.write_unraisable(py, None),
                    }
                }
            }
            Routed::Notification {
                process_id,
                channel,
                payload,
            } => {
                if let Some(cb) = &self.notification_callback {
                    let cb = cb.clone_ref(py);
                    let _ = self
                        .loop_
                        .bind(py)
                        .call_method1(intern!(py, "call_soon"), (cb, process_id, channel, payload));
                }
            }
            Routed::UnsolicitedError(fields) => {
                // A FATAL notice before the server hangs up (shutdown, termination).
                let err = DbError::from_fields(&fields);
                if err.is_fatal() {
                    self.closed = true;
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self, py: Python<'_>, op: Op, done: &mut Vec<Completion>) {
        let Op {
            waiter,
            error,
            query,
            kind,
        } = op;
        let Some(waiter) = waiter else { return };
        if let Some(err) = error {
            done.push(Completion::Err(waiter, err));
            return;
        }
        let outcome: PyResult<Option<Py<PyAny>>> = (|| match kind {
            OpKind::Script { status } => Ok(Some(status.into_pyobject(py)?.into_any().unbind())),
            OpKind::Prepare {
                name,
                query: sql,
                described,
                cache,
                then,
            } => {
                let stmt = Py::new(py, Statement::new(py, name, sql, described)?)?;
                if cache {
                    self.cache_statement(py, &stmt);
                }
                match then {
                    Some(exec) => {
                        self.start_execute(py, waiter.clone_ref(py), stmt, exec)?;
                        Ok(None)
                    }
                    None => Ok(Some(stmt.into_any())),
                }
            }
            OpKind::Execute {
                rows,
                status,
                want_rows,
                ..
            } => {
                if want_rows {
                    Ok(Some(PyList::new(py, rows)?.into_any().unbind()))
                } else {
                    Ok(Some(status.into_pyobject(py)?.into_any().unbind()))
                }
            }
        })();
        let _ = query;
        match outcome {
            Ok(Some(value)) => done.push(Completion::Ok(waiter, value)),
            Ok(None) => {}
            Err(e) => done.push(Completion::Err(waiter, e)),
        }
    }

    fn take_output(&mut self, py: Python<'_>) -> Option<(Py<PyAny>, Py<PyBytes>)> {
        if self.out.is_empty() {
            return None;
        }
        let transport = self.transport.as_ref()?.clone_ref(py);
        let data = PyBytes::new(py, &self.out).unbind();
        self.out.clear();
        Some((transport, data))
    }
}

fn enc_err(e: frontend::EncodeError) -> PyErr {
    Python::attach(|py| errors::client_error(py, "InterfaceError", e.0))
}

/// Applies one message to the operation it belongs to.
fn on_op_message(py: Python<'_>, cache: &Cache, op: &mut Op, msg: Message<'_>, out: &mut BytesMut) {
    if let Message::ErrorResponse(fields) = &msg {
        if op.error.is_none() {
            op.error = Some(errors::server_error(
                py,
                &DbError::from_fields(fields),
                op.query.as_deref(),
            ));
        }
        return;
    }
    if let Message::CopyInResponse(_) = msg {
        // COPY FROM STDIN outside the copy API: refuse so the server ends the command.
        let _ = frontend::copy_fail_message(
            "COPY FROM STDIN is not supported here; use copy_to_table() or copy_records_to_table()",
            out,
        );
        // The server ignores a Sync sent during COPY IN (ours went out with Execute),
        // so the extended protocol needs another; a simple Query needs none.
        if !matches!(op.kind, OpKind::Script { .. }) {
            frontend::sync(out);
        }
        return;
    }
    match &mut op.kind {
        OpKind::Script { status } => {
            if let Message::CommandComplete { tag } = msg {
                tag.clone_into(status);
            }
        }
        OpKind::Prepare { described, .. } => match msg {
            Message::ParameterDescription(p) => described.param_types = p.types().collect(),
            Message::RowDescription(desc) => described.set_columns(&desc),
            Message::NoData => described.columns = None,
            _ => {}
        },
        OpKind::Execute {
            stmt,
            rows,
            status,
            want_rows,
        } => match msg {
            Message::DataRow(row) if *want_rows && op.error.is_none() => {
                match decode_row(py, cache, stmt.get(), stmt.bind(py), &row) {
                    Ok(record) => rows.push(record),
                    Err(e) => op.error = Some(e),
                }
            }
            Message::CommandComplete { tag } => tag.clone_into(status),
            _ => {}
        },
    }
}

fn decode_row(
    py: Python<'_>,
    cache: &Cache,
    st: &Statement,
    _stmt: &Bound<'_, Statement>,
    row: &ferropg_core::message::DataRow<'_>,
) -> PyResult<Py<PyAny>> {
    if row.len() != st.decoders.len() {
        return Err(errors::client_error(
            py,
            "ProtocolError",
            format!(
                "row has {} columns, expected {}",
                row.len(),
                st.decoders.len()
            ),
        ));
    }
    let mut values = Vec::with_capacity(row.len());
    for (value, decoder) in row.values().zip(&st.decoders) {
        let obj = match value {
            None => py.None().into_bound(py),
            Some(bytes) => match decoder {
                Some(d) => decode_value(py, cache, *d, bytes)?,
                None => decode_value(py, cache, crate::codecs::Decoder::Text, bytes)?,
            },
        };
        values.push(obj);
    }
    let record = Record {
        values: PyTuple::new(py, values)?.unbind(),
        desc: st.desc.clone_ref(py),
    };
    Ok(Py::new(py, record)?.into_any())
}

/// Writes, then resolves futures, with no borrow of the protocol held.
fn settle(
    py: Python<'_>,
    output: Option<(Py<PyAny>, Py<PyBytes>)>,
    done: Vec<Completion>,
) -> PyResult<()> {
    if let Some((transport, data)) = output {
        transport
            .bind(py)
            .call_method1(intern!(py, "write"), (data,))?;
    }
    for c in done {
        let (fut, result) = match c {
            Completion::Ok(f, v) => (f, Ok(v)),
            Completion::Err(f, e) => (f, Err(e)),
        };
        let fut = fut.bind(py);
        // A caller that timed out or was cancelled no longer waits for this result.
        if fut.call_method0(intern!(py, "done"))?.is_truthy()? {
            continue;
        }
        match result {
            Ok(v) => fut.call_method1(intern!(py, "set_result"), (v,))?,
            Err(e) => fut.call_method1(intern!(py, "set_exception"), (e.into_value(py),))?,
        };
    }
    Ok(())
}

#[pymethods]
impl CoreProtocol {
    /// `CoreProtocol(loop, user, database=None, password=None, options=())`.
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (r#loop, user, database=None, password=None, options=None, *_args, **_kwargs))]
    fn py_new(
        py: Python<'_>,
        r#loop: Py<PyAny>,
        user: String,
        database: Option<String>,
        password: Option<String>,
        options: Option<Vec<(String, String)>>,
        _args: &Bound<'_, PyTuple>,
        _kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let ready_waiter = r#loop
            .bind(py)
            .call_method0(intern!(py, "create_future"))?
            .unbind();
        let params = StartupParams {
            user,
            database,
            password,
            options: options.unwrap_or_default(),
        };
        Ok(CoreProtocol {
            conn: Connection::new(params),
            loop_: r#loop,
            transport: None,
            inbuf: Vec::new(),
            out: BytesMut::with_capacity(8192),
            ready_waiter,
            started: false,
            statements: HashMap::new(),
            statement_order: VecDeque::new(),
            to_close: Vec::new(),
            closed: false,
            lost: false,
            writing_paused: false,
            notice_callback: None,
            notification_callback: None,
            queries_count: 0,
        })
    }

    /// asyncio: the transport is connected; send the StartupMessage.
    fn connection_made(slf: &Bound<'_, Self>, transport: Py<PyAny>) -> PyResult<()> {
        let py = slf.py();
        let output = {
            let mut this = slf.borrow_mut();
            this.transport = Some(transport);
            let mut out = std::mem::take(&mut this.out);
            let r = this.conn.start(&mut out);
            this.out = out;
            if let Err(e) = r {
                return Err(errors::core_error(py, &e, None));
            }
            this.take_output(py)
        };
        settle(py, output, Vec::new())
    }

    /// asyncio: bytes arrived.
    fn data_received(slf: &Bound<'_, Self>, data: &Bound<'_, PyBytes>) -> PyResult<()> {
        let py = slf.py();
        let mut done = Vec::new();
        let output = {
            let mut this = slf.borrow_mut();
            this.inbuf.extend_from_slice(data.as_bytes());
            this.process_input(py, &mut done)?;
            this.take_output(py)
        };
        settle(py, output, done)
    }

    /// asyncio: the peer closed its side; let the transport close.
    fn eof_received(&self) -> bool {
        false
    }

    /// asyncio: the connection is gone. Fails every pending operation.
    fn connection_lost(slf: &Bound<'_, Self>, exc: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        let py = slf.py();
        let mut done = Vec::new();
        {
            let mut this = slf.borrow_mut();
            let in_startup = !this.started;
            this.lost = true;
            this.closed = true;
            this.conn.mark_closed();
            if in_startup {
                let w = this.ready_waiter.clone_ref(py);
                let err = match &exc {
                    Some(e) => PyErr::from_value(e.clone()),
                    None => errors::client_error(
                        py,
                        "ConnectionDoesNotExistError",
                        "connection was closed in the middle of operation",
                    ),
                };
                done.push(Completion::Err(w, err));
            }
            for op in this.conn.take_pending() {
                if let Some(w) = op.waiter {
                    // A server error that came before the hang-up (a FATAL termination
                    // notice, say) explains it: keep it as the cause and in the message.
                    let mut msg = String::from("connection was closed in the middle of operation");
                    let cause = match op.error {
                        Some(server) => {
                            if let Ok(text) = server.value(py).str() {
                                msg.push_str(": ");
                                msg.push_str(&text.to_string_lossy());
                            }
                            Some(server)
                        }
                        None => exc.as_ref().map(|e| PyErr::from_value(e.clone())),
                    };
                    let err = errors::client_error(py, "ConnectionDoesNotExistError", msg);
                    err.set_cause(py, cause);
                    done.push(Completion::Err(w, err));
                }
            }
            this.transport = None;
        }
        settle(py, None, done)
    }

    /// asyncio flow control: the transport's buffer is full.
    fn pause_writing(&mut self) {
        self.writing_paused = true;
    }

    /// asyncio flow control: the transport's buffer drained.
    fn resume_writing(&mut self) {
        self.writing_paused = false;
    }

    /// A future resolved when startup and authentication finish.
    fn wait_ready(&self, py: Python<'_>) -> Py<PyAny> {
        self.ready_waiter.clone_ref(py)
    }

    /// Runs `sql` with the simple protocol; resolves to the last command's status.
    fn query_script(slf: &Bound<'_, Self>, sql: &str) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let (fut, output) = {
            let mut this = slf.borrow_mut();
            this.ensure_open(py)?;
            let fut = this.new_future(py)?;
            this.queue_closes()?;
            frontend::query(sql, &mut this.out).map_err(enc_err)?;
            this.queries_count += 1;
            this.conn.push(Op {
                waiter: Some(fut.clone_ref(py)),
                error: None,
                query: Some(sql.to_owned()),
                kind: OpKind::Script {
                    status: String::new(),
                },
            });
            (fut, this.take_output(py))
        };
        settle(py, output, Vec::new())?;
        Ok(fut)
    }

    /// Prepares `sql` (named `name`, or with a generated name); resolves to a StatementState.
    #[pyo3(signature = (sql, name=None))]
    fn prepare(slf: &Bound<'_, Self>, sql: &str, name: Option<String>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let (fut, output) = {
            let mut this = slf.borrow_mut();
            this.ensure_open(py)?;
            let fut = this.new_future(py)?;
            let name = Some(name.unwrap_or_else(|| {
                format!(
                    "__ferropg_stmt_{}__",
                    STATEMENT_IDS.fetch_add(1, Ordering::Relaxed)
                )
            }));
            this.start_prepare(fut.clone_ref(py), sql, name, None)?;
            (fut, this.take_output(py))
        };
        settle(py, output, Vec::new())?;
        Ok(fut)
    }

    /// Runs `sql` with `args` through the statement cache. Resolves to a list of Records
    /// (`want_rows`) or the command status.
    #[pyo3(signature = (sql, args, limit=0, want_rows=true))]
    fn execute(
        slf: &Bound<'_, Self>,
        sql: &str,
        args: Py<PyTuple>,
        limit: i32,
        want_rows: bool,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let (fut, output) = {
            let mut this = slf.borrow_mut();
            this.ensure_open(py)?;
            let fut = this.new_future(py)?;
            let exec = Execution {
                args,
                limit,
                want_rows,
            };
            match this.statements.get(sql).map(|s| s.clone_ref(py)) {
                Some(stmt) => this.start_execute(py, fut.clone_ref(py), stmt, exec)?,
                None => this.start_prepare(fut.clone_ref(py), sql, None, Some(exec))?,
            }
            (fut, this.take_output(py))
        };
        settle(py, output, Vec::new())?;
        Ok(fut)
    }

    /// Executes a prepared statement.
    #[pyo3(signature = (stmt, args, limit=0, want_rows=true))]
    fn execute_statement(
        slf: &Bound<'_, Self>,
        stmt: Py<Statement>,
        args: Py<PyTuple>,
        limit: i32,
        want_rows: bool,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let (fut, output) = {
            let mut this = slf.borrow_mut();
            this.ensure_open(py)?;
            let fut = this.new_future(py)?;
            this.start_execute(
                py,
                fut.clone_ref(py),
                stmt,
                Execution {
                    args,
                    limit,
                    want_rows,
                },
            )?;
            (fut, this.take_output(py))
        };
        settle(py, output, Vec::new())?;
        Ok(fut)
    }

    /// Closes a prepared statement on the server the next time anything is sent.
    fn close_statement(&mut self, stmt: &Bound<'_, Statement>) {
        let st = stmt.get();
        if self.statements.get(&st.query).is_some_and(|s| s.is(stmt)) {
            self.statements.remove(&st.query);
            self.statement_order.retain(|q| q != &st.query);
        }
        self.to_close.push(st.name.clone());
    }

    /// How many statements the cache holds.
    fn statement_cache_len(&self) -> usize {
        self.statements.len()
    }

    /// Drops every cached statement (they are closed on the server lazily).
    fn clear_statement_cache(&mut self) {
        for (_, stmt) in self.statements.drain() {
            self.to_close.push(stmt.get().name.clone());
        }
        self.statement_order.clear();
    }

    /// Sends Terminate and closes the transport.
    fn terminate(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let transport = {
            let mut this = slf.borrow_mut();
            if !this.lost && !this.closed {
                let mut out = std::mem::take(&mut this.out);
                this.conn.terminate(&mut out);
                this.out = out;
            }
            this.closed = true;
            let output = this.take_output(py);
            let t = this.transport.as_ref().map(|t| t.clone_ref(py));
            (output, t)
        };
        let (output, t) = transport;
        settle(py, output, Vec::new())?;
        if let Some(t) = t {
            t.bind(py).call_method0(intern!(py, "close"))?;
        }
        Ok(())
    }

    /// Closes the transport at once, without Terminate.
    fn abort(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let t = {
            let mut this = slf.borrow_mut();
            this.closed = true;
            this.transport.as_ref().map(|t| t.clone_ref(py))
        };
        if let Some(t) = t {
            t.bind(py).call_method0(intern!(py, "abort"))?;
        }
        Ok(())
    }

    /// True once the connection was closed, terminated or lost.
    fn is_closed(&self) -> bool {
        self.closed || self.lost
    }

    /// True while the server reports an open (or failed) transaction block.
    fn is_in_transaction(&self) -> bool {
        self.conn.transaction_status() != TransactionStatus::Idle
    }

    /// The last ReadyForQuery status: 'I', 'T' or 'E'.
    #[getter]
    fn transaction_status(&self) -> &'static str {
        status_char(self.conn.transaction_status())
    }

    /// The backend process ID.
    fn get_server_pid(&self) -> i32 {
        self.conn.process_id()
    }

    /// The cancellation key as `(process_id, secret_key bytes)`.
    fn get_cancel_key<'py>(&self, py: Python<'py>) -> (i32, Bound<'py, PyBytes>) {
        (
            self.conn.process_id(),
            PyBytes::new(py, self.conn.secret_key()),
        )
    }

    /// The run-time parameters the server reported, as a dict.
    fn get_settings<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in self.conn.parameters() {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    /// How many queries this connection has sent.
    #[getter]
    fn queries_count(&self) -> u64 {
        self.queries_count
    }

    /// How many operations are waiting for the server.
    fn pending_count(&self) -> usize {
        self.conn.pending().filter(|op| op.waiter.is_some()).count()
    }

    /// Sets the callables that receive notices (`PostgresLogMessage`) and
    /// notifications `(pid, channel, payload)`; they run via `loop.call_soon`.
    #[pyo3(signature = (notice=None, notification=None))]
    fn set_callbacks(&mut self, notice: Option<Py<PyAny>>, notification: Option<Py<PyAny>>) {
        self.notice_callback = notice;
        self.notification_callback = notification;
    }
}
