//! Property-based round trips through a real server: whatever value proptest makes,
//! sending it as a parameter and reading it back gives the same value, and the server
//! prints it as Rust would (so a codec that is symmetric but wrong still fails).

mod support;

use std::sync::{Mutex, OnceLock};

use ferropg::types::{Numeric, ToSql, Value};
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

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
