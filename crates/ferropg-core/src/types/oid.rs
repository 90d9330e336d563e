//! OIDs of the built-in types: the generated catalogue ([`super::catalog`]), and
//! lookups in its tables.

pub use super::catalog::*;

/// The subtype of a built-in range type.
pub fn range_subtype(range_oid: u32) -> Option<u32> {
    RANGE_TYPES
        .iter()
        .find(|(r, _)| *r == range_oid)
        .map(|(_, s)| *s)
}

/// The range type of a built-in multirange type.
pub fn multirange_range(multirange_oid: u32) -> Option<u32> {
    MULTIRANGE_TYPES
        .iter()
        .find(|(m, _)| *m == multirange_oid)
        .map(|(_, r)| *r)
}
