//! [`ClientDriver`]: the future that owns a [`Client`](super::Client)'s socket. It
//! writes what callers queued, hands what the server sends to the core, and
//! completes each request's reply slot at its ReadyForQuery.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use ferropg_core::conn::{CopyIn, Events, Flow, Outcome as CoreOutcome};
use ferropg_core::message::frontend::EncodeError;
use ferropg_core::message::{DataRow, ParameterDescription, RowDescription};
use ferropg_core::DbError;

use super::feed::{Feed, Stage};
use super::shared::{Outcome, ReplyTo, Shared, Waiting};
use super::transport::Transport;
use crate::connection::NoticeHandler;
use crate::exchange::{share, READ_CHUNK};
use crate::notification::Notification;
use crate::row::Row;
use crate::statement::Column;
use crate::Error;

/// The connection behind a [`Client`](super::Client): a future that does its I/O.
/// Spawn it (`tokio::spawn(driver)`), or let
/// [`Client::connect`](super::Client::connect) do so; the client's calls wait
/// until it runs.
///
/// It resolves once the [`Client`](super::Client) is dropped (after sending
/// Terminate), or with the error that ended the connection (the server went away,
/// a FATAL error, bytes that are not the protocol); every request in flight then
/// fails with an error of kind [`Closed`](crate::ErrorKind::Closed). Dropping it
/// closes the connection the same way.
#[must_use = "the client does nothing until its driver runs"]
pub struct ClientDriver {
    shared: Arc<Shared>,
    transport: Transport,
    read_buf: BytesMut,
    /// Bytes read and not yet handed to the core.
    unread: Bytes,
    /// Replies to hand out once the lock is released.
    finished: Vec<(ReplyTo, Outcome)>,
    /// Stream consumers to wake once the lock is released.
    wake: Vec<Waker>,
    /// Rows and COPY data on their way into their streams' queues.
    rows: Stage<Row>,
    chunks: Stage<Bytes>,
    /// The stream whose full queue stops the reading, until its consumer takes
    /// from it.
    blocked: Option<Blocked>,
    done: bool,
}

/// A stream the driver waits for.
enum Blocked {
    Rows(Arc<Feed<Row>>),
    Chunks(Arc<Feed<Bytes>>),
}

impl Blocked {
    /// True while it is still full (the driver is then woken when it is not).
    fn full(&self, waker: &Waker) -> bool {
        match self {
            Blocked::Rows(feed) => feed.full(waker),
            Blocked::Chunks(feed) => feed.full(waker),
        }
    }
}

impl ClientDriver {
    pub(super) fn new(
        shared: Arc<Shared>,
        transport: Transport,
        read_buf: BytesMut,
        unread: Bytes,
    ) -> ClientDriver {
        ClientDriver {
            shared,
            transport,
            read_buf,
            unread,
            finished: Vec::new(),
            wake: Vec::new(),
            rows: Stage::default(),
            chunks: Stage::default(),
            blocked: None,
            done: false,
        }
    }

    /// Writes and reads until neither can go on.
    fn drive(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            let (wrote, over) = self.transport.write(cx, &self.shared)?;
            if over {
                // Terminate (if the client sent it) is out: the session is over.
                std::task::ready!(self.transport.poll_shutdown(cx));
                return Poll::Ready(Ok(()));
            }
            let read = !self.still_blocked(cx) && self.read(cx)?;
            if read {
                self.process()?;
            }
            if !wrote && !read {
                return Poll::Pending;
            }
        }
    }

    /// True while a stream's full queue holds the reading back (its consumer
    /// wakes the driver when it takes from it).
    fn still_blocked(&mut self, cx: &mut Context<'_>) -> bool {
        match &self.blocked {
            Some(blocked) if blocked.full(cx.waker()) => true,
            _ => {
                self.blocked = None;
                false
            }
        }
    }

    /// Reads what has arrived, unless bytes still wait; true if there are bytes to
    /// process.
    fn read(&mut self, cx: &mut Context<'_>) -> Result<bool, Error> {
        if !self.unread.is_empty() {
            return Ok(true);
        }
        if self.read_buf.capacity() - self.read_buf.len() < READ_CHUNK / 4 {
            self.read_buf.reserve(READ_CHUNK);
        }
        match self.transport.poll_read(cx, &mut self.read_buf) {
            Poll::Ready(Ok(0)) => Err(self.hang_up()),
            Poll::Ready(Ok(_)) => {
                self.unread = self.read_buf.split().freeze();
                Ok(true)
            }
            Poll::Ready(Err(e)) => Err(Error::io("reading from the server", e)),
            Poll::Pending => Ok(false),
        }
    }

    fn hang_up(&self) -> Error {
        let partial = self.shared.lock().core.has_partial_input();
        Error::closed(if partial {
            "the server closed the connection in the middle of a message"
        } else {
            "the server closed the connection unexpectedly"
        })
    }

    /// Hands the bytes read to the core, then completes the requests that ended.
    fn process(&mut self) -> Result<(), Error> {
        let chunk = std::mem::take(&mut self.unread);
        let (result, failure, notified) = {
            let mut guard = self.shared.lock();
            let state = &mut *guard;
            let before = state.notifications.len();
            let mut sink = Dispatch {
                chunk: &chunk,
                finished: &mut self.finished,
                wake: &mut self.wake,
                rows: &mut self.rows,
                chunks: &mut self.chunks,
                blocked: None,
                ended_copies: Vec::new(),
                notifications: &mut state.notifications,
                notice_handler: &mut state.notice_handler,
                failure: None,
            };
            let result = state
                .core
                .handle_input(&chunk, &mut state.write_buf, &mut sink);
            // What a stream got from this chunk goes into its queue now.
            sink.rows.flush(sink.wake);
            sink.chunks.flush(sink.wake);
            self.blocked = sink.blocked.take();
            let failure = sink.failure.take();
            for id in std::mem::take(&mut sink.ended_copies) {
                self.shared.end_copy_hold(state, id);
            }
            if !self.finished.is_empty() {
                state.answered_together = self.finished.len();
            }
            (result, failure, state.notifications.len() > before)
        };
        // Outside the lock: a woken caller may take it at once.
        for (reply, outcome) in self.finished.drain(..) {
            reply.send(outcome);
        }
        for waker in self.wake.drain(..) {
            waker.wake();
        }
        if notified {
            self.shared.notified.notify_waiters();
        }
        match (result, failure) {
            (_, Some(e)) => Err(e),
            (Err(e), None) => Err(Error::from_core(e)),
            (Ok(used), None) => {
                self.unread = chunk.slice(used..);
                Ok(())
            }
        }
    }

    /// Ends the session after `err`: the requests in flight fail with it.
    fn fail(&mut self, err: &Error) {
        self.done = true;
        self.shared.close(format!("the connection failed ({err})"));
    }
}

impl Future for ClientDriver {
    type Output = Result<(), Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(Ok(()));
        }
        match this.drive(cx) {
            Poll::Ready(Ok(())) => {
                this.done = true;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => {
                this.fail(&e);
                Poll::Ready(Err(e))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for ClientDriver {
    fn drop(&mut self) {
        if !self.done {
            self.shared
                .close("its driver was dropped before the client".to_owned());
        }
    }
}

impl fmt::Debug for ClientDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientDriver")
            .field("backend_pid", &self.shared.backend_pid)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// The core's events for one read: each goes into the response of the request it
/// belongs to; a request's reply is queued at its end.
struct Dispatch<'a> {
    /// The bytes handed to the core, which rows are slices of.
    chunk: &'a Bytes,
    finished: &'a mut Vec<(ReplyTo, Outcome)>,
    wake: &'a mut Vec<Waker>,
    rows: &'a mut Stage<Row>,
    chunks: &'a mut Stage<Bytes>,
    /// Set when a stream's queue filled up: reading pauses.
    blocked: Option<Blocked>,
    /// COPY FROM STDINs that ended, or were abandoned, in this chunk: their hold
    /// on the other requests ends (after what the core wrote for them).
    ended_copies: Vec<u64>,
    notifications: &'a mut VecDeque<Notification>,
    notice_handler: &'a mut Option<NoticeHandler>,
    /// What ends the connection: a FATAL error, or rows that cannot be placed.
    failure: Option<Error>,
}

impl Dispatch<'_> {
    fn fail(&mut self, err: Error) -> Flow {
        self.failure.get_or_insert(err);
        Flow::Pause
    }
}

impl Events<Waiting> for Dispatch<'_> {
    fn notice(&mut self, notice: DbError) {
        if let Some(handler) = self.notice_handler {
            handler(&notice);
        }
    }

    fn notification(&mut self, process_id: i32, channel: &str, payload: &str) {
        self.notifications.push_back(Notification {
            process_id,
            channel: channel.to_owned(),
            payload: payload.to_owned(),
        });
    }

    fn server_error(&mut self, error: DbError) {
        if error.is_fatal() {
            self.fail(Error::db(error));
        } else if let Some(handler) = self.notice_handler {
            handler(&error);
        }
    }

    fn parameters(
        &mut self,
        op: &mut Waiting,
        types: Result<ParameterDescription<'_>, EncodeError>,
    ) {
        match types {
            Ok(types) => op.resp.params = Some(types.types().collect()),
            Err(e) => op.resp.unbindable = Some(e.0),
        }
    }

    fn columns(&mut self, op: &mut Waiting, columns: Option<&RowDescription<'_>>) {
        if op.resp.simple_columns(columns) {
            return;
        }
        if op.resp.describe {
            op.resp.columns = Some(match columns {
                Some(desc) => desc.fields().map(|f| Column::from_field(&f)).collect(),
                None => Arc::from([]),
            });
        }
    }

    fn row(&mut self, op: &mut Waiting, row: DataRow<'_>) -> Flow {
        match op.resp.route_row(self.chunk, &row) {
            Ok(true) => return Flow::Continue,
            Ok(false) => {}
            Err(e) => return self.fail(e),
        }
        if let ReplyTo::Rows(feed) = &op.reply {
            if !self.rows.begin(feed, self.wake) {
                // Its consumer left: the rest of its rows are not even built.
                return Flow::Continue;
            }
            let Some(columns) = &op.resp.columns else {
                return self.fail(Error::protocol("DataRow without a RowDescription"));
            };
            let row = Row::new(columns.clone(), share(self.chunk, row.raw()), &row);
            if self.rows.push(row, self.wake) {
                self.blocked = Some(Blocked::Rows(Arc::clone(feed)));
                return Flow::Pause;
            }
            return Flow::Continue;
        }
        if op.resp.rows.is_none() {
            return Flow::Continue;
        }
        if !op.wanted() {
            // Its caller left: the rest of its rows are not even built.
            op.resp.rows = None;
            return Flow::Continue;
        }
        let Some(columns) = &op.resp.columns else {
            return self.fail(Error::protocol("DataRow without a RowDescription"));
        };
        let row = Row::new(columns.clone(), share(self.chunk, row.raw()), &row);
        if let Some(rows) = &mut op.resp.rows {
            rows.push(row);
        }
        Flow::Continue
    }

    fn copy_out_started(&mut self, op: &mut Waiting) {
        if let ReplyTo::Chunks(feed) = &op.reply {
            self.wake.extend(feed.start());
        }
    }

    fn copy_data(&mut self, op: &mut Waiting, data: &[u8]) -> Flow {
        let ReplyTo::Chunks(feed) = &op.reply else {
            return Flow::Continue;
        };
        if !self.chunks.begin(feed, self.wake) {
            return Flow::Continue;
        }
        if self.chunks.push(share(self.chunk, data), self.wake) {
            self.blocked = Some(Blocked::Chunks(Arc::clone(feed)));
            return Flow::Pause;
        }
        Flow::Continue
    }

    fn copy_in_ready(&mut self, op: &mut Waiting) -> CopyIn {
        // The core asks only for a COPY started with `copy_in`.
        let ReplyTo::CopyIn { id, ready, done } = &mut op.reply else {
            return CopyIn::Abandon;
        };
        if done.is_closed() {
            // Its caller left before the server was ready: the core writes the
            // CopyFail, after which the held requests may go.
            self.ended_copies.push(*id);
            return CopyIn::Abandon;
        }
        if let Some(ready) = ready.take() {
            let _ = ready.send(());
        }
        CopyIn::Feed
    }

    fn command_complete(&mut self, op: &mut Waiting, _tag: &str, rows: Option<u64>) {
        op.resp.command_complete(rows);
    }

    fn portal_suspended(&mut self, op: &mut Waiting) {
        op.resp.suspended = true;
    }

    fn error(&mut self, op: &mut Waiting, error: &DbError) {
        if error.is_fatal() {
            self.fail(Error::db(error.clone()));
        } else {
            op.resp.error.get_or_insert_with(|| error.clone());
        }
    }

    fn done(&mut self, op: Waiting, _outcome: CoreOutcome) -> Flow {
        let (mut resp, reply) = op.into_parts();
        match &reply {
            ReplyTo::Nobody => {}
            // Its items go into its queue before its end.
            ReplyTo::Rows(_) => self.rows.flush(self.wake),
            ReplyTo::Chunks(_) => self.chunks.flush(self.wake),
            ReplyTo::Once(_) => resp.ended = true,
            ReplyTo::CopyIn { id, .. } => {
                // Ended by the server (an error, or not a COPY FROM STDIN at all)
                // while still holding the others back: they may go now.
                self.ended_copies.push(*id);
                resp.ended = true;
            }
        }
        if !matches!(reply, ReplyTo::Nobody) {
            self.finished.push((reply, Ok(resp)));
        }
        Flow::Continue
    }
}
