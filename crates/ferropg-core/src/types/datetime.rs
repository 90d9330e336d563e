//! Dates, times and intervals: PostgreSQL counts days and microseconds from
//! 2000-01-01; these helpers convert to civil dates and back.

/// Microseconds in a day.
pub const USECS_PER_DAY: i64 = 86_400_000_000;
/// `date` 'infinity' on the wire.
pub const DATE_INFINITY: i32 = i32::MAX;
/// `date` '-infinity' on the wire.
pub const DATE_NEG_INFINITY: i32 = i32::MIN;
/// `timestamp` 'infinity' on the wire.
pub const TIMESTAMP_INFINITY: i64 = i64::MAX;
/// `timestamp` '-infinity' on the wire.
pub const TIMESTAMP_NEG_INFINITY: i64 = i64::MIN;

/// Days from 1970-01-01 to 2000-01-01.
const UNIX_TO_PG_DAYS: i64 = 10_957;

/// A civil (proleptic Gregorian) date; year 0 is 1 BC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// Astronomical year.
    pub year: i64,
    /// 1..=12.
    pub month: u8,
    /// 1..=31.
    pub day: u8,
}

/// Converts days since 2000-01-01 to a civil date.
pub fn pg_days_to_civil(days: i64) -> Civil {
    // Howard Hinnant's days-to-civil algorithm, shifted to the Unix epoch.
    let z = days + UNIX_TO_PG_DAYS + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil { year, month, day }
}

/// Converts a civil date to days since 2000-01-01.
pub fn civil_to_pg_days(c: Civil) -> i64 {
    let year = c.year - i64::from(c.month <= 2);
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let m = i64::from(c.month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(c.day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468 - UNIX_TO_PG_DAYS
}

/// A time of day split into its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeOfDay {
    /// 0..=24 (PostgreSQL allows 24:00:00).
    pub hour: u8,
    /// 0..=59.
    pub minute: u8,
    /// 0..=59.
    pub second: u8,
    /// 0..=999_999.
    pub microsecond: u32,
}

/// Splits microseconds since midnight.
pub fn split_time(usecs: i64) -> TimeOfDay {
    let usecs = usecs.rem_euclid(USECS_PER_DAY + 1);
    let secs = usecs / 1_000_000;
    TimeOfDay {
        hour: (secs / 3600) as u8,
        minute: (secs / 60 % 60) as u8,
        second: (secs % 60) as u8,
        microsecond: (usecs % 1_000_000) as u32,
    }
}

/// Joins time fields into microseconds since midnight.
pub fn join_time(t: TimeOfDay) -> i64 {
    ((i64::from(t.hour) * 60 + i64::from(t.minute)) * 60 + i64::from(t.second)) * 1_000_000
        + i64::from(t.microsecond)
}

/// A timestamp split into days since 2000-01-01 and microseconds within that day.
pub fn split_timestamp(usecs: i64) -> (i64, i64) {
    (
        usecs.div_euclid(USECS_PER_DAY),
        usecs.rem_euclid(USECS_PER_DAY),
    )
}

/// An interval as PostgreSQL stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    /// Microseconds.
    pub microseconds: i64,
    /// Days.
    pub days: i32,
    /// Months.
    pub months: i32,
}

/// Decodes an `interval`: i64 microseconds, i32 days, i32 months.
pub fn decode_interval(buf: &[u8]) -> Result<Interval, super::DecodeError> {
    let b: [u8; 16] = super::binary::fixed(buf, "invalid interval length")?;
    Ok(Interval {
        microseconds: i64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        days: i32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        months: i32::from_be_bytes([b[12], b[13], b[14], b[15]]),
    })
}

/// Decodes a `timetz`: i64 microseconds and the zone's offset in seconds *west* of UTC.
pub fn decode_timetz(buf: &[u8]) -> Result<(i64, i32), super::DecodeError> {
    let b: [u8; 12] = super::binary::fixed(buf, "invalid timetz length")?;
    Ok((
        i64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        i32::from_be_bytes([b[8], b[9], b[10], b[11]]),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_and_known_dates() {
        assert_eq!(
            pg_days_to_civil(0),
            Civil {
                year: 2000,
                month: 1,
                day: 1
            }
        );
        assert_eq!(
            pg_days_to_civil(-1),
            Civil {
                year: 1999,
                month: 12,
                day: 31
            }
        );
        assert_eq!(
            pg_days_to_civil(60),
            Civil {
                year: 2000,
                month: 3,
                day: 1
            }
        );
        // 0001-01-01 is 730119 days before 2000-01-01.
        assert_eq!(
            civil_to_pg_days(Civil {
                year: 1,
                month: 1,
                day: 1
            }),
            -730_119
        );
    }

    #[test]
    fn civil_round_trip() {
        for days in (-3_000_000..3_000_000).step_by(997) {
            assert_eq!(civil_to_pg_days(pg_days_to_civil(days)), days);
        }
    }

    #[test]
    fn time_split_round_trip() {
        for us in [0, 1, 86_399_999_999, 86_400_000_000, 45_296_789_012] {
            assert_eq!(join_time(split_time(us)), us);
        }
        assert_eq!(split_timestamp(-1), (-1, USECS_PER_DAY - 1));
    }
}
