//! The type features (`with-chrono-0_4`, ..., `array-impls`) against a real server,
//! one test per feature, each compiled only with its feature on. `make test-rust`
//! runs them all in one build (`--workspace`, so that the other crates keep the
//! features of the workspace build):
//!
//! ```text
//! cargo test --workspace --test type_features --features "ferropg/with-chrono-0_4 \
//!     ferropg/with-time-0_3 ferropg/with-jiff-0_2 ferropg/with-uuid-1 \
//!     ferropg/with-serde_json-1 ferropg/with-cidr-0_2 ferropg/with-geo-types-0_7 \
//!     ferropg/with-bit-vec-0_6 ferropg/with-eui48-1 ferropg/array-impls"
//! ```
//!
//! And `rust_decimal::Decimal`, whose impls come from rust_decimal's own
//! `db-tokio-postgres` feature (a dev-dependency), in every build.

mod support;

use std::fmt::Debug;

use ferropg::types::{FromSql, ToSql};
use ferropg::Connection;

async fn connect() -> Connection {
    ferropg::connect(&support::shared_config())
        .await
        .expect("connect")
}

/// Checks `value` as a `ty` both ways: sent as a parameter it comes back equal, and
/// the server sees the value `literal` denotes (their text forms match); the
/// server's own `literal` decodes to `value`; NULL is `None`, sent and received;
/// and arrays (`Vec<T>`, with a NULL element) go both ways too.
async fn check<T>(conn: &mut Connection, ty: &str, value: T, literal: &str)
where
    T: ToSql + for<'a> FromSql<'a> + PartialEq + Debug + Clone + Sync,
{
    let sql = format!(
        "SELECT $1::{ty}, $1::{ty}::text = {literal}::{ty}::text, {literal}::{ty},
                $2::{ty}, NULL::{ty}, $3::{ty}[], ARRAY[{literal}::{ty}, NULL]"
    );
    let pair = vec![value.clone(), value.clone()];
    let row = conn
        .query_one(sql.as_str(), &[&value, &None::<T>, &pair])
        .await
        .unwrap_or_else(|e| panic!("{ty}: {e}"));
    assert_eq!(row.get::<_, T>(0), value, "{ty}: sent and read back");
    assert!(row.get::<_, bool>(1), "{ty}: the server saw another value");
    assert_eq!(row.get::<_, T>(2), value, "{ty}: read from SQL");
    assert_eq!(row.get::<_, Option<T>>(3), None, "{ty}: NULL sent");
    assert_eq!(row.get::<_, Option<T>>(4), None, "{ty}: NULL read");
    assert_eq!(row.get::<_, Vec<T>>(5), pair, "{ty}[]: sent");
    assert_eq!(
        row.get::<_, Vec<Option<T>>>(6),
        vec![Some(value), None],
        "{ty}[]: read from SQL"
    );
}

#[cfg(feature = "with-chrono-0_4")]
#[tokio::test]
async fn chrono_0_4() {
    use chrono_04::{DateTime, FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc};
    use ferropg::types::{Date, Timestamp};

    let mut conn = connect().await;
    let date = NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
    let time = NaiveTime::from_hms_micro_opt(13, 14, 15, 123_456).unwrap();
    let stamp = date.and_time(time);
    check(&mut conn, "date", date, "'2024-02-29'").await;
    check(&mut conn, "time", time, "'13:14:15.123456'").await;
    check(
        &mut conn,
        "timestamp",
        stamp,
        "'2024-02-29 13:14:15.123456'",
    )
    .await;
    let utc: DateTime<Utc> = Utc.from_utc_datetime(&stamp);
    check(
        &mut conn,
        "timestamptz",
        utc,
        "'2024-02-29 13:14:15.123456+00'",
    )
    .await;
    // timestamptz holds an instant, not an offset: +02:00 goes in, UTC comes out.
    let plus_two = FixedOffset::east_opt(2 * 3600).unwrap();
    let local = plus_two.from_local_datetime(&stamp).unwrap();
    let row = conn
        .query_one(
            "SELECT $1::timestamptz, $1::timestamptz = '2024-02-29 13:14:15.123456+02'",
            &[&local],
        )
        .await
        .unwrap();
    let back: DateTime<FixedOffset> = row.get(0);
    assert_eq!(back, local);
    assert_eq!(back.offset().local_minus_utc(), 0);
    assert!(row.get::<_, bool>(1));
    // ±infinity has no chrono value; ferropg::types::Date and Timestamp carry it.
    let row = conn
        .query_one(
            "SELECT 'infinity'::date, '-infinity'::timestamp, $1::date, $2::timestamp = 'infinity'",
            &[
                &Date::Value(date),
                &Timestamp::<chrono_04::NaiveDateTime>::PosInfinity,
            ],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Date<NaiveDate>>(0), Date::PosInfinity);
    assert_eq!(
        row.get::<_, Timestamp<chrono_04::NaiveDateTime>>(1),
        Timestamp::NegInfinity
    );
    assert_eq!(row.get::<_, Date<NaiveDate>>(2), Date::Value(date));
    assert!(row.get::<_, bool>(3));
    assert!(conn
        .query_one("SELECT 'infinity'::date", &[])
        .await
        .unwrap()
        .try_get::<_, NaiveDate>(0)
        .is_err());
}

#[cfg(feature = "with-time-0_3")]
#[tokio::test]
async fn time_0_3() {
    use time_03::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

    let mut conn = connect().await;
    let date = Date::from_calendar_date(2024, Month::February, 29).unwrap();
    let time = Time::from_hms_micro(13, 14, 15, 123_456).unwrap();
    let stamp = PrimitiveDateTime::new(date, time);
    check(&mut conn, "date", date, "'2024-02-29'").await;
    check(&mut conn, "time", time, "'13:14:15.123456'").await;
    check(
        &mut conn,
        "timestamp",
        stamp,
        "'2024-02-29 13:14:15.123456'",
    )
    .await;
    check(
        &mut conn,
        "timestamptz",
        stamp.assume_utc(),
        "'2024-02-29 13:14:15.123456+00'",
    )
    .await;
    // An offset goes in as the instant it names and comes back in UTC.
    let local = stamp.assume_offset(UtcOffset::from_hms(2, 0, 0).unwrap());
    let row = conn
        .query_one(
            "SELECT $1::timestamptz, $1::timestamptz = '2024-02-29 13:14:15.123456+02'",
            &[&local],
        )
        .await
        .unwrap();
    let back: OffsetDateTime = row.get(0);
    assert_eq!(back, local);
    assert_eq!(back.offset(), UtcOffset::UTC);
    assert!(row.get::<_, bool>(1));
}

#[cfg(feature = "with-jiff-0_2")]
#[tokio::test]
async fn jiff_0_2() {
    use jiff_02::civil::{date, time};
    use jiff_02::Timestamp;

    let mut conn = connect().await;
    let day = date(2024, 2, 29);
    let clock = time(13, 14, 15, 123_456_000);
    check(&mut conn, "date", day, "'2024-02-29'").await;
    check(&mut conn, "time", clock, "'13:14:15.123456'").await;
    check(
        &mut conn,
        "timestamp",
        day.to_datetime(clock),
        "'2024-02-29 13:14:15.123456'",
    )
    .await;
    let instant: Timestamp = "2024-02-29T11:14:15.123456Z".parse().unwrap();
    check(
        &mut conn,
        "timestamptz",
        instant,
        "'2024-02-29 13:14:15.123456+02'",
    )
    .await;
}

#[cfg(feature = "with-uuid-1")]
#[tokio::test]
async fn uuid_1() {
    use uuid_1::Uuid;

    let mut conn = connect().await;
    let id = Uuid::from_u128(0xa0ee_bc99_9c0b_4ef8_bb6d_6bb9_bd38_0a11);
    check(
        &mut conn,
        "uuid",
        id,
        "'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'",
    )
    .await;
    check(
        &mut conn,
        "uuid",
        Uuid::nil(),
        "'00000000-0000-0000-0000-000000000000'",
    )
    .await;
    // The server's own uuid, not one we sent.
    let made: Uuid = conn
        .query_one("SELECT gen_random_uuid()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(made.get_version_num(), 4);
}

#[cfg(feature = "with-serde_json-1")]
#[tokio::test]
async fn serde_json_1() {
    use ferropg::types::Json;
    use serde_json_1::{json, Value};

    let mut conn = connect().await;
    let doc = json!({"a": 1, "b": [true, null, "x"], "c": {"d": 2.5}});
    // json keeps its text as sent; serde_json writes it compact, keys sorted.
    check(
        &mut conn,
        "json",
        doc.clone(),
        r#"'{"a":1,"b":[true,null,"x"],"c":{"d":2.5}}'"#,
    )
    .await;
    check(
        &mut conn,
        "jsonb",
        doc.clone(),
        r#"'{"c": {"d": 2.5}, "b": [true, null, "x"], "a": 1}'"#,
    )
    .await;
    // A JSON null is a value, not SQL NULL.
    check(&mut conn, "jsonb", Value::Null, "'null'").await;
    // Json<T> sends and reads any serde type.
    let row = conn
        .query_one(
            "SELECT $1::jsonb, $1::jsonb = '[1, 2, 3]', '{\"k\": [4]}'::json",
            &[&Json(vec![1, 2, 3])],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Json<Vec<i32>>>(0).0, vec![1, 2, 3]);
    assert!(row.get::<_, bool>(1));
    let map: Json<std::collections::BTreeMap<String, Vec<i64>>> = row.get(2);
    assert_eq!(map.0["k"], vec![4]);
    assert!(row.try_get::<_, Json<Vec<String>>>(0).is_err());
}

#[cfg(feature = "with-cidr-0_2")]
#[tokio::test]
async fn cidr_0_2() {
    use cidr_02::{IpCidr, IpInet};

    let mut conn = connect().await;
    let net: IpCidr = "10.1.0.0/16".parse().unwrap();
    check(&mut conn, "cidr", net, "'10.1/16'").await;
    let net6: IpCidr = "2001:db8::/32".parse().unwrap();
    check(&mut conn, "cidr", net6, "'2001:db8::/32'").await;
    // inet keeps the host address and the prefix of its network.
    let host: IpInet = "10.0.0.9/8".parse().unwrap();
    check(&mut conn, "inet", host, "'10.0.0.9/8'").await;
    let single: IpInet = "2001:db8::1/128".parse().unwrap();
    check(&mut conn, "inet", single, "'2001:db8::1'").await;
    // A cidr with host bits set is the server's error, not a silent change.
    assert!(conn
        .query_one("SELECT '10.0.0.9/8'::cidr", &[])
        .await
        .is_err());
}

#[cfg(feature = "with-geo-types-0_7")]
#[tokio::test]
async fn geo_types_0_7() {
    use geo_types_07::{coord, LineString, Point, Rect};

    let mut conn = connect().await;
    check(&mut conn, "point", Point::new(1.5, -2.0), "'(1.5,-2)'").await;
    // The server stores a box upper right corner first; Rect keeps min and max.
    let rect = Rect::new(coord! { x: 0.0, y: 1.0 }, coord! { x: 2.0, y: 3.0 });
    check(&mut conn, "box", rect, "'(0,1),(2,3)'").await;
    let path = LineString::from(vec![(0.0, 0.0), (1.0, 2.0), (3.0, -1.5)]);
    check(&mut conn, "path", path.clone(), "'[(0,0),(1,2),(3,-1.5)]'").await;
    // A LineString is sent as an open path, even one that ends where it starts.
    let closed = LineString::from(vec![(0.0, 0.0), (1.0, 0.0), (0.0, 0.0)]);
    let open: bool = conn
        .query_one("SELECT isopen($1::path)", &[&closed])
        .await
        .unwrap()
        .get(0);
    assert!(open);
}

#[cfg(feature = "with-bit-vec-0_6")]
#[tokio::test]
async fn bit_vec_0_6() {
    use bit_vec_06::BitVec;

    let mut conn = connect().await;
    let bits: BitVec = [true, false, true, true, false].into_iter().collect();
    check(&mut conn, "varbit", bits.clone(), "B'10110'").await;
    check(&mut conn, "bit(5)", bits.clone(), "B'10110'").await;
    // More than 8 bits, not a multiple of 8: the padding of the last byte.
    let long: BitVec = (0..13).map(|i| i % 3 == 0).collect();
    check(&mut conn, "varbit", long, "B'1001001001001'").await;
    check(&mut conn, "varbit", BitVec::new(), "B''").await;
}

#[cfg(feature = "with-eui48-1")]
#[tokio::test]
async fn eui48_1() {
    use eui48_1::MacAddress;

    let mut conn = connect().await;
    let mac = MacAddress::new([0x08, 0x00, 0x2b, 0x01, 0x02, 0x03]);
    check(&mut conn, "macaddr", mac, "'08-00-2B-01-02-03'").await;
    check(
        &mut conn,
        "macaddr",
        MacAddress::broadcast(),
        "'ff:ff:ff:ff:ff:ff'",
    )
    .await;
}

#[cfg(feature = "array-impls")]
#[tokio::test]
async fn array_impls() {
    // Not through check(): postgres-types has no two-dimensional arrays, and u8 has
    // no FromSql, so [u8; N] is sent only.
    let mut conn = connect().await;
    let row = conn
        .query_one(
            "SELECT $1::int4[], $1::int4[] = '{1,-2,3}', $2::text[], $2::text[] = '{a,\"b c\"}',
                    $3::int8[], $3::int8[] IS NOT DISTINCT FROM '{7,NULL}', $4::bytea,
                    $4::bytea = '\\xdeadbeef', NULL::int4[], $5::int2[], '{}'::int2[]",
            &[
                &[1i32, -2, 3],
                &["a", "b c"],
                &[Some(7i64), None],
                &[0xdeu8, 0xad, 0xbe, 0xef],
                &[0i16; 0],
            ],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, [i32; 3]>(0), [1, -2, 3]);
    assert!(row.get::<_, bool>(1));
    assert_eq!(row.get::<_, [String; 2]>(2), ["a", "b c"]);
    assert!(row.get::<_, bool>(3));
    assert_eq!(row.get::<_, [Option<i64>; 2]>(4), [Some(7), None]);
    assert!(row.get::<_, bool>(5));
    // [u8; N] is bytea, not an array of bytes.
    assert_eq!(row.get::<_, Vec<u8>>(6), [0xde, 0xad, 0xbe, 0xef]);
    assert!(row.get::<_, bool>(7));
    assert_eq!(row.get::<_, Option<[i32; 3]>>(8), None);
    assert_eq!(row.get::<_, [i16; 0]>(9), [0i16; 0]);
    assert_eq!(row.get::<_, [i16; 0]>(10), [0i16; 0]);
    // A length other than N is an error, not a truncated or padded array.
    assert!(row.try_get::<_, [i32; 2]>(0).is_err());
    assert!(row.try_get::<_, [i32; 4]>(0).is_err());
    assert!(row.try_get::<_, [i16; 1]>(10).is_err());
}

/// rust_decimal's `db-tokio-postgres` implements postgres-types' traits for
/// `Decimal`; they apply to ferropg because Cargo resolves one postgres-types 0.2
/// for both (no ferropg feature involved).
#[tokio::test]
async fn rust_decimal_numeric() {
    use ferropg::types::Numeric;
    use rust_decimal::Decimal;

    let mut conn = connect().await;
    let price: Decimal = "-12.3400".parse().unwrap();
    check(&mut conn, "numeric", price, "'-12.3400'").await;
    let big: Decimal = "79228162514264337593543950335".parse().unwrap();
    check(&mut conn, "numeric", big, "'79228162514264337593543950335'").await;
    let small: Decimal = "0.0000000000000000000000000001".parse().unwrap();
    check(&mut conn, "numeric", small, "'1e-28'").await;
    // The scale goes both ways, and agrees with ferropg's own Numeric.
    let row = conn
        .query_one(
            "SELECT $1::numeric::text, 3950.123456000::numeric",
            &[&price],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "-12.3400");
    let read: Decimal = row.get(1);
    assert_eq!(read.to_string(), "3950.123456000");
    assert_eq!(row.get::<_, Numeric>(1).as_str(), read.to_string());
    // Decimal has no NaN or infinity and holds 96 bits: those are errors.
    for text in ["'NaN'", "'-Infinity'", "1e30"] {
        let row = conn
            .query_one(format!("SELECT {text}::numeric").as_str(), &[])
            .await
            .unwrap();
        assert!(row.try_get::<_, Decimal>(0).is_err(), "{text}");
    }
}
