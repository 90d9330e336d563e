//! The crate's one error type: what went wrong ([`ErrorKind`]), the server's
//! error with every field when it was the server, and the underlying cause.

use std::error::Error as StdError;
use std::fmt;
use std::io;

use ferropg_core::sqlstate::SqlState;
use ferropg_core::DbError;

/// The cause of an [`Error`], boxed.
type Source = Box<dyn StdError + Send + Sync>;

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The server reported an error; [`Error::as_db_error`] has its fields. The
    /// connection stays usable unless the error was FATAL.
    Db,
    /// Reading from or writing to the socket failed (including a refused connection).
    /// The connection is closed.
    Io,
    /// The connection is closed: by [`Connection::close`](crate::Connection::close), by
    /// the server, or by an earlier failure.
    Closed,
    /// The server sent bytes that are not valid protocol, or a message at a point where
    /// it makes no sense. The connection is closed.
    Protocol,
    /// The settings are unusable: a DSN that does not parse, no user name, an
    /// unsupported `sslmode`.
    Config,
    /// Authentication could not proceed on the client side: the server asked for a
    /// password and none was given, an unsupported method, or the server failed SCRAM
    /// verification. A password the server rejects is a [`ErrorKind::Db`] error with
    /// SQLSTATE `28P01`.
    Auth,
    /// A parameter could not be converted by its `ToSql` implementation (including a
    /// Rust type that does not match the parameter's PostgreSQL type).
    ToSql,
    /// A column value could not be converted by its `FromSql` implementation (including
    /// a Rust type that does not match the column's PostgreSQL type, or NULL into a
    /// non-`Option` type).
    FromSql,
    /// `connect_timeout` elapsed while connecting, or a call took longer than the
    /// connection's [`timeout`](crate::Connection::set_timeout) (its query was then
    /// cancelled; the connection stays usable).
    Timeout,
    /// `query_one` got no row or more than one; `query_opt` got more than one.
    RowCount,
    /// [`Row::get`](crate::Row::get) was given a column name or index that the row
    /// does not have.
    ColumnNotFound,
    /// The number of parameters given differs from the number the statement takes.
    /// Nothing was sent; the connection is unaffected.
    ParameterCount,
    /// A [`Statement`](crate::Statement) prepared on one connection was used on
    /// another (or a [`ClientPortal`](crate::ClientPortal) bound on one client).
    WrongConnection,
    /// A message could not be encoded (a query string with a NUL byte, too many
    /// parameters). Nothing was sent.
    Encode,
    /// A COPY call was given a statement that does not start a COPY in its
    /// direction (`copy_in` needs `COPY ... FROM STDIN`, `copy_out` `COPY ... TO
    /// STDOUT`; the statement ran), or a [`CopyIn`](crate::CopyIn) was used after
    /// its COPY ended. The connection is unaffected.
    Copy,
    /// `connect` reached servers, but none of the kind `target_session_attrs` asks
    /// for.
    NoMatchingServer,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Db => "db error",
            ErrorKind::Io => "I/O error",
            ErrorKind::Closed => "connection closed",
            ErrorKind::Protocol => "protocol error",
            ErrorKind::Config => "invalid configuration",
            ErrorKind::Auth => "authentication error",
            ErrorKind::ToSql => "error serializing a parameter",
            ErrorKind::FromSql => "error deserializing a column",
            ErrorKind::Timeout => "timeout",
            ErrorKind::RowCount => "unexpected number of rows",
            ErrorKind::ColumnNotFound => "column not found",
            ErrorKind::ParameterCount => "wrong number of parameters",
            ErrorKind::WrongConnection => "statement from another connection",
            ErrorKind::Encode => "error encoding a message",
            ErrorKind::Copy => "COPY error",
            ErrorKind::NoMatchingServer => "no matching server",
        })
    }
}

/// An error from ferropg.
///
/// [`kind`](Error::kind) says what failed. For server errors
/// [`as_db_error`](Error::as_db_error) gives every field the server sent and
/// [`code`](Error::code) the SQLSTATE. `Display` prints the kind, the context and
/// the cause on one line; [`source`](StdError::source) returns the cause.
pub struct Error(Box<Inner>);

struct Inner {
    kind: ErrorKind,
    context: Option<String>,
    db: Option<DbError>,
    code: Option<SqlState>,
    source: Option<Source>,
}

impl Error {
    fn new(kind: ErrorKind, context: Option<String>, source: Option<Source>) -> Error {
        Error(Box::new(Inner {
            kind,
            context,
            db: None,
            code: None,
            source,
        }))
    }

    /// The underlying cause, taken out of the error (tokio-postgres's
    /// `into_source`): the [`DbError`] of a server error, the I/O error, the
    /// conversion's error, ...
    pub fn into_source(self) -> Option<Box<dyn StdError + Send + Sync>> {
        let inner = *self.0;
        match (inner.db, inner.source) {
            (Some(db), _) => Some(Box::new(db)),
            (None, source) => source,
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The SQLSTATE of a server error.
    pub fn code(&self) -> Option<&SqlState> {
        self.0.code.as_ref()
    }

    /// The server's error with all its fields (message, detail, hint, position,
    /// constraint, table, ...), when the server reported it.
    pub fn as_db_error(&self) -> Option<&DbError> {
        self.0.db.as_ref()
    }

    /// True when this error means the connection can no longer be used.
    pub fn is_closed(&self) -> bool {
        match self.0.kind {
            ErrorKind::Io | ErrorKind::Closed | ErrorKind::Protocol => true,
            ErrorKind::Db => self.0.db.as_ref().is_some_and(DbError::is_fatal),
            _ => false,
        }
    }

    pub(crate) fn db(err: DbError) -> Error {
        let mut e = Error::new(ErrorKind::Db, None, None);
        e.0.code = Some(*err.code());
        e.0.db = Some(err);
        e
    }

    pub(crate) fn io(context: impl Into<String>, err: io::Error) -> Error {
        Error::new(ErrorKind::Io, Some(context.into()), Some(Box::new(err)))
    }

    pub(crate) fn closed(context: impl Into<String>) -> Error {
        Error::new(ErrorKind::Closed, Some(context.into()), None)
    }

    pub(crate) fn protocol(context: impl Into<String>) -> Error {
        Error::new(ErrorKind::Protocol, Some(context.into()), None)
    }

    pub(crate) fn config(context: impl Into<String>) -> Error {
        Error::new(ErrorKind::Config, Some(context.into()), None)
    }

    pub(crate) fn auth(context: impl Into<String>) -> Error {
        Error::new(ErrorKind::Auth, Some(context.into()), None)
    }

    pub(crate) fn encode(context: impl Into<String>) -> Error {
        Error::new(ErrorKind::Encode, Some(context.into()), None)
    }

    pub(crate) fn copy(context: impl Into<String>) -> Error {
        Error::new(ErrorKind::Copy, Some(context.into()), None)
    }

    pub(crate) fn no_matching_server(context: impl Into<String>) -> Error {
        Error::new(ErrorKind::NoMatchingServer, Some(context.into()), None)
    }

    pub(crate) fn timeout(context: impl Into<String>) -> Error {
        Error::new(ErrorKind::Timeout, Some(context.into()), None)
    }

    pub(crate) fn to_sql(index: usize, err: Source) -> Error {
        Error::new(
            ErrorKind::ToSql,
            Some(format!("parameter ${}", index + 1)),
            Some(err),
        )
    }

    pub(crate) fn from_sql(index: usize, name: &str, err: Source) -> Error {
        Error::new(
            ErrorKind::FromSql,
            Some(format!("column {index} ({name:?})")),
            Some(err),
        )
    }

    pub(crate) fn row_count(expected: &str, got: usize) -> Error {
        Error::new(
            ErrorKind::RowCount,
            Some(format!("expected {expected}, got {got}")),
            None,
        )
    }

    pub(crate) fn column_not_found(index: impl fmt::Display) -> Error {
        Error::new(ErrorKind::ColumnNotFound, Some(index.to_string()), None)
    }

    pub(crate) fn parameter_count(expected: usize, got: usize) -> Error {
        Error::new(
            ErrorKind::ParameterCount,
            Some(format!(
                "the statement takes {expected} parameters but {got} were given"
            )),
            None,
        )
    }

    pub(crate) fn wrong_connection() -> Error {
        Error::new(
            ErrorKind::WrongConnection,
            Some("the statement was prepared on a different connection".into()),
            None,
        )
    }

    /// A portal bound on one client, fetched through another.
    pub(crate) fn wrong_client_portal() -> Error {
        Error::new(
            ErrorKind::WrongConnection,
            Some("the portal was bound on a different client".into()),
            None,
        )
    }

    /// Converts an error of the sans-IO core.
    pub(crate) fn from_core(err: ferropg_core::Error) -> Error {
        use ferropg_core::Error as Core;
        match err {
            Core::Db(db) => Error::db(db),
            Core::Parse(e) => Error::new(ErrorKind::Protocol, None, Some(Box::new(e))),
            Core::Unexpected(m) => Error::protocol(m),
            Core::Auth(m) => Error::auth(m),
            Core::Encode(m) => Error::encode(m),
        }
    }
}

impl From<ferropg_core::message::frontend::EncodeError> for Error {
    fn from(e: ferropg_core::message::frontend::EncodeError) -> Error {
        Error::encode(e.0)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.0.kind);
        if let Some(c) = &self.0.context {
            d.field("context", c);
        }
        if let Some(db) = &self.0.db {
            d.field("db", db);
        }
        if let Some(s) = &self.0.source {
            d.field("source", s);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.kind)?;
        if let Some(c) = &self.0.context {
            write!(f, ": {c}")?;
        }
        if let Some(db) = &self.0.db {
            write!(f, ": {db}")?;
            if let Some(code) = &self.0.code {
                write!(f, " (SQLSTATE {code})")?;
            }
        }
        if let Some(s) = &self.0.source {
            write!(f, ": {s}")?;
        }
        Ok(())
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        if let Some(db) = &self.0.db {
            return Some(db);
        }
        self.0
            .source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_error_exposes_fields_and_code() {
        let db = DbError::from_pairs([
            (b'S', "ERROR"),
            (b'C', "23505"),
            (b'M', "duplicate key"),
            (b'n', "t_pkey"),
        ]);
        let e = Error::db(db);
        assert_eq!(e.kind(), ErrorKind::Db);
        assert_eq!(e.code().map(SqlState::code), Some("23505"));
        assert_eq!(e.as_db_error().unwrap().constraint(), Some("t_pkey"));
        let text = e.to_string();
        assert!(
            text.contains("duplicate key") && text.contains("23505"),
            "{text}"
        );
        assert!(e.source().is_some());
        assert!(!e.is_closed());
    }

    #[test]
    fn io_error_keeps_its_source() {
        let e = Error::io("writing", io::Error::other("boom"));
        assert_eq!(e.kind(), ErrorKind::Io);
        assert!(e.to_string().contains("boom"));
        assert_eq!(e.source().unwrap().to_string(), "boom");
        assert!(e.is_closed());
        assert!(e.code().is_none());
    }

    #[test]
    fn error_is_send_sync() {
        fn check<T: Send + Sync + 'static>() {}
        check::<Error>();
    }
}
