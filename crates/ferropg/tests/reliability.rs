//! The Rust face against faults and hostile values, on a real server: limits checked
//! before anything is sent, and SQL built from values safe under every setting.

mod support;

use std::time::Duration;
use support::rng::XorShift;

use ferropg::{quote, Connection, ErrorKind, ToSql};

async fn connect_with(settings: &[(&str, &str)]) -> Connection {
    let mut c = support::shared_config();
    for (k, v) in settings {
        c.server_setting(k, v);
    }
    ferropg::connect(&c).await.expect("connect")
}

fn many_params(n: usize) -> String {
    let list: Vec<String> = (1..=n).map(|i| format!("${i}::int")).collect();
    format!("SELECT cardinality(ARRAY[{}])", list.join(","))
}

#[tokio::test]
async fn argument_counts_past_the_limit_fail_the_call_not_the_connection() {
    let mut conn = connect_with(&[]).await;
    let values: Vec<i32> = (0..70_000).collect();
    let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v as _).collect();
    let sql = many_params(70_000);

    let err = conn.query(sql.as_str(), &params).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Encode, "{err}");
    assert!(err.to_string().contains("cannot exceed 32767"), "{err}");
    // Prepared alone, the server reports its 70,000 parameters with a wrapped count:
    // the statement fails, the connection does not.
    let err = conn.prepare(&sql).await.unwrap_err();
    assert!(err.to_string().contains("cannot exceed 32767"), "{err}");
    assert!(!conn.is_closed());
    let one: i32 = conn.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);

    let at_limit = many_params(32_767);
    let got: i32 = conn
        .query_one(at_limit.as_str(), &params[..32_767])
        .await
        .unwrap()
        .get(0);
    assert_eq!(got, 32_767);
}

#[tokio::test]
async fn quoted_values_read_back_exactly_under_both_string_settings() {
    let hostile = [
        "\\') TO STDOUT; DROP TABLE canary; --",
        "'; DROP TABLE canary; --",
        "\\",
        "it's \\' \" é€😀",
        "",
    ];
    for scs in ["on", "off"] {
        let mut conn = connect_with(&[("standard_conforming_strings", scs)]).await;
        conn.batch_execute("CREATE TEMP TABLE canary (x int)")
            .await
            .unwrap();
        for value in hostile {
            let sql = format!("SELECT {}", quote::literal(value).unwrap());
            let got: String = conn.query_one(sql.as_str(), &[]).await.unwrap().get(0);
            assert_eq!(got, value, "standard_conforming_strings={scs}");
            if !value.is_empty() {
                let sql = format!("SELECT 1 AS {}", quote::identifier(value).unwrap());
                let row = conn.query_one(sql.as_str(), &[]).await.unwrap();
                assert_eq!(row.columns()[0].name(), value);
            }
        }
        let n: i64 = conn
            .query_one("SELECT count(*) FROM canary", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 0);
    }
}

#[tokio::test]
async fn a_cancel_request_never_reaches_a_later_query() {
    // Per-call timeouts that land inside queries (each one sends a CancelRequest),
    // and outer timeouts that drop calls, even while their cancel is on its way.
    // Only the query that timed out may be cancelled.
    let mut tasks = Vec::new();
    for seed in 1..=8u64 {
        tasks.push(tokio::spawn(async move {
            let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut conn = connect_with(&[]).await;
            let (mut ok, mut timed_out) = (0, 0);
            for _ in 0..200 {
                conn.set_timeout(Some(Duration::from_micros(1 + rng.below(20_000))));
                let outer = Duration::from_micros(1 + rng.below(25_000));
                let call = conn.query_one("SELECT 1 FROM pg_sleep(random() * 0.01)", &[]);
                match tokio::time::timeout(outer, call).await {
                    Ok(Ok(row)) => {
                        assert_eq!(row.get::<_, i32>(0), 1);
                        ok += 1;
                    }
                    Ok(Err(e)) if e.kind() == ErrorKind::Timeout => timed_out += 1,
                    Ok(Err(e)) => panic!("an innocent query failed: {e}"),
                    Err(_) => timed_out += 1,
                }
            }
            conn.set_timeout(None);
            let one: i32 = conn.query_one("SELECT 1", &[]).await.unwrap().get(0);
            assert_eq!(one, 1);
            (ok, timed_out)
        }));
    }
    let (mut ok, mut timed_out) = (0, 0);
    for task in tasks {
        let (o, t) = task.await.unwrap();
        ok += o;
        timed_out += t;
    }
    // Both outcomes must occur for the test to mean anything; their shares depend on
    // the machine's load (a busy one times out most calls), so only a floor is asked.
    assert!(
        ok >= 10 && timed_out >= 10,
        "ok {ok}, timed out {timed_out}"
    );
}

#[tokio::test]
async fn hostile_values_fail_the_call_not_the_connection() {
    let mut conn = connect_with(&[]).await;
    let huge = "x".repeat(4 * 1024 * 1024);
    let nul = "a\0b".to_owned();
    let big: i64 = i64::MAX;
    let nan = f64::NAN;
    let cases: Vec<(&str, &(dyn ToSql + Sync))> = vec![
        // A Rust type the column's type does not take: refused before sending.
        ("SELECT $1::int4", &big),
        ("SELECT $1::text", &big),
        // Values the server refuses: a data error.
        ("SELECT $1::text", &nul),
        ("SELECT $1::numeric::int4", &nan),
        ("SELECT $1::name", &huge),
        ("SELECT $1::int8", &huge),
    ];
    for (sql, value) in cases {
        let err = conn.query_one(sql, &[value]).await.unwrap_err();
        assert!(!err.is_closed(), "{sql}: {err}");
        assert!(
            matches!(err.kind(), ErrorKind::ToSql | ErrorKind::Db),
            "{sql}: {err}"
        );
        let one: i32 = conn.query_one("SELECT 1", &[]).await.unwrap().get(0);
        assert_eq!(one, 1, "{sql}");
    }
    // Accepted as they are: NaN is a float, a long text is text.
    let back: f64 = conn
        .query_one("SELECT $1::float8", &[&nan])
        .await
        .unwrap()
        .get(0);
    assert!(back.is_nan());
    let len: i32 = conn
        .query_one("SELECT length($1::text)", &[&huge])
        .await
        .unwrap()
        .get(0);
    assert_eq!(len as usize, huge.len());
}
