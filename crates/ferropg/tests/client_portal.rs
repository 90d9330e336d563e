//! Portals on the shared `Client`: a `ClientTransaction`'s `bind` and
//! `query_portal` read a result in steps, in order; a portal dropped half-way is
//! closed on the server and leaves the session usable; other calls through the
//! transaction, pipelined with the steps, each get their own rows.

mod support;

use ferropg::{Client, ErrorKind};
use futures_util::future::join_all;
use futures_util::TryStreamExt;

async fn client() -> Client {
    Client::connect(&support::shared_config())
        .await
        .expect("connect")
}

/// How many portals of that name the server session has open.
async fn open_portals(tx: &ferropg::ClientTransaction<'_>, name: &str) -> i64 {
    tx.query_one("select count(*) from pg_cursors where name = $1", &[&name])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_portal_gives_its_rows_in_steps_then_nothing() {
    let mut client = client().await;
    let tx = client.transaction().await.unwrap();
    let portal = tx
        .bind("select g from generate_series(1, $1) g", &[&7i32])
        .await
        .unwrap();
    assert_eq!(portal.columns()[0].name(), "g");
    let mut sizes = Vec::new();
    let mut values = Vec::new();
    for _ in 0..5 {
        let rows = tx.query_portal(&portal, 2).await.unwrap();
        sizes.push(rows.len());
        values.extend(rows.iter().map(|r| r.get::<_, i32>(0)));
    }
    assert_eq!(sizes, [2, 2, 2, 1, 0]);
    assert_eq!(values, (1..=7).collect::<Vec<_>>());
    // Past the end it stays empty.
    assert!(tx.query_portal(&portal, 2).await.unwrap().is_empty());
    drop(portal);
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn bind_raw_and_query_portal_raw_read_a_prepared_statement_in_steps() {
    let mut client = client().await;
    let statement = client
        .prepare("select g, g::text from generate_series($1::int4, $2::int4) g")
        .await
        .unwrap();
    let tx = client.transaction().await.unwrap();
    let portal = tx.bind_raw(&statement, [11i32, 20]).await.unwrap();
    let first: Vec<i32> = tx
        .query_portal_raw(&portal, 4)
        .await
        .unwrap()
        .map_ok(|r| r.get::<_, i32>(0))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(first, [11, 12, 13, 14]);
    // 0: all the rest.
    let rest = tx.query_portal(&portal, 0).await.unwrap();
    let rest: Vec<(i32, String)> = rest.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(rest.len(), 6);
    assert_eq!(rest[0], (15, "15".to_owned()));
    assert_eq!(rest[5], (20, "20".to_owned()));
    drop(portal);
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn a_portal_dropped_half_way_is_closed_and_the_session_goes_on() {
    let mut client = client().await;
    let tx = client.transaction().await.unwrap();
    let sql = "select g from generate_series(1, 100) g";
    let portal = tx.bind(sql, &[]).await.unwrap();
    let name = portal.name().to_owned();
    assert_eq!(tx.query_portal(&portal, 2).await.unwrap().len(), 2);
    assert_eq!(open_portals(&tx, &name).await, 1);
    drop(portal);
    // The Close goes out with the next request, ahead of it.
    assert_eq!(open_portals(&tx, &name).await, 0);
    let n: i32 = tx.query_one("select 41 + 1", &[]).await.unwrap().get(0);
    assert_eq!(n, 42);
    // A new portal on the same statement starts from the beginning.
    let again = tx.bind(sql, &[]).await.unwrap();
    let rows = tx.query_portal(&again, 3).await.unwrap();
    let values: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(values, [1, 2, 3]);
    drop(again);
    tx.commit().await.unwrap();
    // And the client outside the transaction.
    let n: i64 = client
        .query_one("select 7::int8", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 7);
}

#[tokio::test]
async fn a_failing_step_or_bind_fails_with_the_server_error() {
    let mut client = client().await;
    let tx = client.transaction().await.unwrap();
    let portal = tx
        .bind("select 10 / (3 - g) from generate_series(1, 5) g", &[])
        .await
        .unwrap();
    let rows = tx.query_portal(&portal, 2).await.unwrap();
    assert_eq!(rows.len(), 2);
    let err = tx.query_portal(&portal, 2).await.unwrap_err();
    assert_eq!(err.code(), Some(&ferropg::SqlState::DIVISION_BY_ZERO));
    drop(portal);
    tx.rollback().await.unwrap();

    let tx = client.transaction().await.unwrap();
    let err = tx.bind("select no_such_column", &[]).await.unwrap_err();
    assert_eq!(err.code(), Some(&ferropg::SqlState::UNDEFINED_COLUMN));
    tx.rollback().await.unwrap();
    assert_eq!(
        client
            .query_one("select 1", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        1
    );
}

/// While one future reads a portal in steps, many others query through the same
/// transaction: their requests and the steps are pipelined on the one session,
/// and each gets its own answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_pipelined_with_a_portal_each_get_their_own_rows() {
    let mut client = client().await;
    let tx = client.transaction().await.unwrap();
    let portal = tx
        .bind(
            "select g, repeat('x', g % 50) from generate_series(1, $1::int4) g",
            &[&1000i32],
        )
        .await
        .unwrap();
    let reader = async {
        let mut seen = Vec::new();
        loop {
            let rows = tx.query_portal(&portal, 7).await.unwrap();
            if rows.is_empty() {
                break;
            }
            assert!(rows.len() <= 7);
            for row in rows {
                let (g, text): (i32, String) = (row.get(0), row.get(1));
                assert_eq!(text, "x".repeat((g % 50) as usize));
                seen.push(g);
            }
            tokio::task::yield_now().await;
        }
        seen
    };
    let others = join_all((0..200i32).map(|i| {
        let tx = &tx;
        async move {
            let row = tx
                .query_one("select $1::int4 * 2, $1::int4::text", &[&i])
                .await
                .unwrap();
            assert_eq!(row.get::<_, i32>(0), i * 2);
            assert_eq!(row.get::<_, String>(1), i.to_string());
            let rows = tx
                .query("select g from generate_series(1, $1::int4 % 4) g", &[&i])
                .await
                .unwrap();
            assert_eq!(rows.len() as i32, i % 4);
            i
        }
    }));
    let (seen, done) = tokio::join!(reader, others);
    assert_eq!(seen, (1..=1000).collect::<Vec<_>>());
    assert_eq!(done, (0..200).collect::<Vec<_>>());
    drop(portal);
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn a_portal_of_another_client_is_refused() {
    let mut one = client().await;
    let mut two = client().await;
    let tx_one = one.transaction().await.unwrap();
    let tx_two = two.transaction().await.unwrap();
    let portal = tx_one.bind("select 1", &[]).await.unwrap();
    let err = tx_two.query_portal(&portal, 1).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WrongConnection);
    assert_eq!(tx_one.query_portal(&portal, 1).await.unwrap().len(), 1);
    drop(portal);
    tx_one.commit().await.unwrap();
    tx_two.commit().await.unwrap();
}

#[test]
fn portals_and_their_futures_can_move_between_threads() {
    fn sendable<T: Send>(_: &T) {}
    fn shared<T: Send + Sync>() {}
    shared::<ferropg::ClientPortal<'static>>();
    let run = async {
        let mut client = client().await;
        let tx = client.transaction().await?;
        let portal = tx.bind("select 1", &[]).await?;
        let rows = tx.query_portal(&portal, 1).await?;
        drop(portal);
        tx.commit().await?;
        Ok::<_, ferropg::Error>(rows)
    };
    sendable(&run);
}
