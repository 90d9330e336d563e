//! The connection state machine: startup and authentication, then a FIFO of
//! operations, each ended by one ReadyForQuery.
//!
//! The contract (see `docs/architecture.md`): the front end owns the socket and the
//! clock. It writes requests through [`Connection::query`], [`Connection::copy_in`]
//! and [`Connection::request`], which encode them into its output buffer and queue
//! them, sends that buffer, and hands every byte it reads to
//! [`Connection::handle_input`]. The core parses the server's messages (a message
//! split across reads is buffered here), applies the protocol's rules, writes any
//! reply into the output buffer, and reports what happened as [`Events`], each
//! operation event with the front end's own record of its operation.

mod events;
mod input;
mod request;
mod startup;

use std::collections::VecDeque;

use bytes::BytesMut;

use crate::error::{DbError, Error};
use crate::message::backend::Message;
use crate::message::frontend::{self, EncodeError};
use crate::message::TransactionStatus;
use crate::reset::SessionFootprint;

pub use events::{rows_affected, CopyIn, Events, Flow, Outcome};
pub use request::Request;
pub use startup::StartupParams;
use startup::{Startup, StartupStep};

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Startup and authentication are under way.
    Startup,
    /// The session is established.
    Ready,
    /// Terminate was sent, a fatal error arrived, or the server's bytes made no sense.
    Closed,
}

/// Where an operation's COPY FROM STDIN stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CopyInState {
    /// The operation is not a COPY FROM STDIN the front end will feed.
    Refused,
    /// The front end will feed the first one.
    Expected,
    /// The first one started; any further one in the same query string is refused.
    Taken,
}

/// One queued operation: the front end's record and what the core tracks of it.
struct Pending<T> {
    op: T,
    /// Ended by Sync (extended protocol) rather than a simple Query.
    extended: bool,
    copy_in: CopyInState,
    /// The width of the rows that follow: the last RowDescription's, or the one the
    /// request announced.
    width: Option<usize>,
    /// The widths the request announced for its later Executes, the next last:
    /// each takes over when the Execute before it ends.
    later_widths: Vec<usize>,
    /// The first server error.
    error: Option<DbError>,
    /// A Parse or Bind of it was accepted (ParseComplete, BindComplete).
    accepted: bool,
}

impl<T> Pending<T> {
    fn new(
        op: T,
        extended: bool,
        copy_in: bool,
        width: Option<usize>,
        mut later_widths: Vec<usize>,
    ) -> Self {
        later_widths.reverse();
        Pending {
            op,
            extended,
            copy_in: if copy_in {
                CopyInState::Expected
            } else {
                CopyInState::Refused
            },
            width,
            later_widths,
            error: None,
            accepted: false,
        }
    }
}

/// An Execute ended: the next one's rows have the width announced for it, if one
/// was (fields, not a method: the operation record is borrowed meanwhile).
fn next_execute(width: &mut Option<usize>, later_widths: &mut Vec<usize>) {
    if let Some(next) = later_widths.pop() {
        *width = Some(next);
    }
}

/// What a COPY FROM STDIN that the front end did not ask for is failed with.
const REFUSED_COPY_IN: &str =
    "COPY FROM STDIN cannot run through a query call; use the driver's COPY API";

/// What a COPY FROM STDIN whose caller left is failed with.
const ABANDONED_COPY_IN: &str = "COPY abandoned by the client";

/// The sans-IO connection: generic over the front end's operation record `T`.
pub struct Connection<T> {
    phase: Phase,
    startup: Option<Startup>,
    pending: VecDeque<Pending<T>>,
    tx_status: TransactionStatus,
    parameters: Vec<(String, String)>,
    process_id: i32,
    secret_key: Vec<u8>,
    /// The start of a message an earlier read left unfinished.
    partial: Vec<u8>,
    /// What the session did since the front end last took it.
    footprint: SessionFootprint,
    /// How many `DEALLOCATE` or `DISCARD ALL` commands ran: the server dropped
    /// prepared statements the client may still believe in.
    statements_discarded: u64,
    /// Simple Queries held back to go ahead of the next request, in order: their
    /// encoded bytes and their operations.
    deferred: Vec<(Vec<u8>, T)>,
}

impl<T> Connection<T> {
    /// A connection that will authenticate with `params`.
    pub fn new(params: StartupParams) -> Self {
        Connection {
            phase: Phase::Startup,
            startup: Some(Startup::new(params)),
            pending: VecDeque::new(),
            tx_status: TransactionStatus::Idle,
            parameters: Vec::new(),
            process_id: 0,
            secret_key: Vec::new(),
            partial: Vec::new(),
            footprint: SessionFootprint::default(),
            statements_discarded: 0,
            deferred: Vec::new(),
        }
    }

    /// Writes the StartupMessage; call once the transport is connected.
    pub fn start(&mut self, out: &mut BytesMut) -> Result<(), Error> {
        match &self.startup {
            Some(s) => s.write_startup(out),
            None => Err(Error::Unexpected("startup already done".into())),
        }
    }

    /// The connection runs over TLS with this server certificate (DER): SCRAM may
    /// bind to it (`channel_binding`). Call before the server asks for a password.
    pub fn set_server_certificate(&mut self, certificate: &[u8]) {
        if let Some(s) = &mut self.startup {
            s.set_server_certificate(certificate);
        }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether the server accepted the credentials (AuthenticationOk arrived), even if
    /// startup failed after that. Before it, a client may retry another way (without
    /// TLS, say); after it, the server has let it in and the failure is the session's.
    pub fn authenticated(&self) -> bool {
        self.startup.as_ref().is_none_or(|s| s.authenticated())
    }

    /// The transaction status of the last ReadyForQuery.
    pub fn transaction_status(&self) -> TransactionStatus {
        self.tx_status
    }

    /// The backend's process ID (for CancelRequest).
    pub fn process_id(&self) -> i32 {
        self.process_id
    }

    /// The cancellation secret key.
    pub fn secret_key(&self) -> &[u8] {
        &self.secret_key
    }

    /// The CancelRequest that cancels this session's running statement, to be sent
    /// alone on a new connection to the same server.
    pub fn cancel_request(&self, out: &mut BytesMut) {
        frontend::cancel_request_with_key(self.process_id, &self.secret_key, out);
    }

    /// A run-time parameter reported by the server (`server_version`, `TimeZone`, ...).
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every parameter reported so far.
    pub fn parameters(&self) -> impl Iterator<Item = (&str, &str)> {
        self.parameters
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// What the session did since the footprint was last taken.
    pub fn footprint(&self) -> SessionFootprint {
        self.footprint
    }

    /// How many `DEALLOCATE` (of one statement or all) and `DISCARD ALL` commands
    /// ran in the session: a statement reported missing (26000) after one of them
    /// was dropped by the user, not by a pooler.
    pub fn statements_discarded(&self) -> u64 {
        self.statements_discarded
    }

    /// Returns the footprint and starts a new one (a pool does at each reset).
    pub fn take_footprint(&mut self) -> SessionFootprint {
        std::mem::take(&mut self.footprint)
    }

    // ------------------------------------------------------------ requests

    /// Holds back the simple Query `sql`, as operation `op`, until the next request:
    /// it is then written ahead of that request, in the same buffer, so the two cost
    /// the server one read (a pool's deferred reset, see [`crate::reset`]). Queries
    /// held back go in the order they came.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use ferropg_core::conn::{Connection, StartupParams};
    ///
    /// let mut conn: Connection<u32> = Connection::new(StartupParams::default());
    /// let mut out = BytesMut::new();
    /// conn.defer_query("RESET ALL", 1).unwrap();
    /// assert!(out.is_empty() && conn.pending_len() == 0 && conn.has_deferred());
    /// conn.query("select 1", 2, &mut out).unwrap();
    /// assert_eq!(conn.pending().copied().collect::<Vec<_>>(), [1, 2]);
    /// assert!(out.starts_with(b"Q\0\0\0\x0eRESET ALL\0Q"));
    /// ```
    pub fn defer_query(&mut self, sql: &str, op: T) -> Result<(), EncodeError> {
        let mut bytes = BytesMut::new();
        frontend::query(sql, &mut bytes)?;
        self.deferred.push((bytes.to_vec(), op));
        Ok(())
    }

    /// True while a deferred query waits for the next request.
    pub fn has_deferred(&self) -> bool {
        !self.deferred.is_empty()
    }

    /// Takes back the deferred queries' operations, unsent (the connection is closing).
    pub fn take_deferred(&mut self) -> Vec<T> {
        self.deferred.drain(..).map(|(_, op)| op).collect()
    }

    /// Writes and queues the deferred queries, if any, ahead of a request: the
    /// requests do it themselves; a front end that writes messages of its own first
    /// (Close) calls it before them.
    pub fn send_deferred(&mut self, out: &mut BytesMut) {
        for (bytes, op) in self.deferred.drain(..) {
            out.extend_from_slice(&bytes);
            self.pending
                .push_back(Pending::new(op, false, false, None, Vec::new()));
        }
    }

    /// A simple Query (one or more statements), queued as operation `op`. Its rows,
    /// command tags and any COPY TO STDOUT data come as events; a COPY FROM STDIN in
    /// it is refused (use [`copy_in`](Connection::copy_in)).
    pub fn query(&mut self, sql: &str, op: T, out: &mut BytesMut) -> Result<(), EncodeError> {
        self.send_deferred(out);
        whole(out, |out| frontend::query(sql, out))?;
        self.pending
            .push_back(Pending::new(op, false, false, None, Vec::new()));
        Ok(())
    }

    /// A simple Query running a `COPY ... FROM STDIN` that the front end feeds with
    /// [`copy_data`](Connection::copy_data) once the
    /// [`copy_in_ready`](Events::copy_in_ready) event came, and ends with
    /// [`copy_done`](Connection::copy_done) or [`copy_fail`](Connection::copy_fail).
    pub fn copy_in(&mut self, sql: &str, op: T, out: &mut BytesMut) -> Result<(), EncodeError> {
        self.send_deferred(out);
        whole(out, |out| frontend::query(sql, out))?;
        self.pending
            .push_back(Pending::new(op, false, true, None, Vec::new()));
        Ok(())
    }

    /// An extended-protocol request, queued when [`Request::send`] ends it.
    pub fn request<'a>(&'a mut self, out: &'a mut BytesMut) -> Request<'a, T> {
        self.send_deferred(out);
        Request::new(self, out, false)
    }

    /// More messages of the batch last opened with [`Request::send_open`].
    pub fn resume_batch<'a>(&'a mut self, out: &'a mut BytesMut) -> Request<'a, T> {
        Request::new(self, out, true)
    }

    /// A chunk of COPY FROM STDIN data, split into messages the server accepts.
    pub fn copy_data(&self, data: &[u8], out: &mut BytesMut) -> Result<(), EncodeError> {
        let mark = out.len();
        for chunk in data.chunks(frontend::COPY_DATA_MAX) {
            if let Err(e) = frontend::copy_data(chunk, out) {
                out.truncate(mark);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Ends COPY FROM STDIN data: the server commits the COPY.
    pub fn copy_done(&self, out: &mut BytesMut) {
        frontend::copy_done(out);
    }

    /// Makes a COPY FROM STDIN fail with `message`: the server rolls it back.
    pub fn copy_fail(&self, message: &str, out: &mut BytesMut) -> Result<(), EncodeError> {
        whole(out, |out| frontend::copy_fail_message(message, out))
    }

    // ------------------------------------------------------------ the FIFO

    /// The operation the next events belong to, for reading.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use ferropg_core::conn::{Connection, StartupParams};
    ///
    /// let mut conn: Connection<u32> = Connection::new(StartupParams::default());
    /// let mut out = BytesMut::new();
    /// assert_eq!(conn.head(), None);
    /// conn.query("select 1", 1, &mut out).unwrap();
    /// conn.query("select 2", 2, &mut out).unwrap();
    /// assert_eq!(conn.head(), Some(&1));
    /// *conn.head_mut().unwrap() = 10;
    /// assert_eq!(conn.head(), Some(&10));
    /// assert_eq!(conn.pending_len(), 2);
    /// ```
    pub fn head(&self) -> Option<&T> {
        self.pending.front().map(|p| &p.op)
    }

    /// The operation the next events belong to.
    pub fn head_mut(&mut self) -> Option<&mut T> {
        self.pending.front_mut().map(|p| &mut p.op)
    }

    /// True when the operation at the head of the queue has had a server error (its
    /// remaining messages are being skipped by the server).
    pub fn head_failed(&self) -> bool {
        self.pending.front().is_some_and(|p| p.error.is_some())
    }

    /// How many operations await their ReadyForQuery.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The pending operations, head first.
    pub fn pending(&self) -> impl Iterator<Item = &T> {
        self.pending.iter().map(|p| &p.op)
    }

    /// Takes every pending operation, for the front end to fail when the link is gone:
    /// the queued ones in order, then deferred ones never sent.
    pub fn take_pending(&mut self) -> Vec<T> {
        let mut ops: Vec<T> = self.pending.drain(..).map(|p| p.op).collect();
        ops.extend(self.take_deferred());
        ops
    }

    /// The same connection with every pending operation's record turned into
    /// another type: a face that starts the session with one kind of record (a
    /// plain id, while it drives the socket itself) hands it over to a part that
    /// keeps another (a reply slot), with everything the session learned kept.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use ferropg_core::conn::{Connection, StartupParams};
    ///
    /// let mut conn: Connection<u32> = Connection::new(StartupParams::default());
    /// let mut out = BytesMut::new();
    /// conn.query("select 1", 7, &mut out).unwrap();
    /// let conn: Connection<String> = conn.map_ops(|id| format!("op {id}"));
    /// assert_eq!(conn.head().map(String::as_str), Some("op 7"));
    /// ```
    pub fn map_ops<U>(self, mut f: impl FnMut(T) -> U) -> Connection<U> {
        Connection {
            phase: self.phase,
            startup: self.startup,
            pending: self
                .pending
                .into_iter()
                .map(|p| Pending {
                    op: f(p.op),
                    extended: p.extended,
                    copy_in: p.copy_in,
                    width: p.width,
                    later_widths: p.later_widths,
                    error: p.error,
                    accepted: p.accepted,
                })
                .collect(),
            tx_status: self.tx_status,
            parameters: self.parameters,
            process_id: self.process_id,
            secret_key: self.secret_key,
            partial: self.partial,
            footprint: self.footprint,
            statements_discarded: self.statements_discarded,
            deferred: self
                .deferred
                .into_iter()
                .map(|(bytes, op)| (bytes, f(op)))
                .collect(),
        }
    }

    /// Writes Terminate and closes the state machine.
    pub fn terminate(&mut self, out: &mut BytesMut) {
        if self.phase != Phase::Closed {
            frontend::terminate(out);
            self.phase = Phase::Closed;
        }
    }

    /// Marks the connection closed without writing anything (the link is gone).
    pub fn mark_closed(&mut self) {
        self.phase = Phase::Closed;
    }

    // ------------------------------------------------------------ input

    /// Takes bytes read from the server: parses every whole message, applies it and
    /// reports it to `events`, writing any reply (an authentication step, a CopyFail)
    /// into `out`. The start of a message cut off at the end of `input` is kept for
    /// the next call.
    ///
    /// Returns how many bytes of `input` were taken: all of them, unless an event
    /// asked to [`Pause`](Flow::Pause), in which case the caller feeds the rest
    /// later. An error means the connection cannot go on (bytes that are not the
    /// protocol, a message out of place, a failed startup); it is then closed.
    pub fn handle_input<E: Events<T>>(
        &mut self,
        input: &[u8],
        out: &mut BytesMut,
        events: &mut E,
    ) -> Result<usize, Error> {
        let result = self.take_input(input, out, events);
        if result.is_err() {
            self.phase = Phase::Closed;
            self.partial.clear();
        }
        result
    }

    /// True while the start of a message the server has not finished sending is
    /// buffered (a connection that ends now ends in the middle of a message).
    pub fn has_partial_input(&self) -> bool {
        !self.partial.is_empty()
    }

    /// Applies one message from the server.
    fn dispatch<E: Events<T>>(
        &mut self,
        msg: Message<'_>,
        out: &mut BytesMut,
        events: &mut E,
    ) -> Result<Flow, Error> {
        match msg {
            Message::ParameterStatus { name, value } => {
                self.set_parameter(name, value);
                if self.phase != Phase::Startup {
                    events.parameter_changed(name, value);
                }
                Ok(Flow::Continue)
            }
            Message::NoticeResponse(fields) => {
                events.notice(DbError::from_fields(&fields));
                Ok(Flow::Continue)
            }
            Message::NotificationResponse {
                process_id,
                channel,
                payload,
            } => {
                events.notification(process_id, channel, payload);
                Ok(Flow::Continue)
            }
            _ => match self.phase {
                Phase::Startup => self.startup_message(msg, out, events),
                Phase::Ready | Phase::Closed => self.operation_message(msg, out, events),
            },
        }
    }

    fn startup_message<E: Events<T>>(
        &mut self,
        msg: Message<'_>,
        out: &mut BytesMut,
        events: &mut E,
    ) -> Result<Flow, Error> {
        match msg {
            Message::BackendKeyData {
                process_id,
                secret_key,
            } => {
                self.process_id = process_id;
                self.secret_key = secret_key.to_vec();
            }
            Message::ReadyForQuery(status) => {
                if self.startup.as_ref().is_some_and(|s| !s.authenticated()) {
                    return Err(Error::Unexpected(
                        "ReadyForQuery before authentication completed".into(),
                    ));
                }
                self.tx_status = status;
                self.phase = Phase::Ready;
                self.startup = None;
                events.ready();
            }
            Message::ErrorResponse(fields) => {
                return Err(Error::Db(DbError::from_fields(&fields)));
            }
            other => {
                let startup = self
                    .startup
                    .as_mut()
                    .ok_or_else(|| Error::Unexpected("startup state lost".into()))?;
                match startup.handle(other, out)? {
                    StartupStep::Continue => {}
                }
            }
        }
        Ok(Flow::Continue)
    }

    fn operation_message<E: Events<T>>(
        &mut self,
        msg: Message<'_>,
        out: &mut BytesMut,
        events: &mut E,
    ) -> Result<Flow, Error> {
        if let Message::ReadyForQuery(status) = msg {
            self.tx_status = status;
            self.footprint.ran = true;
            let Some(done) = self.pending.pop_front() else {
                return Err(Error::Unexpected(
                    "ReadyForQuery with no operation pending".into(),
                ));
            };
            let outcome = match done.error {
                Some(e) => Err(e),
                None => Ok(()),
            };
            return Ok(events.done(done.op, outcome));
        }
        let Some(head) = self.pending.front_mut() else {
            if let Message::ErrorResponse(fields) = msg {
                let err = DbError::from_fields(&fields);
                if err.is_fatal() {
                    self.phase = Phase::Closed;
                }
                events.server_error(err);
                return Ok(Flow::Continue);
            }
            return Err(Error::Unexpected(format!(
                "{} with no operation pending",
                message_name(&msg)
            )));
        };
        let op = &mut head.op;
        match msg {
            Message::DataRow(row) => {
                let Some(width) = head.width else {
                    return Err(Error::Unexpected("DataRow without a RowDescription".into()));
                };
                row.check_width(width).map_err(Error::Unexpected)?;
                return Ok(events.row(op, row));
            }
            Message::CopyData(data) => return Ok(events.copy_data(op, data)),
            Message::CommandComplete { tag } => {
                next_execute(&mut head.width, &mut head.later_widths);
                self.footprint.note_tag(tag);
                if matches!(tag, "DEALLOCATE" | "DEALLOCATE ALL" | "DISCARD ALL") {
                    self.statements_discarded += 1;
                }
                events.command_complete(op, tag, rows_affected(tag));
            }
            Message::RowDescription(desc) => {
                head.width = Some(desc.len());
                events.columns(op, Some(&desc));
            }
            Message::NoData => {
                head.width = Some(0);
                events.columns(op, None);
            }
            Message::ParameterDescription(params) => {
                let checked = frontend::check_parameter_count(params.len()).map(|()| params);
                events.parameters(op, checked);
            }
            Message::PortalSuspended => {
                next_execute(&mut head.width, &mut head.later_widths);
                events.portal_suspended(op);
            }
            Message::ErrorResponse(fields) => {
                let err = DbError::from_fields(&fields);
                if err.is_fatal() {
                    self.phase = Phase::Closed;
                }
                if head.error.is_none() {
                    events.error(op, &err);
                    if head.extended && !head.accepted {
                        events.rejected(op, &err);
                    }
                    head.error = Some(err);
                }
            }
            Message::CopyInResponse(_) => {
                if head.copy_in == CopyInState::Expected {
                    head.copy_in = CopyInState::Taken;
                    if events.copy_in_ready(op) == CopyIn::Abandon {
                        frontend::copy_fail_message(ABANDONED_COPY_IN, out)?;
                    }
                } else {
                    // A Sync sent during COPY IN is ignored: an extended request needs
                    // one more to reach its ReadyForQuery.
                    frontend::refuse_copy_in(REFUSED_COPY_IN, head.extended, out)?;
                }
            }
            Message::CopyOutResponse(_) => events.copy_out_started(op),
            Message::ParseComplete | Message::BindComplete => head.accepted = true,
            Message::EmptyQueryResponse => next_execute(&mut head.width, &mut head.later_widths),
            Message::CloseComplete | Message::CopyDone => {}
            other => {
                return Err(Error::Unexpected(format!(
                    "unexpected {} message",
                    message_name(&other)
                )))
            }
        }
        Ok(Flow::Continue)
    }

    fn set_parameter(&mut self, name: &str, value: &str) {
        match self.parameters.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => value.clone_into(&mut slot.1),
            None => self.parameters.push((name.to_owned(), value.to_owned())),
        }
    }
}

/// Runs an encoder, taking back what it wrote if it fails: no partial message is
/// ever left in the output (a string with a NUL fails half-way).
pub(crate) fn whole(
    out: &mut BytesMut,
    encode: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let mark = out.len();
    let result = encode(out);
    if result.is_err() {
        out.truncate(mark);
    }
    result
}

/// A short name of a message, for protocol-error texts.
fn message_name(msg: &Message<'_>) -> &'static str {
    match msg {
        Message::Authentication(_) => "Authentication",
        Message::BackendKeyData { .. } => "BackendKeyData",
        Message::BindComplete => "BindComplete",
        Message::CloseComplete => "CloseComplete",
        Message::CommandComplete { .. } => "CommandComplete",
        Message::CopyData(_) => "CopyData",
        Message::CopyDone => "CopyDone",
        Message::CopyInResponse(_) => "CopyInResponse",
        Message::CopyOutResponse(_) => "CopyOutResponse",
        Message::CopyBothResponse(_) => "CopyBothResponse",
        Message::DataRow(_) => "DataRow",
        Message::EmptyQueryResponse => "EmptyQueryResponse",
        Message::ErrorResponse(_) => "ErrorResponse",
        Message::FunctionCallResponse(_) => "FunctionCallResponse",
        Message::NegotiateProtocolVersion { .. } => "NegotiateProtocolVersion",
        Message::NoData => "NoData",
        Message::NoticeResponse(_) => "NoticeResponse",
        Message::NotificationResponse { .. } => "NotificationResponse",
        Message::ParameterDescription(_) => "ParameterDescription",
        Message::ParameterStatus { .. } => "ParameterStatus",
        Message::ParseComplete => "ParseComplete",
        Message::PortalSuspended => "PortalSuspended",
        Message::ReadyForQuery(_) => "ReadyForQuery",
        Message::RowDescription(_) => "RowDescription",
    }
}
