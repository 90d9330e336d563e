//! [`Inet`]: an `inet` or `cidr` value, address and prefix length.

use std::error::Error as StdError;
use std::net::IpAddr;

use bytes::{BufMut, BytesMut};
use ferropg_core::types::network;
use postgres_types::{FromSql, IsNull, ToSql, Type};

type BoxError = Box<dyn StdError + Sync + Send>;

/// An `inet` (a host address, with the prefix length of its network) or a `cidr`
/// (a network: no bits set past the prefix, which the server checks).
///
/// `IpAddr` alone, as `postgres-types` converts it, loses the prefix; this keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Inet {
    /// The address.
    pub addr: IpAddr,
    /// The prefix length: 0 to 32 for IPv4, 0 to 128 for IPv6.
    pub prefix: u8,
}

impl Inet {
    /// A host address: the prefix is the whole address (32 or 128 bits).
    pub fn host(addr: IpAddr) -> Inet {
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        Inet { addr, prefix }
    }
}

fn accepts(ty: &Type) -> bool {
    *ty == Type::INET || *ty == Type::CIDR
}

impl<'a> FromSql<'a> for Inet {
    fn from_sql(_ty: &Type, raw: &'a [u8]) -> Result<Inet, BoxError> {
        let v = network::decode(raw)?;
        let addr = match *v.addr {
            [a, b, c, d] => IpAddr::from([a, b, c, d]),
            _ => {
                let bytes: [u8; 16] = v.addr.try_into()?;
                IpAddr::from(bytes)
            }
        };
        Ok(Inet {
            addr,
            prefix: v.bits,
        })
    }

    fn accepts(ty: &Type) -> bool {
        accepts(ty)
    }
}

impl ToSql for Inet {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let octets = match self.addr {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        let mut wire = Vec::with_capacity(20);
        network::encode(&octets, self.prefix, *ty == Type::CIDR, &mut wire)?;
        out.put_slice(&wire);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        accepts(ty)
    }

    postgres_types::to_sql_checked!();
}
