//! The shared, pipelining `Client`: many tasks on one session, each with its own
//! correct result; requests that really share round trips; futures dropped at
//! random points; a server error in the middle of a pipeline; the connection lost
//! under load; the shared statement cache; transactions.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferropg::{Client, Config, ErrorKind, GenericClient, GenericTransaction, SqlState};
use support::faultproxy::{FaultProxy, Mode};
use support::rng::XorShift;

async fn client() -> Client {
    Client::connect(&support::shared_config())
        .await
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_tasks_on_one_client_each_get_their_own_rows() {
    let client = Arc::new(client().await);
    let mut tasks = Vec::new();
    for i in 0..1000i32 {
        let client = Arc::clone(&client);
        tasks.push(tokio::spawn(async move {
            // Three shapes of call: cached text with parameters, the same text
            // again, and a row count that depends on the task.
            let row = client
                .query_one("select $1::int4 * 3, repeat('x', $1::int4 % 37)", &[&i])
                .await?;
            let (tripled, text): (i32, String) = (row.get(0), row.get(1));
            let rows = client
                .query("select g from generate_series(1, $1::int4 % 5) g", &[&i])
                .await?;
            let series: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
            Ok::<_, ferropg::Error>((i, tripled, text, series))
        }));
    }
    for task in tasks {
        let (i, tripled, text, series) = task.await.unwrap().unwrap();
        assert_eq!(tripled, i * 3);
        assert_eq!(text, "x".repeat((i % 37) as usize));
        assert_eq!(series, (1..=i % 5).collect::<Vec<_>>());
    }
    assert_eq!(client.statement_cache_len(), 2);
}

/// Through a proxy that holds every chunk for `DELAY` before passing it on, a
/// request that waits for the previous reply costs a round trip of at least two
/// delays. Twenty concurrent queries written back to back cost a few; one after
/// another they would cost twenty.
#[tokio::test]
async fn concurrent_requests_share_round_trips() {
    const DELAY: Duration = Duration::from_millis(40);
    const N: i32 = 20;
    let pg = support::shared();
    let target = format!("{}:{}", pg.host, pg.port).parse().unwrap();
    let proxy = FaultProxy::start(target);
    let mut config = Config::new();
    config
        .host("127.0.0.1")
        .port(proxy.addr().port())
        .user(&pg.user)
        .dbname("postgres")
        .sslmode("disable");
    let client = Arc::new(Client::connect(&config).await.unwrap());
    let sql = "select $1::int4 + 1";
    client.query_one(sql, &[&0i32]).await.unwrap(); // prepared and cached
    proxy.set_mode(Mode::Delay(DELAY));

    let started = Instant::now();
    client.query_one(sql, &[&0i32]).await.unwrap();
    let one = started.elapsed();
    assert!(one >= 2 * DELAY, "a round trip took {one:?}");

    let started = Instant::now();
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let client = Arc::clone(&client);
            tokio::spawn(async move {
                client
                    .query_one(sql, &[&i])
                    .await
                    .map(|r| r.get::<_, i32>(0))
            })
        })
        .collect();
    for (i, task) in (0..N).zip(tasks) {
        assert_eq!(task.await.unwrap().unwrap(), i + 1);
    }
    let all = started.elapsed();
    assert!(
        all < one * 5,
        "{N} concurrent queries took {all:?}, one took {one:?}: not pipelined"
    );
    proxy.set_mode(Mode::Pass);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn futures_dropped_at_random_points_disturb_no_other_task() {
    let client = Arc::new(client().await);
    let mut tasks = Vec::new();
    for t in 0..16u64 {
        let client = Arc::clone(&client);
        tasks.push(tokio::spawn(async move {
            let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ (t + 1));
            let (mut checked, mut dropped) = (0, 0);
            for k in 0..60i32 {
                let v = (t as i32) * 1000 + k;
                if (t + k as u64) % 2 == 0 {
                    // A victim: a query whose future is dropped somewhere between
                    // not sent at all and fully answered. New SQL text each time,
                    // so some are dropped between their prepare and their run.
                    let sql = format!("select $1::int4 + pg_backend_pid() * 0 + {}", k % 7);
                    let limit = Duration::from_micros(rng.next() % 15_000);
                    match tokio::time::timeout(limit, client.query_one(sql.as_str(), &[&v])).await {
                        Ok(row) => {
                            let row = row.unwrap_or_else(|e| panic!("task {t}, victim {k}: {e}"));
                            assert_eq!(row.get::<_, i32>(0), v + k % 7);
                        }
                        Err(_) => dropped += 1,
                    }
                    let limit = Duration::from_micros(rng.next() % 15_000);
                    let _ =
                        tokio::time::timeout(limit, client.execute("select pg_sleep(0.001)", &[]))
                            .await;
                } else {
                    let rows = client
                        .query("select $1::int4, g from generate_series(1, 3) g", &[&v])
                        .await
                        .unwrap_or_else(|e| panic!("task {t}, query {k}: {e}"));
                    let got: Vec<(i32, i32)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
                    assert_eq!(got, [(v, 1), (v, 2), (v, 3)], "task {t}, query {k}");
                    checked += 1;
                }
            }
            (checked, dropped)
        }));
    }
    let (mut checked, mut dropped) = (0, 0);
    for task in tasks {
        let (c, d) = task.await.unwrap();
        checked += c;
        dropped += d;
    }
    assert_eq!(checked, 16 * 30);
    // The drop points spread from before the request is written to after its
    // reply; a timeout of zero still sends the request, then drops it in flight.
    assert!(dropped > 0);
    assert!(!client.is_closed());
    let n: i64 = client
        .query_one("select $1::int8", &[&42i64])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 42);
    // Statements of abandoned preparations were closed or cached, not leaked: the
    // server holds no more than the cache (7 texts + 3 others) plus the ones whose
    // handles were just dropped and wait for the next request to close them.
    client.execute("select 1", &[]).await.unwrap();
    let held: i64 = client
        .query_one("select count(*) from pg_prepared_statements", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        held as usize <= client.statement_cache_len() + 1,
        "{held} statements on the server, {} cached",
        client.statement_cache_len()
    );
}

#[tokio::test]
async fn a_server_error_fails_only_its_own_request() {
    let client = client().await;
    let ok = "select $1::int4";
    client.query_one(ok, &[&0i32]).await.unwrap();
    // Polled together: written back to back, one Sync group each.
    let (a, b, c, d) = tokio::join!(
        client.query_one(ok, &[&1i32]),
        client.query_one("select 1 / $1::int4", &[&0i32]),
        client.query_one(ok, &[&3i32]),
        client.batch_execute("select 1; select no_such_column"),
    );
    assert_eq!(a.unwrap().get::<_, i32>(0), 1);
    assert_eq!(b.unwrap_err().code(), Some(&SqlState::DIVISION_BY_ZERO));
    assert_eq!(c.unwrap().get::<_, i32>(0), 3);
    assert_eq!(d.unwrap_err().code(), Some(&SqlState::UNDEFINED_COLUMN));
    assert_eq!(
        client
            .query_one(ok, &[&4i32])
            .await
            .unwrap()
            .get::<_, i32>(0),
        4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_connection_fails_every_pending_request_and_every_later_call() {
    let (client, driver) = ferropg::connect_client(&support::shared_config())
        .await
        .unwrap();
    let driver = tokio::spawn(driver);
    let client = Arc::new(client);
    let pid = client.backend_pid();
    let waiting: Vec<_> = (0..5)
        .map(|_| {
            let client = Arc::clone(&client);
            tokio::spawn(async move { client.execute("select pg_sleep(30)", &[]).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut admin = ferropg::connect(&support::shared_config()).await.unwrap();
    admin
        .execute("select pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();

    let started = Instant::now();
    for task in waiting {
        let err = task.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(client.is_closed());
    let err = client.query("select 1", &[]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
    assert!(err.to_string().contains("terminat"), "{err}");
    assert!(driver.await.unwrap().is_err());
}

#[tokio::test]
async fn the_statement_cache_is_shared_by_every_task() {
    let client = Arc::new(client().await);
    let sql = "select $1::text || ' shared'";
    client.query_one(sql, &[&"first"]).await.unwrap();
    assert_eq!(client.statement_cache_len(), 1);
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let client = Arc::clone(&client);
            tokio::spawn(async move {
                let row = client.query_one(sql, &[&i.to_string()]).await.unwrap();
                assert_eq!(row.get::<_, String>(0), format!("{i} shared"));
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(client.statement_cache_len(), 1);
    let on_server: i64 = client
        .query_one(
            "select count(*) from pg_prepared_statements where statement = $1",
            &[&sql],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(on_server, 1);
    let cached = client.prepare_cached(sql).await.unwrap();
    let again = client.prepare_cached(sql).await.unwrap();
    assert_eq!(cached.name(), again.name());
}

#[tokio::test]
async fn prepared_statements_serve_every_task_and_only_their_client() {
    let client = Arc::new(client().await);
    let statement = client.prepare("select $1::int8 * 2").await.unwrap();
    let tasks: Vec<_> = (0..10i64)
        .map(|i| {
            let (client, statement) = (Arc::clone(&client), statement.clone());
            tokio::spawn(async move {
                client
                    .query_one(&statement, &[&i])
                    .await
                    .unwrap()
                    .get::<_, i64>(0)
            })
        })
        .collect();
    for (i, task) in (0..10i64).zip(tasks) {
        assert_eq!(task.await.unwrap(), i * 2);
    }
    let typed = client
        .prepare_typed("select $1", &[ferropg::Type::INT2])
        .await
        .unwrap();
    assert_eq!(typed.params(), [ferropg::Type::INT2]);

    let other = self::client().await;
    let err = other.query(&statement, &[&1i64]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WrongConnection, "{err}");
}

#[tokio::test]
async fn transactions_commit_roll_back_and_roll_back_when_dropped() {
    let mut client = client().await;
    client
        .batch_execute("create temp table t (id int4)")
        .await
        .unwrap();

    let tx = client.transaction().await.unwrap();
    tx.execute("insert into t values (1)", &[]).await.unwrap();
    tx.commit().await.unwrap();

    let tx = client.transaction().await.unwrap();
    tx.execute("insert into t values (2)", &[]).await.unwrap();
    tx.rollback().await.unwrap();

    {
        let mut tx = client.transaction().await.unwrap();
        tx.execute("insert into t values (3)", &[]).await.unwrap();
        {
            let sp = tx.transaction().await.unwrap();
            sp.execute("insert into t values (4)", &[]).await.unwrap();
            // Dropped: rolled back to the savepoint.
        }
        tx.execute("insert into t values (5)", &[]).await.unwrap();
        tx.commit().await.unwrap();
    }
    {
        let tx = client.transaction().await.unwrap();
        tx.execute("insert into t values (6)", &[]).await.unwrap();
        // Dropped: rolled back.
    }
    let ids: Vec<i32> = client
        .query("select id from t order by id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, [1, 3, 5]);
    assert_eq!(
        client.transaction_status(),
        ferropg::TransactionStatus::Idle
    );
}

#[tokio::test]
async fn a_connection_hands_its_session_and_statements_to_a_client() {
    let mut conn = ferropg::connect(&support::shared_config()).await.unwrap();
    let statement = conn.prepare("select $1::int4 + 10").await.unwrap();
    conn.query_one("select $1::int4", &[&1i32]).await.unwrap();
    let pid = conn.backend_pid();
    let (client, driver) = conn.into_client().await.unwrap();
    let driver = tokio::spawn(driver);
    assert_eq!(client.backend_pid(), pid);
    assert_eq!(client.statement_cache_len(), 1);
    let row = client.query_one(&statement, &[&5i32]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 15);
    drop(statement);
    drop(client);
    // The driver ends once the client is gone.
    driver.await.unwrap().unwrap();
}

#[tokio::test]
async fn notifications_reach_a_waiting_task_while_others_query() {
    let client = Arc::new(client().await);
    client.batch_execute("listen jobs").await.unwrap();
    let listener = {
        let client = Arc::clone(&client);
        tokio::spawn(async move { client.notification().await })
    };
    client.query_one("select 1", &[]).await.unwrap();
    let mut other = ferropg::connect(&support::shared_config()).await.unwrap();
    other.batch_execute("notify jobs, 'run'").await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(10), listener)
        .await
        .expect("notification in time")
        .unwrap()
        .unwrap();
    assert_eq!((n.channel(), n.payload()), ("jobs", "run"));
}

#[test]
fn the_client_is_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Client>();
    fn sendable<T: Send>(_: &T) {}
    let run = async {
        let client = client().await;
        client.query("select 1", &[]).await
    };
    sendable(&run);
}

/// One function, four kinds of session.
async fn add_one(db: &mut impl GenericClient, n: i32) -> i32 {
    let statement = db.prepare("select $1::int4 + 1").await.unwrap();
    let by_statement: i32 = db.query_one(&statement, &[&n]).await.unwrap().get(0);
    let by_text: i32 = db
        .query_opt("select $1::int4 + 1", &[&n])
        .await
        .unwrap()
        .unwrap()
        .get(0);
    assert_eq!(by_statement, by_text);
    by_text
}

/// The raw and typed methods, through one function: rows streamed with the
/// parameters from an iterator, a row count, parameter types given beside the
/// values, and the simple query protocol's messages.
async fn raw_and_typed(db: &mut impl GenericClient, n: i32) -> (Vec<i32>, u64, String, usize) {
    use futures_util::TryStreamExt;

    let stream = db
        .query_raw(
            "select g from generate_series($1::int4, $2::int4) g",
            [n, n + 2],
        )
        .await
        .unwrap();
    let series: Vec<i32> = stream
        .map_ok(|r| r.get::<_, i32>(0))
        .try_collect()
        .await
        .unwrap();
    let params: Vec<Box<dyn ferropg::ToSql + Send + Sync>> = vec![Box::new(n), Box::new(n + 4)];
    let affected = db
        .execute_raw("select generate_series($1::int4, $2::int4)", params)
        .await
        .unwrap();
    let typed = db
        .query_typed("select $1 || '!'", &[(&n.to_string(), ferropg::Type::TEXT)])
        .await
        .unwrap();
    let shout: String = typed[0].get(0);
    let messages = db
        .simple_query("select 1 union all select 2; select 'three'")
        .await
        .unwrap();
    let rows = messages
        .iter()
        .filter(|m| matches!(m, ferropg::SimpleQueryMessage::Row(_)))
        .count();
    (series, affected, shout, rows)
}

#[tokio::test]
async fn generic_code_runs_on_connections_clients_and_their_transactions() {
    let mut conn = ferropg::connect(&support::shared_config()).await.unwrap();
    assert_eq!(add_one(&mut conn, 1).await, 2);
    let mut tx = conn.transaction().await.unwrap();
    assert_eq!(add_one(&mut tx, 2).await, 3);
    tx.commit().await.unwrap();

    let mut client = client().await;
    assert_eq!(add_one(&mut client, 3).await, 4);
    let mut tx = client.transaction().await.unwrap();
    assert_eq!(add_one(&mut tx, 4).await, 5);
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn generic_raw_and_typed_methods_run_on_all_four_kinds_of_session() {
    let expected = |n: i32| (vec![n, n + 1, n + 2], 5, format!("{n}!"), 3);
    let mut conn = ferropg::connect(&support::shared_config()).await.unwrap();
    assert_eq!(raw_and_typed(&mut conn, 1).await, expected(1));
    let mut tx = conn.transaction().await.unwrap();
    assert_eq!(raw_and_typed(&mut tx, 2).await, expected(2));
    tx.commit().await.unwrap();

    let mut client = client().await;
    assert_eq!(raw_and_typed(&mut client, 3).await, expected(3));
    let mut tx = client.transaction().await.unwrap();
    assert_eq!(raw_and_typed(&mut tx, 4).await, expected(4));
    tx.commit().await.unwrap();
}

/// A generic transaction: one committed and one rolled back, each with a nested
/// one (a savepoint) of its own, in a temporary table of the session; returns the
/// rows that stayed.
async fn transactions(db: &mut impl GenericClient) -> Vec<i32> {
    db.batch_execute("create temp table if not exists kept (x int4); truncate kept")
        .await
        .unwrap();
    let mut tx = db.transaction().await.unwrap();
    tx.execute("insert into kept values (1)", &[])
        .await
        .unwrap();
    let mut inner = tx.transaction().await.unwrap();
    inner
        .execute("insert into kept values (2)", &[])
        .await
        .unwrap();
    inner.rollback().await.unwrap();
    let mut inner = tx.transaction().await.unwrap();
    inner
        .execute("insert into kept values (3)", &[])
        .await
        .unwrap();
    inner.commit().await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = db.transaction().await.unwrap();
    tx.execute("insert into kept values (4)", &[])
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    {
        // Dropped: rolled back.
        let mut tx = db.transaction().await.unwrap();
        tx.execute("insert into kept values (5)", &[])
            .await
            .unwrap();
    }
    let rows = db
        .query("select x from kept order by x", &[])
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

#[tokio::test]
async fn generic_transactions_commit_roll_back_and_nest_on_all_four_kinds_of_session() {
    let mut conn = ferropg::connect(&support::shared_config()).await.unwrap();
    assert_eq!(transactions(&mut conn).await, [1, 3]);
    let mut outer = conn.transaction().await.unwrap();
    assert_eq!(transactions(&mut outer).await, [1, 3]);
    outer.commit().await.unwrap();

    let mut client = client().await;
    assert_eq!(transactions(&mut client).await, [1, 3]);
    let mut outer = client.transaction().await.unwrap();
    assert_eq!(transactions(&mut outer).await, [1, 3]);
    outer.commit().await.unwrap();
}

#[test]
fn generic_futures_are_send() {
    fn sendable<T: Send>(_: &T) {}
    async fn through(db: &mut impl GenericClient) -> usize {
        let stream = db.query_raw("select 1", [0i32; 0]).await.unwrap();
        drop(stream);
        db.simple_query("select 1").await.unwrap().len()
    }
    let run = async {
        let mut client = client().await;
        through(&mut client).await
    };
    sendable(&run);
    // One level of generic transaction is Send. (A savepoint opened through the
    // trait inside it, a transaction's transaction, is not provably so: rustc's
    // limit on higher-ranked lifetimes in async code, rust-lang/rust#100013.)
    async fn one_level(db: &mut impl GenericClient) -> u64 {
        let mut tx = db.transaction().await.unwrap();
        let n = tx.execute("select 1", &[]).await.unwrap();
        tx.commit().await.unwrap();
        n
    }
    let transaction = async {
        let mut client = client().await;
        one_level(&mut client).await
    };
    sendable(&transaction);
}

/// Callers write their own requests when nothing else is queued (the fast path),
/// the driver the rest. Large parameters make those writes stop part-way (the
/// kernel's buffer fills) while other tasks queue behind them: every byte still
/// goes out in order, and each task gets its own answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_written_by_callers_and_by_the_driver_stay_in_order() {
    let client = Arc::new(client().await);
    let tasks: Vec<_> = (0..40usize)
        .map(|t| {
            let client = Arc::clone(&client);
            tokio::spawn(async move {
                for k in 0..5usize {
                    // Every other request is large: 100 kB to 1 MB.
                    let size = if (t + k) % 2 == 0 {
                        (t % 10 + 1) * 100_000
                    } else {
                        t + 1
                    };
                    let text = char::from(b'a' + (t % 26) as u8).to_string().repeat(size);
                    let row = client
                        .query_one("select length($1::text), left($1::text, 1)", &[&text])
                        .await
                        .unwrap();
                    assert_eq!(row.get::<_, i32>(0) as usize, size, "task {t}, request {k}");
                    assert_eq!(row.get::<_, &str>(1), &text[..1]);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert!(!client.is_closed());
}

#[tokio::test]
async fn build_transaction_sets_the_isolation_level_and_access_mode() {
    let mut client = client().await;
    let tx = client
        .build_transaction()
        .isolation_level(ferropg::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .unwrap();
    let row = tx
        .query_one(
            "select current_setting('transaction_isolation'), current_setting('transaction_read_only')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, &str>(0), "repeatable read");
    assert_eq!(row.get::<_, &str>(1), "on");
    let err = tx
        .execute("create temp table nope (x int)", &[])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::READ_ONLY_SQL_TRANSACTION));
    tx.rollback().await.unwrap();
    assert_eq!(
        client.transaction_status(),
        ferropg::TransactionStatus::Idle
    );
}
