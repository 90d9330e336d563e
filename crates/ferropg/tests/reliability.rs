//! The Rust face against faults and hostile values, on a real server: limits checked
//! before anything is sent, and SQL built from values safe under every setting.

mod support;

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
