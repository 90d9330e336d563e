//! Frontend (client to server) messages, encoded through `postgres-protocol`.
//!
//! These wrappers fix the small choices every caller would otherwise repeat
//! (protocol 3.0 startup, all-binary or per-column formats) and turn encoding
//! failures into [`EncodeError`].

use bytes::BytesMut;
use postgres_protocol::message::frontend;
use postgres_protocol::IsNull;

pub use frontend::{cancel_request, copy_done, flush, ssl_request, sync, terminate};

/// A message could not be encoded (a string holding a NUL byte, or too many parameters).
#[derive(Debug)]
pub struct EncodeError(pub String);

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EncodeError {}

impl From<std::io::Error> for EncodeError {
    fn from(e: std::io::Error) -> Self {
        EncodeError(e.to_string())
    }
}

/// The StartupMessage with these parameters (protocol 3.0).
pub fn startup<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    Ok(frontend::startup_message(params, buf)?)
}

/// A PasswordMessage carrying `password` (clear text or an MD5 hash).
pub fn password(password: &[u8], buf: &mut BytesMut) -> Result<(), EncodeError> {
    Ok(frontend::password_message(password, buf)?)
}

/// SASLInitialResponse.
pub fn sasl_initial(mechanism: &str, data: &[u8], buf: &mut BytesMut) -> Result<(), EncodeError> {
    Ok(frontend::sasl_initial_response(mechanism, data, buf)?)
}

/// SASLResponse.
pub fn sasl_response(data: &[u8], buf: &mut BytesMut) -> Result<(), EncodeError> {
    Ok(frontend::sasl_response(data, buf)?)
}

/// A simple Query.
pub fn query(sql: &str, buf: &mut BytesMut) -> Result<(), EncodeError> {
    Ok(frontend::query(sql, buf)?)
}

/// Parse `sql` into the statement `name` ("" for the unnamed statement).
pub fn parse(
    name: &str,
    sql: &str,
    param_types: impl IntoIterator<Item = u32>,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    Ok(frontend::parse(name, sql, param_types, buf)?)
}

/// Describe a statement (`b'S'`) or a portal (`b'P'`).
pub fn describe(variant: u8, name: &str, buf: &mut BytesMut) -> Result<(), EncodeError> {
    Ok(frontend::describe(variant, name, buf)?)
}

/// Close a statement (`b'S'`) or a portal (`b'P'`).
pub fn close(variant: u8, name: &str, buf: &mut BytesMut) -> Result<(), EncodeError> {
    Ok(frontend::close(variant, name, buf)?)
}

/// Execute `portal`, returning at most `max_rows` rows (0 = all).
pub fn execute(portal: &str, max_rows: i32, buf: &mut BytesMut) -> Result<(), EncodeError> {
    Ok(frontend::execute(portal, max_rows, buf)?)
}

/// Bind parameters to a statement. `write_param` appends parameter `i`'s value and
/// says whether it was NULL; an error from it aborts the message and is returned as is.
#[allow(clippy::too_many_arguments)]
pub fn bind<E>(
    portal: &str,
    statement: &str,
    param_formats: impl IntoIterator<Item = i16>,
    param_count: usize,
    mut write_param: impl FnMut(usize, &mut BytesMut) -> Result<bool, E>,
    result_formats: impl IntoIterator<Item = i16>,
    buf: &mut BytesMut,
) -> Result<(), BindFailure<E>> {
    let start = buf.len();
    let mut failure = None;
    let result = frontend::bind(
        portal,
        statement,
        param_formats,
        0..param_count,
        |i, buf| match write_param(i, buf) {
            Ok(true) => Ok(IsNull::Yes),
            Ok(false) => Ok(IsNull::No),
            Err(e) => {
                failure = Some(e);
                Err("parameter encoding failed".into())
            }
        },
        result_formats,
        buf,
    );
    match result {
        Ok(()) => Ok(()),
        Err(err) => {
            // Never leave half a message in the output buffer.
            buf.truncate(start);
            match failure {
                Some(e) => Err(BindFailure::Param(e)),
                None => Err(BindFailure::Encode(EncodeError(match err {
                    frontend::BindError::Conversion(e) => e.to_string(),
                    frontend::BindError::Serialization(e) => e.to_string(),
                }))),
            }
        }
    }
}

/// Why a Bind message could not be encoded.
#[derive(Debug)]
pub enum BindFailure<E> {
    /// The parameter writer failed.
    Param(E),
    /// The message itself could not be encoded.
    Encode(EncodeError),
}

/// CopyFail with this message.
pub fn copy_fail_message(message: &str, buf: &mut BytesMut) -> Result<(), EncodeError> {
    Ok(frontend::copy_fail(message, buf)?)
}
