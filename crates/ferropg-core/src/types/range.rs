//! Ranges and multiranges: a flags byte, then each present bound as Int32 length and
//! bytes (`range_send`); a multirange is an Int32 count of length-prefixed ranges.

use super::DecodeError;

/// The range is empty.
pub const EMPTY: u8 = 0x01;
/// The lower bound is inclusive.
pub const LB_INC: u8 = 0x02;
/// The upper bound is inclusive.
pub const UB_INC: u8 = 0x04;
/// There is no lower bound.
pub const LB_INF: u8 = 0x08;
/// There is no upper bound.
pub const UB_INF: u8 = 0x10;

/// One range: its flags and the bytes of each finite bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range<'a> {
    /// The flags byte.
    pub flags: u8,
    /// The lower bound's value, when finite.
    pub lower: Option<&'a [u8]>,
    /// The upper bound's value, when finite.
    pub upper: Option<&'a [u8]>,
}

fn bound<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], DecodeError> {
    let (len, tail) = rest
        .split_first_chunk::<4>()
        .ok_or(DecodeError("range bound truncated"))?;
    let len = usize::try_from(i32::from_be_bytes(*len))
        .map_err(|_| DecodeError("invalid range bound length"))?;
    let (value, tail) = tail
        .split_at_checked(len)
        .ok_or(DecodeError("range bound truncated"))?;
    *rest = tail;
    Ok(value)
}

/// Parses one range.
pub fn decode(buf: &[u8]) -> Result<Range<'_>, DecodeError> {
    let (&flags, mut rest) = buf.split_first().ok_or(DecodeError("empty range value"))?;
    let finite = |inf: u8| flags & (EMPTY | inf) == 0;
    let lower = if finite(LB_INF) {
        Some(bound(&mut rest)?)
    } else {
        None
    };
    let upper = if finite(UB_INF) {
        Some(bound(&mut rest)?)
    } else {
        None
    };
    if !rest.is_empty() {
        return Err(DecodeError("trailing data after range"));
    }
    Ok(Range {
        flags,
        lower,
        upper,
    })
}

/// Splits a multirange into its ranges' bytes.
pub fn split_multirange(buf: &[u8]) -> Result<Vec<&[u8]>, DecodeError> {
    let (n, mut rest) = buf
        .split_first_chunk::<4>()
        .ok_or(DecodeError("multirange value too short"))?;
    let n = u32::from_be_bytes(*n) as usize;
    if n > rest.len() / 5 {
        return Err(DecodeError("invalid multirange count"));
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(bound(&mut rest)?);
    }
    if !rest.is_empty() {
        return Err(DecodeError("trailing data after multirange"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = decode(&[LB_INC, 0, 0, 0, 1, 7, 0, 0, 0, 1, 9]).unwrap();
        assert_eq!((r.lower, r.upper), (Some(&[7][..]), Some(&[9][..])));
        let r = decode(&[EMPTY]).unwrap();
        assert_eq!((r.lower, r.upper), (None, None));
        let r = decode(&[LB_INF, 0, 0, 0, 1, 9]).unwrap();
        assert_eq!((r.lower, r.upper), (None, Some(&[9][..])));
        assert!(decode(&[0, 0, 0, 0, 1]).is_err());
        assert!(decode(&[EMPTY, 1]).is_err());
        assert!(decode(&[0, 0xff, 0xff, 0xff, 0xff]).is_err());
        let m = split_multirange(&[0, 0, 0, 1, 0, 0, 0, 1, EMPTY]).unwrap();
        assert_eq!(m, vec![&[EMPTY][..]]);
        assert!(split_multirange(&[0, 0, 0, 9]).is_err());
        let mut out = bytes::BytesMut::from(&[LB_INC][..]);
        let at = super::super::begin_length(&mut out);
        out.extend_from_slice(&[5]);
        super::super::end_length(&mut out, at).unwrap();
        assert_eq!(&out[..], [LB_INC, 0, 0, 0, 1, 5]);
    }
}
