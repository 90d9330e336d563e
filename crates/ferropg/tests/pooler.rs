//! The Rust face behind a transaction-mode pgbouncer (Debian's 1.18, two server
//! connections used round robin, so consecutive transactions of one client reach
//! different server sessions), with no setting at all: the startup probe suspects
//! the pooler (statements inside transaction blocks are bound unnamed), the first
//! statement it prepared that goes missing confirms it (that call runs again, and
//! every statement is bound unnamed from then on); a pool switches all its clients
//! and resets only an open transaction.

mod support;

use std::sync::Arc;

use ferropg::{Client, Pool};
use futures_util::TryStreamExt;
use support::bouncer::Bouncer;

#[tokio::test]
async fn a_client_works_through_pgbouncer_with_no_setting() {
    let bouncer = Bouncer::start(support::shared());
    let mut client = Client::connect(&bouncer.config()).await.unwrap();
    // Cached statements with parameters, and text without: each call may reach
    // the other server session.
    for i in 0..40i32 {
        let row = client
            .query_one("select $1::int4 + 1", &[&i])
            .await
            .unwrap();
        assert_eq!(row.get::<_, i32>(0), i + 1);
        let row = client.query_one("select 'plain'", &[]).await.unwrap();
        assert_eq!(row.get::<_, &str>(0), "plain");
    }
    assert!(client.pooler_mode(), "the pooler went unnoticed");

    // A statement of the caller's own.
    let shout = client.prepare("select $1::text || '!'").await.unwrap();
    for word in ["a", "b", "c", "d"] {
        let row = client.query_one(&shout, &[&word]).await.unwrap();
        assert_eq!(row.get::<_, String>(0), format!("{word}!"));
    }

    // A table that outlives transactions (a temporary one would stay in one
    // server session).
    let table = format!("pooler_rows_{}", std::process::id());
    client
        .batch_execute(&format!("create table {table} (x int4)"))
        .await
        .unwrap();
    let inserted = client
        .execute_many(
            format!("insert into {table} values ($1)").as_str(),
            (0..1000i32).map(|i| [i]),
        )
        .await
        .unwrap();
    assert_eq!(inserted, 1000);
    let tx = client.transaction().await.unwrap();
    tx.execute(
        format!("delete from {table} where x >= $1").as_str(),
        &[&500i32],
    )
    .await
    .unwrap();
    let left: i64 = tx
        .query_one(format!("select count(*) from {table}").as_str(), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 500);
    tx.commit().await.unwrap();
    let rows = client
        .query_raw(
            format!("select x from {table} where x < $1 order by x").as_str(),
            [10i32],
        )
        .await
        .unwrap();
    let streamed: Vec<i32> = rows
        .map_ok(|r| r.get::<_, i32>(0))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(streamed, (0..10).collect::<Vec<_>>());
    let copy = client
        .copy_out(&format!("copy (select count(*) from {table}) to stdout"))
        .await
        .unwrap();
    let out: Vec<bytes::Bytes> = copy.try_collect().await.unwrap();
    assert_eq!(out.concat(), b"500\n");
    client
        .batch_execute(&format!("drop table {table}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_suspected_pooler_gets_unnamed_statements_inside_transactions() {
    let bouncer = Bouncer::start(support::shared());
    let mut client = Client::connect(&bouncer.config()).await.unwrap();
    // Prepared by name in one server session, before any statement went missing.
    let statement = client.prepare("select $1::int4 * 2").await.unwrap();
    // The startup probe (answered with the first request) found that pgbouncer's
    // backend key names no server process of this session.
    assert!(client.pooler_suspected());
    assert!(!client.pooler_mode());
    // Inside a transaction block the statement is parsed again, unnamed, wherever
    // the block lands: nothing fails there (a failure would abort the block).
    for _ in 0..4 {
        let tx = client.transaction().await.unwrap();
        let row = tx.query_one(&statement, &[&21i32]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), 42);
        tx.commit().await.unwrap();
    }
    // Outside one, the missing statement is found, the call run again, and the
    // client switched.
    for _ in 0..4 {
        let row = client.query_one(&statement, &[&21i32]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), 42);
    }
    assert!(client.pooler_mode());
}

/// A portal on a client behind pgbouncer: its transaction holds one server
/// session, so the named portal stays there between steps; the statement bound
/// is parsed again in the bind, as the client's other calls do, both while the
/// pooler is only suspected and in pooler mode.
#[tokio::test]
async fn a_client_portal_is_read_in_steps_through_pgbouncer() {
    let bouncer = Bouncer::start(support::shared());
    let mut client = Client::connect(&bouncer.config()).await.unwrap();
    // Named, in whichever server session the prepare reached.
    let statement = client
        .prepare("select g from generate_series(1, $1::int4) g")
        .await
        .unwrap();
    assert!(client.pooler_suspected());
    for round in 0..2 {
        if round == 1 {
            client.enter_pooler_mode();
        }
        for _ in 0..3 {
            let tx = client.transaction().await.unwrap();
            let portal = tx.bind(&statement, &[&25i32]).await.unwrap();
            let mut seen = Vec::new();
            loop {
                let rows = tx.query_portal(&portal, 10).await.unwrap();
                if rows.is_empty() {
                    break;
                }
                seen.extend(rows.iter().map(|r| r.get::<_, i32>(0)));
            }
            assert_eq!(seen, (1..=25).collect::<Vec<_>>());
            drop(portal);
            tx.commit().await.unwrap();
        }
    }
    assert!(client.pooler_mode());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_works_through_pgbouncer_and_switches_all_its_clients() {
    let bouncer = Bouncer::start(support::shared());
    let pool = Pool::builder(bouncer.config())
        .min_size(2)
        .max_size(4)
        .build()
        .await
        .unwrap();
    let pool = Arc::new(pool);
    let mut tasks = Vec::new();
    for i in 0..40i64 {
        let pool = Arc::clone(&pool);
        tasks.push(tokio::spawn(async move {
            let client = pool.acquire().await?;
            let row = client.query_one("select $1::int8 * 3", &[&i]).await?;
            Ok::<i64, ferropg::Error>(row.get(0))
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap().unwrap(), 3 * i as i64);
    }
    // Every client handed out from now on is in pooler mode.
    for _ in 0..4 {
        let client = pool.acquire().await.unwrap();
        assert!(client.pooler_mode());
        client.query_one("select 1", &[]).await.unwrap();
    }
    assert!(pool.size() <= 4);
}

#[tokio::test]
async fn a_deallocate_of_the_users_own_is_not_taken_for_a_pooler() {
    let client = Client::connect(&support::shared_config()).await.unwrap();
    let row = client.query_one("select $1::int4", &[&1i32]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
    assert!(!client.pooler_suspected());
    client.batch_execute("deallocate all").await.unwrap();
    // The cached statement is gone: prepared again, and run, with no switch.
    let row = client.query_one("select $1::int4", &[&2i32]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 2);
    assert!(!client.pooler_mode());
}

#[tokio::test]
async fn an_owned_connection_works_through_pgbouncer_too() {
    let bouncer = Bouncer::start(support::shared());
    let mut conn = ferropg::connect(&bouncer.config()).await.unwrap();
    for i in 0..40i32 {
        let row = conn.query_one("select $1::int4 - 1", &[&i]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), i - 1);
    }
    assert!(conn.pooler_mode(), "the pooler went unnoticed");
    let statement = conn.prepare("select $1::text || '?'").await.unwrap();
    for word in ["x", "y", "z"] {
        let row = conn.query_one(&statement, &[&word]).await.unwrap();
        assert_eq!(row.get::<_, String>(0), format!("{word}?"));
    }
    let table = format!("pooler_owned_{}", std::process::id());
    conn.batch_execute(&format!("create table {table} (x int4)"))
        .await
        .unwrap();
    let inserted = conn
        .execute_many(
            format!("insert into {table} values ($1)").as_str(),
            (0..600i32).map(|i| [i]),
        )
        .await
        .unwrap();
    assert_eq!(inserted, 600);
    // A portal read in steps, inside one transaction (one server session).
    let mut tx = conn.transaction().await.unwrap();
    let sql = format!("select x from {table} where x < $1 order by x");
    let mut portal = tx.bind(sql.as_str(), &[&100i32]).await.unwrap();
    let first = portal.fetch(30).await.unwrap();
    assert_eq!(first.len(), 30);
    assert_eq!(first[29].get::<_, i32>(0), 29);
    let rest = portal.fetch(0).await.unwrap();
    assert_eq!(rest.len(), 70);
    drop(portal);
    tx.commit().await.unwrap();
    // The mode goes with the session into a shared client.
    let (client, driver) = conn.into_client().await.unwrap();
    tokio::spawn(driver);
    assert!(client.pooler_mode());
    let row = client
        .query_one(format!("select count(*) from {table}").as_str(), &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 600);
    client
        .batch_execute(&format!("drop table {table}"))
        .await
        .unwrap();
}

/// The owned connection probes for a pooler at startup as the client does: behind
/// pgbouncer its statements are then bound unnamed inside transaction blocks, so
/// none fails there; straight to the server nothing is suspected. What the probe
/// found goes with the session into a shared client.
#[tokio::test]
async fn an_owned_connection_suspects_a_pooler_from_its_startup_probe() {
    let mut direct = ferropg::connect(&support::shared_config()).await.unwrap();
    direct.query_one("select 1", &[]).await.unwrap();
    assert!(!direct.pooler_suspected());

    let bouncer = Bouncer::start(support::shared());
    let mut conn = ferropg::connect(&bouncer.config()).await.unwrap();
    let statement = conn.prepare("select $1::int4 * 2").await.unwrap();
    assert!(conn.pooler_suspected());
    assert!(!conn.pooler_mode());
    for _ in 0..4 {
        let mut tx = conn.transaction().await.unwrap();
        let row = tx.query_one(&statement, &[&21i32]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), 42);
        tx.commit().await.unwrap();
    }
    assert!(
        !conn.pooler_mode(),
        "a statement went missing in a transaction"
    );
    let (client, driver) = conn.into_client().await.unwrap();
    tokio::spawn(driver);
    assert!(client.pooler_suspected());
    let row = client.query_one("select 5", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 5);
}
