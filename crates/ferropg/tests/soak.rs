//! Leak soak of the Rust face (the twin of `tests/soak.py`): RSS and open
//! descriptors across queries, connect/close cycles, server errors and prepared
//! statements. `cargo test` runs a tenth of the counts; `make soak` sets
//! `FERROPG_SOAK_SCALE=1` for 1,000,000 queries, 10,000 connects, 100,000 errors and
//! 100,000 statements. Budgets: 5 MB of RSS per million queries (errors and
//! statements alike), 5 KB per connect/close cycle, every descriptor given back.

mod support;

use std::future::Future;

use ferropg::Connection;

const MB: f64 = 1024.0 * 1024.0;
/// Allocator granularity: a fresh arena or page-table page is not a leak.
const RSS_FLOOR: f64 = 256.0 * 1024.0;

fn rss() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: f64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096.0
}

fn descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn scale() -> f64 {
    std::env::var("FERROPG_SOAK_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.1)
}

async fn connect() -> Connection {
    ferropg::connect(&support::shared_config()).await.unwrap()
}

/// Runs a warm-up (a tenth, at least 2,000), then `count` units of `work`, and
/// checks the RSS growth against `per_unit` bytes a unit and the descriptors.
async fn measure<F, Fut>(name: &str, count: usize, per_unit: f64, work: F)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = ()>,
{
    work((count / 10).max(count.min(2000))).await;
    let (rss0, fds0) = (rss(), descriptors());
    work(count).await;
    let grown = rss() - rss0;
    let budget = (per_unit * count as f64).max(RSS_FLOOR);
    println!(
        "{name:<20} {count:>9} x  RSS {:>9.1} KiB (budget {:.0} KiB)  descriptors {:+}",
        grown / 1024.0,
        budget / 1024.0,
        descriptors() as i64 - fds0 as i64
    );
    assert!(
        grown <= budget,
        "{name}: RSS grew {grown} bytes over {count}"
    );
    assert_eq!(descriptors(), fds0, "{name}: descriptors not given back");
}

// One test, so that the workloads do not share the process's RSS with each other.
#[tokio::test(flavor = "current_thread")]
async fn no_leaks() {
    let s = scale();
    let per_query = 5.0 * MB / 1e6;
    measure("queries", (1e6 * s) as usize, per_query, |n| async move {
        let mut conn = connect().await;
        for i in 0..n as i32 {
            let v: i32 = conn
                .query_one("SELECT $1::int", &[&i])
                .await
                .unwrap()
                .get(0);
            assert_eq!(v, i);
        }
    })
    .await;
    measure(
        "connect/close",
        (1e4 * s) as usize,
        5.0 * 1024.0,
        |n| async move {
            for _ in 0..n {
                let mut conn = connect().await;
                conn.close().await.unwrap();
            }
        },
    )
    .await;
    measure(
        "server errors",
        (1e5 * s) as usize,
        per_query,
        |n| async move {
            let mut conn = connect().await;
            for i in 0..n as i32 {
                let err = conn
                    .query_one("SELECT 1 / ($1::int - $1::int)", &[&i])
                    .await
                    .unwrap_err();
                assert!(err.code().is_some());
            }
        },
    )
    .await;
    measure(
        "prepared statements",
        (1e5 * s) as usize,
        per_query,
        |n| async move {
            let mut conn = connect().await;
            for i in 0..n {
                let stmt = conn.prepare(&format!("SELECT {i}::int")).await.unwrap();
                let v: i32 = conn.query_one(&stmt, &[]).await.unwrap().get(0);
                assert_eq!(v as usize, i);
            }
            let held: i64 = conn
                .query_one("SELECT count(*) FROM pg_prepared_statements", &[])
                .await
                .unwrap()
                .get(0);
            assert!(held <= 1000, "{held} statements left on the server");
        },
    )
    .await;
}
