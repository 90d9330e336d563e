//! Frontend (client to server) messages, encoded through `postgres-protocol`.
//!
//! These wrappers fix the small choices every caller would otherwise repeat
//! (protocol 3.0 startup, all-binary or per-column formats) and turn encoding
//! failures into [`EncodeError`].

use bytes::{BufMut, BytesMut};
use postgres_protocol::message::frontend;
use postgres_protocol::IsNull;

pub use frontend::{cancel_request, copy_done, flush, ssl_request, sync, terminate};

/// The request code of a CancelRequest (1234 in the high 16 bits, 5678 in the low).
pub const CANCEL_REQUEST_CODE: i32 = 80_877_102;

/// A CancelRequest for backend `process_id`, carrying `secret_key` exactly as the
/// server sent it in BackendKeyData.
///
/// [`cancel_request`] takes the key as an `i32`, which only fits protocol 3.0's
/// 4-byte keys; from protocol 3.2 on a key is up to 256 bytes. The message is an
/// Int32 length (12 plus the key's size), the Int32 code [`CANCEL_REQUEST_CODE`],
/// the Int32 process ID and the key bytes. It has no tag byte and goes alone on a
/// new connection. The key is written as given (the parser accepts 4 to 256 bytes
/// in BackendKeyData).
///
/// ```
/// use bytes::BytesMut;
/// use ferropg_core::message::frontend::cancel_request_with_key;
///
/// let mut buf = BytesMut::new();
/// cancel_request_with_key(4242, &[0xde, 0xad, 0xbe, 0xef], &mut buf);
/// assert_eq!(buf.len(), 16);
/// assert_eq!(&buf[..4], &16i32.to_be_bytes());
/// ```
pub fn cancel_request_with_key(process_id: i32, secret_key: &[u8], buf: &mut BytesMut) {
    let len = 12 + secret_key.len();
    buf.reserve(len);
    buf.put_i32(i32::try_from(len).unwrap_or(i32::MAX));
    buf.put_i32(CANCEL_REQUEST_CODE);
    buf.put_i32(process_id);
    buf.put_slice(secret_key);
}

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
    let start = buf.len();
    frontend::query(sql, buf)?;
    check_message_len(buf, start, "Query")
}

/// Parse `sql` into the statement `name` ("" for the unnamed statement).
pub fn parse(
    name: &str,
    sql: &str,
    param_types: impl IntoIterator<Item = u32>,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    let start = buf.len();
    frontend::parse(name, sql, param_types, buf)?;
    check_message_len(buf, start, "Parse")
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

/// The most parameters a statement may take here. Bind and Parse carry the count as an
/// Int16; the server reads it unsigned (65535), but the encoders write it signed, as
/// asyncpg and tokio-postgres do, so 32767 is the limit a client can rely on.
pub const MAX_PARAMETERS: usize = i16::MAX as usize;

/// The largest length field the server accepts in a Query, Parse or Bind message
/// (`PQ_LARGE_MESSAGE_LIMIT`, 1 GiB - 2): a longer message makes it drop the
/// connection, so it is refused before it is sent.
pub const MAX_FRONTEND_MESSAGE_LEN: usize = 0x3fff_fffe;

/// Checks a parameter count (arguments given, or a statement's parameters) against
/// [`MAX_PARAMETERS`].
pub fn check_parameter_count(count: usize) -> Result<(), EncodeError> {
    if count > MAX_PARAMETERS {
        return Err(EncodeError(format!(
            "the number of query arguments cannot exceed {MAX_PARAMETERS} (got {count})"
        )));
    }
    Ok(())
}

/// Refuses the message written into `buf` since `start` (its tag byte, then its
/// length field) if that length is over [`MAX_FRONTEND_MESSAGE_LEN`], removing it.
fn check_message_len(buf: &mut BytesMut, start: usize, what: &str) -> Result<(), EncodeError> {
    let len = buf.len() - start - 1;
    if len > MAX_FRONTEND_MESSAGE_LEN {
        buf.truncate(start);
        return Err(EncodeError(format!(
            "the {what} message would be {len} bytes long; the server accepts at most {MAX_FRONTEND_MESSAGE_LEN}"
        )));
    }
    Ok(())
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
    if let Err(e) = check_parameter_count(param_count) {
        return Err(BindFailure::Encode(e));
    }
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
        Ok(()) => check_message_len(buf, start, "Bind").map_err(BindFailure::Encode),
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

/// Refuses a COPY FROM STDIN that no COPY API asked for (one run through a query
/// method, or whose caller left): CopyFail with `message`, then, when the query went
/// through the extended protocol, one more Sync, since the server ignores the Syncs
/// sent during COPY IN and would otherwise never send ReadyForQuery.
pub fn refuse_copy_in(
    message: &str,
    extended: bool,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    copy_fail_message(message, buf)?;
    if extended {
        sync(buf);
    }
    Ok(())
}

/// CopyFail with this message.
pub fn copy_fail_message(message: &str, buf: &mut BytesMut) -> Result<(), EncodeError> {
    Ok(frontend::copy_fail(message, buf)?)
}

/// The largest payload [`copy_data`] puts in one message: a CopyData message's
/// length is an Int32 and the server refuses messages of 1 GiB or more.
pub const COPY_DATA_MAX: usize = 256 * 1024 * 1024;

/// CopyData carrying `data` (part of a COPY FROM STDIN stream), appended to `buf`.
/// Fails, appending nothing, for more than [`COPY_DATA_MAX`] bytes: split larger
/// payloads, COPY data may be cut anywhere.
///
/// ```
/// use bytes::BytesMut;
/// use ferropg_core::message::frontend::copy_data;
///
/// let mut buf = BytesMut::new();
/// copy_data(b"1\tapple\n", &mut buf).unwrap();
/// assert_eq!(&buf[..5], &[b'd', 0, 0, 0, 4 + 8]);
/// assert_eq!(&buf[5..], b"1\tapple\n");
/// ```
pub fn copy_data(data: &[u8], buf: &mut BytesMut) -> Result<(), EncodeError> {
    if data.len() > COPY_DATA_MAX {
        return Err(EncodeError(format!(
            "a CopyData message of {} bytes is too large (at most {COPY_DATA_MAX})",
            data.len()
        )));
    }
    buf.reserve(5 + data.len());
    buf.put_u8(b'd');
    // At most COPY_DATA_MAX + 4, which fits an i32.
    buf.put_i32((data.len() + 4) as i32);
    buf.put_slice(data);
    Ok(())
}

/// Starts a CopyData message whose payload the caller appends next; returns the
/// position to pass to [`end_copy_data`] once the payload is written. Lets a front
/// end encode rows straight into the message instead of copying them in.
pub fn begin_copy_data(buf: &mut BytesMut) -> usize {
    let start = buf.len();
    buf.put_u8(b'd');
    buf.put_i32(0);
    start
}

/// Fills in the length of the CopyData message started at `start` by
/// [`begin_copy_data`], which ends at the end of `buf`.
pub fn end_copy_data(start: usize, buf: &mut BytesMut) -> Result<(), EncodeError> {
    let payload = buf.len().saturating_sub(start + 5);
    if payload > COPY_DATA_MAX {
        buf.truncate(start);
        return Err(EncodeError(format!(
            "a CopyData message of {payload} bytes is too large (at most {COPY_DATA_MAX})"
        )));
    }
    let len = ((payload + 4) as i32).to_be_bytes();
    buf[start + 1..start + 5].copy_from_slice(&len);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_request_with_a_4_byte_key_matches_protocol_3_0() {
        let key = 0x0102_0304i32;
        let mut ours = BytesMut::new();
        cancel_request_with_key(-7, &key.to_be_bytes(), &mut ours);
        let mut theirs = BytesMut::new();
        cancel_request(-7, key, &mut theirs);
        assert_eq!(ours, theirs);
    }

    #[test]
    fn cancel_request_with_a_long_key() {
        let key: Vec<u8> = (0..=255u8).collect();
        let mut buf = BytesMut::from(&b"before"[..]);
        cancel_request_with_key(4242, &key, &mut buf);
        // Appended to what was there.
        assert_eq!(&buf[..6], b"before");
        let msg = &buf[6..];
        assert_eq!(msg.len(), 12 + 256);
        assert_eq!(msg[..4], (12 + 256i32).to_be_bytes());
        assert_eq!(msg[4..8], 80_877_102i32.to_be_bytes());
        assert_eq!(msg[8..12], 4242i32.to_be_bytes());
        assert_eq!(&msg[12..], &key[..]);
    }

    #[test]
    fn cancel_request_with_an_empty_key() {
        let mut buf = BytesMut::new();
        cancel_request_with_key(1, &[], &mut buf);
        assert_eq!(buf.len(), 12);
        assert_eq!(buf[..4], 12i32.to_be_bytes());
    }

    #[test]
    fn copy_data_matches_postgres_protocol() {
        let mut ours = BytesMut::from(&b"x"[..]);
        copy_data(b"1,apple\n2,pear\n", &mut ours).unwrap();
        let mut theirs = BytesMut::from(&b"x"[..]);
        frontend::CopyData::new(&b"1,apple\n2,pear\n"[..])
            .unwrap()
            .write(&mut theirs);
        assert_eq!(ours, theirs);

        let mut empty = BytesMut::new();
        copy_data(b"", &mut empty).unwrap();
        assert_eq!(&empty[..], &[b'd', 0, 0, 0, 4]);
    }

    #[test]
    fn copy_data_begun_then_ended_equals_copy_data() {
        let mut whole = BytesMut::new();
        copy_data(b"abc", &mut whole).unwrap();
        let mut parts = BytesMut::new();
        let start = begin_copy_data(&mut parts);
        parts.extend_from_slice(b"abc");
        end_copy_data(start, &mut parts).unwrap();
        assert_eq!(whole, parts);

        // After other messages in the same buffer.
        let mut buf = BytesMut::from(&b"prefix"[..]);
        let start = begin_copy_data(&mut buf);
        end_copy_data(start, &mut buf).unwrap();
        assert_eq!(&buf[6..], &[b'd', 0, 0, 0, 4]);
    }

    #[test]
    fn copy_data_too_large_is_an_error() {
        let big = vec![0u8; COPY_DATA_MAX + 1];
        let mut buf = BytesMut::new();
        assert!(copy_data(&big, &mut buf).is_err());
        assert!(buf.is_empty());
    }

    #[test]
    fn too_many_parameters_are_refused_before_anything_is_written() {
        let mut buf = BytesMut::from(&b"earlier"[..]);
        let err = bind::<()>(
            "",
            "s",
            [1],
            MAX_PARAMETERS + 1,
            |_, _| Ok(true),
            [1],
            &mut buf,
        )
        .unwrap_err();
        match err {
            BindFailure::Encode(e) => assert!(e.0.contains("cannot exceed 32767"), "{e}"),
            BindFailure::Param(()) => panic!("no parameter was written"),
        }
        assert_eq!(&buf[..], b"earlier");
        assert!(bind::<()>("", "s", [1], MAX_PARAMETERS, |_, _| Ok(true), [1], &mut buf).is_ok());
    }

    #[test]
    fn a_message_longer_than_the_server_takes_is_refused() {
        let mut buf = BytesMut::from(&b"earlier"[..]);
        // A Query's length field counts itself (4), the text and its NUL.
        let huge = "x".repeat(MAX_FRONTEND_MESSAGE_LEN - 4);
        assert!(query(&huge, &mut buf).is_err());
        assert_eq!(&buf[..], b"earlier");
        assert!(query(&huge[..MAX_FRONTEND_MESSAGE_LEN - 5], &mut buf).is_ok());
        assert_eq!(buf.len(), 7 + 1 + MAX_FRONTEND_MESSAGE_LEN);
    }
}
