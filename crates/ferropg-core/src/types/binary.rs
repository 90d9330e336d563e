//! Fixed-width binary values: booleans, integers, floats, UUIDs, jsonb framing.

use super::DecodeError;

/// Reads exactly `N` bytes.
#[inline]
pub fn fixed<const N: usize>(buf: &[u8], what: &'static str) -> Result<[u8; N], DecodeError> {
    buf.try_into().map_err(|_| DecodeError(what))
}

/// `bool`: one byte, 0 or 1.
#[inline]
pub fn decode_bool(buf: &[u8]) -> Result<bool, DecodeError> {
    match buf {
        [0] => Ok(false),
        [1] => Ok(true),
        _ => Err(DecodeError("invalid bool value")),
    }
}

/// `int2`.
#[inline]
pub fn decode_i16(buf: &[u8]) -> Result<i16, DecodeError> {
    fixed(buf, "invalid int2 length").map(i16::from_be_bytes)
}

/// `int4`.
#[inline]
pub fn decode_i32(buf: &[u8]) -> Result<i32, DecodeError> {
    fixed(buf, "invalid int4 length").map(i32::from_be_bytes)
}

/// `int8`.
#[inline]
pub fn decode_i64(buf: &[u8]) -> Result<i64, DecodeError> {
    fixed(buf, "invalid int8 length").map(i64::from_be_bytes)
}

/// `oid`.
#[inline]
pub fn decode_u32(buf: &[u8]) -> Result<u32, DecodeError> {
    fixed(buf, "invalid oid length").map(u32::from_be_bytes)
}

/// `float4`.
#[inline]
pub fn decode_f32(buf: &[u8]) -> Result<f32, DecodeError> {
    fixed(buf, "invalid float4 length").map(f32::from_be_bytes)
}

/// `float8`.
#[inline]
pub fn decode_f64(buf: &[u8]) -> Result<f64, DecodeError> {
    fixed(buf, "invalid float8 length").map(f64::from_be_bytes)
}

/// `uuid`: 16 bytes.
#[inline]
pub fn decode_uuid(buf: &[u8]) -> Result<[u8; 16], DecodeError> {
    fixed(buf, "invalid uuid length")
}

/// Text-like types (`text`, `varchar`, `bpchar`, `name`, `json`): UTF-8 bytes.
#[inline]
pub fn decode_text(buf: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(buf).map_err(|_| DecodeError("text value is not valid UTF-8"))
}

/// `jsonb`: a version byte (1) followed by the JSON text.
#[inline]
pub fn decode_jsonb(buf: &[u8]) -> Result<&str, DecodeError> {
    decode_text(jsonb_body(buf)?)
}

/// The JSON text bytes of a `jsonb` value, not yet checked to be UTF-8 (for a caller
/// whose string constructor checks that itself).
#[inline]
pub fn jsonb_body(buf: &[u8]) -> Result<&[u8], DecodeError> {
    match buf.split_first() {
        Some((&JSONB_VERSION, text)) => Ok(text),
        Some(_) => Err(DecodeError("unsupported jsonb format version")),
        None => Err(DecodeError("empty jsonb value")),
    }
}

/// The jsonb format version byte to put before the JSON text.
pub const JSONB_VERSION: u8 = 1;

/// Parses a UUID written as 32 hex digits, optionally with hyphens and braces or a
/// `urn:uuid:` prefix, as Python's `uuid.UUID(str)` accepts.
pub fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let t = text.trim();
    let t = t.strip_prefix("urn:uuid:").unwrap_or(t);
    let t = t
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(t);
    let mut out = [0u8; 16];
    let mut n = 0;
    for c in t.bytes() {
        if c == b'-' {
            continue;
        }
        let v = (c as char).to_digit(16)? as u8;
        if n >= 32 {
            return None;
        }
        out[n / 2] |= if n % 2 == 0 { v << 4 } else { v };
        n += 1;
    }
    (n == 32).then_some(out)
}

/// Writes a UUID in its canonical hyphenated lower-case form.
pub fn format_uuid(bytes: &[u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_width_lengths_are_checked() {
        assert_eq!(decode_i32(&[0, 0, 1, 0]), Ok(256));
        assert!(decode_i32(&[0, 0, 1]).is_err());
        assert!(decode_bool(&[2]).is_err());
        assert!(decode_jsonb(b"\x02{}").is_err());
        assert_eq!(decode_jsonb(b"\x01{}"), Ok("{}"));
    }

    #[test]
    fn uuid_text_round_trip() {
        let b = parse_uuid("{12345678-1234-5678-1234-567812345678}").unwrap();
        assert_eq!(format_uuid(&b), "12345678-1234-5678-1234-567812345678");
        assert!(parse_uuid("1234").is_none());
        assert!(parse_uuid("12345678123456781234567812345678aa").is_none());
    }
}
