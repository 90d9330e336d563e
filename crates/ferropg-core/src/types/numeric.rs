//! `numeric` in PostgreSQL's binary form: base-10000 digit groups with a weight,
//! a sign word and a display scale, converted to and from decimal text.

use bytes::{BufMut, BytesMut};

use super::{DecodeError, EncodeError};

const POS: u16 = 0x0000;
const NEG: u16 = 0x4000;
const NAN: u16 = 0xC000;
const PINF: u16 = 0xD000;
const NINF: u16 = 0xF000;
/// PostgreSQL's largest display scale (`NUMERIC_DSCALE_MASK`).
const MAX_DSCALE: usize = 0x3FFF;

/// Decodes a binary numeric into decimal text that Python's `Decimal` and Rust parsers
/// accept: `-12.3400`, `0`, `NaN`, `Infinity`, `-Infinity`.
pub fn decode_to_string(buf: &[u8]) -> Result<String, DecodeError> {
    decode_text(buf, false)
}

/// Like [`decode_to_string`], but a whole number whose trailing groups of zeros the
/// server left out (`1E+1000` arrives as one digit group and a weight) stays in exponent
/// form, so `decimal.Decimal` keeps the digits and exponent it was sent with (as asyncpg
/// builds it) instead of a thousand zeros.
pub fn decode_to_compact_string(buf: &[u8]) -> Result<String, DecodeError> {
    decode_text(buf, true)
}

fn decode_text(buf: &[u8], compact: bool) -> Result<String, DecodeError> {
    let header = buf
        .get(..8)
        .ok_or(DecodeError("truncated numeric header"))?;
    let ndigits = i16::from_be_bytes([header[0], header[1]]);
    let weight = i16::from_be_bytes([header[2], header[3]]);
    let sign = u16::from_be_bytes([header[4], header[5]]);
    let dscale = u16::from_be_bytes([header[6], header[7]]);
    if ndigits < 0 || buf.len() != 8 + ndigits as usize * 2 {
        return Err(DecodeError("invalid numeric length"));
    }
    if usize::from(dscale) > MAX_DSCALE {
        return Err(DecodeError("invalid numeric display scale"));
    }
    match sign {
        NAN => return Ok("NaN".into()),
        PINF => return Ok("Infinity".into()),
        NINF => return Ok("-Infinity".into()),
        POS | NEG => {}
        _ => return Err(DecodeError("invalid numeric sign")),
    }
    let groups = &buf[8..];
    let n = ndigits as usize;
    // Read in place (this runs once per value of every numeric column).
    let digit = |i: usize| u16::from_be_bytes([groups[2 * i], groups[2 * i + 1]]);
    if (0..n).any(|i| digit(i) > 9999) {
        return Err(DecodeError("invalid numeric digit"));
    }
    let weight = i32::from(weight);
    let dscale = usize::from(dscale);
    let mut out = String::with_capacity(n * 4 + dscale + 8);
    if sign == NEG {
        out.push('-');
    }
    let missing_groups = weight + 1 - n as i32;
    if compact && dscale == 0 && n > 0 && missing_groups > 0 {
        push_trimmed(&mut out, digit(0));
        for i in 1..n {
            push_digits(&mut out, digit(i), 4);
        }
        out.push_str("E+");
        out.push_str(&(missing_groups * 4).to_string());
        return Ok(out);
    }
    let group_at = |g: i32| {
        if g >= 0 && (g as usize) < n {
            digit(g as usize)
        } else {
            0
        }
    };
    // Integer part: the groups with a non-negative power of 10000.
    if weight < 0 {
        out.push('0');
    } else {
        push_trimmed(&mut out, group_at(0));
        for g in 1..=weight {
            push_digits(&mut out, group_at(g), 4);
        }
    }
    if dscale > 0 {
        out.push('.');
        let mut left = dscale;
        let mut g = weight + 1;
        while left > 0 {
            let take = left.min(4);
            push_digits(&mut out, group_at(g), take);
            left -= take;
            g += 1;
        }
    }
    Ok(out)
}

/// Appends a group of four decimal digits without its leading zeros ("0" for 0).
fn push_trimmed(out: &mut String, d: u16) {
    let width = match d {
        1000.. => 4,
        100.. => 3,
        10.. => 2,
        _ => 1,
    };
    let bytes = four_digits(d);
    out.extend(bytes[4 - width..].iter().map(|b| char::from(*b)));
}

/// Appends the first `count` of a group's four decimal digits.
fn push_digits(out: &mut String, d: u16, count: usize) {
    out.extend(four_digits(d)[..count].iter().map(|b| char::from(*b)));
}

fn four_digits(d: u16) -> [u8; 4] {
    [
        b'0' + (d / 1000) as u8,
        b'0' + (d / 100 % 10) as u8,
        b'0' + (d / 10 % 10) as u8,
        b'0' + (d % 10) as u8,
    ]
}

/// Encodes decimal text (`-1.5`, `12E+3`, `NaN`, `Infinity`, `-inf`) as a binary numeric.
///
/// Values whose weight does not fit PostgreSQL's int16 field are rejected rather than
/// sent wrong.
pub fn encode_from_str(text: &str, buf: &mut BytesMut) -> Result<(), EncodeError> {
    let t = text.trim();
    let special = match t.to_ascii_lowercase().as_str() {
        // A signalling NaN is still not a number: PostgreSQL has one NaN.
        "nan" | "+nan" | "-nan" | "snan" | "+snan" | "-snan" => Some(NAN),
        "infinity" | "+infinity" | "inf" | "+inf" => Some(PINF),
        "-infinity" | "-inf" => Some(NINF),
        _ => None,
    };
    if let Some(sign) = special {
        buf.put_i16(0);
        buf.put_i16(0);
        buf.put_u16(sign);
        buf.put_u16(0);
        return Ok(());
    }
    let shown = preview(text);
    let bad = || EncodeError(format!("invalid numeric value {shown}"));
    let (negative, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (mantissa, exp) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i64>().map_err(|_| bad())?),
        None => (rest, 0),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
        None => (mantissa, ""),
    };
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part
            .bytes()
            .chain(frac_part.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    // value = digits * 10^point, with `digits` the mantissa without its decimal point.
    let digits: String = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    // PostgreSQL holds up to 131072 digits before the point (weight 32767) and 16383
    // after; anything far outside is rejected before any arithmetic can overflow.
    const INT_DIGITS: i64 = 4 * (i16::MAX as i64 + 1);
    let too_large = || {
        EncodeError(format!(
            "numeric value {shown} is too large for PostgreSQL's numeric type"
        ))
    };
    let point = i64::try_from(frac_part.len())
        .ok()
        .and_then(|f| exp.checked_sub(f))
        .ok_or_else(too_large)?;
    // Zero with a huge exponent is still zero.
    let point = if digits.is_empty() {
        point.max(-(MAX_DSCALE as i64)).min(0)
    } else {
        point
    };
    if !digits.is_empty() && (point > INT_DIGITS || digits.len() as i64 + point > INT_DIGITS) {
        return Err(too_large());
    }
    if point < -(MAX_DSCALE as i64) - INT_DIGITS {
        return Err(EncodeError(format!(
            "numeric value {shown} has too many fractional digits"
        )));
    }
    let (ip, fp): (String, String) = if point >= 0 {
        let mut ip = digits.to_owned();
        ip.extend(std::iter::repeat_n('0', point as usize));
        (ip, String::new())
    } else {
        let scale = (-point) as usize;
        if digits.len() > scale {
            let split = digits.len() - scale;
            (digits[..split].to_owned(), digits[split..].to_owned())
        } else {
            let mut fp: String = std::iter::repeat_n('0', scale - digits.len()).collect();
            fp.push_str(digits);
            (String::new(), fp)
        }
    };
    let dscale = fp.len();
    if dscale > MAX_DSCALE {
        return Err(EncodeError(format!(
            "numeric value {shown} has more than {MAX_DSCALE} fractional digits"
        )));
    }
    let int_pad = (4 - ip.len() % 4) % 4;
    let mut groups: Vec<u16> = Vec::with_capacity((ip.len() + fp.len()) / 4 + 2);
    let padded_ip: String = std::iter::repeat_n('0', int_pad)
        .chain(ip.chars())
        .collect();
    for c in padded_ip.as_bytes().chunks(4) {
        groups.push(group_value(c));
    }
    let mut weight = groups.len() as i64 - 1;
    let frac_pad = (4 - fp.len() % 4) % 4;
    let padded_fp: String = fp
        .chars()
        .chain(std::iter::repeat_n('0', frac_pad))
        .collect();
    for c in padded_fp.as_bytes().chunks(4) {
        groups.push(group_value(c));
    }
    let leading = groups.iter().take_while(|g| **g == 0).count();
    groups.drain(..leading);
    weight -= leading as i64;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    let weight = i16::try_from(weight).map_err(|_| {
        EncodeError(format!(
            "numeric value {shown} is out of range for PostgreSQL's numeric type"
        ))
    })?;
    let ndigits = i16::try_from(groups.len())
        .map_err(|_| EncodeError(format!("numeric value {shown} has too many digits")))?;
    buf.reserve(8 + groups.len() * 2);
    buf.put_i16(ndigits);
    buf.put_i16(weight);
    buf.put_u16(if negative && !groups.is_empty() {
        NEG
    } else {
        POS
    });
    buf.put_u16(dscale as u16);
    for g in groups {
        buf.put_u16(g);
    }
    Ok(())
}

/// The start of a value, for error texts (a numeric can be 130k characters long).
fn preview(text: &str) -> String {
    let mut shown: String = text.chars().take(40).collect();
    if shown.len() < text.len() {
        shown.push_str("...");
    }
    format!("{shown:?}")
}

fn group_value(c: &[u8]) -> u16 {
    c.iter().fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(text: &str) -> String {
        let mut buf = BytesMut::new();
        encode_from_str(text, &mut buf).unwrap();
        decode_to_string(&buf).unwrap()
    }

    #[test]
    fn compact_form_keeps_left_out_zero_groups_as_an_exponent() {
        let compact = |text: &str| {
            let mut buf = BytesMut::new();
            encode_from_str(text, &mut buf).unwrap();
            decode_to_compact_string(&buf).unwrap()
        };
        assert_eq!(compact("1E+1000"), "1E+1000");
        assert_eq!(compact("10000"), "1E+4");
        assert_eq!(compact("-120000"), "-12E+4");
        assert_eq!(compact("100"), "100");
        assert_eq!(compact("10000.5"), "10000.5");
        assert_eq!(compact("1E+8"), "1E+8");
        assert_eq!(compact("0"), "0");
        assert_eq!(compact("sNaN"), "NaN");
    }

    #[test]
    fn round_trips() {
        for (input, output) in [
            ("0", "0"),
            ("1", "1"),
            ("-1.5", "-1.5"),
            ("12345.6789", "12345.6789"),
            ("0.0001", "0.0001"),
            ("0.00000001", "0.00000001"),
            ("100000000", "100000000"),
            ("1.2300", "1.2300"),
            ("1E+3", "1000"),
            ("1.5E-3", "0.0015"),
            ("-0.0", "0.0"),
            ("NaN", "NaN"),
            ("Infinity", "Infinity"),
            ("-Infinity", "-Infinity"),
        ] {
            assert_eq!(round(input), output, "{input}");
        }
        let big = "9".repeat(1000);
        assert_eq!(round(&big), big);
    }

    #[test]
    fn rejects_garbage_and_overflow() {
        let mut buf = BytesMut::new();
        assert!(encode_from_str("abc", &mut buf).is_err());
        assert!(encode_from_str("1e200000", &mut buf).is_err());
        assert!(encode_from_str("", &mut buf).is_err());
        assert!(buf.is_empty());
    }

    #[test]
    fn extreme_exponents_do_not_overflow() {
        let mut buf = BytesMut::new();
        for text in [
            "1e-9223372036854775808",
            "1.5e-9223372036854775808",
            "1e9223372036854775807",
            "1.5e9223372036854775807",
        ] {
            assert!(encode_from_str(text, &mut buf).is_err(), "{text}");
        }
        assert_eq!(
            round("0e-9223372036854775808"),
            format!("0.{}", "0".repeat(MAX_DSCALE))
        );
        assert_eq!(round("0e99999"), "0");
    }

    #[test]
    fn largest_weight_round_trips() {
        // weight 32767: one group of 2048 followed by 32767 zero groups.
        let big = format!("2048{}", "0".repeat(4 * 32767));
        assert_eq!(round(&big), big);
        let err = encode_from_str(&format!("1{}", "0".repeat(4 * 32768)), &mut BytesMut::new());
        let msg = err.unwrap_err().0;
        assert!(msg.len() < 200, "{msg}");
    }

    #[test]
    fn malformed_binary_is_an_error() {
        assert!(decode_to_string(&[0, 1, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(decode_to_string(&[0, 1, 0, 0, 0, 0, 0, 0, 0x27, 0x10]).is_err());
        assert!(decode_to_string(&[0, 0, 0, 0, 0x12, 0, 0, 0]).is_err());
        assert!(decode_to_string(&[0, 0, 0, 43, 0, 0, 0x65, 0]).is_err());
    }
}
