//! Driving the sans-IO core over the socket: handing it what was read, and turning
//! its events into the response of the operation being waited for, up to its
//! ReadyForQuery.
//!
//! Every operation gets an id that is queued in the core's FIFO. Messages of an
//! operation nobody waits for any more (a future dropped half-way, a lazy ROLLBACK,
//! the Close of a dropped statement) are skipped by whichever call reads next, so a
//! dropped future never leaves the connection out of step. The clean-up statements
//! are pipelined in front of the next request; an abandoned request is waited out
//! first (`Connection::settle`).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use ferropg_core::conn::{CopyIn, Events, Flow, Outcome};
use ferropg_core::message::frontend::EncodeError;
use ferropg_core::message::{DataRow, ParameterDescription, RowDescription};
use ferropg_core::{pooler, DbError};

use crate::batch::BatchCollect;
use crate::connection::{NoticeHandler, Probe};
use crate::notification::Notification;
use crate::row::Row;
use crate::simple::{SimpleQueryMessage, SimpleQueryRow};
use crate::statement::Column;
use crate::{Connection, Error};

/// How much room to leave for each socket read.
pub(crate) const READ_CHUNK: usize = 16 * 1024;

/// An operation id that is never queued: reading for nothing in particular.
pub(crate) const NO_OP: u64 = 0;

/// The error of a connection whose socket a [`Client`](crate::Client) took over
/// (never seen: the connection is consumed by the handover).
pub(crate) fn detached() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::NotConnected,
        "the socket was handed over to a Client",
    )
}

/// What an operation's response is collected into.
#[derive(Default)]
pub(crate) struct Response {
    /// The columns of the rows; taken from a RowDescription when `describe` is set.
    pub(crate) columns: Option<Arc<[Column]>>,
    /// Keep the RowDescription that arrives (Describe of a statement or portal).
    pub(crate) describe: bool,
    /// The rows, when they are collected.
    pub(crate) rows: Option<Vec<Row>>,
    /// A simple query's messages (text rows, row descriptions, row counts), when
    /// they are collected.
    pub(crate) simple: Option<Vec<SimpleQueryMessage>>,
    /// The results of a batch's statements, when they are collected.
    pub(crate) batch: Option<BatchCollect>,
    /// The row counts of every CommandComplete, added up (`execute_many`).
    pub(crate) total_affected: u64,
    /// Hand rows out one at a time, through `streamed`, instead of collecting them.
    pub(crate) stream_rows: bool,
    /// Hand COPY data out one chunk at a time, through `next_chunk`.
    pub(crate) stream_copy: bool,
    /// The rows of the last read not handed out yet, for a stream: slices of that
    /// one read, so a stream holds no more than one read's worth. Taking all of
    /// them in one pass costs a row what a collected result's row costs.
    pub(crate) streamed: VecDeque<Row>,
    /// The COPY data just read, for a stream.
    pub(crate) next_chunk: Option<Bytes>,
    /// The parameter types from a ParameterDescription.
    pub(crate) params: Option<Vec<u32>>,
    /// Why the described statement could never be bound (too many parameters).
    pub(crate) unbindable: Option<String>,
    /// The row count of the last CommandComplete.
    pub(crate) rows_affected: u64,
    /// The first ErrorResponse.
    pub(crate) error: Option<DbError>,
    /// An Execute stopped at its row limit (PortalSuspended): the portal has more.
    pub(crate) suspended: bool,
    /// A CommandComplete arrived (the statement, or the last one, ran to its end).
    pub(crate) completed: bool,
    /// The server waits for COPY FROM STDIN data.
    pub(crate) copy_in_ready: bool,
    /// The server started sending COPY TO STDOUT data.
    pub(crate) copy_out_started: bool,
    /// The operation's ReadyForQuery arrived.
    pub(crate) ended: bool,
    /// Startup finished (the connection's first ReadyForQuery, which ends no operation).
    pub(crate) started: bool,
}

impl Response {
    /// Takes a simple query's RowDescription, if this response collects a simple
    /// query's messages; true if it does.
    pub(crate) fn simple_columns(&mut self, columns: Option<&RowDescription<'_>>) -> bool {
        let Some(messages) = &mut self.simple else {
            return false;
        };
        let columns: Arc<[Column]> = match columns {
            Some(desc) => desc.fields().map(|f| Column::from_field(&f)).collect(),
            None => Arc::from([]),
        };
        messages.push(SimpleQueryMessage::RowDescription(columns.clone()));
        self.columns = Some(columns);
        true
    }

    /// Takes a row of a simple query or a batch, if this response collects them;
    /// true if it does (an error when the row has no columns to go with).
    pub(crate) fn route_row(&mut self, chunk: &Bytes, row: &DataRow<'_>) -> Result<bool, Error> {
        if let Some(batch) = &mut self.batch {
            batch.row(chunk, row)?;
            return Ok(true);
        }
        let Some(messages) = &mut self.simple else {
            return Ok(false);
        };
        let Some(columns) = &self.columns else {
            return Err(Error::protocol("DataRow without a RowDescription"));
        };
        let row = SimpleQueryRow::new(columns.clone(), share(chunk, row.raw()), row);
        messages.push(SimpleQueryMessage::Row(row));
        Ok(true)
    }

    /// Notes a statement's end: its row count, and for a simple query or a batch
    /// the result that carries it.
    pub(crate) fn command_complete(&mut self, rows: Option<u64>) {
        self.rows_affected = rows.unwrap_or(0);
        self.total_affected += self.rows_affected;
        self.completed = true;
        if let Some(batch) = &mut self.batch {
            batch.complete(self.rows_affected);
        }
        if let Some(messages) = &mut self.simple {
            messages.push(SimpleQueryMessage::CommandComplete(self.rows_affected));
        }
    }
}

/// `data` as a shared slice of `chunk` (the bytes handed to the core), or a copy
/// when the core assembled it from two reads.
pub(crate) fn share(chunk: &Bytes, data: &[u8]) -> Bytes {
    let start = chunk.as_ptr() as usize;
    let at = data.as_ptr() as usize;
    if at >= start && at + data.len() <= start + chunk.len() {
        // Where it lies is known here: `slice` without `slice_ref`'s second check.
        let offset = at - start;
        chunk.slice(offset..offset + data.len())
    } else {
        Bytes::copy_from_slice(data)
    }
}

/// The core's events for one pass: those of the operation waited for go into its
/// response; notices and notifications go where the connection keeps them; the
/// rest (operations nobody waits for any more) is dropped.
struct Collector<'a> {
    op: u64,
    resp: &'a mut Response,
    /// The bytes being handed to the core, which rows and COPY data are slices of.
    chunk: &'a Bytes,
    notifications: &'a mut VecDeque<Notification>,
    notice_handler: &'a mut Option<NoticeHandler>,
    /// The startup probe, whose answer is taken wherever it comes.
    probe: &'a mut Probe,
    /// What ends the connection: a FATAL error, or rows the face cannot place.
    failure: Option<Error>,
}

impl Collector<'_> {
    fn ours(&self, op: u64) -> bool {
        op == self.op && op != NO_OP
    }

    fn share(&self, data: &[u8]) -> Bytes {
        share(self.chunk, data)
    }

    fn fail(&mut self, err: Error) -> Flow {
        self.failure.get_or_insert(err);
        Flow::Pause
    }
}

impl Events<u64> for Collector<'_> {
    fn ready(&mut self) {
        self.resp.started = true;
    }

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

    fn parameters(&mut self, op: &mut u64, types: Result<ParameterDescription<'_>, EncodeError>) {
        if self.ours(*op) {
            match types {
                Ok(types) => self.resp.params = Some(types.types().collect()),
                Err(e) => self.resp.unbindable = Some(e.0),
            }
        }
    }

    fn columns(&mut self, op: &mut u64, columns: Option<&RowDescription<'_>>) {
        if !self.ours(*op) || self.resp.simple_columns(columns) {
            return;
        }
        if self.resp.describe {
            self.resp.columns = Some(match columns {
                Some(desc) => desc.fields().map(|f| Column::from_field(&f)).collect(),
                None => Arc::from([]),
            });
        }
    }

    fn row(&mut self, op: &mut u64, row: DataRow<'_>) -> Flow {
        if !self.ours(*op) {
            return Flow::Continue;
        }
        // Most rows are a query's or a stream's: the rest is looked at only for the
        // others.
        if self.resp.batch.is_some() || self.resp.simple.is_some() {
            match self.resp.route_row(self.chunk, &row) {
                Ok(true) => return Flow::Continue,
                Ok(false) => {}
                Err(e) => return self.fail(e),
            }
        }
        if !(self.resp.stream_rows || self.resp.rows.is_some()) {
            return Flow::Continue;
        }
        let Some(columns) = &self.resp.columns else {
            return self.fail(Error::protocol("DataRow without a RowDescription"));
        };
        let row = Row::new(columns.clone(), self.share(row.raw()), &row);
        if self.resp.stream_rows {
            self.resp.streamed.push_back(row);
            return Flow::Continue;
        }
        if let Some(rows) = &mut self.resp.rows {
            rows.push(row);
        }
        Flow::Continue
    }

    fn copy_in_ready(&mut self, op: &mut u64) -> CopyIn {
        if self.ours(*op) {
            self.resp.copy_in_ready = true;
            CopyIn::Feed
        } else {
            // Its caller went away before the server was ready.
            CopyIn::Abandon
        }
    }

    fn copy_out_started(&mut self, op: &mut u64) {
        if self.ours(*op) {
            self.resp.copy_out_started = true;
        }
    }

    fn copy_data(&mut self, op: &mut u64, data: &[u8]) -> Flow {
        if !self.ours(*op) || !self.resp.stream_copy {
            return Flow::Continue;
        }
        self.resp.next_chunk = Some(self.share(data));
        Flow::Pause
    }

    fn command_complete(&mut self, op: &mut u64, _tag: &str, rows: Option<u64>) {
        if self.ours(*op) {
            self.resp.command_complete(rows);
        } else if *op == self.probe.op && *op != NO_OP {
            self.probe.suspected |= rows.is_some_and(pooler::probe_says_pooler);
        }
    }

    fn portal_suspended(&mut self, op: &mut u64) {
        if self.ours(*op) {
            self.resp.suspended = true;
        }
    }

    fn error(&mut self, op: &mut u64, error: &DbError) {
        if error.is_fatal() {
            self.fail(Error::db(error.clone()));
        } else if self.ours(*op) {
            self.resp.error.get_or_insert_with(|| error.clone());
        }
    }

    fn done(&mut self, op: u64, _outcome: Outcome) -> Flow {
        if op == self.probe.op {
            self.probe.op = NO_OP;
        }
        if self.ours(op) {
            self.resp.ended = true;
            Flow::Pause
        } else {
            Flow::Continue
        }
    }
}

impl Connection {
    /// Fails if the connection is closed.
    pub(crate) fn check_open(&self) -> Result<(), Error> {
        if self.is_closed() {
            let why = self
                .closed_reason
                .as_deref()
                .unwrap_or("the connection is closed");
            return Err(Error::closed(why.to_owned()));
        }
        Ok(())
    }

    /// Marks the connection unusable because of `err`, and returns `err`.
    pub(crate) fn fail(&mut self, err: Error) -> Error {
        self.core.mark_closed();
        if self.closed_reason.is_none() {
            self.closed_reason = Some(format!(
                "the connection was closed by an earlier error ({err})"
            ));
        }
        err
    }

    /// A fresh operation id.
    pub(crate) fn next_op_id(&mut self) -> u64 {
        self.next_op += 1;
        self.next_op
    }

    /// Queues the clean-up left by dropped transactions and statements, each as an
    /// operation of its own that nobody waits for.
    pub(crate) fn write_cleanup(&mut self) -> Result<(), Error> {
        for sql in std::mem::take(&mut self.cleanup_sql) {
            let id = self.next_op_id();
            self.core.query(&sql, id, &mut self.write_buf)?;
        }
        let names = {
            let mut queue = self.close_queue.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::take(&mut *queue)
        };
        let portals = std::mem::take(&mut self.cleanup_portals);
        if !names.is_empty() || !portals.is_empty() {
            let id = self.next_op_id();
            let mut req = self.core.request(&mut self.write_buf);
            for name in &portals {
                req.close_portal(name)?;
            }
            for name in &names {
                req.close_statement(name)?;
            }
            req.send(id);
        }
        Ok(())
    }

    /// Starts an operation: waits out abandoned operations, checks the connection,
    /// queues pending clean-up and returns the new operation's id (queue it in the
    /// core once encoded).
    ///
    /// Callers encode and queue their messages right after this returns, without
    /// waiting in between, so that a dropped future either sent nothing or has its
    /// request queued whole.
    pub(crate) async fn begin_op(&mut self) -> Result<u64, Error> {
        self.settle().await?;
        self.check_open()?;
        self.write_cleanup()?;
        Ok(self.next_op_id())
    }

    /// Reads the responses of operations whose callers went away, up to their
    /// ReadyForQuery. A request must not be pipelined behind them: one of them may
    /// be a COPY FROM STDIN, during which the server takes any other message as a
    /// protocol violation.
    pub(crate) async fn settle(&mut self) -> Result<(), Error> {
        while self.core.pending_len() > 0 {
            self.check_open()?;
            self.flush().await?;
            self.read_events(NO_OP, &mut Response::default()).await?;
        }
        // Nor behind a cancel request still on its way: it would cancel this one.
        let gate = Arc::clone(&self.cancel_gate);
        if let Err(e) = gate.settled().await {
            return Err(self.fail(e));
        }
        Ok(())
    }

    /// Encodes a simple Query and queues it as operation `op`.
    pub(crate) fn send_simple(&mut self, op: u64, sql: &str) -> Result<(), Error> {
        self.core.query(sql, op, &mut self.write_buf)?;
        Ok(())
    }

    /// Writes the whole output buffer. Cancel-safe: what was not written stays
    /// buffered for the next call.
    pub(crate) async fn flush(&mut self) -> Result<(), Error> {
        std::future::poll_fn(|cx| self.poll_flush(cx)).await
    }

    /// [`flush`](Connection::flush), polled by hand (the streams and sinks).
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.write_buf.is_empty() {
            return Poll::Ready(Ok(()));
        }
        let Some(socket) = &mut self.socket else {
            return Poll::Ready(Err(
                self.fail(Error::io("writing to the server", detached()))
            ));
        };
        let mut failure = None;
        while !self.write_buf.is_empty() {
            match ready!(socket.poll_write(cx, &self.write_buf)) {
                Ok(0) => {
                    failure = Some(Error::closed("the server stopped reading"));
                    break;
                }
                Ok(n) => self.write_buf.advance(n),
                Err(e) => {
                    failure = Some(Error::io("writing to the server", e));
                    break;
                }
            }
        }
        if failure.is_none() {
            // The TLS layer may hold the last record back until flushed; a plain
            // stream is ready at once.
            if let Err(e) = ready!(socket.poll_flush(cx)) {
                failure = Some(Error::io("writing to the server", e));
            }
        }
        match failure {
            Some(e) => Poll::Ready(Err(self.fail(e))),
            None => Poll::Ready(Ok(())),
        }
    }

    /// Makes sure some bytes from the server wait to be handed to the core: those a
    /// pause left, or a new read. Cancel-safe.
    async fn fill(&mut self) -> Result<(), Error> {
        std::future::poll_fn(|cx| self.poll_fill(cx)).await
    }

    /// [`fill`](Connection::fill), polled by hand.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if !self.unread.is_empty() {
            return Poll::Ready(Ok(()));
        }
        if self.read_buf.capacity() - self.read_buf.len() < READ_CHUNK / 4 {
            self.read_buf.reserve(READ_CHUNK);
        }
        // `read_buf` takes nothing until bytes are there: a read that is not ready
        // yet is dropped here and started again at the next poll.
        let read = match &mut self.socket {
            Some(socket) => ready!(pin!(socket.read_buf(&mut self.read_buf)).poll(cx)),
            None => Err(detached()),
        };
        Poll::Ready(match read {
            Ok(0) => Err(self.fail(self.hang_up())),
            Ok(_) => {
                self.unread = self.read_buf.split().freeze();
                Ok(())
            }
            Err(e) => Err(self.fail(Error::io("reading from the server", e))),
        })
    }

    /// The error for a server that closed the connection.
    pub(crate) fn hang_up(&self) -> Error {
        Error::closed(if self.core.has_partial_input() {
            "the server closed the connection in the middle of a message"
        } else {
            "the server closed the connection unexpectedly"
        })
    }

    /// Takes in what a non-blocking read brought, if nothing is waiting already.
    pub(crate) fn take_read(&mut self) {
        if self.unread.is_empty() && !self.read_buf.is_empty() {
            self.unread = self.read_buf.split().freeze();
        }
    }

    /// Hands the bytes waiting to the core, collecting operation `op`'s events into
    /// `resp`, until they run out or an event pauses the reading.
    pub(crate) fn process(&mut self, op: u64, resp: &mut Response) -> Result<(), Error> {
        let chunk = std::mem::take(&mut self.unread);
        let mut collector = Collector {
            op,
            resp,
            chunk: &chunk,
            notifications: &mut self.notifications,
            notice_handler: &mut self.notice_handler,
            probe: &mut self.probe,
            failure: None,
        };
        let result = self
            .core
            .handle_input(&chunk, &mut self.write_buf, &mut collector);
        let failure = collector.failure.take();
        match result {
            Ok(used) => self.unread = chunk.slice(used..),
            Err(e) => return Err(self.fail(Error::from_core(e))),
        }
        match failure {
            Some(e) => Err(self.fail(e)),
            None => Ok(()),
        }
    }

    /// Reads (unless bytes are waiting) and processes what came, for operation `op`.
    pub(crate) async fn read_events(&mut self, op: u64, resp: &mut Response) -> Result<(), Error> {
        self.fill().await?;
        self.process(op, resp)
    }

    /// [`read_events`](Connection::read_events), polled by hand.
    pub(crate) fn poll_events(
        &mut self,
        cx: &mut Context<'_>,
        op: u64,
        resp: &mut Response,
    ) -> Poll<Result<(), Error>> {
        ready!(self.poll_fill(cx))?;
        Poll::Ready(self.process(op, resp))
    }

    /// Sends what is buffered and reads until operation `op`'s ReadyForQuery,
    /// collecting its response into `resp`. A server error is returned after the
    /// ReadyForQuery, so the connection is ready for the next request.
    pub(crate) async fn finish(&mut self, op: u64, resp: &mut Response) -> Result<(), Error> {
        std::future::poll_fn(|cx| self.poll_finish(cx, op, resp)).await
    }

    /// [`finish`](Connection::finish), polled by hand. Everything it has done
    /// lives in `self` and `resp`, so a poll that returns `Pending` loses nothing.
    pub(crate) fn poll_finish(
        &mut self,
        cx: &mut Context<'_>,
        op: u64,
        resp: &mut Response,
    ) -> Poll<Result<(), Error>> {
        loop {
            // Replies the core wrote (a CopyFail for a refused COPY) go out too.
            ready!(self.poll_flush(cx))?;
            if resp.ended {
                break;
            }
            ready!(self.poll_events(cx, op, resp))?;
        }
        Poll::Ready(match resp.error.take() {
            Some(e) => Err(Error::db(e)),
            None => Ok(()),
        })
    }
}
