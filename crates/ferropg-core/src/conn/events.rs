//! What the core reports to a front end while it reads the server's bytes.
//!
//! [`Connection::handle_input`](super::Connection::handle_input) calls one method of
//! an [`Events`] sink per meaningful server message, in wire order. Operation events
//! come with the front end's own record of the operation they belong to (`op`), so a
//! face never has to know which message belongs to whom. Rows and COPY data are
//! borrowed views of the input: decode them in place or copy what must outlive the
//! call.

use crate::error::DbError;
use crate::message::frontend::EncodeError;
use crate::message::{DataRow, ParameterDescription, RowDescription};

/// Whether reading goes on after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on with the next message.
    Continue,
    /// Stop after this message: `handle_input` returns the bytes taken so far, and
    /// the rest of the input is the caller's to feed again later (a row stream that
    /// hands out one row at a time, say).
    Pause,
}

/// A front end's answer to a COPY FROM STDIN that is ready for data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyIn {
    /// The caller is there and will send the data.
    Feed,
    /// The caller left before the server was ready: the core ends the COPY with a
    /// CopyFail, since a backend waiting for COPY data takes no cancel request.
    Abandon,
}

/// How an operation ended (at its ReadyForQuery).
pub type Outcome = Result<(), DbError>;

/// The receiver of a connection's events; `T` is the front end's operation record.
///
/// Every method has a default that ignores the event, so a face implements only
/// what it uses. No method may call back into the same [`Connection`](super::Connection).
pub trait Events<T> {
    /// Startup and authentication succeeded: the session takes requests.
    fn ready(&mut self) {}

    /// A run-time parameter changed after startup (the new value is already in
    /// [`Connection::parameter`](super::Connection::parameter)).
    fn parameter_changed(&mut self, _name: &str, _value: &str) {}

    /// A NoticeResponse: a notice, warning or other message that ends nothing.
    fn notice(&mut self, _notice: DbError) {}

    /// A LISTEN/NOTIFY notification.
    fn notification(&mut self, _process_id: i32, _channel: &str, _payload: &str) {}

    /// An ErrorResponse while no operation was pending (a FATAL shutdown notice, an
    /// idle-session timeout). A fatal one has already closed the connection.
    fn server_error(&mut self, _error: DbError) {}

    /// The parameter types of a described statement, or why the statement could
    /// never be bound (more parameters than the protocol can carry).
    fn parameters(&mut self, _op: &mut T, _types: Result<ParameterDescription<'_>, EncodeError>) {}

    /// The result columns of a described statement or portal (or of a simple
    /// query's next result); `None` when it returns no rows (NoData).
    fn columns(&mut self, _op: &mut T, _columns: Option<&RowDescription<'_>>) {}

    /// One result row, already checked against the width of its result.
    fn row(&mut self, _op: &mut T, _row: DataRow<'_>) -> Flow {
        Flow::Continue
    }

    /// A COPY FROM STDIN of an operation started with
    /// [`Connection::copy_in`](super::Connection::copy_in) waits for data. A
    /// COPY FROM STDIN of any other operation never reaches the face: the core
    /// refuses it.
    fn copy_in_ready(&mut self, _op: &mut T) -> CopyIn {
        CopyIn::Feed
    }

    /// A COPY TO STDOUT starts sending data.
    fn copy_out_started(&mut self, _op: &mut T) {}

    /// A chunk of COPY TO STDOUT data (one row, for text and csv).
    fn copy_data(&mut self, _op: &mut T, _data: &[u8]) -> Flow {
        Flow::Continue
    }

    /// A statement ran to its end: its command tag and, when the tag carries one,
    /// the number of rows it affected or returned.
    fn command_complete(&mut self, _op: &mut T, _tag: &str, _rows: Option<u64>) {}

    /// An Execute stopped at its row limit: the portal has more rows.
    fn portal_suspended(&mut self, _op: &mut T) {}

    /// The operation's first server error, as it arrives (the server then skips to
    /// the operation's end). A fatal one has already closed the connection.
    fn error(&mut self, _op: &mut T, _error: &DbError) {}

    /// An extended-protocol operation's first server error came before any of its
    /// Parse or Bind messages was accepted (after [`error`](Events::error)): the
    /// server refused the request's first message, so none of it ran. A statement the client named that
    /// the server does not have (26000) shows this way, whereas a statement that ran
    /// and failed for the same reason inside (`EXECUTE x`) does not.
    fn rejected(&mut self, _op: &mut T, _error: &DbError) {}

    /// The operation ended: its outcome is its first server error, if any.
    fn done(&mut self, op: T, outcome: Outcome) -> Flow;
}

/// The row count in a command tag (`INSERT 0 5`, `UPDATE 3`, `SELECT 2`,
/// `COPY 10`), or `None` for a tag without one (`CREATE TABLE`).
///
/// ```
/// use ferropg_core::conn::rows_affected;
///
/// assert_eq!(rows_affected("INSERT 0 5"), Some(5));
/// assert_eq!(rows_affected("SELECT 0"), Some(0));
/// assert_eq!(rows_affected("CREATE TABLE"), None);
/// assert_eq!(rows_affected("UPDATE 18446744073709551616"), None); // past u64
/// ```
pub fn rows_affected(tag: &str) -> Option<u64> {
    // Every CommandComplete goes through here (10,000 of them in an executemany of
    // 10,000 rows): the digits are read from the end by hand, without a search.
    let bytes = tag.as_bytes();
    let digits = bytes
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let start = bytes.len() - digits;
    if digits == 0 || digits > 20 || (start > 0 && bytes[start - 1] != b' ') {
        return None;
    }
    bytes[start..].iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}
