//! `numeric` binary <-> text.
//!
//! The input is tried both ways:
//! - as a binary numeric: `decode_to_string` must not panic; what it decodes must
//!   re-encode with `encode_from_str` and decode again to the same string. For the
//!   canonical form PostgreSQL sends (no leading/trailing zero digit groups, zero as
//!   positive with weight 0, display scale within 0x3FFF, nothing beyond the scale),
//!   re-encoding must give back the very same bytes. For other (non-canonical) bytes
//!   the text may change spelling ("-0" becomes "0", "00005" becomes "5") but not value.
//! - as text: `encode_from_str` must not panic, must write nothing when it fails, and
//!   what it writes must be canonical and survive decode -> encode unchanged.
#![no_main]

use bytes::BytesMut;
use ferropg_core::types::numeric::{decode_to_string, encode_from_str};
use libfuzzer_sys::fuzz_target;

const NAN: u16 = 0xC000;
const PINF: u16 = 0xD000;
const NINF: u16 = 0xF000;
const POS: u16 = 0x0000;

fn header(buf: &[u8]) -> (i16, i16, u16, u16) {
    (
        i16::from_be_bytes([buf[0], buf[1]]),
        i16::from_be_bytes([buf[2], buf[3]]),
        u16::from_be_bytes([buf[4], buf[5]]),
        u16::from_be_bytes([buf[6], buf[7]]),
    )
}

/// True for the form a server's `numeric_send` produces (the input must have decoded OK).
fn is_canonical(buf: &[u8]) -> bool {
    let (ndigits, weight, sign, dscale) = header(buf);
    let digits: Vec<u16> = buf[8..]
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    if matches!(sign, NAN | PINF | NINF) {
        return ndigits == 0 && weight == 0 && dscale == 0;
    }
    if dscale > 0x3FFF {
        return false;
    }
    let (Some(&first), Some(&last)) = (digits.first(), digits.last()) else {
        return sign == POS && weight == 0;
    };
    if first == 0 || last == 0 {
        return false;
    }
    // Decimal places reached by the last group; none of its digits past the scale may be set.
    let last_end = 4 * (i64::from(ndigits) - 1 - i64::from(weight));
    let beyond = last_end - i64::from(dscale);
    if beyond <= 0 {
        return true;
    }
    beyond < 4 && u32::from(last) % 10u32.pow(beyond as u32) == 0
}

/// The decoder's text: `-?D+(.D+)?`, `NaN`, `Infinity` or `-Infinity`.
fn check_shape(s: &str) {
    if matches!(s, "NaN" | "Infinity" | "-Infinity") {
        return;
    }
    let body = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => {
            assert!(!f.is_empty(), "empty fraction in {s:?}");
            (i, f)
        }
        None => (body, ""),
    };
    assert!(!int.is_empty(), "empty integer part in {s:?}");
    assert!(
        int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()),
        "not a decimal: {s:?}"
    );
}

/// The value of decimal text, spelled one way: no leading zeros, no negative zero.
fn normalize(s: &str) -> String {
    if matches!(s, "NaN" | "Infinity" | "-Infinity") {
        return s.to_owned();
    }
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let zero = int == "0" && frac.bytes().all(|b| b == b'0');
    let sign = if neg && !zero { "-" } else { "" };
    if frac.is_empty() {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    }
}

/// At most 60 characters of `s`, for panic messages (values can be 131072 digits long).
fn clip(s: &str) -> String {
    let n = s.chars().count();
    if n <= 60 {
        s.to_owned()
    } else {
        let head: String = s.chars().take(30).collect();
        let tail: String = s.chars().skip(n - 30).collect();
        format!("{head}...{tail} ({n} chars)")
    }
}

fn binary_side(data: &[u8]) {
    let Ok(s) = decode_to_string(data) else {
        return;
    };
    check_shape(&s);
    let canonical = is_canonical(data);
    let mut buf = BytesMut::new();
    match encode_from_str(&s, &mut buf) {
        Ok(()) => {
            let s2 = decode_to_string(&buf).expect("the encoder's output must decode");
            if canonical {
                assert!(
                    s2 == s,
                    "round trip changed a canonical numeric: {} became {}",
                    clip(&s),
                    clip(&s2)
                );
                assert_eq!(
                    &buf[..],
                    data,
                    "re-encoding a canonical numeric changed its bytes"
                );
            } else {
                assert!(
                    normalize(&s2) == normalize(&s),
                    "round trip changed the value: {} became {}",
                    clip(&s),
                    clip(&s2)
                );
                let mut buf2 = BytesMut::new();
                encode_from_str(&s2, &mut buf2).expect("normalized text re-encodes");
                assert_eq!(buf, buf2, "second round trip differs");
            }
        }
        Err(e) => {
            assert!(buf.is_empty(), "encode_from_str wrote bytes and failed");
            assert!(
                !canonical,
                "a canonical numeric from the server does not re-encode: {}: {}",
                clip(&s),
                clip(&e.to_string())
            );
        }
    }
}

fn text_side(text: &str) {
    let mut buf = BytesMut::new();
    match encode_from_str(text, &mut buf) {
        Ok(()) => {
            let s = decode_to_string(&buf).expect("the encoder's output must decode");
            check_shape(&s);
            assert!(
                is_canonical(&buf),
                "the encoder wrote a non-canonical numeric"
            );
            let mut again = BytesMut::new();
            encode_from_str(&s, &mut again).expect("decoded text re-encodes");
            assert_eq!(buf, again, "decode -> encode changed the bytes");
        }
        Err(e) => {
            let _ = e.to_string();
            assert!(buf.is_empty(), "encode_from_str wrote bytes and failed");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    binary_side(data);
    if let Ok(text) = std::str::from_utf8(data) {
        text_side(text);
    }
});
