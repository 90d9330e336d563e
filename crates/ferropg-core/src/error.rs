//! The core's error types: a server error with every field, and everything else
//! that can end an exchange.

use std::fmt;

use crate::message::{ErrorFields, ParseError};
use crate::sqlstate::SqlState;

/// An ErrorResponse or NoticeResponse, owned, with every field the server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbError {
    fields: Vec<(u8, Box<str>)>,
}

impl DbError {
    /// Copies the fields out of a parsed message.
    pub(crate) fn from_fields(fields: &ErrorFields<'_>) -> Self {
        DbError {
            fields: fields.iter().map(|(c, v)| (c, Box::from(v))).collect(),
        }
    }

    /// Builds an error from `(code, value)` pairs (for tests and synthetic errors).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (u8, &'a str)>) -> Self {
        DbError {
            fields: pairs.into_iter().map(|(c, v)| (c, Box::from(v))).collect(),
        }
    }

    /// Every `(field code, value)` pair in wire order.
    pub fn fields(&self) -> impl Iterator<Item = (u8, &str)> {
        self.fields.iter().map(|(c, v)| (*c, &**v))
    }

    /// One field by its code.
    pub fn field(&self, code: u8) -> Option<&str> {
        self.fields
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| &**v)
    }

    /// The SQLSTATE (`C`), or `XX000` when the server sent none.
    pub fn sqlstate(&self) -> SqlState {
        self.field(b'C')
            .and_then(SqlState::parse)
            .unwrap_or(crate::sqlstate::INTERNAL_ERROR)
    }

    /// The localised severity (`S`).
    pub fn severity(&self) -> &str {
        self.field(b'S').unwrap_or("ERROR")
    }

    /// The non-localised severity (`V`), falling back to `S`.
    pub fn severity_en(&self) -> &str {
        self.field(b'V').unwrap_or_else(|| self.severity())
    }

    /// The primary message (`M`).
    pub fn message(&self) -> &str {
        self.field(b'M').unwrap_or("")
    }

    /// The detail (`D`).
    pub fn detail(&self) -> Option<&str> {
        self.field(b'D')
    }

    /// The hint (`H`).
    pub fn hint(&self) -> Option<&str> {
        self.field(b'H')
    }

    /// The 1-based character position in the query (`P`).
    pub fn position(&self) -> Option<u32> {
        self.field(b'P').and_then(|p| p.parse().ok())
    }

    /// The context / call stack (`W`).
    pub fn context(&self) -> Option<&str> {
        self.field(b'W')
    }

    /// The schema name (`s`).
    pub fn schema_name(&self) -> Option<&str> {
        self.field(b's')
    }

    /// The table name (`t`).
    pub fn table_name(&self) -> Option<&str> {
        self.field(b't')
    }

    /// The column name (`c`).
    pub fn column_name(&self) -> Option<&str> {
        self.field(b'c')
    }

    /// The data type name (`d`).
    pub fn data_type_name(&self) -> Option<&str> {
        self.field(b'd')
    }

    /// The constraint name (`n`).
    pub fn constraint_name(&self) -> Option<&str> {
        self.field(b'n')
    }

    /// The server source routine (`R`).
    pub fn routine(&self) -> Option<&str> {
        self.field(b'R')
    }

    /// True for FATAL and PANIC: the server closes the session after sending it.
    pub fn is_fatal(&self) -> bool {
        matches!(self.severity_en(), "FATAL" | "PANIC")
    }

    /// True when the server refused to run a prepared statement because its plan would
    /// now change its result type ("cached plan must not change result type"): the
    /// statement must be prepared again. Told by SQLSTATE and routine, never by the
    /// message, which is translated.
    pub fn is_stale_plan(&self) -> bool {
        self.sqlstate() == crate::sqlstate::FEATURE_NOT_SUPPORTED
            && self.routine() == Some("RevalidateCachedQuery")
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.severity(), self.message())?;
        if let Some(d) = self.detail() {
            write!(f, "\nDETAIL:  {d}")?;
        }
        if let Some(h) = self.hint() {
            write!(f, "\nHINT:  {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for DbError {}

/// Anything that ends an exchange with the server.
#[derive(Debug)]
pub enum Error {
    /// The server reported an error.
    Db(DbError),
    /// The server sent bytes that are not valid protocol.
    Parse(ParseError),
    /// The server sent a valid message at a point where it makes no sense.
    Unexpected(String),
    /// Authentication could not proceed (no password, unsupported method, SCRAM failure).
    Auth(String),
    /// A message could not be encoded.
    Encode(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Db(e) => e.fmt(f),
            Error::Parse(e) => write!(f, "protocol error: {e}"),
            Error::Unexpected(m) => write!(f, "protocol error: {m}"),
            Error::Auth(m) => f.write_str(m),
            Error::Encode(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

impl From<ParseError> for Error {
    fn from(e: ParseError) -> Self {
        Error::Parse(e)
    }
}

impl From<crate::message::frontend::EncodeError> for Error {
    fn from(e: crate::message::frontend::EncodeError) -> Self {
        Error::Encode(e.0)
    }
}
