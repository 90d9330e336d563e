//! The core's error types: a server error with every field, and everything else
//! that can end an exchange.

use std::fmt;

use crate::message::{ErrorFields, ParseError};
use crate::sqlstate::SqlState;

/// An ErrorResponse or NoticeResponse, owned, with every field the server sent.
///
/// The accessors have tokio-postgres' names and types (`code`, `where_`, `schema`,
/// `table`, `position`...), so that code written against its `DbError` reads ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbError {
    fields: Vec<(u8, Box<str>)>,
    /// `C`, parsed once: matching on it is the common use of an error.
    code: SqlState,
    /// `P`, or `p` with `q`.
    position: Option<ErrorPosition>,
}

/// Where in a query an error lies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorPosition {
    /// A 1-based character position in the query the client sent (`P`).
    Original(u32),
    /// A position in a query the server generated internally (`p`), with that
    /// query's text (`q`): the body of a function, say.
    Internal {
        /// The 1-based character position in `query`.
        position: u32,
        /// The internally generated query.
        query: String,
    },
}

/// The severity of a server error or notice, from its non-localised `V` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// `PANIC`: the server restarts.
    Panic,
    /// `FATAL`: the session ends.
    Fatal,
    /// `ERROR`: the statement failed.
    Error,
    /// `WARNING`.
    Warning,
    /// `NOTICE`.
    Notice,
    /// `DEBUG` (any level).
    Debug,
    /// `INFO`.
    Info,
    /// `LOG`.
    Log,
}

impl Severity {
    /// The severity a `V` field spells, if it is one PostgreSQL sends.
    pub fn parse(text: &str) -> Option<Severity> {
        Some(match text {
            "PANIC" => Severity::Panic,
            "FATAL" => Severity::Fatal,
            "ERROR" => Severity::Error,
            "WARNING" => Severity::Warning,
            "NOTICE" => Severity::Notice,
            "DEBUG" => Severity::Debug,
            "INFO" => Severity::Info,
            "LOG" => Severity::Log,
            _ => return None,
        })
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Panic => "PANIC",
            Severity::Fatal => "FATAL",
            Severity::Error => "ERROR",
            Severity::Warning => "WARNING",
            Severity::Notice => "NOTICE",
            Severity::Debug => "DEBUG",
            Severity::Info => "INFO",
            Severity::Log => "LOG",
        })
    }
}

impl DbError {
    /// Copies the fields out of a parsed message.
    pub(crate) fn from_fields(fields: &ErrorFields<'_>) -> Self {
        Self::from_vec(fields.iter().map(|(c, v)| (c, Box::from(v))).collect())
    }

    /// Builds an error from `(code, value)` pairs (for tests and synthetic errors).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (u8, &'a str)>) -> Self {
        Self::from_vec(pairs.into_iter().map(|(c, v)| (c, Box::from(v))).collect())
    }

    fn from_vec(fields: Vec<(u8, Box<str>)>) -> Self {
        let get = |code: u8| fields.iter().find(|(c, _)| *c == code).map(|(_, v)| &**v);
        let number = |code: u8| get(code).and_then(|p| p.parse().ok());
        let code = get(b'C')
            .and_then(SqlState::parse)
            .unwrap_or(crate::sqlstate::INTERNAL_ERROR);
        let position = match (number(b'P'), number(b'p')) {
            (Some(p), _) => Some(ErrorPosition::Original(p)),
            (None, Some(position)) => Some(ErrorPosition::Internal {
                position,
                query: get(b'q').unwrap_or_default().to_owned(),
            }),
            (None, None) => None,
        };
        DbError {
            fields,
            code,
            position,
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
    pub fn code(&self) -> &SqlState {
        &self.code
    }

    /// The localised severity (`S`).
    pub fn severity(&self) -> &str {
        self.field(b'S').unwrap_or("ERROR")
    }

    /// The non-localised severity (`V`, PostgreSQL 9.6 and later), falling back to `S`.
    pub fn severity_en(&self) -> &str {
        self.field(b'V').unwrap_or_else(|| self.severity())
    }

    /// The non-localised severity as a [`Severity`] (tokio-postgres's accessor):
    /// `None` for a server older than 9.6, which sends no `V` field.
    pub fn parsed_severity(&self) -> Option<Severity> {
        Severity::parse(self.field(b'V')?)
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

    /// Where in the query the error lies (`P`, or `p` and `q`).
    pub fn position(&self) -> Option<&ErrorPosition> {
        self.position.as_ref()
    }

    /// The context, a call stack (`W`): tokio-postgres' name (`where` is a keyword).
    pub fn where_(&self) -> Option<&str> {
        self.field(b'W')
    }

    /// The schema of the object the error is about (`s`).
    pub fn schema(&self) -> Option<&str> {
        self.field(b's')
    }

    /// The table the error is about (`t`).
    pub fn table(&self) -> Option<&str> {
        self.field(b't')
    }

    /// The column the error is about (`c`).
    pub fn column(&self) -> Option<&str> {
        self.field(b'c')
    }

    /// The data type the error is about (`d`).
    pub fn datatype(&self) -> Option<&str> {
        self.field(b'd')
    }

    /// The constraint the error is about (`n`).
    pub fn constraint(&self) -> Option<&str> {
        self.field(b'n')
    }

    /// The server's source file that reported the error (`F`).
    pub fn file(&self) -> Option<&str> {
        self.field(b'F')
    }

    /// The line in that file (`L`).
    pub fn line(&self) -> Option<u32> {
        self.field(b'L').and_then(|l| l.parse().ok())
    }

    /// The server's source routine that reported the error (`R`).
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
        self.code == crate::sqlstate::FEATURE_NOT_SUPPORTED
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
