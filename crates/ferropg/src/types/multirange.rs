//! [`Multirange`]: values of any multirange type (PostgreSQL 14 and later).

use std::error::Error as StdError;

use bytes::{BufMut, BytesMut};
use ferropg_core::types::{begin_length, end_length, range as wire};
use postgres_types::{FromSql, IsNull, Kind, ToSql, Type};

use super::Range;

type BoxError = Box<dyn StdError + Sync + Send>;

/// A multirange: its ranges, as the server orders and merges them (no overlaps,
/// no empty ranges).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multirange<T>(pub Vec<Range<T>>);

/// The type of the ranges' bounds (`postgres-types` names that, not the range type).
fn element(ty: &Type) -> Option<&Type> {
    match ty.kind() {
        Kind::Multirange(elem) => Some(elem),
        Kind::Domain(base) => element(base),
        _ => None,
    }
}

impl<'a, T: FromSql<'a>> FromSql<'a> for Multirange<T> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Multirange<T>, BoxError> {
        let elem = element(ty).ok_or_else(|| format!("{} is not a multirange", ty.name()))?;
        wire::split_multirange(raw)?
            .into_iter()
            .map(|bytes| Range::decode(elem, bytes))
            .collect::<Result<_, _>>()
            .map(Multirange)
    }

    fn accepts(ty: &Type) -> bool {
        element(ty).is_some_and(T::accepts)
    }
}

impl<T: ToSql> ToSql for Multirange<T> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        encode(&self.0, ty, out)
    }

    fn accepts(ty: &Type) -> bool {
        element(ty).is_some_and(T::accepts)
    }

    postgres_types::to_sql_checked!();
}

/// Encodes `ranges` as a value of the multirange type `ty`.
pub(super) fn encode<T: ToSql>(
    ranges: &[Range<T>],
    ty: &Type,
    out: &mut BytesMut,
) -> Result<IsNull, BoxError> {
    let elem = element(ty).ok_or_else(|| format!("{} is not a multirange", ty.name()))?;
    out.put_u32(u32::try_from(ranges.len())?);
    for r in ranges {
        let at = begin_length(out);
        r.encode(elem, out)?;
        end_length(out, at)?;
    }
    Ok(IsNull::No)
}
