//! [`Range`]: values of any range type (`int4range`, `tstzrange`, a range type of
//! your own), with bounds of any type that converts itself.

use std::error::Error as StdError;
use std::ops::Bound;

use bytes::{BufMut, BytesMut};
use ferropg_core::types::{begin_length, end_length, range as wire};
use postgres_types::{FromSql, IsNull, Kind, ToSql, Type};

type BoxError = Box<dyn StdError + Sync + Send>;

/// A range: empty, or a lower and an upper bound, each included, excluded or absent.
///
/// Discrete ranges come back in the server's canonical form (`[1,10)` for `[1,9]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Range<T> {
    /// The empty range.
    Empty,
    /// A range with these bounds.
    Bounds {
        /// The lower bound.
        lower: Bound<T>,
        /// The upper bound.
        upper: Bound<T>,
    },
}

fn subtype(ty: &Type) -> Option<&Type> {
    match ty.kind() {
        Kind::Range(sub) => Some(sub),
        Kind::Domain(base) => subtype(base),
        _ => None,
    }
}

impl<'a, T: FromSql<'a>> FromSql<'a> for Range<T> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Range<T>, BoxError> {
        let sub = subtype(ty).ok_or_else(|| format!("{} is not a range type", ty.name()))?;
        Range::decode(sub, raw)
    }

    fn accepts(ty: &Type) -> bool {
        subtype(ty).is_some_and(T::accepts)
    }
}

impl<'a, T: FromSql<'a>> Range<T> {
    /// Decodes a range whose bounds are of type `sub` (also a multirange's ranges).
    pub(super) fn decode(sub: &Type, raw: &'a [u8]) -> Result<Range<T>, BoxError> {
        let r = wire::decode(raw)?;
        if r.flags & wire::EMPTY != 0 {
            return Ok(Range::Empty);
        }
        let bound = |value: Option<&'a [u8]>, inclusive: bool| -> Result<Bound<T>, BoxError> {
            Ok(match value {
                None => Bound::Unbounded,
                Some(bytes) if inclusive => Bound::Included(T::from_sql(sub, bytes)?),
                Some(bytes) => Bound::Excluded(T::from_sql(sub, bytes)?),
            })
        };
        Ok(Range::Bounds {
            lower: bound(r.lower, r.flags & wire::LB_INC != 0)?,
            upper: bound(r.upper, r.flags & wire::UB_INC != 0)?,
        })
    }
}

impl<T: ToSql> ToSql for Range<T> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let sub = subtype(ty).ok_or_else(|| format!("{} is not a range type", ty.name()))?;
        self.encode(sub, out)?;
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        subtype(ty).is_some_and(T::accepts)
    }

    postgres_types::to_sql_checked!();
}

impl<T: ToSql> Range<T> {
    /// Encodes a range whose bounds are of type `sub` (also a multirange's ranges).
    pub(super) fn encode(&self, sub: &Type, out: &mut BytesMut) -> Result<(), BoxError> {
        let (lower, upper) = match self {
            Range::Empty => {
                out.put_u8(wire::EMPTY);
                return Ok(());
            }
            Range::Bounds { lower, upper } => (lower, upper),
        };
        let flag = |b: &Bound<T>, inc: u8, inf: u8| match b {
            Bound::Included(_) => inc,
            Bound::Excluded(_) => 0,
            Bound::Unbounded => inf,
        };
        out.put_u8(
            flag(lower, wire::LB_INC, wire::LB_INF) | flag(upper, wire::UB_INC, wire::UB_INF),
        );
        for b in [lower, upper] {
            if let Bound::Included(v) | Bound::Excluded(v) = b {
                let at = begin_length(out);
                if matches!(v.to_sql(sub, out)?, IsNull::Yes) {
                    return Err("a range bound cannot be NULL (use Bound::Unbounded)".into());
                }
                end_length(out, at)?;
            }
        }
        Ok(())
    }
}
