//! Backend (server to client) messages parsed over a borrowed byte slice.
//!
//! Every view is validated when the message is parsed, so iterating over a
//! [`DataRow`] or a [`RowDescription`] afterwards cannot fail and cannot panic.

use std::fmt;
use std::str;

/// The largest message we accept (PostgreSQL's own limit for a single value is 1 GiB).
pub const MAX_MESSAGE_LEN: usize = 0x4000_0000 + 1024;

/// Why a byte sequence is not a valid backend message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// The length field is below 4 or above [`MAX_MESSAGE_LEN`].
    BadLength {
        /// The message tag byte.
        tag: u8,
        /// The declared length.
        len: i64,
    },
    /// A tag byte that no protocol-3.0 server sends.
    UnknownTag(u8),
    /// The body of a message ended before one of its fields.
    Truncated(&'static str),
    /// A body carried bytes after its last field.
    TrailingBytes(&'static str),
    /// A field held an impossible value.
    Invalid(&'static str),
    /// A string field was not valid UTF-8.
    NotUtf8(&'static str),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::BadLength { tag, len } => {
                write!(f, "invalid length {len} in message {:?}", char::from(*tag))
            }
            ParseError::UnknownTag(t) => write!(f, "unknown message type {:?}", char::from(*t)),
            ParseError::Truncated(what) => write!(f, "truncated {what}"),
            ParseError::TrailingBytes(what) => write!(f, "unexpected trailing bytes in {what}"),
            ParseError::Invalid(what) => write!(f, "invalid {what}"),
            ParseError::NotUtf8(what) => write!(f, "{what} is not valid UTF-8"),
        }
    }
}

impl std::error::Error for ParseError {}

/// The transaction state reported by ReadyForQuery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransactionStatus {
    /// Not in a transaction block (`I`).
    #[default]
    Idle,
    /// In a transaction block (`T`).
    InTransaction,
    /// In a failed transaction block (`E`): queries are rejected until it ends.
    Failed,
}

/// The authentication request variants of an `R` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication<'a> {
    /// Authentication succeeded.
    Ok,
    /// Kerberos V5 (unsupported by modern servers).
    KerberosV5,
    /// Send the password in clear text.
    CleartextPassword,
    /// Send an MD5 hash of the password with this salt.
    Md5Password {
        /// The 4-byte salt.
        salt: [u8; 4],
    },
    /// GSSAPI.
    Gss,
    /// GSSAPI or SSPI continuation data.
    GssContinue(&'a [u8]),
    /// SSPI.
    Sspi,
    /// SASL, offering these mechanisms (raw: NUL-terminated names ending with an empty one).
    Sasl(SaslMechanisms<'a>),
    /// SASL challenge data.
    SaslContinue(&'a [u8]),
    /// SASL outcome data.
    SaslFinal(&'a [u8]),
}

/// The list of SASL mechanisms offered by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslMechanisms<'a>(&'a [u8]);

impl<'a> SaslMechanisms<'a> {
    /// The mechanism names, in the server's order of preference.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .split(|b| *b == 0)
            .take_while(|s| !s.is_empty())
            .filter_map(|s| str::from_utf8(s).ok())
    }
}

/// One message from the server, borrowing from the input buffer.
#[derive(Debug, Clone, PartialEq)]
pub enum Message<'a> {
    /// `R`: an authentication request or outcome.
    Authentication(Authentication<'a>),
    /// `K`: the cancellation key of this session.
    BackendKeyData {
        /// The backend's process ID.
        process_id: i32,
        /// The secret key (4 bytes in protocol 3.0, up to 256 in 3.2).
        secret_key: &'a [u8],
    },
    /// `2`
    BindComplete,
    /// `3`
    CloseComplete,
    /// `C`: a command finished with this tag (`INSERT 0 1`, `SELECT 3`, ...).
    CommandComplete {
        /// The command tag.
        tag: &'a str,
    },
    /// `d`: a chunk of COPY data.
    CopyData(&'a [u8]),
    /// `c`
    CopyDone,
    /// `G`: the server awaits COPY data.
    CopyInResponse(CopyFormat<'a>),
    /// `H`: the server starts sending COPY data.
    CopyOutResponse(CopyFormat<'a>),
    /// `W`: bidirectional COPY (replication).
    CopyBothResponse(CopyFormat<'a>),
    /// `D`: a result row.
    DataRow(DataRow<'a>),
    /// `I`: the query string was empty.
    EmptyQueryResponse,
    /// `E`: an error; the current operation is aborted.
    ErrorResponse(ErrorFields<'a>),
    /// `V`: the result of a function call.
    FunctionCallResponse(Option<&'a [u8]>),
    /// `v`: the server does not support the requested minor version or options.
    NegotiateProtocolVersion {
        /// The newest minor protocol version the server supports.
        newest_minor: i32,
        /// The protocol options the server did not recognise.
        unrecognized: StringList<'a>,
    },
    /// `n`: the statement returns no rows.
    NoData,
    /// `N`: a notice or warning.
    NoticeResponse(ErrorFields<'a>),
    /// `A`: a LISTEN/NOTIFY notification.
    NotificationResponse {
        /// The notifying backend's process ID.
        process_id: i32,
        /// The channel name.
        channel: &'a str,
        /// The payload string.
        payload: &'a str,
    },
    /// `t`: the parameter types of a prepared statement.
    ParameterDescription(ParameterDescription<'a>),
    /// `S`: a run-time parameter's value.
    ParameterStatus {
        /// The parameter name.
        name: &'a str,
        /// Its current value.
        value: &'a str,
    },
    /// `1`
    ParseComplete,
    /// `s`: Execute stopped at its row limit.
    PortalSuspended,
    /// `Z`: the server is ready for a new query.
    ReadyForQuery(TransactionStatus),
    /// `T`: the columns of the rows that follow.
    RowDescription(RowDescription<'a>),
}

/// The header of a COPY response: overall format and per-column formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyFormat<'a> {
    /// 0 for text, 1 for binary.
    pub format: i8,
    raw_columns: &'a [u8],
}

impl CopyFormat<'_> {
    /// Per-column format codes.
    pub fn column_formats(&self) -> impl Iterator<Item = i16> + '_ {
        self.raw_columns
            .chunks_exact(2)
            .map(|c| i16::from_be_bytes([c[0], c[1]]))
    }
}

/// A list of NUL-terminated strings, counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StringList<'a> {
    raw: &'a [u8],
    count: usize,
}

impl<'a> StringList<'a> {
    /// The strings.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        let raw = self.raw;
        raw.split(|b| *b == 0)
            .take(self.count)
            .map(|s| str::from_utf8(s).unwrap_or(""))
    }
    /// How many strings there are.
    pub fn len(&self) -> usize {
        self.count
    }
    /// True when the list is empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// A validated `D` message body: the column values of one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataRow<'a> {
    body: &'a [u8],
    count: u16,
}

impl<'a> DataRow<'a> {
    /// The number of columns.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }
    /// Checks the row against the `columns` its RowDescription announced; a row of
    /// another width means the stream is out of step, so the error is the
    /// connection's, not the statement's.
    pub fn check_width(&self, columns: usize) -> Result<(), String> {
        if self.len() == columns {
            Ok(())
        } else {
            Err(format!(
                "DataRow has {} columns, the RowDescription {columns}",
                self.len()
            ))
        }
    }
    /// True when the row has no columns.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    /// The column values in order; `None` is SQL NULL.
    pub fn values(&self) -> DataRowValues<'a> {
        DataRowValues {
            rest: self.body,
            left: self.count,
        }
    }
    /// The raw body after the column count.
    pub fn raw(&self) -> &'a [u8] {
        self.body
    }
}

/// Iterator over the values of a [`DataRow`].
#[derive(Debug, Clone)]
pub struct DataRowValues<'a> {
    rest: &'a [u8],
    left: u16,
}

impl<'a> Iterator for DataRowValues<'a> {
    type Item = Option<&'a [u8]>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // Validated at parse time; the fallbacks below only keep this free of panics.
        let (len, rest) = split_i32(self.rest)?;
        if len < 0 {
            self.rest = rest;
            return Some(None);
        }
        let len = len as usize;
        let value = rest.get(..len)?;
        self.rest = &rest[len..];
        Some(Some(value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::from(self.left), Some(usize::from(self.left)))
    }
}

impl ExactSizeIterator for DataRowValues<'_> {}

/// One column of a [`RowDescription`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldDescription<'a> {
    /// The column name.
    pub name: &'a str,
    /// The OID of the source table, or 0.
    pub table_oid: u32,
    /// The attribute number in the source table, or 0.
    pub column_id: i16,
    /// The OID of the column's data type.
    pub type_oid: u32,
    /// The type's size (`pg_type.typlen`).
    pub type_size: i16,
    /// The type modifier (`pg_attribute.atttypmod`).
    pub type_modifier: i32,
    /// The format code: 0 text, 1 binary.
    pub format: i16,
}

/// A validated `T` message body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowDescription<'a> {
    body: &'a [u8],
    count: u16,
}

impl<'a> RowDescription<'a> {
    /// The number of columns.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }
    /// True when there are no columns.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    /// The columns in order.
    pub fn fields(&self) -> impl Iterator<Item = FieldDescription<'a>> + 'a {
        let mut rest = self.body;
        (0..self.count).map_while(move |_| {
            let (field, tail) = read_field(rest).ok()?;
            rest = tail;
            Some(field)
        })
    }
}

/// A validated `t` message body: one type OID per statement parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParameterDescription<'a> {
    body: &'a [u8],
}

impl<'a> ParameterDescription<'a> {
    /// The number of parameters.
    pub fn len(&self) -> usize {
        self.body.len() / 4
    }
    /// True when the statement takes no parameters.
    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }
    /// The parameter type OIDs.
    pub fn types(&self) -> impl Iterator<Item = u32> + 'a {
        self.body
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }
}

/// The fields of an ErrorResponse or NoticeResponse, validated as UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorFields<'a> {
    body: &'a [u8],
}

impl<'a> ErrorFields<'a> {
    /// Every `(field code, value)` pair in wire order.
    pub fn iter(&self) -> impl Iterator<Item = (u8, &'a str)> + 'a {
        let mut rest = self.body;
        std::iter::from_fn(move || {
            let (&code, tail) = rest.split_first()?;
            if code == 0 {
                return None;
            }
            let (value, tail) = read_cstr(tail, "error field").ok()?;
            rest = tail;
            Some((code, value))
        })
    }
    /// The value of one field, by its code (`b'C'` for the SQLSTATE, `b'M'` for the message...).
    pub fn get(&self, code: u8) -> Option<&'a str> {
        self.iter().find(|(c, _)| *c == code).map(|(_, v)| v)
    }
}

/// Parses one message from the front of `buf`.
///
/// Returns `Ok(None)` when `buf` does not yet hold a whole message, and otherwise the
/// message and the number of bytes it took. The framing is [`frame_len`]'s.
pub fn parse_message(buf: &[u8]) -> Result<Option<(Message<'_>, usize)>, ParseError> {
    let Some(total) = frame_len(buf)? else {
        return Ok(None);
    };
    let Some(body) = buf.get(5..total) else {
        return Ok(None);
    };
    let msg = parse_body(buf[0], body)?;
    Ok(Some((msg, total)))
}

/// The size of the message at the front of `buf`, read from its header: the tag
/// byte plus the length field's value, so the number of bytes to take off `buf`
/// once that many are there.
///
/// Returns `Ok(None)` while `buf` holds less than the 5-byte header (tag and
/// Int32 length), and [`ParseError::BadLength`] when the length field is below 4
/// (it counts itself) or above [`MAX_MESSAGE_LEN`]. A bad length means the stream
/// has lost its framing: nothing after it can be read. Only the header is looked
/// at; the body may still be on its way.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, ParseError> {
    let Some(header) = buf.get(..5) else {
        return Ok(None);
    };
    let len = i32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    match usize::try_from(len) {
        Ok(l) if (4..=MAX_MESSAGE_LEN).contains(&l) => Ok(Some(l + 1)),
        _ => Err(ParseError::BadLength {
            tag: header[0],
            len: i64::from(len),
        }),
    }
}

/// [`frame_len`] without the error: `None` until the header is there, and also for
/// an impossible length. Kept for the fuzz targets; new code should call
/// [`frame_len`], which tells the two apart.
pub fn message_len(buf: &[u8]) -> Option<usize> {
    frame_len(buf).ok().flatten()
}

/// The server's answer to an SSLRequest, read by [`ssl_answer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslAnswer {
    /// `S`: the TLS handshake comes next.
    Tls,
    /// `N`: the server will not do TLS; the startup may go on in plain text.
    Plain,
    /// An ErrorResponse (a server too old for the request, or one refusing it). Its
    /// fields come before any TLS, so nothing in them may be trusted or shown.
    Error,
    /// Anything else, including bytes after `S` or `N`: what the server sent ahead
    /// of the handshake could have been injected by a man in the middle
    /// (CVE-2021-23222).
    Unexpected,
}

/// Reads the answer to an SSLRequest from all the bytes received for it.
///
/// ```
/// use ferropg_core::message::{ssl_answer, SslAnswer};
///
/// assert_eq!(ssl_answer(b"S"), SslAnswer::Tls);
/// assert_eq!(ssl_answer(b"N"), SslAnswer::Plain);
/// assert_eq!(ssl_answer(b"E\0\0\0\x08x"), SslAnswer::Error);
/// assert_eq!(ssl_answer(b"SR"), SslAnswer::Unexpected);
/// assert_eq!(ssl_answer(b""), SslAnswer::Unexpected);
/// ```
pub fn ssl_answer(received: &[u8]) -> SslAnswer {
    match received {
        [b'S'] => SslAnswer::Tls,
        [b'N'] => SslAnswer::Plain,
        [b'E', ..] => SslAnswer::Error,
        _ => SslAnswer::Unexpected,
    }
}

fn parse_body(tag: u8, body: &[u8]) -> Result<Message<'_>, ParseError> {
    let msg = match tag {
        b'R' => Message::Authentication(parse_auth(body)?),
        b'K' => {
            let (process_id, rest) =
                split_i32(body).ok_or(ParseError::Truncated("BackendKeyData"))?;
            if rest.len() < 4 || rest.len() > 256 {
                return Err(ParseError::Invalid("BackendKeyData secret key length"));
            }
            Message::BackendKeyData {
                process_id,
                secret_key: rest,
            }
        }
        b'2' => empty(body, Message::BindComplete, "BindComplete")?,
        b'3' => empty(body, Message::CloseComplete, "CloseComplete")?,
        b'C' => {
            let (tag, rest) = read_cstr(body, "CommandComplete")?;
            end(rest, "CommandComplete")?;
            Message::CommandComplete { tag }
        }
        b'd' => Message::CopyData(body),
        b'c' => empty(body, Message::CopyDone, "CopyDone")?,
        b'G' => Message::CopyInResponse(parse_copy_format(body)?),
        b'H' => Message::CopyOutResponse(parse_copy_format(body)?),
        b'W' => Message::CopyBothResponse(parse_copy_format(body)?),
        b'D' => Message::DataRow(parse_data_row(body)?),
        b'I' => empty(body, Message::EmptyQueryResponse, "EmptyQueryResponse")?,
        b'E' => Message::ErrorResponse(parse_error_fields(body)?),
        b'N' => Message::NoticeResponse(parse_error_fields(body)?),
        b'V' => {
            let (len, rest) =
                split_i32(body).ok_or(ParseError::Truncated("FunctionCallResponse"))?;
            if len < 0 {
                end(rest, "FunctionCallResponse")?;
                Message::FunctionCallResponse(None)
            } else {
                if rest.len() != len as usize {
                    return Err(ParseError::Invalid("FunctionCallResponse length"));
                }
                Message::FunctionCallResponse(Some(rest))
            }
        }
        b'v' => {
            let (newest_minor, rest) =
                split_i32(body).ok_or(ParseError::Truncated("NegotiateProtocolVersion"))?;
            let (count, mut rest) =
                split_i32(rest).ok_or(ParseError::Truncated("NegotiateProtocolVersion"))?;
            if count < 0 {
                return Err(ParseError::Invalid("NegotiateProtocolVersion option count"));
            }
            let raw = rest;
            for _ in 0..count {
                let (_, tail) = read_cstr(rest, "NegotiateProtocolVersion option")?;
                rest = tail;
            }
            end(rest, "NegotiateProtocolVersion")?;
            Message::NegotiateProtocolVersion {
                newest_minor,
                unrecognized: StringList {
                    raw,
                    count: count as usize,
                },
            }
        }
        b'n' => empty(body, Message::NoData, "NoData")?,
        b'A' => {
            let (process_id, rest) =
                split_i32(body).ok_or(ParseError::Truncated("NotificationResponse"))?;
            let (channel, rest) = read_cstr(rest, "NotificationResponse channel")?;
            let (payload, rest) = read_cstr(rest, "NotificationResponse payload")?;
            end(rest, "NotificationResponse")?;
            Message::NotificationResponse {
                process_id,
                channel,
                payload,
            }
        }
        b't' => {
            // The count is an Int16 that the server fills from an int: a statement with
            // more than 65535 parameters arrives with it wrapped. The frame's length is
            // still right, so the count is taken from it when the two agree modulo
            // 2^16, and the statement, not the connection, fails on the limit.
            let (count, rest) =
                split_i16(body).ok_or(ParseError::Truncated("ParameterDescription"))?;
            if rest.len() % 4 != 0 || (rest.len() / 4) % 0x1_0000 != usize::from(count as u16) {
                return Err(ParseError::Invalid("ParameterDescription length"));
            }
            Message::ParameterDescription(ParameterDescription { body: rest })
        }
        b'S' => {
            let (name, rest) = read_cstr(body, "ParameterStatus name")?;
            let (value, rest) = read_cstr(rest, "ParameterStatus value")?;
            end(rest, "ParameterStatus")?;
            Message::ParameterStatus { name, value }
        }
        b'1' => empty(body, Message::ParseComplete, "ParseComplete")?,
        b's' => empty(body, Message::PortalSuspended, "PortalSuspended")?,
        b'Z' => {
            let status = match body {
                [b'I'] => TransactionStatus::Idle,
                [b'T'] => TransactionStatus::InTransaction,
                [b'E'] => TransactionStatus::Failed,
                [_] => return Err(ParseError::Invalid("ReadyForQuery status")),
                _ => return Err(ParseError::Invalid("ReadyForQuery length")),
            };
            Message::ReadyForQuery(status)
        }
        b'T' => Message::RowDescription(parse_row_description(body)?),
        other => return Err(ParseError::UnknownTag(other)),
    };
    Ok(msg)
}

fn parse_auth(body: &[u8]) -> Result<Authentication<'_>, ParseError> {
    let (kind, rest) = split_i32(body).ok_or(ParseError::Truncated("Authentication"))?;
    let auth = match kind {
        0 => empty(rest, Authentication::Ok, "AuthenticationOk")?,
        2 => empty(rest, Authentication::KerberosV5, "AuthenticationKerberosV5")?,
        3 => empty(
            rest,
            Authentication::CleartextPassword,
            "AuthenticationCleartextPassword",
        )?,
        5 => {
            let salt: [u8; 4] = rest
                .try_into()
                .map_err(|_| ParseError::Invalid("AuthenticationMD5Password salt"))?;
            Authentication::Md5Password { salt }
        }
        7 => empty(rest, Authentication::Gss, "AuthenticationGSS")?,
        8 => Authentication::GssContinue(rest),
        9 => empty(rest, Authentication::Sspi, "AuthenticationSSPI")?,
        10 => {
            if rest.last() != Some(&0) {
                return Err(ParseError::Truncated("AuthenticationSASL"));
            }
            Authentication::Sasl(SaslMechanisms(rest))
        }
        11 => Authentication::SaslContinue(rest),
        12 => Authentication::SaslFinal(rest),
        _ => return Err(ParseError::Invalid("authentication request type")),
    };
    Ok(auth)
}

fn parse_copy_format(body: &[u8]) -> Result<CopyFormat<'_>, ParseError> {
    let (&format, rest) = body
        .split_first()
        .ok_or(ParseError::Truncated("COPY response"))?;
    let (count, rest) = split_i16(rest).ok_or(ParseError::Truncated("COPY response"))?;
    if count < 0 || rest.len() != count as usize * 2 {
        return Err(ParseError::Invalid("COPY response column count"));
    }
    Ok(CopyFormat {
        format: format as i8,
        raw_columns: rest,
    })
}

fn parse_data_row(body: &[u8]) -> Result<DataRow<'_>, ParseError> {
    let (count, rest) = split_i16(body).ok_or(ParseError::Truncated("DataRow"))?;
    if count < 0 {
        return Err(ParseError::Invalid("DataRow column count"));
    }
    let mut cursor = rest;
    for _ in 0..count {
        let (len, tail) = split_i32(cursor).ok_or(ParseError::Truncated("DataRow value length"))?;
        cursor = if len < 0 {
            if len != -1 {
                return Err(ParseError::Invalid("DataRow value length"));
            }
            tail
        } else {
            tail.get(len as usize..)
                .ok_or(ParseError::Truncated("DataRow value"))?
        };
    }
    end(cursor, "DataRow")?;
    Ok(DataRow {
        body: rest,
        count: count as u16,
    })
}

fn parse_row_description(body: &[u8]) -> Result<RowDescription<'_>, ParseError> {
    let (count, rest) = split_i16(body).ok_or(ParseError::Truncated("RowDescription"))?;
    if count < 0 {
        return Err(ParseError::Invalid("RowDescription column count"));
    }
    let mut cursor = rest;
    for _ in 0..count {
        let (_, tail) = read_field(cursor)?;
        cursor = tail;
    }
    end(cursor, "RowDescription")?;
    Ok(RowDescription {
        body: rest,
        count: count as u16,
    })
}

fn read_field(buf: &[u8]) -> Result<(FieldDescription<'_>, &[u8]), ParseError> {
    const WHAT: &str = "RowDescription field";
    let (name, rest) = read_cstr(buf, WHAT)?;
    let fixed = rest.get(..18).ok_or(ParseError::Truncated(WHAT))?;
    let field = FieldDescription {
        name,
        table_oid: u32::from_be_bytes([fixed[0], fixed[1], fixed[2], fixed[3]]),
        column_id: i16::from_be_bytes([fixed[4], fixed[5]]),
        type_oid: u32::from_be_bytes([fixed[6], fixed[7], fixed[8], fixed[9]]),
        type_size: i16::from_be_bytes([fixed[10], fixed[11]]),
        type_modifier: i32::from_be_bytes([fixed[12], fixed[13], fixed[14], fixed[15]]),
        format: i16::from_be_bytes([fixed[16], fixed[17]]),
    };
    Ok((field, &rest[18..]))
}

fn parse_error_fields(body: &[u8]) -> Result<ErrorFields<'_>, ParseError> {
    let mut rest = body;
    loop {
        let (&code, tail) = rest
            .split_first()
            .ok_or(ParseError::Truncated("error fields"))?;
        if code == 0 {
            end(tail, "error fields")?;
            break;
        }
        let (_, tail) = read_cstr(tail, "error field")?;
        rest = tail;
    }
    Ok(ErrorFields { body })
}

fn empty<T>(body: &[u8], value: T, what: &'static str) -> Result<T, ParseError> {
    end(body, what)?;
    Ok(value)
}

fn end(rest: &[u8], what: &'static str) -> Result<(), ParseError> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(ParseError::TrailingBytes(what))
    }
}

#[inline]
fn split_i32(buf: &[u8]) -> Option<(i32, &[u8])> {
    let (head, rest) = buf.split_first_chunk::<4>()?;
    Some((i32::from_be_bytes(*head), rest))
}

#[inline]
fn split_i16(buf: &[u8]) -> Option<(i16, &[u8])> {
    let (head, rest) = buf.split_first_chunk::<2>()?;
    Some((i16::from_be_bytes(*head), rest))
}

fn read_cstr<'a>(buf: &'a [u8], what: &'static str) -> Result<(&'a str, &'a [u8]), ParseError> {
    let nul = buf
        .iter()
        .position(|b| *b == 0)
        .ok_or(ParseError::Truncated(what))?;
    let s = str::from_utf8(&buf[..nul]).map_err(|_| ParseError::NotUtf8(what))?;
    Ok((s, &buf[nul + 1..]))
}

#[cfg(test)]
mod tests {

    #[test]
    fn frame_len_reads_only_the_header() {
        assert_eq!(frame_len(b"Z\0\0"), Ok(None));
        assert_eq!(frame_len(b"Z\0\0\0\x05"), Ok(Some(6)));
        assert!(frame_len(b"Z\0\0\0\x02").is_err());
    }
    use super::*;

    fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn incomplete_input_asks_for_more() {
        let msg = frame(b'Z', b"I");
        for cut in 0..msg.len() {
            assert_eq!(parse_message(&msg[..cut]), Ok(None));
        }
        assert_eq!(
            parse_message(&msg),
            Ok(Some((Message::ReadyForQuery(TransactionStatus::Idle), 6)))
        );
    }

    #[test]
    fn parameter_description_counts_past_the_int16_take_the_frame_length() {
        // 70,000 parameters: the server writes the count as 70,000 mod 65,536 = 4,464.
        let n = 70_000usize;
        let mut body = ((n % 0x1_0000) as u16).to_be_bytes().to_vec();
        for i in 0..n {
            body.extend_from_slice(&(i as u32).to_be_bytes());
        }
        let msg = frame(b't', &body);
        let Ok(Some((Message::ParameterDescription(desc), used))) = parse_message(&msg) else {
            panic!("not parsed");
        };
        assert_eq!(used, msg.len());
        assert_eq!(desc.len(), n);
        assert_eq!(desc.types().last(), Some(n as u32 - 1));
        // A count that disagrees with the length otherwise is still a broken frame.
        body[1] = body[1].wrapping_add(1);
        assert_eq!(
            parse_message(&frame(b't', &body)),
            Err(ParseError::Invalid("ParameterDescription length"))
        );
        assert_eq!(
            parse_message(&frame(b't', &[0, 1, 0, 0, 0])),
            Err(ParseError::Invalid("ParameterDescription length"))
        );
    }

    #[test]
    fn frame_len_reads_the_header() {
        let msg = frame(b'Z', b"I");
        for cut in 0..5 {
            assert_eq!(frame_len(&msg[..cut]), Ok(None), "{cut} bytes");
        }
        // The header is enough; the body may be missing.
        assert_eq!(frame_len(&msg[..5]), Ok(Some(6)));
        assert_eq!(frame_len(&msg), Ok(Some(6)));
        // What follows the message does not matter.
        let two = [msg.clone(), frame(b'C', b"SELECT 1\0")].concat();
        assert_eq!(frame_len(&two), Ok(Some(6)));
        assert_eq!(frame_len(&two[6..]), Ok(Some(two.len() - 6)));
        assert_eq!(frame_len(&[b'1', 0, 0, 0, 4]), Ok(Some(5)));
        let max = (MAX_MESSAGE_LEN as i32).to_be_bytes();
        assert_eq!(
            frame_len(&[b'D', max[0], max[1], max[2], max[3]]),
            Ok(Some(MAX_MESSAGE_LEN + 1))
        );
    }

    #[test]
    fn frame_len_rejects_impossible_lengths() {
        for len in [i32::MIN, -1, 0, 3, MAX_MESSAGE_LEN as i32 + 1, 0x7fff_ffff] {
            let mut header = vec![b'D'];
            header.extend_from_slice(&len.to_be_bytes());
            let want = ParseError::BadLength {
                tag: b'D',
                len: i64::from(len),
            };
            assert_eq!(frame_len(&header), Err(want.clone()), "length {len}");
            assert_eq!(parse_message(&header), Err(want), "length {len}");
            assert_eq!(message_len(&header), None, "length {len}");
        }
        assert_eq!(message_len(b"Z\0\0\0\x05I"), Some(6));
        assert_eq!(message_len(b"Z\0"), None);
    }

    #[test]
    fn data_row_values_and_nulls() {
        let mut body = 3i16.to_be_bytes().to_vec();
        body.extend_from_slice(&2i32.to_be_bytes());
        body.extend_from_slice(b"ab");
        body.extend_from_slice(&(-1i32).to_be_bytes());
        body.extend_from_slice(&0i32.to_be_bytes());
        let msg = frame(b'D', &body);
        let Some((Message::DataRow(row), _)) = parse_message(&msg).unwrap() else {
            panic!("not a data row");
        };
        let values: Vec<_> = row.values().collect();
        assert_eq!(values, vec![Some(&b"ab"[..]), None, Some(&b""[..])]);
    }

    #[test]
    fn data_row_overrun_is_an_error() {
        let mut body = 1i16.to_be_bytes().to_vec();
        body.extend_from_slice(&10i32.to_be_bytes());
        body.extend_from_slice(b"ab");
        assert!(parse_message(&frame(b'D', &body)).is_err());
    }

    #[test]
    fn row_description_fields() {
        let mut body = 1i16.to_be_bytes().to_vec();
        body.extend_from_slice(b"col\0");
        body.extend_from_slice(&0u32.to_be_bytes());
        body.extend_from_slice(&0i16.to_be_bytes());
        body.extend_from_slice(&23u32.to_be_bytes());
        body.extend_from_slice(&4i16.to_be_bytes());
        body.extend_from_slice(&(-1i32).to_be_bytes());
        body.extend_from_slice(&1i16.to_be_bytes());
        let msg = frame(b'T', &body);
        let Some((Message::RowDescription(desc), _)) = parse_message(&msg).unwrap() else {
            panic!("not a row description");
        };
        let fields: Vec<_> = desc.fields().collect();
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[0].name, "col");
        assert_eq!(fields[0].type_oid, 23);
        assert_eq!(fields[0].format, 1);
    }

    #[test]
    fn error_fields_are_read() {
        let msg = frame(b'E', b"SERROR\0C42601\0Msyntax error\0\0");
        let Some((Message::ErrorResponse(fields), _)) = parse_message(&msg).unwrap() else {
            panic!("not an error");
        };
        assert_eq!(fields.get(b'C'), Some("42601"));
        assert_eq!(fields.get(b'M'), Some("syntax error"));
        assert_eq!(fields.iter().count(), 3);
    }

    #[test]
    fn negotiate_protocol_version() {
        let mut body = 0i32.to_be_bytes().to_vec();
        body.extend_from_slice(&1i32.to_be_bytes());
        body.extend_from_slice(b"_pq_.x\0");
        let msg = frame(b'v', &body);
        let Some((Message::NegotiateProtocolVersion { unrecognized, .. }, _)) =
            parse_message(&msg).unwrap()
        else {
            panic!("not NegotiateProtocolVersion");
        };
        assert_eq!(unrecognized.iter().collect::<Vec<_>>(), vec!["_pq_.x"]);
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(matches!(
            parse_message(&frame(b'?', b"")),
            Err(ParseError::UnknownTag(b'?'))
        ));
        assert!(matches!(
            parse_message(&[b'Z', 0, 0, 0, 1]),
            Err(ParseError::BadLength { .. })
        ));
        assert!(parse_message(&frame(b'Z', b"X")).is_err());
        assert!(parse_message(&frame(b'C', b"no nul")).is_err());
        assert!(parse_message(&frame(b'E', b"Mx\0")).is_err());
    }
}
