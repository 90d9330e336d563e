//! Value conversion: `postgres-types`' traits, re-exported, and [`Numeric`], which
//! carries a `numeric` as its exact decimal text.
//!
//! Everything `postgres-types` converts without optional features works: `bool`,
//! `i8` (`"char"`), `i16`, `i32`, `i64`, `u32` (`oid`), `f32`, `f64`, `&str`/`String`
//! (`text`, `varchar`, `bpchar`, `name`), `&[u8]`/`Vec<u8>` (`bytea`),
//! `SystemTime` (`timestamp`, `timestamptz`), `IpAddr` (`inet`), `Option<T>` for
//! NULL, and `Vec<T>`/`&[T]` for one-dimensional arrays. Other crates' types
//! (chrono, time, jiff, uuid, serde_json, ...) come with ferropg's features, and
//! `rust_decimal` with one of its own: see the crate docs' [type
//! features](crate#type-features).
//!
//! Enums, composites and domains work through `#[derive(FromSql, ToSql)]` (the
//! derives are re-exported here, and need `postgres-types` among one's own
//! dependencies: see [derives](crate#derives)): the connection learns such types
//! from the catalog the first time a statement uses them. [`Range`] and
//! [`Multirange`] take any range type, [`Interval`], [`Inet`] (with its prefix) and
//! [`Geometry`] the types of their names, and [`Value`] decodes any column by the
//! type it turns out to have.

mod geometry;
mod interval;
mod multirange;
mod network;
mod range;
mod value;

pub use geometry::{Geometry, Point};
pub use interval::Interval;
pub use multirange::Multirange;
pub use network::Inet;
pub use range::Range;
pub use value::Value;

use std::error::Error as StdError;
use std::fmt;
use std::str::FromStr;

use bytes::BytesMut;
use ferropg_core::types::numeric;

/// Any serde type as `json` or `jsonb` (with the `with-serde_json-1` feature).
#[cfg(feature = "with-serde_json-1")]
pub use postgres_types::Json;
/// `date` and `timestamp[tz]` values with their `infinity` and `-infinity`, around
/// a date or time type of a type feature (which has no infinity of its own).
pub use postgres_types::{Date, Timestamp};
pub use postgres_types::{Field, FromSql, IsNull, Kind, ToSql, Type, WrongType};

/// A `numeric` value as decimal text: `-12.3400`, `0`, `NaN`, `Infinity`.
///
/// `postgres-types` has no `numeric` conversion of its own (`rust_decimal`
/// implements one with its `db-tokio-postgres` feature: see the crate docs' [type
/// features](crate#type-features)), and `String` does not accept `numeric` in
/// binary format. This type keeps any value exact, scale, `NaN` and infinities
/// included (which `rust_decimal::Decimal` cannot hold), for any decimal library to
/// parse.
///
/// ```
/// use ferropg::types::Numeric;
///
/// let n: Numeric = "12.50".parse()?;
/// assert_eq!(n.as_str(), "12.50");
/// assert!("12,5".parse::<Numeric>().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Numeric(String);

impl Numeric {
    /// The decimal text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The decimal text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// Text that is not a decimal number [`Numeric`] can send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseNumericError(String);

impl fmt::Display for ParseNumericError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for ParseNumericError {}

impl FromStr for Numeric {
    type Err = ParseNumericError;

    /// Accepts what PostgreSQL's `numeric` input accepts in plain or exponent form
    /// (`-1.5`, `12E+3`), and `NaN`, `Infinity`, `-Infinity`.
    fn from_str(s: &str) -> Result<Numeric, ParseNumericError> {
        let mut scratch = BytesMut::new();
        numeric::encode_from_str(s, &mut scratch).map_err(|e| ParseNumericError(e.0))?;
        Ok(Numeric(s.trim().to_owned()))
    }
}

impl fmt::Display for Numeric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl ToSql for Numeric {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        numeric::encode_from_str(&self.0, out)?;
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }

    postgres_types::to_sql_checked!();
}

impl<'a> FromSql<'a> for Numeric {
    fn from_sql(_ty: &Type, raw: &'a [u8]) -> Result<Numeric, Box<dyn StdError + Sync + Send>> {
        Ok(Numeric(numeric::decode_to_string(raw)?))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}
