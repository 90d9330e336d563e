//! Explicit pipelines on a `Client` and on a `Connection`: a batch with one Sync
//! (all or nothing), a batch with a Sync per statement (each on its own), and
//! `execute_many` (rows of parameters streamed in Sync groups, a bounded number in
//! flight).

mod support;

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferropg::{Batch, Client, Config, Connection, ErrorKind, SqlState, ToSql};
use support::faultproxy::{FaultProxy, Mode};

async fn connection() -> Connection {
    ferropg::connect(&support::shared_config())
        .await
        .expect("connect")
}

async fn client() -> Client {
    Client::connect(&support::shared_config())
        .await
        .expect("connect")
}

/// The ids in `table`, in order.
async fn ids(client: &Client, table: &str) -> Vec<i32> {
    client
        .query(format!("select id from {table} order by id").as_str(), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn an_atomic_batch_runs_all_or_nothing_and_returns_each_result() {
    let client = client().await;
    client
        .batch_execute("create temp table ab (id int4 primary key, name text)")
        .await
        .unwrap();
    let (one, two, name) = (1i32, 2i32, "two");
    let mut batch = Batch::new();
    batch
        .query("select $1::int4 as a, 'x'::text as b", &[&one])
        .execute(
            "insert into ab values ($1, 'one'), ($2, $3)",
            &[&one, &two, &name],
        )
        .query("select name from ab order by id", &[])
        .execute("select g from generate_series(1, 4) g", &[]);
    let results = client.batch_atomic(&batch).await.unwrap();
    assert_eq!(results.len(), 4);
    // Each statement's rows have its own columns (widths 2, 0, 1, 1).
    assert_eq!(results[0].rows()[0].get::<_, i32>("a"), 1);
    assert_eq!(results[0].rows()[0].get::<_, &str>("b"), "x");
    assert_eq!(results[1].rows_affected(), 2);
    let names: Vec<&str> = results[2].rows().iter().map(|r| r.get(0)).collect();
    assert_eq!(names, ["one", "two"]);
    assert_eq!(
        (results[3].rows().len(), results[3].rows_affected()),
        (0, 4)
    );

    // The second statement fails: the first is rolled back with it.
    let three = 3i32;
    let mut batch = Batch::new();
    batch
        .execute("insert into ab values ($1, 'three')", &[&three])
        .execute("insert into ab values ($1, 'again')", &[&one])
        .execute("insert into ab values (4, 'four')", &[]);
    let err = client.batch_atomic(&batch).await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNIQUE_VIOLATION));
    assert_eq!(ids(&client, "ab").await, [1, 2]);
    assert_eq!(
        client.transaction_status(),
        ferropg::TransactionStatus::Idle
    );

    // Refused before anything is sent: a wrong parameter count.
    let mut batch = Batch::new();
    batch
        .execute("insert into ab values (5, 'five')", &[])
        .execute("insert into ab values ($1, 'six')", &[]);
    let err = client.batch_atomic(&batch).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ParameterCount);
    assert_eq!(ids(&client, "ab").await, [1, 2]);
    assert!(client.batch_atomic(&Batch::new()).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_independent_batch_lets_each_statement_succeed_or_fail_alone() {
    let client = client().await;
    client
        .batch_execute("create temp table ib (id int4 primary key)")
        .await
        .unwrap();
    let mut batch = Batch::new();
    batch
        .execute("insert into ib values (1)", &[])
        .execute("insert into ib values (1)", &[])
        .query("select count(*) from ib", &[])
        .execute("insert into ib values (3)", &[]);
    let results = client.batch_independent(&batch).await.unwrap();
    assert_eq!(results[0].as_ref().unwrap().rows_affected(), 1);
    assert_eq!(
        results[1].as_ref().unwrap_err().code(),
        Some(&SqlState::UNIQUE_VIOLATION)
    );
    let count: i64 = results[2].as_ref().unwrap().rows()[0].get(0);
    assert_eq!(count, 1);
    assert!(results[3].is_ok());
    assert_eq!(ids(&client, "ib").await, [1, 3]);

    // A value that does not convert fails its own statement only.
    let text = "not a number";
    let mut batch = Batch::new();
    batch
        .execute("insert into ib values ($1::int4)", &[&text])
        .execute("insert into ib values (5)", &[]);
    let results = client.batch_independent(&batch).await.unwrap();
    assert_eq!(results[0].as_ref().unwrap_err().kind(), ErrorKind::ToSql);
    assert!(results[1].is_ok());
    assert_eq!(ids(&client, "ib").await, [1, 3, 5]);
}

#[tokio::test]
async fn batches_on_a_connection() {
    let mut conn = connection().await;
    conn.batch_execute("create temp table cb (id int4 primary key)")
        .await
        .unwrap();
    let stmt = conn.prepare("insert into cb values ($1)").await.unwrap();
    let (a, b) = (1i32, 2i32);
    let mut batch = Batch::new();
    batch
        .execute(&stmt, &[&a])
        .execute(&stmt, &[&b])
        .query("select id from cb order by id", &[]);
    let results = conn.batch_atomic(&batch).await.unwrap();
    let got: Vec<i32> = results[2].rows().iter().map(|r| r.get(0)).collect();
    assert_eq!(got, [1, 2]);

    let mut batch = Batch::new();
    batch
        .execute(&stmt, &[&b])
        .execute("insert into cb values (7)", &[]);
    let err = conn.batch_atomic(&batch).await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNIQUE_VIOLATION));
    let results = conn.batch_independent(&batch).await.unwrap();
    assert!(results[0].is_err() && results[1].is_ok());
    let n: i64 = conn
        .query_one("select count(*) from cb", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 3);

    // With the statement cache off, several new texts in one batch each get a
    // statement of their own (not the one unnamed statement).
    let mut config = support::shared_config();
    config.statement_cache_size(0);
    let mut uncached = ferropg::connect(&config).await.unwrap();
    let (x, y) = (10i32, 20i64);
    let mut batch = Batch::new();
    batch
        .query("select $1::int4 + 1", &[&x])
        .query("select $1::int8 * 2, 'two columns'", &[&y]);
    let results = uncached.batch_atomic(&batch).await.unwrap();
    assert_eq!(results[0].rows()[0].get::<_, i32>(0), 11);
    assert_eq!(results[1].rows()[0].get::<_, i64>(0), 40);
}

#[tokio::test]
async fn execute_many_inserts_ten_thousand_rows_in_a_transaction() {
    let mut client = client().await;
    client
        .batch_execute("create temp table em (id int4 primary key, name text)")
        .await
        .unwrap();
    let tx = client.transaction().await.unwrap();
    let started = Instant::now();
    let rows = (0..10_000i32).map(|i| {
        [
            Box::new(i) as Box<dyn ToSql + Sync + Send>,
            Box::new(format!("item {i}")),
        ]
    });
    let n = tx
        .execute_many("insert into em values ($1, $2)", rows)
        .await
        .unwrap();
    eprintln!(
        "execute_many: 10k rows in {:?} (debug build)",
        started.elapsed()
    );
    assert_eq!(n, 10_000);
    tx.commit().await.unwrap();
    let row = client
        .query_one("select count(*), sum(id), max(name) from em", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 10_000);
    assert_eq!(row.get::<_, i64>(1), 49_995_000);
    assert_eq!(row.get::<_, &str>(2), "item 9999");

    // The first error stops the reading of the input: an endless iterator with a
    // duplicate key in it is read only a few groups past the duplicate.
    let pulled = Cell::new(0u64);
    let endless = (20_000i32..).map(|i| {
        pulled.set(pulled.get() + 1);
        [if i == 23_000 { 20_000 } else { i }]
    });
    let tx = client.transaction().await.unwrap();
    let err = tx
        .execute_many("insert into em (id) values ($1)", endless)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNIQUE_VIOLATION));
    assert!(pulled.get() <= 3001 + 6 * 256, "read {} rows", pulled.get());
    tx.rollback().await.unwrap();

    // A row of the wrong width is refused.
    let err = client
        .execute_many("select $1::int4", vec![vec![1i32], vec![1, 2]])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ParameterCount);
    assert_eq!(
        client
            .execute_many("select 1", Vec::<[i32; 0]>::new())
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        client
            .execute_many("select 1", vec![[0i32; 0]; 3])
            .await
            .unwrap(),
        3
    );
}

#[tokio::test]
async fn execute_many_on_a_connection() {
    let mut conn = connection().await;
    conn.batch_execute("create temp table emc (n int4, sq int8)")
        .await
        .unwrap();
    let mut tx = conn.transaction().await.unwrap();
    let rows = (0..3000i32).map(|i| {
        [
            Box::new(i) as Box<dyn ToSql + Sync>,
            Box::new(i64::from(i) * i64::from(i)),
        ]
    });
    let n = tx
        .execute_many("insert into emc values ($1, $2)", rows)
        .await
        .unwrap();
    assert_eq!(n, 3000);
    tx.commit().await.unwrap();
    let sum: i64 = conn
        .query_one("select sum(sq)::int8 from emc where n % 1000 = 999", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(sum, 999 * 999 + 1999 * 1999 + 2999 * 2999);
    let err = conn
        .execute_many(
            "insert into emc values ($1, 1 / $2::int4)",
            (0..1000i32).map(|i| [i, 500 - i]),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::DIVISION_BY_ZERO));
    assert_eq!(
        conn.query_one("select 1", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        1
    );
}

/// Through a proxy that delays every chunk, round trips are what costs: 10k rows
/// in groups of 256, a few in flight, take a handful of round trips where one per
/// group (40) or per row would take far longer.
#[tokio::test]
async fn execute_many_pipelines_its_groups() {
    const DELAY: Duration = Duration::from_millis(30);
    let pg = support::shared();
    let proxy = FaultProxy::start(format!("{}:{}", pg.host, pg.port).parse().unwrap());
    let mut config = Config::new();
    config
        .host("127.0.0.1")
        .port(proxy.addr().port())
        .user(&pg.user)
        .dbname("postgres")
        .sslmode("disable");
    let client = Arc::new(Client::connect(&config).await.unwrap());
    let sql = "select $1::int4";
    client.execute(sql, &[&0i32]).await.unwrap(); // prepared and cached
    proxy.set_mode(Mode::Delay(DELAY));
    let started = Instant::now();
    client.execute(sql, &[&0i32]).await.unwrap();
    let one = started.elapsed();
    let started = Instant::now();
    let n = client
        .execute_many(sql, (0..10_000i32).map(|i| [i]))
        .await
        .unwrap();
    let all = started.elapsed();
    proxy.set_mode(Mode::Pass);
    assert_eq!(n, 10_000);
    assert!(
        all < one * 20,
        "40 groups took {all:?}, one round trip {one:?}: not pipelined"
    );
}
