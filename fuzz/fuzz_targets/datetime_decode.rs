//! Dates, times, timestamps and intervals from arbitrary bytes: `decode_interval` and
//! `decode_timetz` must reject every wrong length and read every right one;
//! `pg_days_to_civil` must give a real calendar date for any `date` value (i32 days) and
//! any timestamp's day, and `civil_to_pg_days` must invert it; `split_time` must give
//! fields in range that `join_time` puts back together.
#![no_main]

use ferropg_core::types::datetime::{
    civil_to_pg_days, decode_interval, decode_timetz, join_time, pg_days_to_civil, split_time,
    split_timestamp, USECS_PER_DAY,
};
use libfuzzer_sys::fuzz_target;

fn days_in_month(year: i64, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => panic!("month {month} out of range"),
    }
}

fn check_days(days: i64) {
    let c = pg_days_to_civil(days);
    assert!((1..=12).contains(&c.month), "{days}: month {}", c.month);
    assert!(
        c.day >= 1 && c.day <= days_in_month(c.year, c.month),
        "{days}: {c:?} is not a date"
    );
    assert_eq!(civil_to_pg_days(c), days, "{c:?}");
    // The next day is the next date.
    let n = pg_days_to_civil(days + 1);
    let expected = if c.day < days_in_month(c.year, c.month) {
        (c.year, c.month, c.day + 1)
    } else if c.month < 12 {
        (c.year, c.month + 1, 1)
    } else {
        (c.year + 1, 1, 1)
    };
    assert_eq!((n.year, n.month, n.day), expected, "day after {c:?}");
}

fn check_time(usecs: i64) {
    let t = split_time(usecs);
    assert!(
        t.hour <= 24 && t.minute < 60 && t.second < 60 && t.microsecond < 1_000_000,
        "{t:?}"
    );
    if t.hour == 24 {
        assert!(
            t.minute == 0 && t.second == 0 && t.microsecond == 0,
            "{t:?}"
        );
    }
    let joined = join_time(t);
    assert!((0..=USECS_PER_DAY).contains(&joined));
    if (0..=USECS_PER_DAY).contains(&usecs) {
        assert_eq!(joined, usecs, "{t:?}");
    }
}

fn check_timestamp(usecs: i64) {
    let (days, time) = split_timestamp(usecs);
    assert!((0..USECS_PER_DAY).contains(&time));
    assert_eq!(
        i128::from(days) * i128::from(USECS_PER_DAY) + i128::from(time),
        i128::from(usecs)
    );
    check_days(days);
    check_time(time);
}

fn be_i64(b: &[u8]) -> i64 {
    i64::from_be_bytes(b.try_into().unwrap())
}

fn be_i32(b: &[u8]) -> i32 {
    i32::from_be_bytes(b.try_into().unwrap())
}

fuzz_target!(|data: &[u8]| {
    match decode_interval(data) {
        Ok(iv) => {
            assert_eq!(data.len(), 16);
            assert_eq!(iv.microseconds, be_i64(&data[..8]));
            assert_eq!(iv.days, be_i32(&data[8..12]));
            assert_eq!(iv.months, be_i32(&data[12..]));
            check_time(iv.microseconds);
        }
        Err(e) => {
            assert_ne!(data.len(), 16);
            let _ = e.to_string();
        }
    }
    match decode_timetz(data) {
        Ok((usecs, zone)) => {
            assert_eq!(data.len(), 12);
            assert_eq!(usecs, be_i64(&data[..8]));
            assert_eq!(zone, be_i32(&data[8..]));
            check_time(usecs);
        }
        Err(_) => assert_ne!(data.len(), 12),
    }
    // Every 4-byte window as a `date`, every 8-byte window as a `time` and a `timestamp`.
    for w in data.windows(4).take(16) {
        check_days(i64::from(be_i32(w)));
    }
    for w in data.windows(8).take(16) {
        let v = be_i64(w);
        check_time(v);
        check_timestamp(v);
    }
});
