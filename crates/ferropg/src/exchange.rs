//! Driving the sans-IO core over the socket: reading whole messages, routing them
//! to the operation they belong to, and collecting one operation's response up to
//! its ReadyForQuery.
//!
//! Every operation gets an id that is queued in the core's FIFO. Messages of an
//! operation nobody waits for any more (a future dropped half-way, a lazy ROLLBACK,
//! the Close of a dropped statement) are skipped by whichever call reads next, so a
//! dropped future never leaves the connection out of step. The clean-up statements
//! are pipelined in front of the next request; an abandoned request is waited out
//! first (`Connection::settle`).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use ferropg_core::conn::{message_name, Routed};
use ferropg_core::message::backend::frame_len;
use ferropg_core::message::frontend;
use ferropg_core::message::{parse_message, DataRow, Message};
use ferropg_core::DbError;

use crate::notification::Notification;
use crate::row::Row;
use crate::statement::Column;
use crate::{Connection, Error};

/// How much room to leave for each socket read.
const READ_CHUNK: usize = 16 * 1024;

/// An operation id that is never queued: reading for nothing in particular.
pub(crate) const NO_OP: u64 = 0;

/// An operation in the core's FIFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Op {
    /// Who waits for it (compared with the id a call waits for).
    pub(crate) id: u64,
    /// Sent with the extended protocol (ended by Sync) rather than as a simple Query.
    pub(crate) extended: bool,
    /// A COPY FROM STDIN its caller will feed (`copy_in`); any other operation's
    /// CopyInResponse is refused with CopyFail.
    pub(crate) copy_in: bool,
}

impl Op {
    /// A simple Query.
    pub(crate) fn simple(id: u64) -> Op {
        Op {
            id,
            extended: false,
            copy_in: false,
        }
    }

    /// Extended-protocol messages ended by one Sync.
    pub(crate) fn extended(id: u64) -> Op {
        Op {
            id,
            extended: true,
            copy_in: false,
        }
    }
}

/// What one routed message means for the operation being waited for.
pub(crate) enum Step<'m> {
    /// Not ours (or fully handled): read on.
    Skip,
    /// A message of our operation.
    Msg(Message<'m>),
    /// Our operation's ReadyForQuery.
    Done,
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
    /// The parameter types from a ParameterDescription.
    pub(crate) params: Option<Vec<u32>>,
    /// The row count of the last CommandComplete.
    pub(crate) rows_affected: u64,
    /// The first ErrorResponse.
    pub(crate) error: Option<DbError>,
    /// An Execute stopped at its row limit (PortalSuspended): the portal has more.
    pub(crate) suspended: bool,
    /// A CommandComplete arrived (the statement, or the last one, ran to its end).
    pub(crate) completed: bool,
}

/// The row count in a command tag (`INSERT 0 5`, `UPDATE 3`, `SELECT 2`); 0 for
/// tags without one (`CREATE TABLE`).
pub(crate) fn rows_affected(tag: &str) -> u64 {
    tag.rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
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
            frontend::query(&sql, &mut self.write_buf)?;
            let id = self.next_op_id();
            self.core.push(Op::simple(id));
        }
        let names = {
            let mut queue = self.close_queue.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::take(&mut *queue)
        };
        let portals = std::mem::take(&mut self.cleanup_portals);
        if !names.is_empty() || !portals.is_empty() {
            for name in &portals {
                frontend::close(b'P', name, &mut self.write_buf)?;
            }
            for name in &names {
                frontend::close(b'S', name, &mut self.write_buf)?;
            }
            frontend::sync(&mut self.write_buf);
            let id = self.next_op_id();
            self.core.push(Op::extended(id));
        }
        Ok(())
    }

    /// Starts an operation: waits out abandoned operations, checks the connection,
    /// queues pending clean-up and returns the new operation's id (queue it with
    /// `core.push` once encoded).
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
            let frame = self.read_frame().await?;
            self.route(&frame, NO_OP)?;
        }
        // Nor behind a cancel request still on its way: it would cancel this one.
        let gate = Arc::clone(&self.cancel_gate);
        if let Err(e) = gate.settled().await {
            return Err(self.fail(e));
        }
        Ok(())
    }

    /// Encodes messages with `f`; on failure the buffer is restored, so that no
    /// partial message is ever sent.
    pub(crate) fn encode<E>(
        &mut self,
        f: impl FnOnce(&mut BytesMut) -> Result<(), E>,
    ) -> Result<(), E> {
        let mark = self.write_buf.len();
        let result = f(&mut self.write_buf);
        if result.is_err() {
            self.write_buf.truncate(mark);
        }
        result
    }

    /// Encodes a simple Query and queues it as operation `op`.
    pub(crate) fn send_simple(&mut self, op: u64, sql: &str) -> Result<(), Error> {
        self.encode(|buf| frontend::query(sql, buf))?;
        self.core.push(Op::simple(op));
        Ok(())
    }

    /// Writes the whole output buffer. Cancel-safe: what was not written stays
    /// buffered for the next call.
    pub(crate) async fn flush(&mut self) -> Result<(), Error> {
        while !self.write_buf.is_empty() {
            match self.socket.write_buf(&mut self.write_buf).await {
                Ok(0) => return Err(self.fail(Error::closed("the server stopped reading"))),
                Ok(_) => {}
                Err(e) => return Err(self.fail(Error::io("writing to the server", e))),
            }
        }
        Ok(())
    }

    /// Reads one whole message, as a shared slice of the read buffer. Cancel-safe.
    pub(crate) async fn read_frame(&mut self) -> Result<Bytes, Error> {
        loop {
            match frame_len(&self.read_buf) {
                Ok(Some(total)) => {
                    if self.read_buf.len() >= total {
                        return Ok(self.read_buf.split_to(total).freeze());
                    }
                    self.read_buf
                        .reserve((total - self.read_buf.len()).max(READ_CHUNK / 4));
                }
                Ok(None) => {
                    if self.read_buf.capacity() - self.read_buf.len() < READ_CHUNK / 4 {
                        self.read_buf.reserve(READ_CHUNK);
                    }
                }
                Err(e) => return Err(self.fail(Error::protocol(e.to_string()))),
            }
            match self.socket.read_buf(&mut self.read_buf).await {
                Ok(0) => {
                    let what = if self.read_buf.is_empty() {
                        "the server closed the connection unexpectedly"
                    } else {
                        "the server closed the connection in the middle of a message"
                    };
                    return Err(self.fail(Error::closed(what)));
                }
                Ok(_) => {}
                Err(e) => return Err(self.fail(Error::io("reading from the server", e))),
            }
        }
    }

    /// A whole message already in the read buffer, without reading the socket.
    pub(crate) fn buffered_frame(&mut self) -> Option<Bytes> {
        match frame_len(&self.read_buf) {
            Ok(Some(total)) if self.read_buf.len() >= total => {
                Some(self.read_buf.split_to(total).freeze())
            }
            _ => None,
        }
    }

    /// Parses one frame and passes it through the core; says whether it belongs to
    /// operation `op`. Notices, notifications and other operations' messages are
    /// dealt with here.
    pub(crate) fn route<'m>(&mut self, frame: &'m Bytes, op: u64) -> Result<Step<'m>, Error> {
        let msg = match parse_message(frame) {
            Ok(Some((msg, _))) => msg,
            Ok(None) => return Err(self.fail(Error::protocol("incomplete message"))),
            Err(e) => return Err(self.fail(Error::protocol(e.to_string()))),
        };
        let routed = match self.core.process(msg, &mut self.write_buf) {
            Ok(r) => r,
            Err(e) => return Err(self.fail(Error::from_core(e))),
        };
        Ok(match routed {
            Routed::Op(msg @ Message::CopyInResponse(_))
                if self.core.head().is_some_and(|h| h.id == op && h.copy_in) =>
            {
                Step::Msg(msg)
            }
            Routed::Op(Message::CopyInResponse(_)) => {
                // Any other COPY FROM STDIN (run through a query method, or
                // abandoned) is refused.
                let extended = self.core.head().is_some_and(|h| h.extended);
                self.encode(|buf| {
                    frontend::refuse_copy_in(
                        "COPY FROM STDIN is only supported through copy_in",
                        extended,
                        buf,
                    )
                })?;
                Step::Skip
            }
            Routed::Op(msg) => {
                if self.core.head().map(|h| h.id) == Some(op) {
                    Step::Msg(msg)
                } else {
                    if let Message::ErrorResponse(fields) = &msg {
                        let err = DbError::from_fields(fields);
                        if err.is_fatal() {
                            return Err(self.fail(Error::db(err)));
                        }
                    }
                    Step::Skip
                }
            }
            Routed::OpDone(done) if done.id == op => Step::Done,
            Routed::Notice(fields) => {
                if let Some(handler) = &mut self.notice_handler {
                    handler(&DbError::from_fields(&fields));
                }
                Step::Skip
            }
            Routed::Notification {
                process_id,
                channel,
                payload,
            } => {
                self.notifications.push_back(Notification {
                    process_id,
                    channel: channel.to_owned(),
                    payload: payload.to_owned(),
                });
                Step::Skip
            }
            Routed::UnsolicitedError(fields) => {
                let err = DbError::from_fields(&fields);
                if err.is_fatal() {
                    return Err(self.fail(Error::db(err)));
                }
                if let Some(handler) = &mut self.notice_handler {
                    handler(&err);
                }
                Step::Skip
            }
            Routed::OpDone(_)
            | Routed::Handled
            | Routed::StartupDone
            | Routed::ParameterChanged { .. } => Step::Skip,
        })
    }

    /// Sends what is buffered and reads until operation `op`'s ReadyForQuery,
    /// collecting its response into `resp`. A server error is returned after the
    /// ReadyForQuery, so the connection is ready for the next request.
    pub(crate) async fn finish(&mut self, op: u64, resp: &mut Response) -> Result<(), Error> {
        self.flush().await?;
        loop {
            let frame = self.read_frame().await?;
            match self.route(&frame, op)? {
                Step::Skip => {}
                Step::Done => break,
                Step::Msg(msg) => self.on_message(msg, &frame, resp)?,
            }
            if !self.write_buf.is_empty() {
                self.flush().await?;
            }
        }
        match resp.error.take() {
            Some(e) => Err(Error::db(e)),
            None => Ok(()),
        }
    }

    /// A row of the response: the DataRow checked against the columns.
    pub(crate) fn make_row(
        &mut self,
        columns: Option<&Arc<[Column]>>,
        frame: &Bytes,
        row: &DataRow<'_>,
    ) -> Result<Row, Error> {
        let Some(columns) = columns else {
            return Err(self.fail(Error::protocol("DataRow without a RowDescription")));
        };
        if let Err(e) = row.check_width(columns.len()) {
            return Err(self.fail(Error::protocol(e)));
        }
        Ok(Row::new(columns.clone(), frame, row))
    }

    /// Collects one message of the operation waited for into `resp`.
    pub(crate) fn on_message(
        &mut self,
        msg: Message<'_>,
        frame: &Bytes,
        resp: &mut Response,
    ) -> Result<(), Error> {
        match msg {
            Message::DataRow(row) => {
                if resp.rows.is_some() {
                    let row = self.make_row(resp.columns.as_ref(), frame, &row)?;
                    if let Some(rows) = &mut resp.rows {
                        rows.push(row);
                    }
                }
            }
            Message::CommandComplete { tag } => {
                resp.rows_affected = rows_affected(tag);
                resp.completed = true;
            }
            Message::PortalSuspended => resp.suspended = true,
            Message::RowDescription(desc) => {
                if resp.describe {
                    resp.columns = Some(desc.fields().map(|f| Column::from_field(&f)).collect());
                }
            }
            Message::NoData => {
                if resp.describe {
                    resp.columns = Some(Arc::from([]));
                }
            }
            Message::ParameterDescription(desc) => resp.params = Some(desc.types().collect()),
            Message::ErrorResponse(fields) => {
                let err = DbError::from_fields(&fields);
                if err.is_fatal() {
                    return Err(self.fail(Error::db(err)));
                }
                resp.error.get_or_insert(err);
            }
            Message::ParseComplete
            | Message::BindComplete
            | Message::CloseComplete
            | Message::EmptyQueryResponse
            | Message::CopyInResponse(_)
            | Message::CopyOutResponse(_)
            | Message::CopyData(_)
            | Message::CopyDone => {}
            other => {
                let name = message_name(&other);
                return Err(self.fail(Error::protocol(format!("unexpected {name} message"))));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::rows_affected;

    #[test]
    fn command_tags() {
        assert_eq!(rows_affected("INSERT 0 5"), 5);
        assert_eq!(rows_affected("UPDATE 3"), 3);
        assert_eq!(rows_affected("SELECT 0"), 0);
        assert_eq!(rows_affected("CREATE TABLE"), 0);
        assert_eq!(rows_affected(""), 0);
    }
}
