//! Property-based round trips through a real server: whatever value proptest makes,
//! sending it as a parameter and reading it back gives the same value, and the server
//! prints it as Rust would (so a codec that is symmetric but wrong still fails).

mod support;

use std::net::IpAddr;
use std::ops::Bound;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferropg::types::{Geometry, Inet, Interval, Multirange, Numeric, Range, ToSql, Value};
use ferropg::Connection;
use proptest::prelude::*;

/// One runtime and one connection for every case of every property.
fn with_conn<R>(f: impl AsyncFnOnce(&mut Connection) -> R) -> R {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    static CONN: OnceLock<Mutex<Option<Connection>>> = OnceLock::new();
    let rt = RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    });
    let slot = CONN.get_or_init(|| Mutex::new(None));
    let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
    rt.block_on(async {
        if guard.is_none() {
            let config = support::shared_config();
            *guard = Some(ferropg::connect(&config).await.expect("connect"));
        }
        f(guard.as_mut().unwrap()).await
    })
}

fn echo<T>(sql: &str, value: &T) -> T
where
    T: ToSql + Sync + for<'a> ferropg::FromSql<'a>,
{
    with_conn(async |conn| conn.query_one(sql, &[value]).await.unwrap().get(0))
}

fn server_text<T: ToSql + Sync>(sql: &str, value: &T) -> String {
    with_conn(async |conn| conn.query_one(sql, &[value]).await.unwrap().get(0))
}

/// Decimal text PostgreSQL accepts: up to 30 integer and 20 fraction digits.
fn decimal() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        "[0-9]{1,30}",
        proptest::option::of("[0-9]{1,20}"),
    )
        .prop_map(|(neg, int, frac)| {
            let int = int.trim_start_matches('0');
            let int = if int.is_empty() { "0" } else { int };
            let mut s = String::new();
            if neg
                && (int != "0"
                    || frac
                        .as_deref()
                        .is_some_and(|f| f.bytes().any(|b| b != b'0')))
            {
                s.push('-');
            }
            s.push_str(int);
            if let Some(f) = frac {
                s.push('.');
                s.push_str(&f);
            }
            s
        })
}

/// A range of int8 with bounds of every kind, lower not above upper.
fn int8_range() -> impl Strategy<Value = Range<i64>> {
    let bound = || {
        prop_oneof![
            Just(None),
            (any::<bool>(), -1000i64..1000).prop_map(|(inc, v)| Some((inc, v))),
        ]
    };
    (bound(), bound(), any::<bool>()).prop_map(|(lo, hi, empty)| {
        if empty {
            return Range::Empty;
        }
        let as_bound = |b: Option<(bool, i64)>| match b {
            None => Bound::Unbounded,
            Some((true, v)) => Bound::Included(v),
            Some((false, v)) => Bound::Excluded(v),
        };
        let (lo, hi) = match (lo, hi) {
            (Some(a), Some(b)) if a.1 > b.1 => (Some(b), Some(a)),
            other => other,
        };
        Range::Bounds {
            lower: as_bound(lo),
            upper: as_bound(hi),
        }
    })
}

/// Whether `r` holds `x`, worked out here rather than by the server.
fn holds(r: &Range<i64>, x: i64) -> bool {
    match r {
        Range::Empty => false,
        Range::Bounds { lower, upper } => {
            let above = match lower {
                Bound::Unbounded => true,
                Bound::Included(v) => x >= *v,
                Bound::Excluded(v) => x > *v,
            };
            let below = match upper {
                Bound::Unbounded => true,
                Bound::Included(v) => x <= *v,
                Bound::Excluded(v) => x < *v,
            };
            above && below
        }
    }
}

fn point() -> impl Strategy<Value = (f64, f64)> {
    (-1e6f64..1e6, -1e6f64..1e6)
}

fn inet() -> impl Strategy<Value = Inet> {
    prop_oneof![
        (any::<[u8; 4]>(), 0u8..=32).prop_map(|(a, prefix)| Inet {
            addr: IpAddr::from(a),
            prefix
        }),
        (any::<[u8; 16]>(), 0u8..=128).prop_map(|(a, prefix)| Inet {
            addr: IpAddr::from(a),
            prefix
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn bools_and_timestamps(b in any::<bool>(), micros in -4_000_000_000_000_000i64..4_000_000_000_000_000) {
        prop_assert_eq!(echo("SELECT $1::bool", &b), b);
        let t = if micros >= 0 {
            UNIX_EPOCH + Duration::from_micros(micros as u64)
        } else {
            UNIX_EPOCH - Duration::from_micros(micros.unsigned_abs())
        };
        prop_assert_eq!(echo("SELECT $1::timestamptz", &t), t);
        let epoch: i64 = with_conn(async |conn| {
            conn.query_one("SELECT (extract(epoch FROM $1::timestamptz) * 1000000)::int8", &[&t])
                .await
                .unwrap()
                .get(0)
        });
        prop_assert_eq!(epoch, micros);
        let _: SystemTime = t;
    }

    #[test]
    fn intervals(months in -10_000i32..10_000, days in -100_000i32..100_000, us in -(1i64 << 40)..(1i64 << 40)) {
        let v = Interval { months, days, microseconds: us };
        prop_assert_eq!(echo("SELECT $1::interval", &v), v);
        // The server reads the same three fields back.
        let fields: (i32, i32, i64) = with_conn(async |conn| {
            let r = conn
                .query_one(
                    "SELECT (extract(year FROM $1::interval) * 12 + extract(month FROM $1::interval))::int4,
                            extract(day FROM $1::interval)::int4,
                            (extract(epoch FROM $1::interval - date_trunc('day', $1::interval)) * 1000000)::int8",
                    &[&v],
                )
                .await
                .unwrap();
            (r.get(0), r.get(1), r.get(2))
        });
        prop_assert_eq!(fields, (months, days, us));
    }

    #[test]
    fn inets(v in inet()) {
        prop_assert_eq!(echo("SELECT $1::inet", &v), v);
        let (host, len): (String, i32) = with_conn(async |conn| {
            let r = conn.query_one("SELECT host($1::inet), masklen($1::inet)", &[&v]).await.unwrap();
            (r.get(0), r.get(1))
        });
        prop_assert_eq!(host.parse::<IpAddr>().unwrap(), v.addr);
        prop_assert_eq!(len, i32::from(v.prefix));
    }

    #[test]
    fn geometry(p in point(), q in point(), pts in proptest::collection::vec(point(), 1..8), r in 0f64..1e6) {
        let shapes = [
            ("point", Geometry::Point(p)),
            ("lseg", Geometry::LineSegment(p, q)),
            ("path", Geometry::Path { closed: true, points: pts.clone() }),
            ("polygon", Geometry::Polygon(pts.clone())),
            ("circle", Geometry::Circle { center: p, radius: r }),
        ];
        for (ty, shape) in shapes {
            prop_assert_eq!(echo(&format!("SELECT $1::{ty}"), &shape), shape);
        }
        let x: f64 = with_conn(async |conn| {
            conn.query_one("SELECT ($1::point)[0]", &[&Geometry::Point(p)]).await.unwrap().get(0)
        });
        prop_assert_eq!(x, p.0);
    }

    #[test]
    fn ranges(r in int8_range(), probes in proptest::collection::vec(-1100i64..1100, 1..6)) {
        for x in probes {
            let held: bool = with_conn(async |conn| {
                conn.query_one("SELECT $1::int8range @> $2::int8", &[&r, &x]).await.unwrap().get(0)
            });
            prop_assert_eq!(held, holds(&r, x), "{:?} @> {}", r, x);
        }
        // What comes back is the server's canonical form of the same set.
        let back = echo("SELECT $1::int8range", &r);
        prop_assert_eq!(echo("SELECT $1::int8range", &back), back);
    }

    #[test]
    fn multiranges(rs in proptest::collection::vec(int8_range(), 0..5), probes in proptest::collection::vec(-1100i64..1100, 1..6)) {
        let m = Multirange(rs.clone());
        for x in probes {
            let held: bool = with_conn(async |conn| {
                conn.query_one("SELECT $1::int8multirange @> $2::int8", &[&m, &x]).await.unwrap().get(0)
            });
            prop_assert_eq!(held, rs.iter().any(|r| holds(r, x)));
        }
        let back = echo("SELECT $1::int8multirange", &m);
        prop_assert_eq!(echo("SELECT $1::int8multirange", &back), back.clone());
        let as_value: Value = with_conn(async |conn| {
            conn.query_one("SELECT $1::int8multirange", &[&m]).await.unwrap().get(0)
        });
        let Value::Multirange(ranges) = as_value else { panic!("not a multirange") };
        prop_assert_eq!(ranges.len(), back.0.len());
    }

    #[test]
    fn integers(a in any::<i16>(), b in any::<i32>(), c in any::<i64>()) {
        prop_assert_eq!(echo("SELECT $1::int2", &a), a);
        prop_assert_eq!(echo("SELECT $1::int4", &b), b);
        prop_assert_eq!(echo("SELECT $1::int8", &c), c);
        prop_assert_eq!(server_text("SELECT $1::int8::text", &c), c.to_string());
    }

    #[test]
    fn floats(x in any::<f64>()) {
        let back = echo("SELECT $1::float8", &x);
        prop_assert!(back.to_bits() == x.to_bits() || (x.is_nan() && back.is_nan()));
    }

    #[test]
    fn text_and_bytes(s in "[^\u{0}]{0,64}", b in proptest::collection::vec(any::<u8>(), 0..64)) {
        prop_assert_eq!(echo("SELECT $1::text", &s), s.clone());
        prop_assert_eq!(echo("SELECT $1::bytea", &b), b);
        prop_assert_eq!(server_text("SELECT length($1::text)::text", &s), s.chars().count().to_string());
    }

    #[test]
    fn int_arrays(v in proptest::collection::vec(proptest::option::of(any::<i32>()), 0..12)) {
        prop_assert_eq!(echo("SELECT $1::int4[]", &v), v);
    }

    #[test]
    fn numerics(text in decimal()) {
        let n: Numeric = text.parse().unwrap();
        let back = echo("SELECT $1::numeric", &n);
        prop_assert_eq!(back.as_str(), text.as_str());
        prop_assert_eq!(server_text("SELECT $1::numeric::text", &n), text);
    }

    #[test]
    fn values(i in any::<i64>(), s in "[a-z ]{0,16}", v in proptest::collection::vec(any::<i32>(), 0..6)) {
        let row: (Value, Value, Value) = with_conn(async |conn| {
            let r = conn
                .query_one(
                    "SELECT $1::int8, $2::text, $3::int4[]",
                    &[&Value::Int(i), &Value::Text(s.clone()), &v],
                )
                .await
                .unwrap();
            (r.get(0), r.get(1), r.get(2))
        });
        prop_assert_eq!(row.0, Value::Int(i));
        prop_assert_eq!(row.1, Value::Text(s));
        prop_assert_eq!(row.2, Value::Array(v.into_iter().map(|x| Value::Int(x.into())).collect()));
    }
}
