//! A shared `Client`'s row stream keeps memory bounded: a slow reader of a million
//! rows makes the driver stop reading (the server then waits to write, which
//! `pg_stat_activity` shows), instead of the rows piling up in memory. In a test
//! binary of its own, so that the process's resident memory is this test's alone.

mod support;

use std::sync::Arc;
use std::time::Duration;

use ferropg::Client;
use futures_util::TryStreamExt;

/// The resident set size of this process, from /proc.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_of_a_million_rows_holds_the_server_back_not_the_memory() {
    const N: i32 = 1_000_000;
    let client = Arc::new(Client::connect(&support::shared_config()).await.unwrap());
    let pid = client.backend_pid();
    let mut admin = ferropg::connect(&support::shared_config()).await.unwrap();
    let before = rss_bytes();
    let mut rows = client
        .query_raw(
            "select g, repeat('x', 20) from generate_series(1, $1::int4) g",
            [N],
        )
        .await
        .unwrap();
    let first = rows.try_next().await.unwrap().unwrap();
    assert_eq!(first.get::<_, i32>(0), 1);
    // The reader dawdles: the driver stops reading once the queue is full, the
    // kernel's buffers fill, and the server waits to write.
    let mut waits = Vec::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let wait: Option<String> = admin
            .query_one(
                "select wait_event::text from pg_stat_activity where pid = $1",
                &[&pid],
            )
            .await
            .unwrap()
            .get(0);
        waits.push(wait.clone());
        if wait.as_deref() == Some("ClientWrite") && waits.len() >= 3 {
            break;
        }
    }
    assert_eq!(
        waits.last().unwrap().as_deref(),
        Some("ClientWrite"),
        "the server never waited for the client: {waits:?}"
    );
    let held = rss_bytes().saturating_sub(before);
    // Materialised, the million rows would take well over 100 MB here.
    assert!(held < 32 << 20, "{held} bytes held while the reader waited");

    // Another task's query waits behind the stream, and is answered once the
    // stream is read on.
    let other = {
        let client = Arc::clone(&client);
        tokio::spawn(async move { client.query_one("select 'behind'", &[]).await })
    };
    let mut count = 1;
    let mut sum = 1i64;
    while let Some(row) = rows.try_next().await.unwrap() {
        count += 1;
        sum += i64::from(row.get::<_, i32>(0));
        if count % 100_000 == 0 {
            let held = rss_bytes().saturating_sub(before);
            assert!(held < 32 << 20, "{held} bytes held at row {count}");
        }
    }
    let peak = rss_bytes().saturating_sub(before);
    eprintln!(
        "resident memory while streaming {N} rows: +{} KiB",
        peak >> 10
    );
    assert_eq!(count, N);
    assert_eq!(sum, i64::from(N) * i64::from(N + 1) / 2);
    assert_eq!(rows.rows_affected(), Some(N as u64));
    let other = other.await.unwrap().unwrap();
    assert_eq!(other.get::<_, &str>(0), "behind");
}
