//! Connection parity against a real PostgreSQL server (one per test binary, from
//! `support::shared()`): the statement cache (hits, misses, eviction, lifetime,
//! stale statements, the cache off), portals fetched in steps, row streams that
//! do not buffer the result, COPY in and out, notifications received while idle,
//! and per-call timeouts that cancel the query and leave the connection usable.
//!
//! What the client sends is observed through a [`Recorder`], a small TCP relay in
//! this file that logs the type of every message going to the server; what the
//! server holds, through `pg_prepared_statements` of the same session.

mod support;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferropg::{
    sqlstate, BinaryCopyIn, Config, Connection, ErrorKind, IsolationLevel, Statement,
    TransactionStatus, Type,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A call that takes longer than this has hung.
const HANG: Duration = Duration::from_secs(10);

fn config() -> Config {
    let pg = support::shared();
    let mut c = Config::new();
    c.host(&pg.host)
        .port(pg.port)
        .user(&pg.user)
        .dbname("postgres")
        .application_name("ferropg-parity-tests");
    c
}

async fn connect_with(f: impl FnOnce(&mut Config)) -> Connection {
    let mut c = config();
    f(&mut c);
    ferropg::connect(&c).await.expect("connect")
}

async fn connect() -> Connection {
    connect_with(|_| {}).await
}

/// Awaits `f`, failing the test if it hangs.
async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(HANG, f).await.expect("the call hung")
}

async fn scalar_i64(conn: &mut Connection, sql: &str) -> i64 {
    within(conn.query_one(sql, &[])).await.unwrap().get(0)
}

/// The statements the session holds, as `(name, text)`, by name; read with a
/// statement of the caller's (`probe`), which the cache does not hold.
async fn prepared(conn: &mut Connection, probe: &Statement) -> Vec<(String, String)> {
    within(conn.query(probe, &[]))
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
        .filter(|(name, _)| name != probe.name())
        .collect()
}

const PROBE: &str = "select name::text, statement from pg_prepared_statements order by name";

/// The names of the statements held for `text`.
fn names_of(held: &[(String, String)], text: &str) -> Vec<String> {
    held.iter()
        .filter(|(_, t)| t == text)
        .map(|(n, _)| n.clone())
        .collect()
}

/// A TCP relay to the shared server that logs the type byte of every message the
/// client sends (after the untagged startup message).
struct Recorder {
    port: u16,
    tags: Arc<Mutex<Vec<u8>>>,
}

impl Recorder {
    async fn start() -> Recorder {
        let pg = support::shared();
        let upstream = (pg.host.clone(), pg.port);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tags = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&tags);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(upstream.clone()).await.unwrap();
                tokio::spawn(relay(client, server, Arc::clone(&log)));
            }
        });
        Recorder { port, tags }
    }

    /// Settings to connect through the relay.
    fn config(&self) -> Config {
        let mut c = Config::new();
        c.host("127.0.0.1")
            .port(self.port)
            .user(&support::shared().user)
            .dbname("postgres");
        c
    }

    async fn connect(&self) -> Connection {
        within(ferropg::connect(&self.config())).await.unwrap()
    }

    /// The message types sent since the last call, as a string (`"BES"`).
    fn take(&self) -> String {
        let tags = std::mem::take(&mut *self.tags.lock().unwrap());
        String::from_utf8(tags).unwrap()
    }
}

async fn relay(client: TcpStream, server: TcpStream, log: Arc<Mutex<Vec<u8>>>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
    });
    let mut pending: Vec<u8> = Vec::new();
    let mut startup = true;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match client_read.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        pending.extend_from_slice(&chunk[..n]);
        loop {
            let header = if startup { 0 } else { 1 };
            if pending.len() < header + 4 {
                break;
            }
            let len = i32::from_be_bytes(pending[header..header + 4].try_into().unwrap()) as usize;
            if pending.len() < header + len {
                break;
            }
            if !startup {
                log.lock().unwrap().push(pending[0]);
            }
            // An SSLRequest (sslmode=prefer, the default) precedes the StartupMessage,
            // untagged too.
            startup = startup && len == 8 && pending[4..8] == 80877103i32.to_be_bytes();
            pending.drain(..header + len);
        }
        if server_write.write_all(&chunk[..n]).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn cached_text_is_one_round_trip_of_bind_execute_sync() {
    let rec = Recorder::start().await;
    let mut conn = rec.connect().await;
    rec.take();

    // A miss without parameters: parsed under a name, described, run: one Sync.
    // The startup probe for a pooler (a simple Query) rides ahead of the first
    // request, in the same write.
    let row = within(conn.query_one("select 1::int4 as one", &[]))
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>("one"), 1);
    assert_eq!(rec.take(), "QPDBES");
    // Hits: Bind, Execute, Sync, and nothing else.
    for _ in 0..3 {
        let row = within(conn.query_one("select 1::int4 as one", &[]))
            .await
            .unwrap();
        assert_eq!(row.get::<_, i32>(0), 1);
        assert_eq!(rec.take(), "BES");
    }
    // With parameters, a miss needs their types first (two round trips), a hit not.
    let sql = "select $1::int4 + 1";
    let row = within(conn.query_one(sql, &[&41i32])).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);
    assert_eq!(rec.take(), "PDSBES");
    let row = within(conn.query_one(sql, &[&1i32])).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 2);
    assert_eq!(rec.take(), "BES");
    assert_eq!(within(conn.execute(sql, &[&1i32])).await.unwrap(), 1);
    assert_eq!(rec.take(), "BES");
    assert_eq!(conn.statement_cache_len(), 2);

    // Without the cache: the unnamed statement, parsed every time.
    let mut c = rec.config();
    c.statement_cache_size(0);
    let mut uncached = within(ferropg::connect(&c)).await.unwrap();
    rec.take();
    for probe in ["Q", ""] {
        let row = within(uncached.query_one("select 1::int4", &[]))
            .await
            .unwrap();
        assert_eq!(row.get::<_, i32>(0), 1);
        assert_eq!(rec.take(), format!("{probe}PBDES"));
    }
    let row = within(uncached.query_one(sql, &[&1i32])).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 2);
    assert_eq!(rec.take(), "PDSBES");
    assert_eq!(uncached.statement_cache_len(), 0);
}

#[tokio::test]
async fn the_cache_hits_misses_and_evicts_least_recently_used() {
    let mut conn = connect_with(|c| {
        c.statement_cache_size(2);
    })
    .await;
    let probe = conn.prepare(PROBE).await.unwrap();
    let (a, b, c) = ("select 'a'::text", "select 'b'::text", "select $1::text");
    assert!(prepared(&mut conn, &probe).await.is_empty());

    within(conn.query(a, &[])).await.unwrap();
    let held = prepared(&mut conn, &probe).await;
    let a_name = names_of(&held, a);
    assert_eq!(a_name.len(), 1, "{held:?}");
    // A hit reuses the statement.
    for _ in 0..3 {
        within(conn.query(a, &[])).await.unwrap();
    }
    within(conn.query(b, &[])).await.unwrap();
    let held = prepared(&mut conn, &probe).await;
    assert_eq!(names_of(&held, a), a_name);
    assert_eq!(held.len(), 2, "{held:?}");

    // `a` was used before `b`: a third statement evicts it, and its Close goes
    // out with the next request (here the probe itself).
    within(conn.query(a, &[])).await.unwrap(); // now `b` is the oldest
    within(conn.query(c, &[&"x"])).await.unwrap();
    let held = prepared(&mut conn, &probe).await;
    assert_eq!(names_of(&held, a), a_name, "{held:?}");
    assert!(names_of(&held, b).is_empty(), "b evicted: {held:?}");
    assert_eq!(names_of(&held, c).len(), 1, "{held:?}");
    assert_eq!(conn.statement_cache_len(), 2);

    // `b` again is a miss: a new statement under a new name.
    within(conn.query(b, &[])).await.unwrap();
    let held = prepared(&mut conn, &probe).await;
    assert_eq!(names_of(&held, b).len(), 1);
    assert!(names_of(&held, a).is_empty(), "a evicted now: {held:?}");

    // A cached statement the caller holds survives its eviction until dropped.
    let kept = conn.prepare_cached("select 'kept'::text").await.unwrap();
    let again = conn.prepare_cached("select 'kept'::text").await.unwrap();
    assert_eq!(
        kept.name(),
        again.name(),
        "prepare_cached hands out the cached one"
    );
    drop(again);
    within(conn.query(a, &[])).await.unwrap();
    within(conn.query(b, &[])).await.unwrap();
    let held = prepared(&mut conn, &probe).await;
    assert_eq!(names_of(&held, "select 'kept'::text"), [kept.name()]);
    // Still usable, though no longer cached.
    let row = within(conn.query_one(&kept, &[])).await.unwrap();
    assert_eq!(row.get::<_, &str>(0), "kept");
    drop(kept);
    let held = prepared(&mut conn, &probe).await;
    assert!(
        names_of(&held, "select 'kept'::text").is_empty(),
        "{held:?}"
    );

    // Clearing the cache closes everything it held.
    conn.clear_statement_cache();
    assert_eq!(conn.statement_cache_len(), 0);
    assert!(prepared(&mut conn, &probe).await.is_empty());
}

#[tokio::test]
async fn cached_statements_expire_after_their_lifetime() {
    let mut conn = connect_with(|c| {
        c.max_cached_statement_lifetime(Duration::from_millis(300));
    })
    .await;
    let probe = conn.prepare(PROBE).await.unwrap();
    let sql = "select 'short-lived'::text";
    within(conn.query(sql, &[])).await.unwrap();
    let first = names_of(&prepared(&mut conn, &probe).await, sql);
    assert_eq!(first.len(), 1);
    // Hits do not extend the lifetime: it counts from the preparation.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(60)).await;
        within(conn.query(sql, &[])).await.unwrap();
    }
    assert_eq!(names_of(&prepared(&mut conn, &probe).await, sql), first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    within(conn.query(sql, &[])).await.unwrap();
    let second = names_of(&prepared(&mut conn, &probe).await, sql);
    assert_eq!(second.len(), 1, "the expired one was closed: {second:?}");
    assert_ne!(second, first, "prepared again under a new name");
}

#[tokio::test]
async fn without_the_cache_nothing_is_kept_on_the_server() {
    let mut conn = connect_with(|c| {
        c.statement_cache_size(0);
    })
    .await;
    let probe = conn.prepare(PROBE).await.unwrap();
    for i in 0..3i32 {
        let row = within(conn.query_one("select $1::int4 * 2", &[&i]))
            .await
            .unwrap();
        assert_eq!(row.get::<_, i32>(0), i * 2);
        within(conn.query("select 1", &[])).await.unwrap();
    }
    assert!(prepared(&mut conn, &probe).await.is_empty());
    // prepare_cached is plain prepare then.
    let s = conn.prepare_cached("select 2").await.unwrap();
    assert_eq!(conn.statement_cache_len(), 0);
    assert_eq!(
        names_of(&prepared(&mut conn, &probe).await, "select 2"),
        [s.name()]
    );

    // Texts longer than max_cacheable_statement_size are not cached either.
    let mut conn = connect_with(|c| {
        c.max_cacheable_statement_size(20);
    })
    .await;
    within(conn.query("select 'short'", &[])).await.unwrap();
    within(conn.query("select 'a text longer than twenty'", &[]))
        .await
        .unwrap();
    assert_eq!(conn.statement_cache_len(), 1);
}

#[tokio::test]
async fn stale_cached_statements_are_dropped_and_retried_outside_transactions() {
    let mut conn = connect().await;
    conn.batch_execute("create temp table shape (a int4); insert into shape values (1)")
        .await
        .unwrap();
    let sql = "select * from shape";
    assert_eq!(within(conn.query_one(sql, &[])).await.unwrap().len(), 1);
    conn.batch_execute("alter table shape add column b text default 'x'")
        .await
        .unwrap();
    // The cached plan would change its result type: the cache is cleared and the
    // query prepared and run again, transparently.
    let row = within(conn.query_one(sql, &[])).await.unwrap();
    assert_eq!(row.len(), 2);
    assert_eq!(row.get::<_, &str>("b"), "x");

    // Inside a transaction the error is returned (the transaction is aborted).
    conn.batch_execute("alter table shape add column c int4")
        .await
        .unwrap();
    let mut tx = conn.transaction().await.unwrap();
    let err = within(tx.query(sql, &[])).await.unwrap_err();
    assert_eq!(err.code(), Some(&sqlstate::FEATURE_NOT_SUPPORTED), "{err}");
    tx.rollback().await.unwrap();
    assert_eq!(conn.statement_cache_len(), 0);
    assert_eq!(within(conn.query_one(sql, &[])).await.unwrap().len(), 3);

    // Statements deallocated behind the cache's back are prepared again.
    conn.batch_execute("deallocate all").await.unwrap();
    assert_eq!(within(conn.query_one(sql, &[])).await.unwrap().len(), 3);
    assert_eq!(scalar_i64(&mut conn, "select count(*) from shape").await, 1);
}

#[tokio::test]
async fn an_abandoned_preparation_is_closed() {
    let mut conn = connect().await;
    let probe = conn.prepare(PROBE).await.unwrap();
    {
        let mut fut = Box::pin(conn.query("select 77::int4", &[]));
        let waker = std::task::Waker::noop();
        let _ = fut
            .as_mut()
            .poll(&mut std::task::Context::from_waker(waker));
    }
    assert_eq!(conn.statement_cache_len(), 0);
    assert!(prepared(&mut conn, &probe).await.is_empty());
    let row = within(conn.query_one("select 77::int4", &[]))
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 77);
    assert_eq!(conn.statement_cache_len(), 1);
}

#[tokio::test]
async fn portals_fetch_in_steps_inside_a_transaction() {
    for cache in [100, 0] {
        let mut conn = connect_with(|c| {
            c.statement_cache_size(cache);
        })
        .await;
        let mut tx = conn.transaction().await.unwrap();
        let mut portal = within(tx.bind(
            "select g, 'row ' || g from generate_series(1, $1) g",
            &[&25i32],
        ))
        .await
        .unwrap();
        assert_eq!(portal.columns().len(), 2);
        let mut seen = Vec::new();
        let mut batches = Vec::new();
        while !portal.is_done() {
            let rows = within(portal.fetch(10)).await.unwrap();
            batches.push(rows.len());
            seen.extend(rows.iter().map(|r| r.get::<_, i32>(0)));
            // Other statements run in between (parsing the unnamed statement
            // again, without the cache), and the portal carries on.
            let n: i32 = within(portal.transaction().query_one("select 5::int4", &[]))
                .await
                .unwrap()
                .get(0);
            assert_eq!(n, 5);
        }
        assert_eq!(batches, [10, 10, 5], "cache {cache}");
        assert_eq!(seen, (1..=25).collect::<Vec<_>>());
        assert!(within(portal.fetch(10)).await.unwrap().is_empty());
        drop(portal);

        // A prepared statement, fetched whole with 0; a failing portal.
        let stmt = tx
            .prepare("select g from generate_series(1, 3) g")
            .await
            .unwrap();
        let mut portal = within(tx.bind(&stmt, &[])).await.unwrap();
        assert_eq!(within(portal.fetch(0)).await.unwrap().len(), 3);
        assert!(portal.is_done());
        drop(portal);
        let mut portal = within(tx.bind("select 1 / (3 - g) from generate_series(1, 5) g", &[]))
            .await
            .unwrap();
        assert_eq!(within(portal.fetch(2)).await.unwrap().len(), 2);
        let err = within(portal.fetch(2)).await.unwrap_err();
        assert_eq!(err.code(), Some(&sqlstate::DIVISION_BY_ZERO), "{err}");
        assert!(portal.is_done());
        drop(portal);
        tx.rollback().await.unwrap();
        assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
    }
}

#[tokio::test]
async fn portals_are_closed_when_dropped() {
    let mut conn = connect().await;
    let mut tx = conn.transaction().await.unwrap();
    let count = "select count(*) from pg_cursors where name = $1";
    let mut portal = within(tx.bind("select generate_series(1, 100)", &[]))
        .await
        .unwrap();
    let name = portal.name().to_owned();
    assert!(name.starts_with("ferropg_p"), "{name}");
    assert_eq!(within(portal.fetch(1)).await.unwrap().len(), 1);
    let open: i64 = within(portal.transaction().query_one(count, &[&name]))
        .await
        .unwrap()
        .get(0);
    assert_eq!(open, 1);
    drop(portal);
    let open: i64 = within(tx.query_one(count, &[&name])).await.unwrap().get(0);
    assert_eq!(open, 0, "closed with the next request");
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn query_stream_yields_rows_before_the_result_is_complete() {
    let mut conn = connect().await;
    let mut locker = connect().await;
    within(locker.execute("select pg_advisory_lock(4242)", &[]))
        .await
        .unwrap();
    // Row 5000 waits for the advisory lock; the 4999 before it (about 300 KB)
    // reach the client first.
    let sql = "select g, repeat('x', 50) as pad, case when g = 5000 then \
               (select count(*) from (select pg_advisory_lock_shared(4242)) l)::int4 \
               else 0 end as waited from generate_series(1, 100000) g";
    let pid = conn.backend_pid();
    let mut rows = within(conn.query_stream(sql, &[])).await.unwrap();
    let first = within(rows.next()).await.unwrap().unwrap();
    assert_eq!(first.get::<_, i32>("g"), 1);
    // The server is still at row 5000, blocked on the lock.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let waiting: bool = within(locker.query_one(
            "select wait_event_type is not distinct from 'Lock' from pg_stat_activity where pid = $1",
            &[&pid],
        ))
        .await
        .unwrap()
        .get(0);
        if waiting {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the query never reached row 5000"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(rows.rows_affected(), None);
    within(locker.execute("select pg_advisory_unlock(4242)", &[]))
        .await
        .unwrap();
    let mut count = 1;
    let mut sum = 1i64;
    while let Some(row) = within(rows.next()).await {
        let row = row.unwrap();
        count += 1;
        sum += i64::from(row.get::<_, i32>(0));
        if count == 5000 {
            assert_eq!(row.get::<_, i32>("waited"), 1);
        }
    }
    assert_eq!(count, 100_000);
    assert_eq!(sum, 100_000 * 100_001 / 2);
    assert_eq!(rows.rows_affected(), Some(100_000));
    assert!(within(rows.next()).await.is_none());
    drop(rows);
    assert_eq!(scalar_i64(&mut conn, "select 3::int8").await, 3);
}

#[tokio::test]
async fn query_streams_end_with_errors_and_can_be_dropped_early() {
    let mut conn = connect().await;
    // With parameters, from a prepared statement, and an error after two rows.
    let mut rows = within(conn.query_stream(
        "select 10 / (3 - g) from generate_series(1, $1) g",
        &[&5i32],
    ))
    .await
    .unwrap();
    assert_eq!(rows.columns().map(<[_]>::len), Some(1));
    assert_eq!(
        within(rows.next()).await.unwrap().unwrap().get::<_, i32>(0),
        5
    );
    assert_eq!(
        within(rows.next()).await.unwrap().unwrap().get::<_, i32>(0),
        10
    );
    let err = within(rows.next()).await.unwrap().unwrap_err();
    assert_eq!(err.code(), Some(&sqlstate::DIVISION_BY_ZERO), "{err}");
    assert!(within(rows.next()).await.is_none());
    assert_eq!(rows.rows_affected(), None);
    drop(rows);

    // Dropped after one row of many: the next call reads past the rest.
    let mut rows = within(conn.query_stream("select generate_series(1, 50000)", &[]))
        .await
        .unwrap();
    assert!(within(rows.next()).await.unwrap().is_ok());
    drop(rows);
    assert_eq!(scalar_i64(&mut conn, "select 4::int8").await, 4);

    // Without the cache too (the columns come with the first row then).
    let mut conn = connect_with(|c| {
        c.statement_cache_size(0);
    })
    .await;
    let mut rows = within(conn.query_stream("select 'a'::text union all select 'b'", &[]))
        .await
        .unwrap();
    let mut got = Vec::new();
    while let Some(row) = within(rows.next()).await {
        got.push(row.unwrap().get::<_, String>(0));
    }
    assert_eq!(got, ["a", "b"]);
    assert_eq!(rows.columns().map(<[_]>::len), Some(1));
}

/// `n` rows of text COPY data for `copied (id int4, name text, score float8)`.
fn text_rows(n: i32) -> String {
    (1..=n)
        .map(|i| {
            let name = if i % 7 == 0 {
                r"\N".to_owned()
            } else {
                format!("name\t{i}").replace('\t', r"\t")
            };
            format!("{i}\t{name}\t{}\n", f64::from(i) / 4.0)
        })
        .collect()
}

async fn copy_out_all(conn: &mut Connection, sql: &str) -> Vec<u8> {
    let mut copy = within(conn.copy_out(sql)).await.unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = within(copy.next()).await {
        out.extend_from_slice(&chunk.unwrap());
    }
    assert!(copy.rows_affected().is_some());
    out
}

#[tokio::test]
async fn copy_in_and_out_round_trip_text_and_csv() {
    let mut conn = connect().await;
    conn.batch_execute(
        "create temp table copied (id int4 primary key, name text, score float8);
         create temp table copied_csv (like copied)",
    )
    .await
    .unwrap();
    let data = text_rows(10_000);

    // Text, sent in uneven pieces that cut rows (and characters' bytes) apart.
    let mut copy = within(conn.copy_in("copy copied from stdin"))
        .await
        .unwrap();
    for piece in data.as_bytes().chunks(7_777) {
        within(copy.send(piece)).await.unwrap();
    }
    assert_eq!(within(copy.finish()).await.unwrap(), 10_000);
    assert_eq!(
        scalar_i64(&mut conn, "select count(*) from copied").await,
        10_000
    );
    assert_eq!(
        scalar_i64(&mut conn, "select count(*) from copied where name is null").await,
        10_000 / 7
    );
    let out = copy_out_all(&mut conn, "copy copied to stdout").await;
    assert_eq!(String::from_utf8(out).unwrap(), data);

    // CSV out of one table and into another, then compared on the server.
    let csv = copy_out_all(&mut conn, "copy copied to stdout (format csv)").await;
    assert_eq!(csv.iter().filter(|b| **b == b'\n').count(), 10_000);
    let mut copy = within(conn.copy_in("copy copied_csv from stdin (format csv)"))
        .await
        .unwrap();
    within(copy.send(&csv)).await.unwrap();
    assert_eq!(within(copy.finish()).await.unwrap(), 10_000);
    let differ = scalar_i64(
        &mut conn,
        "select count(*) from (select * from copied except select * from copied_csv) d",
    )
    .await;
    assert_eq!(differ, 0);

    // A query's result, and inside a transaction.
    let mut tx = conn.transaction().await.unwrap();
    let mut copy =
        within(tx.copy_out("copy (select id from copied where id <= 3 order by id) to stdout"))
            .await
            .unwrap();
    let mut chunks = Vec::new();
    while let Some(chunk) = within(copy.next()).await {
        chunks.push(chunk.unwrap());
    }
    assert_eq!(chunks, ["1\n", "2\n", "3\n"]);
    assert_eq!(copy.rows_affected(), Some(3));
    drop(copy);
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn binary_copy_in_of_typed_rows() {
    let mut conn = connect().await;
    conn.batch_execute("create temp table typed (id int4, name text, score float8, tags text[])")
        .await
        .unwrap();
    let copy =
        within(conn.copy_in("copy typed (id, name, score, tags) from stdin (format binary)"))
            .await
            .unwrap();
    let mut writer = BinaryCopyIn::new(
        copy,
        &[Type::INT4, Type::TEXT, Type::FLOAT8, Type::TEXT_ARRAY],
    );
    for i in 0..10_000i32 {
        let name = (i % 5 != 0).then(|| format!("n{i}"));
        let tags = vec!["a".to_owned(); (i % 3) as usize];
        within(writer.write(&[&i, &name, &(f64::from(i) * 0.5), &tags]))
            .await
            .unwrap();
    }
    // A row that does not convert is refused before any of it is sent.
    let err = within(writer.write(&[&"not an int", &None::<&str>, &0.0f64, &Vec::<String>::new()]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ToSql, "{err}");
    let err = within(writer.write(&[&1i32])).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ParameterCount, "{err}");
    assert_eq!(within(writer.finish()).await.unwrap(), 10_000);
    let row = within(conn.query_one(
        "select count(*), sum(id)::int8, count(name), sum(score), sum(cardinality(tags))::int8 from typed",
        &[],
    ))
    .await
    .unwrap();
    assert_eq!(row.get::<_, i64>(0), 10_000);
    assert_eq!(row.get::<_, i64>(1), 9_999 * 10_000 / 2);
    assert_eq!(row.get::<_, i64>(2), 8_000);
    assert_eq!(row.get::<_, f64>(3), 9_999.0 * 10_000.0 / 4.0);
    assert_eq!(row.get::<_, i64>(4), 3_333 + 3_333 * 2);
}

#[tokio::test]
async fn copy_fail_rolls_back() {
    let mut conn = connect().await;
    conn.batch_execute("create temp table failing (id int4 primary key, name text)")
        .await
        .unwrap();
    let count = "select count(*) from failing";

    // abort: a CopyFail; nothing is kept.
    let mut copy = within(conn.copy_in("copy failing from stdin"))
        .await
        .unwrap();
    within(copy.send(text_two_columns(1..=500))).await.unwrap();
    within(copy.abort("changed my mind")).await.unwrap();
    assert_eq!(scalar_i64(&mut conn, count).await, 0);

    // Dropped without finish: aborted as well, and the connection carries on.
    let mut copy = within(conn.copy_in("copy failing from stdin"))
        .await
        .unwrap();
    within(copy.send(text_two_columns(1..=500))).await.unwrap();
    drop(copy);
    assert_eq!(scalar_i64(&mut conn, count).await, 0);

    // Bad data: the server's error from finish...
    let mut copy = within(conn.copy_in("copy failing from stdin"))
        .await
        .unwrap();
    within(copy.send("1\tone\nnot a number\tx\n"))
        .await
        .unwrap();
    let err = within(copy.finish()).await.unwrap_err();
    assert_eq!(
        err.code(),
        Some(&sqlstate::INVALID_TEXT_REPRESENTATION),
        "{err}"
    );
    assert_eq!(scalar_i64(&mut conn, count).await, 0);
    // ... or from send, once the server has said so: a large COPY stops early.
    let mut copy = within(conn.copy_in("copy failing from stdin"))
        .await
        .unwrap();
    let mut bad = String::from("not a number\tx\n");
    bad.push_str(&text_two_columns(1..=10_000)); // more than one flush
    let err = match within(copy.send(&bad)).await {
        // The error had already arrived when the first batch was written.
        Err(e) => e,
        Ok(()) => {
            tokio::time::sleep(Duration::from_millis(200)).await;
            within(copy.send(text_two_columns(1..=10_000)))
                .await
                .unwrap_err()
        }
    };
    assert_eq!(
        err.code(),
        Some(&sqlstate::INVALID_TEXT_REPRESENTATION),
        "{err}"
    );
    // Once failed, it stays failed, and finish does not wait for anything.
    assert!(within(copy.send("1\tx\n")).await.is_err());
    let err = within(copy.finish()).await.unwrap_err();
    assert_eq!(
        err.code(),
        Some(&sqlstate::INVALID_TEXT_REPRESENTATION),
        "{err}"
    );
    assert_eq!(scalar_i64(&mut conn, count).await, 0);

    // Inside a transaction, a CopyFail aborts the transaction.
    let mut tx = conn.transaction().await.unwrap();
    tx.execute("insert into failing values (0, 'kept?')", &[])
        .await
        .unwrap();
    let mut copy = within(tx.copy_in("copy failing from stdin")).await.unwrap();
    within(copy.send("1\tone\n")).await.unwrap();
    within(copy.abort("no")).await.unwrap();
    let err = within(tx.execute("select 1", &[])).await.unwrap_err();
    assert_eq!(
        err.code(),
        Some(&sqlstate::IN_FAILED_SQL_TRANSACTION),
        "{err}"
    );
    tx.rollback().await.unwrap();
    assert_eq!(scalar_i64(&mut conn, count).await, 0);

    // Statements that are not the right COPY.
    let err = within(conn.copy_in("select 1")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Copy, "{err}");
    let err = within(conn.copy_out("select 1")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Copy, "{err}");
    let err = within(conn.copy_in("copy failing to stdout"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Copy, "{err}");
    let err = within(conn.copy_in("copy no_such_table from stdin"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&sqlstate::UNDEFINED_TABLE), "{err}");
    // And a COPY FROM STDIN through a query method is still refused cleanly.
    let err = within(conn.execute("copy failing from stdin", &[]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Db, "{err}");
    assert_eq!(scalar_i64(&mut conn, "select 5::int8").await, 5);
}

fn text_two_columns(ids: std::ops::RangeInclusive<i32>) -> String {
    ids.map(|i| format!("{i}\tname {i}\n")).collect()
}

#[tokio::test]
async fn notifications_sent_while_idle_are_received_when_awaited() {
    let mut conn = connect().await;
    let mut other = connect().await;
    conn.batch_execute("listen parity_idle").await.unwrap();

    // Nothing yet: waiting is cancel-safe.
    assert!(
        tokio::time::timeout(Duration::from_millis(50), conn.notification())
            .await
            .is_err()
    );

    for i in 1..=3 {
        other
            .batch_execute(&format!("notify parity_idle, 'n{i}'"))
            .await
            .unwrap();
    }
    // The listener is idle: nothing reads its socket meanwhile.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(conn.take_notifications().is_empty());
    for i in 1..=3 {
        let n = within(conn.notification()).await.unwrap();
        assert_eq!(n.channel(), "parity_idle");
        assert_eq!(n.payload(), format!("n{i}"));
        assert_eq!(n.process_id(), other.backend_pid());
    }

    // One that arrives while waiting.
    let (n, _) = tokio::join!(within(conn.notification()), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        other
            .batch_execute("notify parity_idle, 'late'")
            .await
            .unwrap();
    });
    assert_eq!(n.unwrap().payload(), "late");

    // Ones that arrive with a query's response are queued for take_notifications.
    other
        .batch_execute("notify parity_idle, 'queued'")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(scalar_i64(&mut conn, "select 1::int8").await, 1);
    let queued = conn.take_notifications();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].payload(), "queued");
}

#[tokio::test]
async fn a_timeout_cancels_the_query_and_the_connection_stays_usable() {
    let mut conn = connect().await;
    let mut admin = connect().await;
    let pid = conn.backend_pid();
    conn.set_timeout(Some(Duration::from_millis(200)));
    assert_eq!(conn.timeout(), Some(Duration::from_millis(200)));

    let started = Instant::now();
    let err = within(conn.query("select pg_sleep(30)", &[]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // The server stopped the query: it is not sleeping any more.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let state: Option<String> =
            within(admin.query_one("select state from pg_stat_activity where pid = $1", &[&pid]))
                .await
                .unwrap()
                .get(0);
        if state.as_deref() == Some("idle") {
            break;
        }
        assert!(Instant::now() < deadline, "still {state:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The next call reads past the cancelled query's end and works.
    let row = within(conn.query_one("select 7::int4", &[])).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 7);
    assert!(started.elapsed() < Duration::from_secs(5));

    // Fast calls are unaffected, and so are the other kinds of calls.
    for _ in 0..20 {
        within(conn.execute("select 1", &[])).await.unwrap();
    }
    let err = within(conn.batch_execute("select pg_sleep(30)"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    let mut tx = within(conn.transaction()).await.unwrap();
    let err = within(tx.execute("select pg_sleep(30)", &[]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    // The cancel aborted the transaction, as any error would.
    let err = within(tx.execute("select 1", &[])).await.unwrap_err();
    assert_eq!(
        err.code(),
        Some(&sqlstate::IN_FAILED_SQL_TRANSACTION),
        "{err}"
    );
    within(tx.rollback()).await.unwrap();

    // A stream's step: the timeout, then the cancelled query's error, then the end.
    let mut rows = within(conn.query_stream("select 1 from pg_sleep(30)", &[]))
        .await
        .unwrap();
    let err = within(rows.next()).await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    let err = within(rows.next()).await.unwrap().unwrap_err();
    assert_eq!(err.code(), Some(&sqlstate::QUERY_CANCELED), "{err}");
    assert!(within(rows.next()).await.is_none());
    drop(rows);

    conn.set_timeout(None);
    assert_eq!(scalar_i64(&mut conn, "select 8::int8").await, 8);
    assert!(started.elapsed() < Duration::from_secs(8));

    // From the configuration.
    let mut conn = connect_with(|c| {
        c.command_timeout(Duration::from_millis(100));
    })
    .await;
    assert_eq!(conn.timeout(), Some(Duration::from_millis(100)));
    let err = within(conn.execute("select pg_sleep(30)", &[]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert_eq!(scalar_i64(&mut conn, "select 9::int8").await, 9);
}

#[tokio::test]
async fn transactions_take_isolation_read_only_and_deferrable() {
    let mut conn = connect().await;
    let show = "select current_setting('transaction_isolation') || ' ' || \
                current_setting('transaction_read_only') || ' ' || \
                current_setting('transaction_deferrable')";
    let mut tx = within(
        conn.build_transaction()
            .isolation_level(IsolationLevel::Serializable)
            .read_only(true)
            .deferrable(true)
            .start(),
    )
    .await
    .unwrap();
    let modes: String = within(tx.query_one(show, &[])).await.unwrap().get(0);
    assert_eq!(modes, "serializable on on");
    let err = within(tx.batch_execute("create table not_allowed (a int4)"))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(&sqlstate::READ_ONLY_SQL_TRANSACTION),
        "{err}"
    );
    tx.rollback().await.unwrap();

    let mut tx = within(
        conn.build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(false)
            .start(),
    )
    .await
    .unwrap();
    let modes: String = within(tx.query_one(show, &[])).await.unwrap().get(0);
    assert_eq!(modes, "repeatable read off off");
    // Savepoints nest inside it as usual.
    let sp = tx.transaction().await.unwrap();
    sp.commit().await.unwrap();
    tx.commit().await.unwrap();
    // No options: a plain BEGIN; and a dropped one is rolled back as usual.
    drop(within(conn.build_transaction().start()).await.unwrap());
    assert_eq!(scalar_i64(&mut conn, "select 1::int8").await, 1);
    assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
}

#[tokio::test]
async fn streams_and_sinks_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let mut conn = connect().await;
    {
        let rows = conn.query_stream("select 1", &[]).await.unwrap();
        assert_send(&rows);
    }
    {
        let copy = conn.copy_out("copy (select 1) to stdout").await.unwrap();
        assert_send(&copy);
    }
    conn.batch_execute("create temp table sendable (a int4)")
        .await
        .unwrap();
    {
        let mut copy = conn.copy_in("copy sendable from stdin").await.unwrap();
        assert_send(&copy);
        let fut = copy.send("1\n");
        assert_send(&fut);
        drop(fut);
        copy.finish().await.unwrap();
    }
    let mut tx = conn.transaction().await.unwrap();
    let portal = tx.bind("select 1", &[]).await.unwrap();
    assert_send(&portal);
    drop(portal);
    tx.commit().await.unwrap();
    let handle = tokio::spawn(async move {
        let mut rows = conn.query_stream("select 12::int4", &[]).await.unwrap();
        rows.next().await.unwrap().unwrap().get::<_, i32>(0)
    });
    assert_eq!(handle.await.unwrap(), 12);
}
