//! `inet` and `cidr`: family (2 = IPv4, 3 = IPv6), prefix bits, an is-cidr flag, the
//! address length, then the address bytes.

use super::{DecodeError, EncodeError};

/// PostgreSQL's `PGSQL_AF_INET`.
pub const FAMILY_V4: u8 = 2;
/// PostgreSQL's `PGSQL_AF_INET6`.
pub const FAMILY_V6: u8 = 3;

/// One decoded `inet` / `cidr` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inet<'a> {
    /// True for IPv6.
    pub v6: bool,
    /// The prefix length.
    pub bits: u8,
    /// The cidr flag the server sets for `cidr` values.
    pub is_cidr: bool,
    /// 4 or 16 address bytes.
    pub addr: &'a [u8],
}

impl Inet<'_> {
    /// The full prefix length of the family: 32 or 128.
    pub fn max_bits(&self) -> u8 {
        if self.v6 {
            128
        } else {
            32
        }
    }
}

/// Parses the binary form.
pub fn decode(buf: &[u8]) -> Result<Inet<'_>, DecodeError> {
    let [family, bits, is_cidr, len, addr @ ..] = buf else {
        return Err(DecodeError("inet value too short"));
    };
    let (v6, want) = match *family {
        FAMILY_V4 => (false, 4),
        FAMILY_V6 => (true, 16),
        _ => return Err(DecodeError("invalid inet family")),
    };
    if *len as usize != want || addr.len() != want {
        return Err(DecodeError("invalid inet address length"));
    }
    let inet = Inet {
        v6,
        bits: *bits,
        is_cidr: *is_cidr != 0,
        addr,
    };
    if inet.bits > inet.max_bits() {
        return Err(DecodeError("invalid inet prefix length"));
    }
    Ok(inet)
}

/// Appends the binary form of an address of 4 or 16 bytes with a prefix length.
pub fn encode(addr: &[u8], bits: u8, is_cidr: bool, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let family = match addr.len() {
        4 => FAMILY_V4,
        16 => FAMILY_V6,
        _ => return Err(EncodeError("invalid network address length".into())),
    };
    if usize::from(bits) > addr.len() * 8 {
        return Err(EncodeError("invalid network prefix length".into()));
    }
    out.extend_from_slice(&[family, bits, u8::from(is_cidr), addr.len() as u8]);
    out.extend_from_slice(addr);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut b = Vec::new();
        encode(&[10, 0, 0, 1], 24, false, &mut b).unwrap();
        let v = decode(&b).unwrap();
        assert_eq!(
            (v.v6, v.bits, v.is_cidr, v.addr),
            (false, 24, false, &[10, 0, 0, 1][..])
        );
        assert!(decode(&b[..7]).is_err());
        assert!(decode(&[2, 33, 0, 4, 1, 2, 3, 4]).is_err());
        assert!(decode(&[7, 8, 0, 4, 1, 2, 3, 4]).is_err());
        assert!(encode(&[1, 2, 3], 8, false, &mut b).is_err());
    }
}
