//! The geometric types' binary forms: sequences of big-endian float8.
//!
//! point (x, y); line {A, B, C}; lseg and box (two points); circle (x, y, r); path (an
//! "is closed" byte, an Int32 point count, the points); polygon (a count, the points).

use super::DecodeError;

/// `N` float8 values, nothing else.
pub fn decode_f64s<const N: usize>(buf: &[u8]) -> Result<[f64; N], DecodeError> {
    if buf.len() != N * 8 {
        return Err(DecodeError("invalid geometric value length"));
    }
    let mut out = [0f64; N];
    for (v, chunk) in out.iter_mut().zip(buf.chunks_exact(8)) {
        *v = f64::from_be_bytes(chunk.try_into().expect("8-byte chunk"));
    }
    Ok(out)
}

/// An Int32 point count, then the points.
pub fn decode_points(buf: &[u8]) -> Result<Vec<(f64, f64)>, DecodeError> {
    let (n, rest) = buf
        .split_first_chunk::<4>()
        .ok_or(DecodeError("geometric value too short"))?;
    let n = i32::from_be_bytes(*n);
    if n < 0 || rest.len() != n as usize * 16 {
        return Err(DecodeError("invalid point count"));
    }
    Ok(rest
        .chunks_exact(16)
        .map(|c| {
            let x = f64::from_be_bytes(c[..8].try_into().expect("8 bytes"));
            let y = f64::from_be_bytes(c[8..].try_into().expect("8 bytes"));
            (x, y)
        })
        .collect())
}

/// A path: whether it is closed, and its points.
pub fn decode_path(buf: &[u8]) -> Result<(bool, Vec<(f64, f64)>), DecodeError> {
    let (&closed, rest) = buf
        .split_first()
        .ok_or(DecodeError("path value too short"))?;
    Ok((closed != 0, decode_points(rest)?))
}

/// Appends float8 values.
pub fn encode_f64s(values: &[f64], out: &mut Vec<u8>) {
    for v in values {
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// Appends a point count and the points.
pub fn encode_points(points: &[(f64, f64)], out: &mut Vec<u8>) -> Result<(), super::EncodeError> {
    let n =
        i32::try_from(points.len()).map_err(|_| super::EncodeError("too many points".into()))?;
    out.extend_from_slice(&n.to_be_bytes());
    for (x, y) in points {
        encode_f64s(&[*x, *y], out);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let mut b = Vec::new();
        encode_f64s(&[1.5, -2.0], &mut b);
        assert_eq!(decode_f64s::<2>(&b).unwrap(), [1.5, -2.0]);
        assert!(decode_f64s::<3>(&b).is_err());
        let mut p = vec![1u8];
        encode_points(&[(0.0, 1.0), (2.0, 3.0)], &mut p).unwrap();
        assert_eq!(
            decode_path(&p).unwrap(),
            (true, vec![(0.0, 1.0), (2.0, 3.0)])
        );
        assert!(decode_points(&p[1..p.len() - 1]).is_err());
        assert!(decode_points(b"\xff\xff\xff\xff").is_err());
        assert!(decode_path(b"").is_err());
    }
}
