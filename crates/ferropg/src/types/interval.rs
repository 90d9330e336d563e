//! [`Interval`]: an `interval` as PostgreSQL keeps it, in three separate fields.

use std::error::Error as StdError;

use bytes::{BufMut, BytesMut};
use ferropg_core::types::datetime;
use postgres_types::{FromSql, IsNull, ToSql, Type};

type BoxError = Box<dyn StdError + Sync + Send>;

/// An `interval`: months, days and microseconds, kept apart as the server does
/// (a month is not a fixed number of days, nor a day of seconds across a DST change).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Interval {
    /// Months (years are 12 of them).
    pub months: i32,
    /// Days.
    pub days: i32,
    /// Microseconds.
    pub microseconds: i64,
}

impl<'a> FromSql<'a> for Interval {
    fn from_sql(_ty: &Type, raw: &'a [u8]) -> Result<Interval, BoxError> {
        let v = datetime::decode_interval(raw)?;
        Ok(Interval {
            months: v.months,
            days: v.days,
            microseconds: v.microseconds,
        })
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::INTERVAL
    }
}

impl ToSql for Interval {
    fn to_sql(&self, _ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        out.put_i64(self.microseconds);
        out.put_i32(self.days);
        out.put_i32(self.months);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::INTERVAL
    }

    postgres_types::to_sql_checked!();
}
