//! Helpers shared by the fuzz targets: a message splitter that behaves like a client's
//! read loop, and `walk`, which touches every view of a parsed message and checks the
//! invariants the parser documents ("every view is validated when the message is
//! parsed, so iterating afterwards cannot fail and cannot panic").

use ferropg_core::message::backend::{
    message_len, parse_message, Authentication, Message, ParseError,
};
use ferropg_core::types::{binary, datetime, numeric};
use ferropg_core::DbError;

/// One step of a client's read loop over `buf`.
pub enum Step<'a> {
    /// A whole message and the bytes it took.
    Message(Message<'a>, usize),
    /// A well-framed message whose body did not parse; `usize` is the frame's size, so
    /// the caller can skip it (a real client would drop the connection here).
    BadBody(ParseError, usize),
    /// The header itself is invalid (bad length): nothing more can be read.
    BadHeader(ParseError),
    /// The buffer holds only part of a message.
    NeedMore,
}

/// Parses the message at the front of `buf`, checking the framing invariants:
/// the consumed length is > 0 and within `buf`, it matches `message_len`, a cut
/// message asks for more input, and the same bytes without what follows parse the
/// same way.
pub fn step(buf: &[u8]) -> Step<'_> {
    match parse_message(buf) {
        Ok(Some((msg, used))) => {
            assert!(used > 0, "parse_message consumed 0 bytes");
            assert!(
                used <= buf.len(),
                "parse_message consumed {used} bytes of {}",
                buf.len()
            );
            assert!(used >= 5, "a message is at least a tag and a length");
            assert_eq!(message_len(buf), Some(used), "message_len disagrees");
            // The message must not depend on the bytes after it...
            match parse_message(&buf[..used]) {
                Ok(Some((again, used2))) => {
                    assert_eq!(used2, used);
                    assert_eq!(again, msg, "message changed when the tail was cut off");
                }
                other => panic!("exact frame did not parse the same: {other:?}"),
            }
            // ...and one byte short, it is incomplete (never an error, never a message).
            assert_eq!(
                parse_message(&buf[..used - 1]),
                Ok(None),
                "a truncated frame must ask for more input"
            );
            Step::Message(msg, used)
        }
        Ok(None) => {
            if buf.len() >= 5 {
                let need = message_len(buf).expect("header present");
                assert!(
                    need > buf.len(),
                    "Ok(None) although the {need}-byte frame is complete in {} bytes",
                    buf.len()
                );
            }
            Step::NeedMore
        }
        Err(e) => {
            let _ = e.to_string();
            match e {
                ParseError::BadLength { .. } => Step::BadHeader(e),
                _ => {
                    let len = message_len(buf).expect("a body error needs a header");
                    assert!(
                        (5..=buf.len()).contains(&len),
                        "body error {e:?} for a frame of {len} bytes in a {}-byte buffer",
                        buf.len()
                    );
                    Step::BadBody(e, len)
                }
            }
        }
    }
}

/// Touches every view of `msg` and checks what parse time promised.
pub fn walk(msg: &Message<'_>) {
    let _ = format!("{msg:?}");
    match msg {
        Message::Authentication(auth) => match auth {
            Authentication::Sasl(mechs) => {
                for m in mechs.iter() {
                    assert!(!m.is_empty() && !m.contains('\0'));
                }
            }
            Authentication::GssContinue(d)
            | Authentication::SaslContinue(d)
            | Authentication::SaslFinal(d) => {
                let _ = d.len();
            }
            Authentication::Md5Password { salt } => {
                let _ = salt;
            }
            Authentication::Ok
            | Authentication::KerberosV5
            | Authentication::CleartextPassword
            | Authentication::Gss
            | Authentication::Sspi => {}
        },
        Message::BackendKeyData { secret_key, .. } => {
            assert!((4..=256).contains(&secret_key.len()));
        }
        Message::CommandComplete { tag } => assert!(!tag.contains('\0')),
        Message::CopyInResponse(f) | Message::CopyOutResponse(f) | Message::CopyBothResponse(f) => {
            let _ = f.format;
            let _ = f.column_formats().count();
        }
        Message::CopyData(d) => {
            let _ = d.len();
        }
        Message::DataRow(row) => {
            let values = row.values();
            assert_eq!(values.len(), row.len());
            let mut n = 0usize;
            let mut bytes = 0usize;
            for v in values {
                n += 1;
                bytes += 4;
                if let Some(v) = v {
                    bytes += v.len();
                    decode_all(v);
                }
            }
            assert_eq!(n, row.len(), "DataRow yielded a different number of values");
            assert_eq!(
                bytes,
                row.raw().len(),
                "DataRow values do not cover the body"
            );
            assert_eq!(row.is_empty(), row.len() == 0);
        }
        Message::ErrorResponse(fields) | Message::NoticeResponse(fields) => {
            let mut n = 0;
            for (code, value) in fields.iter() {
                assert_ne!(code, 0);
                assert!(!value.contains('\0'));
                assert_eq!(fields.get(code).is_some(), true);
                n += 1;
            }
            let err = DbError::from_pairs(fields.iter());
            assert_eq!(err.fields().count(), n);
            let _ = err.to_string();
            let _ = err.code();
            let _ = (
                err.severity(),
                err.severity_en(),
                err.message(),
                err.detail(),
            );
            let _ = (err.hint(), err.position(), err.where_(), err.schema());
            let _ = (err.table(), err.column(), err.datatype());
            let _ = (err.constraint(), err.routine(), err.is_fatal());
            let _ = (err.file(), err.line());
        }
        Message::FunctionCallResponse(v) => {
            if let Some(v) = v {
                decode_all(v);
            }
        }
        Message::NegotiateProtocolVersion { unrecognized, .. } => {
            assert_eq!(unrecognized.iter().count(), unrecognized.len());
            assert_eq!(unrecognized.is_empty(), unrecognized.len() == 0);
        }
        Message::NotificationResponse {
            channel, payload, ..
        } => {
            assert!(!channel.contains('\0') && !payload.contains('\0'));
        }
        Message::ParameterDescription(p) => {
            assert_eq!(p.types().count(), p.len());
            assert_eq!(p.is_empty(), p.len() == 0);
        }
        Message::ParameterStatus { name, value } => {
            assert!(!name.contains('\0') && !value.contains('\0'));
        }
        Message::RowDescription(desc) => {
            let mut n = 0;
            for f in desc.fields() {
                assert!(!f.name.contains('\0'));
                n += 1;
            }
            assert_eq!(
                n,
                desc.len(),
                "RowDescription yielded a different number of fields"
            );
            assert_eq!(desc.is_empty(), desc.len() == 0);
        }
        Message::ReadyForQuery(_)
        | Message::BindComplete
        | Message::CloseComplete
        | Message::CopyDone
        | Message::EmptyQueryResponse
        | Message::NoData
        | Message::ParseComplete
        | Message::PortalSuspended => {}
    }
}

/// Runs a column value through every binary decoder: none may panic, whatever the bytes.
pub fn decode_all(v: &[u8]) {
    let _ = numeric::decode_to_string(v);
    let _ = datetime::decode_interval(v);
    let _ = datetime::decode_timetz(v);
    let _ = binary::decode_bool(v);
    let _ = binary::decode_i16(v);
    let _ = binary::decode_i32(v);
    let _ = binary::decode_i64(v);
    let _ = binary::decode_u32(v);
    let _ = binary::decode_f32(v);
    let _ = binary::decode_f64(v);
    let _ = binary::decode_uuid(v);
    let _ = binary::decode_text(v);
    let _ = binary::decode_jsonb(v);
}

/// Checks that `out` holds well-framed frontend messages (tag, then a length that
/// counts itself and the body), as written by the core's encoders.
pub fn check_frontend_frames(mut out: &[u8]) {
    while !out.is_empty() {
        assert!(out.len() >= 5, "short frontend message: {out:?}");
        let len = i32::from_be_bytes([out[1], out[2], out[3], out[4]]);
        assert!(len >= 4, "bad frontend length {len}");
        let total = len as usize + 1;
        assert!(total <= out.len(), "frontend message overruns the buffer");
        out = &out[total..];
    }
}
