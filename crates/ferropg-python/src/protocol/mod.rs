//! `CoreProtocol`: the asyncio protocol, written in Rust, that drives the sans-IO core
//! on the event-loop thread.
//!
//! Every request writes its messages, queues an operation in the core and returns a
//! loop future. `data_received` parses the server's messages, decodes rows straight into
//! Python objects and, once it has let go of its borrow of `self`, writes any replies and
//! resolves the finished futures. Letting go first matters: `transport.write` may call
//! `pause_writing`, and resolving a future may run Python code.

mod bind;
pub(crate) use bind::argument_count_error;
mod copy;
mod gc_pause;
mod ops;
mod pump;
mod statements;
mod type_registry;
mod waiter;

use bytes::BytesMut;
use ferropg_core::auth::ChannelBindingMode;
use ferropg_core::conn::{Connection, Phase, StartupParams};
use ferropg_core::message::{frontend, TransactionStatus};
use ferropg_core::reset::{self, ResetPolicy, SessionFootprint};
use ferropg_core::{names, pooler};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple, PyType};

use crate::codecs::{Cache, Registry};
use crate::errors::{self, ClientError};
use crate::statement::Statement;
use ops::{Completion, Op, OpKind, ResultShape};
use statements::Statements;
use waiter::Waiter;

/// A new server-side statement name, unique in this process.
fn statement_name() -> String {
    names::next_unique_name("stmt")
}

/// The asyncio protocol of one PostgreSQL connection.
#[pyclass(subclass, module = "ferropg._native")]
pub struct CoreProtocol {
    conn: Connection<Op>,
    loop_: Py<PyAny>,
    transport: Option<Py<PyAny>>,
    /// `transport.write` and `loop.create_future`, bound once: every query calls both.
    write: Option<Py<PyAny>>,
    create_future: Py<PyAny>,
    out: BytesMut,
    /// Resolved once, when startup ends either way; kept so late callers see the outcome.
    ready_waiter: Py<PyAny>,
    /// Startup and authentication finished successfully.
    started: bool,
    /// The statement cache and the statements waiting to be closed.
    statements: Statements,
    closed: bool,
    lost: bool,
    writing_paused: bool,
    drain_waiters: Vec<Py<PyAny>>,
    idle_waiters: Vec<Py<PyAny>>,
    notice_callback: Option<Py<PyAny>>,
    notification_callback: Option<Py<PyAny>>,
    queries_count: u64,
    /// Introspected types and the user's codecs.
    types: Registry,
    /// The blocking face's read buffer (allocated on its first `pump`).
    read_buf: Vec<u8>,
    /// The blocking face's socket, written without the transport (-1: never).
    direct_fd: i32,
    /// Bytes went to the transport because the socket took no more: until its buffer
    /// drains, every write follows them there, in order.
    spilled: bool,
    /// A transaction-mode pooler sits in between: every statement is bound as the
    /// unnamed one, parsed again in the same request (see `enter_pooler_mode`).
    pooler_mode: bool,
    /// Something in between the client and the server answered startup with its own
    /// backend key (a pooler): see `binds_unnamed`.
    pooler_suspected: bool,
}

fn status_char(s: TransactionStatus) -> &'static str {
    match s {
        TransactionStatus::Idle => "I",
        TransactionStatus::InTransaction => "T",
        TransactionStatus::Failed => "E",
    }
}

/// The shape of a plain execution's result.
fn shape_of(want_rows: bool) -> ResultShape {
    if want_rows {
        ResultShape::Rows
    } else {
        ResultShape::Status
    }
}

/// Refuses to run a statement that was closed (or scheduled for closing).
fn check_statement_open(py: Python<'_>, st: &Statement) -> PyResult<()> {
    if st.is_closed() {
        return Err(errors::client_error(
            py,
            ClientError::Interface,
            "cannot perform operation: the prepared statement is closed",
        ));
    }
    Ok(())
}

fn enc_err(py: Python<'_>, e: frontend::EncodeError) -> PyErr {
    errors::client_error(py, ClientError::Interface, e.0)
}

impl CoreProtocol {
    /// Starts a cached statement: what resolves with its result (a [`Waiter`] when
    /// `blocking`, else a loop future), or None (the caller prepares) on a miss.
    fn start_cached(
        &mut self,
        py: Python<'_>,
        found: Option<Py<Statement>>,
        args: &Bound<'_, PyTuple>,
        limit: i32,
        shape: ResultShape,
        blocking: bool,
    ) -> PyResult<Option<Py<PyAny>>> {
        let Some(stmt) = found else {
            return Ok(None);
        };
        let waiter = if blocking {
            Py::new(py, Waiter::new())?.into_any()
        } else {
            self.new_future(py)?
        };
        let args = args.as_any();
        self.start_execute(py, waiter.clone_ref(py), stmt, args, "", limit, shape)?;
        Ok(Some(waiter))
    }

    /// The fast path's request: `sql`'s cached statement run with `args` (see
    /// [`start_cached`](Self::start_cached)), or None, with nothing sent, when the
    /// connection is not open, something else is under way, or the statement is not
    /// cached.
    fn start_fast(
        &mut self,
        py: Python<'_>,
        sql: &str,
        args: &Bound<'_, PyTuple>,
        limit: i32,
        want_rows: bool,
        blocking: bool,
    ) -> PyResult<Option<Py<PyAny>>> {
        if self.ensure_open(py).is_err() || self.conn.pending_len() > 0 {
            return Ok(None);
        }
        let found = self.statements.get_own(py, sql);
        self.start_cached(py, found, args, limit, shape_of(want_rows), blocking)
    }

    fn new_future(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(self.create_future.bind(py).call0()?.unbind())
    }

    fn ensure_open(&self, py: Python<'_>) -> PyResult<()> {
        if self.closed || self.lost || self.conn.phase() != Phase::Ready {
            return Err(errors::client_error(
                py,
                ClientError::Interface,
                "connection is closed",
            ));
        }
        Ok(())
    }

    /// Writes Close for every statement waiting to be closed.
    fn queue_closes(&mut self, py: Python<'_>) -> PyResult<()> {
        // A deferred reset goes first, ahead of the Close messages too.
        self.conn.send_deferred(&mut self.out);
        if self.pooler_mode {
            // Named statements may live in any of the pooler's server sessions, or
            // none: closing them would reach a random one.
            self.statements.discard_pending_closes();
            return Ok(());
        }
        self.statements
            .write_closes(&mut self.out)
            .map_err(|e| enc_err(py, e))
    }

    /// Writes a simple Query and queues `kind` to collect its outcome.
    fn start_simple(
        &mut self,
        py: Python<'_>,
        waiter: &Py<PyAny>,
        sql: &str,
        kind: OpKind,
    ) -> PyResult<()> {
        self.ensure_open(py)?;
        self.queue_closes(py)?;
        let op = Op::new(waiter.clone_ref(py), Some(sql.to_owned()), kind);
        let copy_in = matches!(op.kind, OpKind::CopyIn { .. });
        let written = if copy_in {
            self.conn.copy_in(sql, op, &mut self.out)
        } else {
            self.conn.query(sql, op, &mut self.out)
        };
        written.map_err(|e| enc_err(py, e))?;
        self.queries_count += 1;
        Ok(())
    }

    /// Writes Bind + Execute + Sync for a prepared statement and queues the execution.
    /// Encoding errors come back before anything is written.
    #[allow(clippy::too_many_arguments)]
    fn start_execute(
        &mut self,
        py: Python<'_>,
        waiter: Py<PyAny>,
        stmt: Py<Statement>,
        args: &Bound<'_, PyAny>,
        portal: &str,
        limit: i32,
        shape: ResultShape,
    ) -> PyResult<()> {
        let st = stmt.get();
        check_statement_open(py, st)?;
        let cache = Cache::get(py)?;
        self.queue_closes(py)?;
        let unnamed = self.binds_unnamed();
        let mut req = self.conn.request(&mut self.out);
        bind::write_bind(py, cache, st, args, portal, None, unnamed, &mut req)?;
        if (unnamed || st.name.is_empty()) && shape != ResultShape::Status {
            // Parsed again: its result columns may not be the ones described before
            // (a table altered meanwhile). The portal's description shows it before
            // any row is decoded (see `ops::Sink::columns`).
            req.describe_portal(portal).map_err(|e| enc_err(py, e))?;
        }
        req.execute(portal, limit).map_err(|e| enc_err(py, e))?;
        req.rows_of(st.columns.len());
        let query = Some(st.query.clone());
        req.send(Op::new(waiter, query, OpKind::execute(py, stmt, shape)));
        self.queries_count += 1;
        Ok(())
    }

    /// Hands the bytes of one read to the core, collecting the futures to resolve.
    fn feed(&mut self, py: Python<'_>, data: &[u8], done: &mut Vec<Completion>) -> PyResult<()> {
        let cache = Cache::get(py)?;
        let mut named_statement_lost = false;
        let result = {
            let ready_waiter = (!self.started).then_some(&self.ready_waiter);
            let mut sink = ops::Sink {
                py,
                cache,
                types: &self.types,
                done: &mut *done,
                loop_: &self.loop_,
                notice_callback: self.notice_callback.as_ref(),
                notification_callback: self.notification_callback.as_ref(),
                ready_waiter,
                started: &mut self.started,
                closed: &mut self.closed,
                named_statement_lost: &mut named_statement_lost,
            };
            self.conn.handle_input(data, &mut self.out, &mut sink)
        };
        // Lost after a DEALLOCATE or DISCARD ALL of the user's, a statement says
        // nothing of a pooler: the caller drops the cache and prepares again.
        if named_statement_lost && pooler::loss_means_pooler(self.conn.statements_discarded()) {
            self.enter_pooler();
        }
        if let Some(op) = self.conn.head_mut() {
            ops::flush_copy_out(py, op);
        }
        if let Err(err) = result {
            self.fail_all(py, &err, done);
        }
        if self.conn.pending_len() == 0 {
            for w in self.idle_waiters.drain(..) {
                done.push(Completion::Ok(w, py.None()));
            }
        }
        Ok(())
    }

    /// Whether statements are bound as the unnamed one, parsed again in the request:
    /// by the core's rule (`pooler::binds_unnamed`).
    fn binds_unnamed(&self) -> bool {
        pooler::binds_unnamed(
            self.pooler_mode,
            self.pooler_suspected,
            self.conn.transaction_status(),
        )
    }

    /// From now on every statement is bound as the unnamed one, parsed again in the
    /// request that runs it: behind a transaction-mode pooler each request may reach
    /// another server session, where the statements this client named do not exist
    /// (or another client's do, under the same name). Statements described before
    /// stay usable: their parameter types are known, and a portal description checks
    /// their result columns.
    fn enter_pooler(&mut self) {
        self.pooler_mode = true;
        self.statements.discard_pending_closes();
    }

    /// The link cannot go on (garbage from the server, a failed startup): fail everything.
    fn fail_all(&mut self, py: Python<'_>, err: &ferropg_core::Error, done: &mut Vec<Completion>) {
        if !self.started {
            let w = self.ready_waiter.clone_ref(py);
            done.push(Completion::Err(w, errors::core_error(py, err, None)));
        }
        for mut op in self.conn.take_pending() {
            let failure = errors::core_error(py, err, op.query.as_deref());
            done.extend(ops::unstarted_copy(py, &mut op, Some(&failure)));
            if let Some(w) = op.waiter {
                done.push(Completion::Err(w, failure));
            }
        }
        self.conn.mark_closed();
        self.closed = true;
        if let Some(t) = &self.transport {
            let _ = t.bind(py).call_method0(intern!(py, "abort"));
        }
    }

    /// The bytes queued for the server, with the transport's `write` to send them;
    /// None when there are none, or when they went straight to the socket.
    fn take_output(&mut self, py: Python<'_>) -> Option<(Py<PyAny>, Py<PyBytes>)> {
        if self.out.is_empty() {
            return None;
        }
        if self.may_write_directly(py) {
            let sent = pump::send_now(self.direct_fd, &self.out);
            if sent == self.out.len() {
                self.out.clear();
                return None;
            }
            // The rest waits in the transport, which the event loop flushes.
            let _ = self.out.split_to(sent);
            self.spilled = true;
        }
        let write = self.write.as_ref()?.clone_ref(py);
        let data = PyBytes::new(py, &self.out).unbind();
        self.out.clear();
        Some((write, data))
    }

    /// Whether the blocking face may write to its socket itself: it asked to, the
    /// transport still owns an open socket (a closed one's descriptor may already name
    /// another file), and nothing the transport holds must go first.
    fn may_write_directly(&mut self, py: Python<'_>) -> bool {
        if self.direct_fd < 0 || self.lost || self.closed {
            return false;
        }
        let Some(transport) = &self.transport else {
            return false;
        };
        if self.spilled {
            let held = transport
                .bind(py)
                .call_method0(intern!(py, "get_write_buffer_size"))
                .and_then(|n| n.extract::<usize>());
            self.spilled = !matches!(held, Ok(0));
        }
        !self.spilled
    }
}

/// Writes, then resolves futures, with no borrow of the protocol held.
fn settle(
    py: Python<'_>,
    output: Option<(Py<PyAny>, Py<PyBytes>)>,
    done: Vec<Completion>,
) -> PyResult<()> {
    if let Some((write, data)) = output {
        write.bind(py).call1((data,))?;
    }
    for c in done {
        let (fut, result) = match c {
            Completion::Ok(f, v) => (f, Ok(v)),
            Completion::Err(f, e) => (f, Err(e)),
        };
        let fut = fut.bind(py);
        if let Ok(waiter) = fut.cast::<Waiter>() {
            waiter.get().settle(result);
            continue;
        }
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

/// Whether the future or waiter `fut` has its outcome.
fn is_done(fut: &Bound<'_, PyAny>) -> PyResult<bool> {
    if let Ok(waiter) = fut.cast::<Waiter>() {
        return Ok(waiter.get().is_done());
    }
    fut.call_method0(intern!(fut.py(), "done"))?.is_truthy()
}

/// Hands one read's bytes to the protocol, then writes and resolves what they brought.
fn receive(slf: &Bound<'_, CoreProtocol>, data: &[u8]) -> PyResult<()> {
    let py = slf.py();
    let mut done = Vec::new();
    let _pause = gc_pause::GcPause::for_chunk(py, data.len());
    let output = {
        let mut this = slf.borrow_mut();
        this.feed(py, data, &mut done)?;
        this.take_output(py)
    };
    settle(py, output, done)
}

/// Runs `f` on the borrowed protocol, then writes what it queued, outside the borrow.
fn with_output<R>(
    slf: &Bound<'_, CoreProtocol>,
    f: impl FnOnce(&mut CoreProtocol, Python<'_>) -> PyResult<R>,
) -> PyResult<R> {
    let py = slf.py();
    let (value, output) = {
        let mut this = slf.borrow_mut();
        let value = f(&mut this, py)?;
        (value, this.take_output(py))
    };
    settle(py, output, Vec::new())?;
    Ok(value)
}

#[pymethods]
impl CoreProtocol {
    /// `CoreProtocol(loop, user, database=None, password=None, options=(), record_class=None)`.
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (r#loop, user, database=None, password=None, options=None, record_class=None, statement_cache_size=100, max_cached_statement_lifetime=300.0, *_args, channel_binding="prefer", **_kwargs))]
    fn py_new(
        py: Python<'_>,
        r#loop: Py<PyAny>,
        user: String,
        database: Option<String>,
        password: Option<String>,
        options: Option<Vec<(String, String)>>,
        record_class: Option<Py<PyType>>,
        statement_cache_size: usize,
        max_cached_statement_lifetime: f64,
        _args: &Bound<'_, PyTuple>,
        channel_binding: &str,
        _kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let channel_binding = ChannelBindingMode::parse(channel_binding)
            .map_err(|e| errors::client_error(py, ClientError::Interface, e))?;
        let ready_waiter = r#loop
            .bind(py)
            .call_method0(intern!(py, "create_future"))?
            .unbind();
        let record_class = match record_class {
            Some(c) => c,
            None => crate::record::record_type(py)?.unbind(),
        };
        let params = StartupParams {
            user,
            database,
            password,
            options: options.unwrap_or_default(),
            channel_binding,
        };
        let create_future = r#loop
            .bind(py)
            .getattr(intern!(py, "create_future"))?
            .unbind();
        Ok(CoreProtocol {
            conn: Connection::new(params),
            loop_: r#loop,
            transport: None,
            write: None,
            create_future,
            out: BytesMut::with_capacity(8192),
            ready_waiter,
            started: false,
            statements: Statements::new(
                statement_cache_size,
                max_cached_statement_lifetime,
                record_class,
            ),
            closed: false,
            lost: false,
            writing_paused: false,
            drain_waiters: Vec::new(),
            idle_waiters: Vec::new(),
            notice_callback: None,
            notification_callback: None,
            queries_count: 0,
            types: Registry::default(),
            read_buf: Vec::new(),
            direct_fd: -1,
            spilled: false,
            pooler_mode: false,
            pooler_suspected: false,
        })
    }

    // ------------------------------------------------------------ asyncio protocol

    /// asyncio: the transport is connected; send the StartupMessage.
    fn connection_made(slf: &Bound<'_, Self>, transport: Py<PyAny>) -> PyResult<()> {
        with_output(slf, |this, py| {
            let tls = transport
                .bind(py)
                .call_method1(intern!(py, "get_extra_info"), ("ssl_object",))?;
            if !tls.is_none() {
                // SCRAM may bind to the server's certificate (channel_binding).
                let certificate = tls.call_method1(intern!(py, "getpeercert"), (true,))?;
                if let Ok(der) = certificate.cast::<PyBytes>() {
                    this.conn.set_server_certificate(der.as_bytes());
                }
            }
            this.write = Some(transport.bind(py).getattr(intern!(py, "write"))?.unbind());
            this.transport = Some(transport);
            let mut out = std::mem::take(&mut this.out);
            let r = this.conn.start(&mut out);
            this.out = out;
            r.map_err(|e| errors::core_error(py, &e, None))
        })
    }

    /// asyncio: bytes arrived.
    fn data_received(slf: &Bound<'_, Self>, data: &Bound<'_, PyBytes>) -> PyResult<()> {
        receive(slf, data.as_bytes())
    }

    /// The blocking face: from now on requests are written straight to the socket
    /// `fd` (a plain one, the transport's) when the transport holds nothing, skipping
    /// its Python `write`. Only for a loop that does not run between calls.
    fn write_directly(&mut self, fd: i32) {
        self.direct_fd = fd;
    }

    /// The blocking face's read loop: reads the socket `fd` (non-blocking, with no
    /// event loop running) and feeds the protocol until `fut` is done, waiting with the
    /// GIL released. Returns False when the event loop must finish instead: the stream
    /// ended or failed (the loop then sees the same), or bytes wait in the transport.
    /// A signal (Ctrl-C) runs Python's handlers, whose exception propagates.
    fn pump(slf: &Bound<'_, Self>, fd: i32, fut: &Bound<'_, PyAny>) -> PyResult<bool> {
        let py = slf.py();
        let mut buf = {
            let mut this = slf.borrow_mut();
            if this.spilled {
                return Ok(false);
            }
            std::mem::take(&mut this.read_buf)
        };
        buf.resize(pump::READ_SIZE, 0);
        // A read that filled the buffer left more behind: read again before waiting.
        // Otherwise the server has yet to answer (it rarely has by the time the request
        // is written), so wait first: a read tried then is one more system call.
        let mut more = false;
        let result = loop {
            if is_done(fut)? {
                break Ok(true);
            }
            let read = match more.then(|| pump::read_now(fd, &mut buf)) {
                None | Some(pump::Read::Later) => py.detach(|| pump::wait_and_read(fd, &mut buf)),
                Some(now) => now,
            };
            match read {
                pump::Read::Bytes(n) => {
                    more = n == buf.len();
                    if let Err(e) = receive(slf, &buf[..n]) {
                        break Err(e);
                    }
                    if slf.borrow().spilled {
                        break Ok(false);
                    }
                }
                pump::Read::Interrupted => {
                    if let Err(e) = py.check_signals() {
                        break Err(e);
                    }
                }
                pump::Read::Later => {}
                pump::Read::End | pump::Read::Failed => break Ok(false),
            }
        };
        slf.borrow_mut().read_buf = buf;
        result
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
                        ClientError::ConnectionDoesNotExist,
                        "connection was closed in the middle of operation",
                    ),
                };
                done.push(Completion::Err(w, err));
            }
            for mut op in this.conn.take_pending() {
                let lost = errors::client_error(
                    py,
                    ClientError::ConnectionDoesNotExist,
                    "connection was closed in the middle of operation",
                );
                done.extend(ops::unstarted_copy(py, &mut op, Some(&lost)));
                let Some(w) = op.waiter else { continue };
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
                let err = errors::client_error(py, ClientError::ConnectionDoesNotExist, msg);
                err.set_cause(py, cause);
                done.push(Completion::Err(w, err));
            }
            let this = &mut *this;
            for w in this
                .drain_waiters
                .drain(..)
                .chain(this.idle_waiters.drain(..))
            {
                done.push(Completion::Ok(w, py.None()));
            }
            this.transport = None;
            this.write = None;
        }
        settle(py, None, done)
    }

    /// asyncio flow control: the transport's buffer is full.
    fn pause_writing(&mut self) {
        self.writing_paused = true;
    }

    /// asyncio flow control: the transport's buffer drained.
    fn resume_writing(&mut self, py: Python<'_>) -> PyResult<()> {
        self.writing_paused = false;
        for w in self.drain_waiters.drain(..) {
            let w = w.bind(py);
            if !w.call_method0(intern!(py, "done"))?.is_truthy()? {
                w.call_method1(intern!(py, "set_result"), (py.None(),))?;
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------ waiting

    /// A future resolved when startup and authentication finish.
    fn wait_ready(&self, py: Python<'_>) -> Py<PyAny> {
        self.ready_waiter.clone_ref(py)
    }

    /// A future resolved when the transport accepts more data (at once if it does now).
    fn writing_allowed(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let fut = self.new_future(py)?;
        if self.writing_paused && !self.lost {
            self.drain_waiters.push(fut.clone_ref(py));
        } else {
            fut.bind(py)
                .call_method1(intern!(py, "set_result"), (py.None(),))?;
        }
        Ok(fut)
    }

    /// A future resolved once no operation awaits the server (at once if none does).
    fn wait_idle(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let fut = self.new_future(py)?;
        if self.conn.pending_len() == 0 || self.lost {
            fut.bind(py)
                .call_method1(intern!(py, "set_result"), (py.None(),))?;
        } else {
            self.idle_waiters.push(fut.clone_ref(py));
        }
        Ok(fut)
    }

    /// True while a request's caller still waits for its result.
    fn is_busy(&self, py: Python<'_>) -> PyResult<bool> {
        for op in self.conn.pending() {
            if let Some(w) = &op.waiter {
                if !is_done(w.bind(py))? {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// True while some operation, awaited or abandoned, has not seen its ReadyForQuery.
    fn has_pending(&self) -> bool {
        self.conn.pending_len() > 0
    }

    // ------------------------------------------------------------ requests

    /// Runs `sql` with the simple protocol; resolves to the last command's status.
    fn query_script(slf: &Bound<'_, Self>, sql: &str) -> PyResult<Py<PyAny>> {
        with_output(slf, |this, py| {
            let fut = this.new_future(py)?;
            let kind = OpKind::Script {
                status: String::new(),
            };
            this.start_simple(py, &fut, sql, kind)?;
            Ok(fut)
        })
    }

    /// Prepares `sql` as statement `name` (a generated name when None; "" is the unnamed
    /// statement); resolves to a StatementState.
    #[pyo3(signature = (sql, name=None, record_class=None, ignore_custom_codec=false))]
    fn prepare(
        slf: &Bound<'_, Self>,
        sql: &str,
        name: Option<String>,
        record_class: Option<Py<PyType>>,
        ignore_custom_codec: bool,
    ) -> PyResult<Py<PyAny>> {
        with_output(slf, |this, py| {
            this.ensure_open(py)?;
            let fut = this.new_future(py)?;
            let name = name.unwrap_or_else(statement_name);
            this.queue_closes(py)?;
            let record_class = record_class.unwrap_or_else(|| this.statements.record_class(py));
            let mut req = this.conn.request(&mut this.out);
            req.parse(&name, sql, std::iter::empty())
                .and_then(|()| req.describe_statement(&name))
                .map_err(|e| enc_err(py, e))?;
            req.send(Op::new(
                fut.clone_ref(py),
                Some(sql.to_owned()),
                OpKind::Prepare {
                    name,
                    query: sql.to_owned(),
                    described: Default::default(),
                    record_class,
                    ignore_custom_codec,
                },
            ));
            Ok(fut)
        })
    }

    /// The hot path of `Connection.fetch` and friends, for the connection's own record
    /// class: runs `sql` if its statement is cached and nothing else is under way.
    /// Returns None whenever the caller must take the checked path instead (connection
    /// closed, an operation still pending, a cache miss), which reports or handles it.
    fn fast_execute(
        slf: &Bound<'_, Self>,
        sql: &str,
        args: &Bound<'_, PyTuple>,
        limit: i32,
        want_rows: bool,
    ) -> PyResult<Option<Py<PyAny>>> {
        with_output(slf, |this, py| {
            this.start_fast(py, sql, args, limit, want_rows, false)
        })
    }

    /// `fast_execute` for the blocking face: the same request, with a [`Waiter`] for
    /// its outcome instead of a loop future (read it with `pump`, then `result()`).
    fn send_cached(
        slf: &Bound<'_, Self>,
        sql: &str,
        args: &Bound<'_, PyTuple>,
        limit: i32,
        want_rows: bool,
    ) -> PyResult<Option<Py<PyAny>>> {
        with_output(slf, |this, py| {
            this.start_fast(py, sql, args, limit, want_rows, true)
        })
    }

    /// The fast path: runs `sql` if its statement is cached, resolving to a list of
    /// Records (`want_rows`) or the command status. Returns None on a cache miss: the
    /// caller then prepares the statement and calls `execute_statement`.
    #[pyo3(signature = (sql, args, limit=0, want_rows=true, record_class=None, ignore_custom_codec=false))]
    #[allow(clippy::too_many_arguments)]
    fn execute(
        slf: &Bound<'_, Self>,
        sql: &str,
        args: &Bound<'_, PyTuple>,
        limit: i32,
        want_rows: bool,
        record_class: Option<&Bound<'_, PyType>>,
        ignore_custom_codec: bool,
    ) -> PyResult<Option<Py<PyAny>>> {
        with_output(slf, |this, py| {
            this.ensure_open(py)?;
            // Refused before a cache miss sends the query to be prepared.
            frontend::check_parameter_count(args.len())
                .map_err(|e| errors::client_error(py, ClientError::Interface, e.0))?;
            let found = this
                .statements
                .get(py, sql, record_class, ignore_custom_codec);
            this.start_cached(py, found, args, limit, shape_of(want_rows), false)
        })
    }

    /// Executes a prepared statement, binding `args` to `portal` ("" = unnamed). With
    /// `portal_result` it resolves to `(rows, suspended, status)`.
    #[pyo3(signature = (stmt, args, limit=0, want_rows=true, portal="", portal_result=false))]
    #[allow(clippy::too_many_arguments)]
    fn execute_statement(
        slf: &Bound<'_, Self>,
        stmt: Py<Statement>,
        args: &Bound<'_, PyAny>,
        limit: i32,
        want_rows: bool,
        portal: &str,
        portal_result: bool,
    ) -> PyResult<Py<PyAny>> {
        with_output(slf, |this, py| {
            this.ensure_open(py)?;
            let fut = this.new_future(py)?;
            let shape = if portal_result {
                ResultShape::Portal
            } else {
                shape_of(want_rows)
            };
            this.start_execute(py, fut.clone_ref(py), stmt, args, portal, limit, shape)?;
            Ok(fut)
        })
    }

    /// Binds `args` to the named `portal` (for a cursor); resolves to None.
    fn bind_portal(
        slf: &Bound<'_, Self>,
        stmt: Py<Statement>,
        args: &Bound<'_, PyAny>,
        portal: &str,
    ) -> PyResult<Py<PyAny>> {
        with_output(slf, |this, py| {
            this.ensure_open(py)?;
            let st = stmt.get();
            check_statement_open(py, st)?;
            let fut = this.new_future(py)?;
            let cache = Cache::get(py)?;
            this.queue_closes(py)?;
            let unnamed = this.binds_unnamed();
            let mut req = this.conn.request(&mut this.out);
            bind::write_bind(py, cache, st, args, portal, None, unnamed, &mut req)?;
            req.send(Op::new(
                fut.clone_ref(py),
                Some(st.query.clone()),
                OpKind::Plain,
            ));
            Ok(fut)
        })
    }

    /// Fetches up to `limit` rows (0 = all) from a bound portal; resolves to
    /// `(rows, suspended, status)`.
    fn execute_portal(
        slf: &Bound<'_, Self>,
        stmt: Py<Statement>,
        portal: &str,
        limit: i32,
    ) -> PyResult<Py<PyAny>> {
        with_output(slf, |this, py| {
            this.ensure_open(py)?;
            let fut = this.new_future(py)?;
            let mut req = this.conn.request(&mut this.out);
            req.fetch(portal, limit, stmt.get().columns.len())
                .map_err(|e| enc_err(py, e))?;
            let query = Some(stmt.get().query.clone());
            let kind = OpKind::execute(py, stmt, ResultShape::Portal);
            req.send(Op::new(fut.clone_ref(py), query, kind));
            this.queries_count += 1;
            Ok(fut)
        })
    }

    /// Closes a portal; resolves to None.
    fn close_portal(slf: &Bound<'_, Self>, portal: &str) -> PyResult<Py<PyAny>> {
        with_output(slf, |this, py| {
            this.ensure_open(py)?;
            let fut = this.new_future(py)?;
            let mut req = this.conn.request(&mut this.out);
            req.close_portal(portal).map_err(|e| enc_err(py, e))?;
            req.send(Op::new(fut.clone_ref(py), None, OpKind::Plain));
            Ok(fut)
        })
    }

    /// Starts an `executemany()`: the returned future resolves after
    /// [`executemany_end`](Self::executemany_end) once the server has run everything,
    /// to the rows of every execution (`want_rows`) or None.
    fn executemany_begin(
        slf: &Bound<'_, Self>,
        stmt: Py<Statement>,
        want_rows: bool,
    ) -> PyResult<Py<PyAny>> {
        with_output(slf, |this, py| {
            this.ensure_open(py)?;
            check_statement_open(py, stmt.get())?;
            let fut = this.new_future(py)?;
            this.queue_closes(py)?;
            this.queries_count += 1;
            let query = Some(stmt.get().query.clone());
            let mut req = this.conn.request(&mut this.out);
            req.rows_of(stmt.get().columns.len());
            let kind = if want_rows {
                OpKind::execute(py, stmt, ResultShape::Rows)
            } else {
                OpKind::Plain
            };
            req.send_open(Op::new(fut.clone_ref(py), query, kind));
            Ok(fut)
        })
    }

    /// Encodes argument sets from `iterator` into Bind + Execute messages until about
    /// `max_bytes` are buffered, and writes them. Returns True when more input remains
    /// and no server error has arrived yet. `seqno` counts elements across calls.
    fn executemany_feed(
        slf: &Bound<'_, Self>,
        stmt: Py<Statement>,
        iterator: &Bound<'_, PyAny>,
        max_bytes: usize,
        seqno: usize,
    ) -> PyResult<(bool, usize)> {
        with_output(slf, |this, py| {
            if this.lost {
                return Ok((false, seqno));
            }
            let failed =
                this.conn.head_failed() || this.conn.head().is_some_and(|op| op.error.is_some());
            if failed {
                return Ok((false, seqno));
            }
            let cache = Cache::get(py)?;
            let st = stmt.get();
            let mut n = seqno;
            let unnamed = this.binds_unnamed();
            let mut req = this.conn.resume_batch(&mut this.out);
            let result = (|| -> PyResult<bool> {
                while req.written() < max_bytes {
                    let Some(item) = iterator
                        .call_method0(intern!(py, "__next__"))
                        .map(Some)
                        .or_else(|e| {
                            if e.is_instance_of::<pyo3::exceptions::PyStopIteration>(py) {
                                Ok(None)
                            } else {
                                Err(e)
                            }
                        })?
                    else {
                        return Ok(false);
                    };
                    bind::write_bind(py, cache, st, &item, "", Some(n), unnamed, &mut req)?;
                    req.execute("", 0).map_err(|e| enc_err(py, e))?;
                    n += 1;
                }
                Ok(true)
            })();
            // On failure `req` is dropped unkept: the batch that failed to encode is not
            // sent, and what the server has already run is what earlier batches held.
            let more = result?;
            // Flush makes the server report an error now rather than at the Sync, so
            // that we stop reading the caller's input early.
            req.flush();
            req.keep();
            Ok((more, n))
        })
    }

    /// Ends an `executemany()`. After a client-side failure, the rows already sent are
    /// undone: outside a transaction block by a ROLLBACK before the Sync.
    fn executemany_end(slf: &Bound<'_, Self>, client_failed: bool) -> PyResult<()> {
        with_output(slf, |this, py| {
            if this.lost {
                return Ok(());
            }
            let idle = this.conn.transaction_status() == TransactionStatus::Idle;
            let mut req = this.conn.resume_batch(&mut this.out);
            if client_failed && idle {
                req.parse("", "ROLLBACK", std::iter::empty())
                    .map_err(|e| enc_err(py, e))?;
                req.bind::<PyErr>("", "", [], 0, |_, _| Ok(false), [])
                    .map_err(|_| {
                        errors::client_error(py, ClientError::Interface, "cannot encode ROLLBACK")
                    })?;
                req.execute("", 0).map_err(|e| enc_err(py, e))?;
            }
            req.sync();
            Ok(())
        })
    }

    // ------------------------------------------------------------ COPY

    /// Runs a `COPY ... TO STDOUT`, calling `sink(bytes)` for each chunk during
    /// `data_received` (it must not call back into the protocol); resolves to the status.
    fn copy_out(slf: &Bound<'_, Self>, sql: &str, sink: Py<PyAny>) -> PyResult<Py<PyAny>> {
        with_output(slf, |this, py| {
            let fut = this.new_future(py)?;
            let kind = OpKind::CopyOut {
                sink,
                pending: Vec::new(),
                status: String::new(),
            };
            this.start_simple(py, &fut, sql, kind)?;
            Ok(fut)
        })
    }

    /// Starts a `COPY ... FROM STDIN`; returns `(ready, done)`: send data with
    /// `copy_data` once `ready` resolves, then `copy_done` (or `copy_fail`).
    fn copy_in(slf: &Bound<'_, Self>, sql: &str) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
        with_output(slf, |this, py| {
            let ready = this.new_future(py)?;
            let fut = this.new_future(py)?;
            let kind = OpKind::CopyIn {
                ready: Some(ready.clone_ref(py)),
                status: String::new(),
            };
            this.start_simple(py, &fut, sql, kind)?;
            Ok((ready, fut))
        })
    }

    /// Sends one chunk of COPY data.
    fn copy_data(slf: &Bound<'_, Self>, data: &[u8]) -> PyResult<()> {
        with_output(slf, |this, py| {
            if !this.lost {
                this.conn
                    .copy_data(data, &mut this.out)
                    .map_err(|e| enc_err(py, e))?;
            }
            Ok(())
        })
    }

    /// Ends the COPY data.
    fn copy_done(slf: &Bound<'_, Self>) -> PyResult<()> {
        with_output(slf, |this, _py| {
            if !this.lost {
                this.conn.copy_done(&mut this.out);
            }
            Ok(())
        })
    }

    /// Aborts a COPY FROM STDIN: the server answers with an error carrying `message`.
    fn copy_fail(slf: &Bound<'_, Self>, message: &str) -> PyResult<()> {
        with_output(slf, |this, py| {
            if !this.lost {
                this.conn
                    .copy_fail(message, &mut this.out)
                    .map_err(|e| enc_err(py, e))?;
            }
            Ok(())
        })
    }

    /// Encodes records from `iterator` as binary COPY tuples for the columns of `stmt`
    /// (a `SELECT cols FROM table` statement), about `max_bytes` per CopyData message,
    /// with the file header first when `first` and the trailer once the iterator ends if
    /// `last`. Returns True while input remains.
    fn copy_records(
        slf: &Bound<'_, Self>,
        stmt: Py<Statement>,
        iterator: &Bound<'_, PyAny>,
        max_bytes: usize,
        first: bool,
        last: bool,
    ) -> PyResult<bool> {
        with_output(slf, |this, py| {
            if this.lost {
                return Ok(false);
            }
            let cache = Cache::get(py)?;
            let st = stmt.get();
            let encoders = copy::binary_encoders(py, st, &this.types)?;
            let start = this.out.len();
            let out = &mut this.out;
            match copy::write_records(py, cache, &encoders, iterator, max_bytes, first, last, out) {
                Ok(more) => Ok(more),
                Err(e) => {
                    this.out.truncate(start);
                    Err(e)
                }
            }
        })
    }

    /// Raises InternalClientError unless every column of `stmt` has a binary encoder
    /// (checked before a binary COPY starts, so nothing is sent in vain).
    fn check_copy_binary(&self, py: Python<'_>, stmt: Py<Statement>) -> PyResult<()> {
        copy::binary_encoders(py, stmt.get(), &self.types).map(|_| ())
    }

    // ------------------------------------------------------------ types and codecs

    /// The types of `stmt` that nothing is known of yet, given what the connection
    /// knows now (introspection may have run, or the type cache been dropped, since).
    fn missing_types(&self, py: Python<'_>, stmt: Py<Statement>) -> PyResult<Vec<u32>> {
        let st = stmt.get();
        let columns: Vec<u32> = st.columns.iter().map(|c| c.type_oid).collect();
        Ok(self
            .types
            .resolve(py, &st.param_types, &columns, st.ignore_custom_codec)?
            .missing)
    }

    /// `stmt` with its codecs picked again from what the connection knows now.
    fn rebuild_statement(&self, py: Python<'_>, stmt: Py<Statement>) -> PyResult<Py<Statement>> {
        Py::new(py, stmt.get().rebuild(py, &self.types)?)
    }

    /// Records introspected types: one row per type, as `type_registry::add_types`
    /// reads them.
    fn add_types(&mut self, rows: &Bound<'_, PyAny>) -> PyResult<()> {
        type_registry::add_types(&mut self.types, rows)
    }

    /// Forgets the introspected types (the schema changed); the user's codecs stay.
    fn clear_types(&mut self) {
        self.types.clear_types();
    }

    /// The wire format of the codec for `oid` (1 binary, 0 text), or None while the
    /// type is unknown (not built in and not introspected).
    #[pyo3(signature = (oid, ignore_custom_codec=false))]
    fn codec_format(
        &self,
        py: Python<'_>,
        oid: u32,
        ignore_custom_codec: bool,
    ) -> PyResult<Option<i16>> {
        type_registry::codec_format(py, &self.types, oid, ignore_custom_codec)
    }

    /// What introspection found of `oid`: `(schema, name, kind, element OID)`, kind
    /// being asyncpg's 'scalar', 'array', 'composite', 'range' or 'multirange'.
    fn type_info(&self, oid: u32) -> Option<(String, String, &'static str, Option<u32>)> {
        type_registry::type_info(&self.types, oid)
    }

    /// Puts a user codec on `oid`: `format` is "text", "binary" or "tuple".
    fn set_type_codec(
        &mut self,
        oid: u32,
        format: &str,
        encoder: Py<PyAny>,
        decoder: Py<PyAny>,
    ) -> PyResult<()> {
        type_registry::set_type_codec(&mut self.types, oid, format, encoder, decoder)
    }

    /// Makes `oid` use a built-in codec: that of the built-in type `target`, or
    /// "hstore" for contrib's hstore.
    #[pyo3(signature = (oid, target, text_only=false))]
    fn set_builtin_type_codec(
        &mut self,
        oid: u32,
        target: &Bound<'_, PyAny>,
        text_only: bool,
    ) -> PyResult<()> {
        type_registry::set_builtin_type_codec(&mut self.types, oid, target, text_only)
    }

    /// Removes the user's codec from `oid`.
    fn reset_type_codec(&mut self, oid: u32) {
        self.types.reset(oid);
    }

    // ------------------------------------------------------------ statement cache

    /// The cached statement for a query, if any (without touching its recency).
    #[pyo3(signature = (sql, record_class=None, ignore_custom_codec=false))]
    fn cache_get(
        &mut self,
        py: Python<'_>,
        sql: &str,
        record_class: Option<&Bound<'_, PyType>>,
        ignore_custom_codec: bool,
    ) -> Option<Py<Statement>> {
        self.statements
            .get(py, sql, record_class, ignore_custom_codec)
    }

    /// Caches a prepared statement under its query.
    #[pyo3(signature = (stmt, record_class=None, ignore_custom_codec=false))]
    fn cache_put(
        &mut self,
        py: Python<'_>,
        stmt: Py<Statement>,
        record_class: Option<&Bound<'_, PyType>>,
        ignore_custom_codec: bool,
    ) {
        self.statements
            .put(py, stmt, record_class, ignore_custom_codec);
    }

    /// How many statements the cache holds.
    fn cache_len(&self) -> usize {
        self.statements.len()
    }

    /// The cache's size limit.
    fn cache_max_size(&self) -> usize {
        self.statements.max_size()
    }

    /// Changes the cache's size limit, retiring what no longer fits.
    fn cache_set_max_size(&mut self, size: usize) {
        self.statements.set_max_size(size);
    }

    /// The cache's lifetime limit in seconds (0 = none).
    fn cache_max_lifetime(&self) -> f64 {
        self.statements.max_lifetime()
    }

    /// Changes the lifetime limit.
    fn cache_set_max_lifetime(&mut self, seconds: f64) {
        self.statements.set_max_lifetime(seconds);
    }

    /// The cached statements, least recently used first.
    fn cache_statements(&self, py: Python<'_>) -> Vec<Py<Statement>> {
        self.statements.values(py)
    }

    /// Empties the cache, retiring its statements.
    fn cache_clear(&mut self) {
        self.statements.clear();
    }

    /// The statements waiting to be closed on the server.
    fn pending_closes(&self, py: Python<'_>) -> Vec<Py<Statement>> {
        self.statements.pending_closes(py)
    }

    /// Forgets the statements waiting to be closed (the session is gone, or reset).
    fn discard_pending_closes(&mut self) {
        self.statements.discard_pending_closes();
    }

    /// A PreparedStatement let go of `stmt`: close it unless the cache keeps it.
    fn release_statement(&mut self, stmt: Py<Statement>) {
        self.statements.release(stmt);
    }

    /// Closes `stmt` on the server with the next request.
    fn close_statement(&mut self, py: Python<'_>, stmt: Py<Statement>) {
        self.statements.close(py, stmt);
    }

    // ------------------------------------------------------------ closing

    /// Sends Terminate; the server then closes the connection (watch `connection_lost`).
    fn terminate(slf: &Bound<'_, Self>) -> PyResult<()> {
        with_output(slf, |this, _py| {
            if !this.lost && !this.closed {
                let mut out = std::mem::take(&mut this.out);
                this.conn.terminate(&mut out);
                this.out = out;
            }
            this.closed = true;
            Ok(())
        })
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

    // ------------------------------------------------------------ state

    /// True once the connection was closed, terminated or lost.
    fn is_closed(&self) -> bool {
        self.closed || self.lost
    }

    /// True once the transport is gone.
    fn is_lost(&self) -> bool {
        self.lost
    }

    /// True once the server accepted the credentials, even if startup failed later:
    /// before that, `sslmode=allow`/`prefer` may try again the other way.
    fn auth_received(&self) -> bool {
        self.conn.authenticated()
    }

    /// The reset this session needs before a pool hands it out again, as
    /// `(at_release, unlock_advisory, deferred)` (see `ferropg_core::reset`): what it
    /// did since the last call decides, and the record starts anew. With `whole`, the
    /// most a reset runs (an idle session that may have done anything) as one script,
    /// `(script, False, "")`, the record left alone.
    #[pyo3(signature = (*, advisory_locks=true, close_cursors=true, unlisten=true, reset_settings=true, temp_tables=true, whole=false))]
    #[allow(clippy::too_many_arguments)]
    fn reset_plan(
        &mut self,
        advisory_locks: bool,
        close_cursors: bool,
        unlisten: bool,
        reset_settings: bool,
        temp_tables: bool,
        whole: bool,
    ) -> (String, bool, String) {
        let policy = ResetPolicy {
            advisory_locks,
            close_cursors,
            unlisten,
            reset_settings,
            temp_tables,
        };
        if whole {
            let plan = reset::plan(TransactionStatus::Idle, SessionFootprint::unknown(), policy);
            return (plan.script(), false, String::new());
        }
        let footprint = self.conn.take_footprint();
        let plan = reset::plan(self.conn.transaction_status(), footprint, policy);
        (plan.at_release, plan.unlock_advisory, plan.deferred)
    }

    /// A pool's reset in one request and one round trip: each of `statements`
    /// (utility statements such as `RESET ALL`) parsed as the unnamed statement and
    /// run, then `unlock` (the cached advisory-unlock statement), then one Sync. One
    /// implicit transaction and one answer for the server, where a script and a
    /// separate prepared statement cost two. Resolves to None.
    #[pyo3(signature = (statements, unlock=None))]
    fn reset_request(
        slf: &Bound<'_, Self>,
        statements: Vec<String>,
        unlock: Option<Py<Statement>>,
    ) -> PyResult<Py<PyAny>> {
        with_output(slf, |this, py| {
            this.ensure_open(py)?;
            let fut = this.new_future(py)?;
            let cache = Cache::get(py)?;
            this.queue_closes(py)?;
            let unnamed = this.binds_unnamed();
            let no_args = PyTuple::empty(py);
            let mut req = this.conn.request(&mut this.out);
            for sql in &statements {
                req.parse("", sql, std::iter::empty())
                    .map_err(|e| enc_err(py, e))?;
                req.bind::<()>("", "", [], 0, |_, _| Ok(false), [])
                    .map_err(|_| errors::client_error(py, ClientError::Interface, "bind failed"))?;
                req.execute("", 0).map_err(|e| enc_err(py, e))?;
            }
            if let Some(stmt) = &unlock {
                let st = stmt.get();
                check_statement_open(py, st)?;
                bind::write_bind(py, cache, st, no_args.as_any(), "", None, unnamed, &mut req)?;
                req.execute("", 0).map_err(|e| enc_err(py, e))?;
                // Its one row (a void) is read and dropped.
                req.rows_of(st.columns.len());
            }
            req.send(Op::new(fut.clone_ref(py), None, OpKind::Plain));
            this.queries_count += 1;
            Ok(fut)
        })
    }

    /// Forgets what the session did so far (its own reset just ran).
    fn clear_footprint(&mut self) {
        self.conn.take_footprint();
    }

    /// Holds the script `sql` back until the next request, which it then precedes in
    /// the same write (after any held before it); returns a future of its status.
    fn defer_script(&mut self, py: Python<'_>, sql: &str) -> PyResult<Py<PyAny>> {
        self.ensure_open(py)?;
        let fut = self.new_future(py)?;
        let op = Op::new(
            fut.clone_ref(py),
            Some(sql.to_owned()),
            OpKind::Script {
                status: String::new(),
            },
        );
        self.conn.defer_query(sql, op).map_err(|e| enc_err(py, e))?;
        Ok(fut)
    }

    /// Switches to pooler mode (see `enter_pooler`), as a pool does for every
    /// connection once one of them met a pooler.
    fn enter_pooler_mode(&mut self) {
        self.enter_pooler();
    }

    /// Notes that the backend key does not name the server process that runs the
    /// statements: a pooler may sit in between (see `binds_unnamed`).
    fn suspect_pooler(&mut self) {
        self.pooler_suspected = true;
    }

    /// True once the connection binds every statement as the unnamed one.
    #[getter]
    fn pooler_mode(&self) -> bool {
        self.pooler_mode
    }

    /// True when the startup's backend key did not name the server process (see
    /// `suspect_pooler`).
    #[getter]
    fn pooler_suspected(&self) -> bool {
        self.pooler_suspected
    }

    /// How many `DEALLOCATE` or `DISCARD ALL` commands the session ran.
    fn statements_discarded(&self) -> u64 {
        self.conn.statements_discarded()
    }

    /// True while a deferred script waits for the next request.
    fn has_deferred(&self) -> bool {
        self.conn.has_deferred()
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

    /// Whether the server reads backslashes in plain literals as characters
    /// (`standard_conforming_strings`, as it last reported it; on when it never did).
    fn standard_conforming_strings(&self) -> bool {
        self.conn
            .parameters()
            .find(|(k, _)| *k == "standard_conforming_strings")
            .is_none_or(|(_, v)| v == "on")
    }

    /// The default record class.
    fn get_record_class(&self, py: Python<'_>) -> Py<PyType> {
        self.statements.record_class(py)
    }

    /// How many queries this connection has sent.
    #[getter]
    fn queries_count(&self) -> u64 {
        self.queries_count
    }

    /// Sets the callables that receive notices (`PostgresLogMessage`) and
    /// notifications `(pid, channel, payload)`; they run via `loop.call_soon`.
    #[pyo3(signature = (notice=None, notification=None))]
    fn set_callbacks(&mut self, notice: Option<Py<PyAny>>, notification: Option<Py<PyAny>>) {
        self.notice_callback = notice;
        self.notification_callback = notification;
    }
}
