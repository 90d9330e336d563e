//! The Rust face's `Pool`: its bounds, each reset guarantee (a session dirtied one
//! way, the next checkout of the same connection seen clean), both reset policies,
//! the hooks, `max_queries`, expiry, dead connections, idle lifetime and
//! `min_size`, closing, and tasks dropped at random points in acquire, query and
//! release.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::rng::XorShift;

use ferropg::{
    Config, ErrorKind, GenericClient, Pool, PoolBuilder, PooledClient, ResetPolicy,
    TransactionStatus,
};

fn builder() -> PoolBuilder {
    Pool::builder(support::shared_config())
}

fn no_advisory_locks() -> ResetPolicy {
    ResetPolicy {
        advisory_locks: false,
        ..ResetPolicy::default()
    }
}

/// Waits until every connection of the pool is idle again (releases run in the
/// background).
async fn settled(pool: &Pool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while pool.idle_count() != pool.size() {
        assert!(
            Instant::now() < deadline,
            "releases never finished: {pool:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn work_mem(client: &ferropg::Client) -> String {
    client
        .query_one("select current_setting('work_mem')", &[])
        .await
        .unwrap()
        .get(0)
}

/// What a session carries that a reset must undo, as the session sees it.
async fn dirt(client: &PooledClient) -> Vec<String> {
    let mut found = Vec::new();
    if client.transaction_status() != TransactionStatus::Idle {
        found.push(format!("transaction {:?}", client.transaction_status()));
    }
    let row = client
        .query_one(
            "select (select count(*) from pg_locks
                     where locktype = 'advisory' and pid = pg_backend_pid()),
                    (select setting from pg_settings where name = 'work_mem'
                                                        and setting <> reset_val),
                    current_setting('application_name'),
                    (select count(*) from pg_listening_channels()),
                    (select count(*) from pg_cursors where name <> ''),
                    to_regclass('pg_temp.pool_scratch') is not null",
            &[],
        )
        .await
        .expect("look at the session");
    let (locks, work_mem, app): (i64, Option<String>, String) =
        (row.get(0), row.get(1), row.get(2));
    let (channels, cursors, temp): (i64, i64, bool) = (row.get(3), row.get(4), row.get(5));
    if locks > 0 {
        found.push(format!("{locks} advisory locks"));
    }
    if let Some(changed) = work_mem {
        found.push(format!("work_mem {changed}"));
    }
    if app == "dirty" {
        found.push("application_name".into());
    }
    if channels > 0 {
        found.push(format!("{channels} channels"));
    }
    if cursors > 0 {
        found.push(format!("{cursors} cursors"));
    }
    if temp {
        found.push("a temporary table".into());
    }
    found
}

/// Ways to dirty a session, each one kind of state (some from inside a function,
/// where the protocol cannot see them).
const DIRT: &[(&str, &str)] = &[
    ("an open transaction", "begin; select 1"),
    ("a failed transaction", "begin; select 1/0"),
    ("an advisory lock", "select pg_advisory_lock(4242)"),
    (
        "a transaction-level advisory lock in an open transaction",
        "begin; select pg_advisory_xact_lock(4243)",
    ),
    ("a setting", "set work_mem = '7MB'"),
    (
        "a setting from a function",
        "select set_config('work_mem', '9MB', false)",
    ),
    ("a reported setting", "set application_name = 'dirty'"),
    ("a LISTEN", "listen pool_channel"),
    (
        "a LISTEN from a function",
        "do $$ begin execute 'listen pool_channel_2'; end $$",
    ),
    (
        "a holdable cursor",
        "declare pool_cursor cursor with hold for select 1",
    ),
    (
        "a temporary table",
        "create temporary table pool_scratch (x int)",
    ),
];

async fn each_guarantee(policy: ResetPolicy) {
    let pool = builder()
        .min_size(1)
        .max_size(1)
        .reset_policy(policy)
        .build()
        .await
        .unwrap();
    let pid = pool.acquire().await.unwrap().backend_pid();
    for (what, sql) in DIRT {
        if *what == "an advisory lock" && !policy.advisory_locks {
            // The one guarantee this policy leaves to the application.
            continue;
        }
        {
            let client = pool.acquire().await.unwrap();
            // Errors are part of the dirt ("a failed transaction").
            let _ = client.batch_execute(sql).await;
            if client.transaction_status() != TransactionStatus::Failed {
                assert!(!dirt(&client).await.is_empty(), "{what} left no trace");
            }
        }
        let client = pool.acquire().await.unwrap();
        assert_eq!(client.backend_pid(), pid, "{what}: the same connection");
        assert_eq!(dirt(&client).await, Vec::<String>::new(), "after {what}");
        assert!(client.take_notifications().is_empty());
    }
    pool.close().await;
}

#[tokio::test]
async fn every_guarantee_holds_with_the_default_reset() {
    each_guarantee(ResetPolicy::default()).await;
}

#[tokio::test]
async fn every_guarantee_but_advisory_locks_holds_without_them() {
    each_guarantee(no_advisory_locks()).await;
}

#[tokio::test]
async fn an_advisory_lock_is_free_for_others_as_soon_as_the_release_is_done() {
    let pool = builder().min_size(1).max_size(1).build().await.unwrap();
    let other = ferropg::Client::connect(&support::shared_config())
        .await
        .unwrap();
    {
        let client = pool.acquire().await.unwrap();
        client
            .execute("select pg_advisory_lock(77)", &[])
            .await
            .unwrap();
    }
    settled(&pool).await;
    let free: bool = other
        .query_one("select pg_try_advisory_lock(77)", &[])
        .await
        .unwrap()
        .get(0);
    assert!(free, "the pool's idle connection still holds the lock");
    // A notification sent to a channel the last user listened on is not delivered
    // to the next one.
    {
        let client = pool.acquire().await.unwrap();
        client.batch_execute("listen handed_over").await.unwrap();
    }
    settled(&pool).await;
    other
        .batch_execute("notify handed_over, 'x'")
        .await
        .unwrap();
    let client = pool.acquire().await.unwrap();
    client.batch_execute("select 1").await.unwrap();
    assert!(client.take_notifications().is_empty());
}

#[tokio::test]
async fn a_release_without_advisory_locks_sends_nothing_and_the_reset_rides_with_the_next_request()
{
    let pool = builder()
        .min_size(1)
        .max_size(1)
        .reset_policy(no_advisory_locks())
        .build()
        .await
        .unwrap();
    let observer = ferropg::Client::connect(&support::shared_config())
        .await
        .unwrap();
    let pid = {
        let client = pool.acquire().await.unwrap();
        client.batch_execute("set work_mem = '7MB'").await.unwrap();
        client.backend_pid()
    };
    settled(&pool).await;
    // The idle session's last statement is still the user's: the release wrote
    // nothing.
    let last: String = observer
        .query_one("select query from pg_stat_activity where pid = $1", &[&pid])
        .await
        .unwrap()
        .get(0);
    assert_eq!(last, "set work_mem = '7MB'");
    let client = pool.acquire().await.unwrap();
    assert_eq!(work_mem(&client).await, "4MB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_share_at_most_max_size_connections() {
    let pool = builder().min_size(1).max_size(3).build().await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..200i64 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let client = pool.acquire().await?;
            assert!(pool.size() <= 3);
            let row = client
                .query_one("select $1::int8 * 2, pg_backend_pid()", &[&i])
                .await?;
            Ok::<(i64, i64, i32), ferropg::Error>((i, row.get(0), row.get(1)))
        }));
    }
    let mut pids = HashSet::new();
    for task in tasks {
        let (i, doubled, pid) = task.await.unwrap().unwrap();
        assert_eq!(doubled, 2 * i);
        pids.insert(pid);
    }
    assert!(pids.len() <= 3, "{} backends", pids.len());
    settled(&pool).await;
    assert!(pool.size() <= 3);
}

#[tokio::test]
async fn init_runs_once_per_connection_and_setup_at_every_acquire() {
    let inits = Arc::new(AtomicUsize::new(0));
    let setups = Arc::new(AtomicUsize::new(0));
    let (i, s) = (Arc::clone(&inits), Arc::clone(&setups));
    let pool = builder()
        .min_size(0)
        .max_size(2)
        .init(move |client| {
            i.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move { client.batch_execute("select 1").await })
        })
        .setup(move |client| {
            s.fetch_add(1, Ordering::SeqCst);
            // Settings made here hold for this checkout (the reset comes after).
            Box::pin(async move { client.batch_execute("set work_mem = '5MB'").await })
        })
        .build()
        .await
        .unwrap();
    for _ in 0..5 {
        let client = pool.acquire().await.unwrap();
        assert_eq!(work_mem(&client).await, "5MB");
    }
    // Releases run in the background: a quick second acquire may open the second
    // connection. Either way, once per connection.
    assert_eq!(inits.load(Ordering::SeqCst), pool.size());
    assert_eq!(setups.load(Ordering::SeqCst), 5);
    // A failing init fails the acquire that opened the connection and leaves no
    // connection behind.
    let pool = builder()
        .min_size(0)
        .max_size(1)
        .init(|client| Box::pin(async move { client.batch_execute("select 1/0").await }))
        .build()
        .await
        .unwrap();
    let err = pool.acquire().await.unwrap_err();
    assert_eq!(err.code(), Some(&ferropg::SqlState::DIVISION_BY_ZERO));
    assert_eq!(pool.size(), 0);
}

#[tokio::test]
async fn a_connection_is_replaced_after_max_queries_and_after_expire_connections() {
    let pool = builder()
        .min_size(1)
        .max_size(1)
        .max_queries(4)
        .build()
        .await
        .unwrap();
    let first = pool.acquire().await.unwrap().backend_pid();
    let mut pids = vec![first];
    for _ in 0..6 {
        let client = pool.acquire().await.unwrap();
        client.query_one("select 1", &[]).await.unwrap();
        pids.push(client.backend_pid());
    }
    pids.dedup();
    assert!(pids.len() >= 2, "never replaced: {pids:?}");
    settled(&pool).await;
    let before = pool.acquire().await.unwrap().backend_pid();
    settled(&pool).await;
    pool.expire_connections();
    let after = pool.acquire().await.unwrap().backend_pid();
    assert_ne!(before, after);
}

#[tokio::test]
async fn a_connection_that_died_while_idle_is_not_handed_out() {
    let admin = ferropg::Client::connect(&support::shared_config())
        .await
        .unwrap();
    for ping in [None, Some(Duration::ZERO)] {
        let pool = builder()
            .min_size(2)
            .max_size(2)
            .ping_after_idle(ping)
            .build()
            .await
            .unwrap();
        let pids: Vec<i32> = {
            let a = pool.acquire().await.unwrap();
            let b = pool.acquire().await.unwrap();
            vec![a.backend_pid(), b.backend_pid()]
        };
        settled(&pool).await;
        for pid in &pids {
            admin
                .execute("select pg_terminate_backend($1)", &[pid])
                .await
                .unwrap();
        }
        if ping.is_none() {
            // Without a ping, what tells is the driver having read the end of the
            // connection.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let client = pool.acquire().await.unwrap();
        assert!(!pids.contains(&client.backend_pid()), "{ping:?}");
        client.query_one("select 1", &[]).await.unwrap();
        drop(client);
        pool.close().await;
    }
}

#[tokio::test]
async fn idle_connections_beyond_min_size_age_out_and_min_size_is_kept() {
    let mut config = support::shared_config();
    config.application_name("pool-min-size");
    let pool = Pool::builder(config)
        .min_size(1)
        .max_size(3)
        .max_inactive_lifetime(Some(Duration::from_millis(100)))
        .build()
        .await
        .unwrap();
    {
        let _held: Vec<PooledClient> = vec![
            pool.acquire().await.unwrap(),
            pool.acquire().await.unwrap(),
            pool.acquire().await.unwrap(),
        ];
        assert_eq!(pool.size(), 3);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while pool.size() > 1 {
        assert!(Instant::now() < deadline, "never aged out: {pool:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The one kept is closed from outside: the pool opens another in the
    // background, with no acquire to prompt it.
    let pid = pool.acquire().await.unwrap().backend_pid();
    settled(&pool).await;
    let admin = ferropg::Client::connect(&support::shared_config())
        .await
        .unwrap();
    admin
        .execute("select pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let backends: Vec<i32> = admin
            .query(
                "select pid from pg_stat_activity where application_name = 'pool-min-size'",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        if backends.len() == 1 && backends[0] != pid && pool.size() == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "min_size not restored: {backends:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn close_waits_for_checked_out_connections_and_acquire_then_fails() {
    let pool = builder().min_size(2).max_size(2).build().await.unwrap();
    let held = pool.acquire().await.unwrap();
    let closing = tokio::spawn({
        let pool = pool.clone();
        async move { pool.close().await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !closing.is_finished(),
        "close did not wait for the checked-out client"
    );
    assert_eq!(pool.acquire().await.unwrap_err().kind(), ErrorKind::Closed);
    held.query_one("select 1", &[]).await.unwrap();
    drop(held);
    tokio::time::timeout(Duration::from_secs(10), closing)
        .await
        .expect("close finished")
        .unwrap();
    assert_eq!(pool.size(), 0);
}

#[tokio::test]
async fn bad_knobs_are_refused_and_detach_frees_a_place() {
    for b in [
        builder().max_size(0),
        builder().min_size(3).max_size(2),
        builder().max_queries(0),
    ] {
        assert_eq!(b.build().await.unwrap_err().kind(), ErrorKind::Config);
    }
    let pool = builder().min_size(0).max_size(1).build().await.unwrap();
    let mut client = pool.acquire().await.unwrap().detach();
    assert_eq!(pool.size(), 0);
    let again = pool.acquire().await.unwrap();
    assert_ne!(again.backend_pid(), client.backend_pid());
    // A detached client is the caller's, transactions and all.
    let tx = client.transaction().await.unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn a_pooled_client_lends_a_generic_client_and_runs_transactions() {
    async fn count(db: &mut impl GenericClient) -> i64 {
        db.query_one("select count(*) from generate_series(1, 7)", &[])
            .await
            .unwrap()
            .get(0)
    }
    let pool = builder().min_size(1).max_size(1).build().await.unwrap();
    let mut client = pool.acquire().await.unwrap();
    assert_eq!(count(&mut *client).await, 7);
    let tx = client.transaction().await.unwrap();
    tx.execute("create temporary table t (x int)", &[])
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    // The futures are Send: a pool can be used from spawned tasks.
    fn send<T: Send>(_: &T) {}
    send(&pool.acquire());
    send(&client.query("select 1", &[]));
}

/// One task's work: acquire, dirty the session, query, each step liable to be cut
/// short by its timeout.
async fn chaos_step(pool: &Pool, rng: &mut XorShift) -> Result<(), ferropg::Error> {
    let mut client = pool.acquire().await?;
    match rng.below(5) {
        0 => {
            client
                .batch_execute("begin; select pg_advisory_xact_lock(1)")
                .await?
        }
        1 => {
            client
                .batch_execute("select pg_advisory_lock(2); set work_mem = '8MB'")
                .await?
        }
        2 => {
            client
                .batch_execute("listen chaos; declare c cursor with hold for select 1")
                .await?
        }
        3 => {
            let tx = client.transaction().await?;
            tx.execute("select pg_sleep(0.002)", &[]).await?;
            // Dropped without a commit: the rollback is left in flight.
        }
        _ => {}
    }
    let delay = rng.below(4) as f64 / 1000.0;
    client
        .query_one("select pg_sleep($1), 1", &[&delay])
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_dropped_at_random_points_leave_a_bounded_pool_of_clean_connections() {
    let seconds: u64 = std::env::var("FERROPG_CHAOS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let pool = builder()
        .min_size(2)
        .max_size(4)
        .release_timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap();
    let end = Instant::now() + Duration::from_secs(seconds);
    let cut = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for seed in 0..50u64 {
        let pool = pool.clone();
        let cut = Arc::clone(&cut);
        tasks.push(tokio::spawn(async move {
            let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ (seed + 1));
            while Instant::now() < end {
                let limit = Duration::from_micros(200 + rng.below(6000));
                match tokio::time::timeout(limit, chaos_step(&pool, &mut rng)).await {
                    Err(_) => {
                        cut.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Err(e)) if e.kind() == ErrorKind::Db => {}
                    Ok(Err(e)) => panic!("unexpected error: {e}"),
                    Ok(Ok(())) => {}
                }
                assert!(pool.size() <= 4, "{pool:?}");
            }
        }));
    }
    // Some tasks are aborted outright, wherever they are.
    let mut rng = XorShift(7);
    let mut aborted = 0;
    for task in &tasks {
        if rng.below(4) == 0 {
            tokio::time::sleep(Duration::from_millis(rng.below(200))).await;
            task.abort();
            aborted += 1;
        }
    }
    for task in tasks {
        match task.await {
            Ok(()) => {}
            Err(e) if e.is_cancelled() => {}
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    let cut = cut.load(Ordering::Relaxed);
    assert!(cut >= 50, "only {cut} calls were cut short");
    eprintln!("{cut} calls cut short, {aborted} tasks aborted");
    settled(&pool).await;
    assert!(pool.size() <= 4, "{pool:?}");
    let mut held = Vec::new();
    for _ in 0..pool.size().max(1) {
        held.push(pool.acquire().await.unwrap());
    }
    for client in &held {
        assert_eq!(dirt(client).await, Vec::<String>::new());
    }
}

#[test]
fn a_pooled_client_dropped_after_its_runtime_is_gone_closes_quietly() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = runtime.block_on(async {
        let config: Config = support::shared_config();
        let pool = Pool::builder(config)
            .min_size(0)
            .max_size(1)
            .build()
            .await
            .unwrap();
        pool.acquire().await.unwrap()
    });
    drop(runtime);
    drop(client);
}
