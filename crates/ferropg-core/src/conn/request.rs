//! Requests: the messages of one operation, written into the front end's output
//! buffer and queued in the connection's FIFO when complete.

use bytes::BytesMut;

use super::{whole, Connection, Pending};
use crate::message::frontend::{self, BindFailure, EncodeError};

/// An extended-protocol request being written (Parse, Describe, Bind, Execute,
/// Close, in any order), from [`Connection::request`]. [`send`](Request::send)
/// ends it with Sync and queues it; dropped unsent, it takes back everything it
/// wrote, so no partial request is ever sent.
///
/// ```
/// use bytes::BytesMut;
/// use ferropg_core::conn::{Connection, StartupParams};
///
/// let mut conn: Connection<&str> = Connection::new(StartupParams::default());
/// let mut out = BytesMut::new();
/// let mut req = conn.request(&mut out);
/// req.parse("s1", "select 1", []).unwrap();
/// req.describe_statement("s1").unwrap();
/// req.send("prepare s1");
/// assert_eq!(conn.pending_len(), 1);
/// assert_eq!(out.last(), Some(&4)); // ... 'S' 0 0 0 4: the Sync
/// ```
pub struct Request<'a, T> {
    conn: &'a mut Connection<T>,
    out: &'a mut BytesMut,
    mark: usize,
    /// The width announced first with [`rows_of`](Request::rows_of), and those
    /// announced after it, in order (kept apart: most requests announce one, and
    /// need no allocation for it).
    width: Option<usize>,
    later_widths: Vec<usize>,
    /// Continues an operation already queued ([`Connection::resume_batch`]).
    resumed: bool,
    finished: bool,
}

impl<'a, T> Request<'a, T> {
    pub(super) fn new(conn: &'a mut Connection<T>, out: &'a mut BytesMut, resumed: bool) -> Self {
        let mark = out.len();
        Request {
            conn,
            out,
            mark,
            width: None,
            later_widths: Vec::new(),
            resumed,
            finished: false,
        }
    }

    /// Parse `sql` as statement `name` ("" for the unnamed statement), with the
    /// parameter types given (0 or none: the server infers them).
    ///
    /// Each message method writes its message whole or, failing, nothing.
    pub fn parse(
        &mut self,
        name: &str,
        sql: &str,
        param_types: impl IntoIterator<Item = u32>,
    ) -> Result<(), EncodeError> {
        whole(self.out, |out| frontend::parse(name, sql, param_types, out))
    }

    /// Describe statement `name`: its parameter types and result columns come as
    /// [`parameters`](super::Events::parameters) and
    /// [`columns`](super::Events::columns) events.
    pub fn describe_statement(&mut self, name: &str) -> Result<(), EncodeError> {
        whole(self.out, |out| frontend::describe(b'S', name, out))
    }

    /// Describe portal `name`: its result columns come as a
    /// [`columns`](super::Events::columns) event.
    pub fn describe_portal(&mut self, name: &str) -> Result<(), EncodeError> {
        whole(self.out, |out| frontend::describe(b'P', name, out))
    }

    /// Bind `statement`'s parameters into `portal`: `write_param(i, buf)` appends
    /// parameter `i`'s value and says whether it is NULL. On failure nothing of the
    /// Bind stays written. The number of parameters is checked against the
    /// protocol's limit first.
    pub fn bind<E>(
        &mut self,
        portal: &str,
        statement: &str,
        param_formats: impl IntoIterator<Item = i16>,
        param_count: usize,
        write_param: impl FnMut(usize, &mut BytesMut) -> Result<bool, E>,
        result_formats: impl IntoIterator<Item = i16>,
    ) -> Result<(), BindFailure<E>> {
        frontend::bind(
            portal,
            statement,
            param_formats,
            param_count,
            write_param,
            result_formats,
            self.out,
        )
    }

    /// Execute `portal`, returning at most `max_rows` rows (0: all of them; a
    /// [`portal_suspended`](super::Events::portal_suspended) event says more remain).
    pub fn execute(&mut self, portal: &str, max_rows: i32) -> Result<(), EncodeError> {
        whole(self.out, |out| frontend::execute(portal, max_rows, out))
    }

    /// Fetch the next `max_rows` rows (0 or less: all the rest) of `portal`, a
    /// portal an earlier request bound and described as having `columns` columns:
    /// an Execute with that row limit, its rows checked against that width since
    /// no Describe in this request announces it. A
    /// [`portal_suspended`](super::Events::portal_suspended) event says the portal
    /// stopped at the limit with rows left; a command completion, that it ran out.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use ferropg_core::conn::{Connection, StartupParams};
    ///
    /// let mut conn: Connection<&str> = Connection::new(StartupParams::default());
    /// let mut out = BytesMut::new();
    /// let mut req = conn.request(&mut out);
    /// req.fetch("p1", 100, 3).unwrap();
    /// req.send("next 100 rows of p1");
    /// assert_eq!(out[0], b'E');
    /// ```
    pub fn fetch(
        &mut self,
        portal: &str,
        max_rows: i32,
        columns: usize,
    ) -> Result<(), EncodeError> {
        self.execute(portal, max_rows)?;
        self.rows_of(columns);
        Ok(())
    }

    /// Close statement `name` on the server.
    pub fn close_statement(&mut self, name: &str) -> Result<(), EncodeError> {
        whole(self.out, |out| frontend::close(b'S', name, out))
    }

    /// Close portal `name` on the server.
    pub fn close_portal(&mut self, name: &str) -> Result<(), EncodeError> {
        whole(self.out, |out| frontend::close(b'P', name, out))
    }

    /// Flush: the server sends what it has so far without waiting for the Sync (an
    /// error in a long batch then arrives early).
    pub fn flush(&mut self) {
        frontend::flush(self.out);
    }

    /// The width of the rows an Execute returns when no Describe in this request
    /// announces it (a statement described earlier): each DataRow is checked
    /// against it. A request of several Executes of different statements calls it
    /// once for each, in order: each width applies from the end of the Execute
    /// before (a request that calls it once keeps that width throughout).
    pub fn rows_of(&mut self, columns: usize) {
        if self.width.is_none() {
            self.width = Some(columns);
        } else {
            self.later_widths.push(columns);
        }
    }

    /// How many bytes this request has written so far.
    pub fn written(&self) -> usize {
        self.out.len() - self.mark
    }

    /// Ends the request with Sync and queues it as operation `op`.
    pub fn send(mut self, op: T) {
        frontend::sync(self.out);
        self.queue(op);
    }

    /// Queues the request as operation `op` without ending it: a batch whose
    /// further messages are written with [`Connection::resume_batch`] and which one
    /// of those ends with [`sync`](Request::sync).
    pub fn send_open(mut self, op: T) {
        self.queue(op);
    }

    /// Keeps what was written to a resumed batch; it stays open.
    pub fn keep(mut self) {
        self.finished = true;
    }

    /// Ends a resumed batch with Sync.
    pub fn sync(mut self) {
        frontend::sync(self.out);
        self.finished = true;
    }

    fn queue(&mut self, op: T) {
        self.finished = true;
        if self.resumed {
            // Already queued when the batch was opened.
            return;
        }
        let later = std::mem::take(&mut self.later_widths);
        self.conn
            .pending
            .push_back(Pending::new(op, true, false, self.width, later));
    }
}

impl<T> Drop for Request<'_, T> {
    fn drop(&mut self) {
        if !self.finished {
            self.out.truncate(self.mark);
        }
    }
}
