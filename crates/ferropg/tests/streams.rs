//! Streams and sinks, on a `Connection` and on a shared `Client`: row streams and
//! COPY OUT as `futures::Stream`s, COPY IN as a `Sink`, notifications as a stream,
//! `query_raw`/`execute_raw` with iterator parameters, `simple_query`,
//! `query_typed`, the binary COPY OUT reader. (The client's bounded row queue is
//! tested in `stream_memory.rs`, a process of its own, since it measures the
//! process's memory.)

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferropg::{
    BinaryCopyIn, BinaryCopyOutStream, Client, Connection, ErrorKind, SimpleQueryMessage, SqlState,
    ToSql, Type,
};
use futures_util::{SinkExt, StreamExt, TryStreamExt};

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

#[tokio::test]
async fn a_connection_row_stream_is_a_futures_stream() {
    let mut conn = connection().await;
    let rows: Vec<i32> = conn
        .query_stream("select g from generate_series(1, $1::int4) g", &[&5i32])
        .await
        .unwrap()
        .map_ok(|row| row.get::<_, i32>(0))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(rows, [1, 2, 3, 4, 5]);

    // query_raw: parameters from an iterator, of owned values.
    let mut stream = conn
        .query_raw(
            "select $1::int4 + g, $2::text from generate_series(1, 3) g",
            [
                Box::new(10i32) as Box<dyn ToSql + Sync>,
                Box::new("x".to_owned()),
            ],
        )
        .await
        .unwrap();
    let mut got = Vec::new();
    while let Some(row) = stream.try_next().await.unwrap() {
        got.push((row.get::<_, i32>(0), row.get::<_, String>(1)));
    }
    assert_eq!(stream.rows_affected(), Some(3));
    assert_eq!(got, [(11, "x".into()), (12, "x".into()), (13, "x".into())]);

    let n = conn
        .execute_raw("select g from generate_series(1, $1::int4) g", vec![7i32])
        .await
        .unwrap();
    assert_eq!(n, 7);

    // A server error mid-stream comes once, then the stream ends.
    let mut stream = conn
        .query_stream("select 1 / (3 - g) from generate_series(1, 5) g", &[])
        .await
        .unwrap();
    let mut items = Vec::new();
    while let Some(item) = stream.next().await {
        items.push(
            item.map(|r| r.get::<_, i32>(0))
                .map_err(|e| e.code().cloned()),
        );
    }
    assert_eq!(items, [Ok(0), Ok(1), Err(Some(SqlState::DIVISION_BY_ZERO))]);
    assert_eq!(
        conn.query_one("select 1", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        1
    );
}

#[tokio::test]
async fn a_stream_step_past_the_timeout_cancels_the_query() {
    let mut conn = connection().await;
    conn.set_timeout(Some(Duration::from_millis(300)));
    let mut stream = conn
        .query_stream(
            "select g, pg_sleep(case when g = 2 then 5 else 0 end) from generate_series(1, 2) g",
            &[],
        )
        .await
        .unwrap();
    // The first row comes only after the second's sleep (the server sends rows in
    // batches): either way, a step waits past the limit.
    let mut first_error = None;
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            first_error = Some(e);
            break;
        }
    }
    assert_eq!(first_error.unwrap().kind(), ErrorKind::Timeout);
    drop(stream);
    conn.set_timeout(None);
    let n: i32 = conn.query_one("select 42", &[]).await.unwrap().get(0);
    assert_eq!(n, 42);
}

#[tokio::test]
async fn copy_in_is_a_sink_and_copy_out_a_stream() {
    let mut conn = connection().await;
    conn.batch_execute("create temp table fruit (id int4, name text)")
        .await
        .unwrap();
    let mut sink = conn
        .copy_in("copy fruit (id, name) from stdin (format csv)")
        .await
        .unwrap();
    let chunks =
        (1..=1000).map(|i| Ok::<_, ferropg::Error>(Bytes::from(format!("{i},fruit {i}\n"))));
    sink.send_all(&mut futures_util::stream::iter(chunks))
        .await
        .unwrap();
    sink.send(Bytes::from(b"1001,".to_vec())).await.unwrap();
    sink.send(Bytes::from_static(b"last\n")).await.unwrap();
    sink.close().await.unwrap();
    assert_eq!(sink.rows_affected(), Some(1001));
    drop(sink);

    let copy = conn
        .copy_out("copy (select id, name from fruit order by id) to stdout (format csv)")
        .await
        .unwrap();
    let data: Vec<Bytes> = copy.try_collect().await.unwrap();
    assert_eq!(data.len(), 1001);
    assert_eq!(&data[0][..], b"1,fruit 1\n");
    assert_eq!(&data[1000][..], b"1001,last\n");

    // Bad data: the sink's close fails with the server's error, and the
    // connection goes on.
    let mut sink = conn.copy_in("copy fruit (id) from stdin").await.unwrap();
    sink.send(Bytes::from_static(b"not a number\n"))
        .await
        .unwrap();
    let err = sink.close().await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::INVALID_TEXT_REPRESENTATION));
    drop(sink);
    let n: i64 = conn
        .query_one("select count(*) from fruit", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1001);
}

#[tokio::test]
async fn binary_copy_out_decodes_rows_by_the_given_types() {
    let mut conn = connection().await;
    conn.batch_execute(
        "create temp table item (id int4, name text, price float8);
         insert into item select g, case when g % 3 = 0 then null else 'item ' || g end, g * 1.5
         from generate_series(1, 2000) g",
    )
    .await
    .unwrap();
    let sql = "copy (select id, name, price from item order by id) to stdout (format binary)";
    let copy = conn.copy_out(sql).await.unwrap();
    let mut rows = BinaryCopyOutStream::new(copy, &[Type::INT4, Type::TEXT, Type::FLOAT8]);
    let mut n = 0;
    while let Some(row) = rows.try_next().await.unwrap() {
        n += 1;
        assert_eq!(row.len(), 3);
        assert_eq!(row.get::<i32>(0), n);
        let name: Option<&str> = row.get(1);
        assert_eq!(
            name.map(str::to_owned),
            (n % 3 != 0).then(|| format!("item {n}"))
        );
        assert_eq!(row.get::<f64>(2), f64::from(n) * 1.5);
        assert_eq!(
            row.try_get::<i64>(0).unwrap_err().kind(),
            ErrorKind::FromSql
        );
    }
    assert_eq!(n, 2000);
    assert_eq!(rows.into_inner().rows_affected(), Some(2000));

    // Types that do not match the row's width are an error, not a misread.
    let copy = conn.copy_out(sql).await.unwrap();
    let mut rows = BinaryCopyOutStream::new(copy, &[Type::INT4]);
    assert_eq!(rows.try_next().await.unwrap_err().kind(), ErrorKind::Copy);
    // Text data is refused at its first bytes.
    let copy = conn.copy_out("copy item to stdout").await.unwrap();
    let mut rows = BinaryCopyOutStream::new(copy, &[Type::INT4]);
    assert_eq!(rows.try_next().await.unwrap_err().kind(), ErrorKind::Copy);
}

#[tokio::test]
async fn simple_query_returns_text_rows_and_counts_in_order() {
    let expect = |messages: Vec<SimpleQueryMessage>| {
        let mut seen = Vec::new();
        for m in messages {
            match m {
                SimpleQueryMessage::RowDescription(columns) => {
                    let names: Vec<_> = columns.iter().map(|c| c.name().to_owned()).collect();
                    seen.push(format!("columns {}", names.join(",")));
                }
                SimpleQueryMessage::Row(row) => {
                    if row.len() == 2 {
                        assert_eq!(row.get("n"), row.get(0));
                    }
                    let second = row.try_get(1).ok().flatten();
                    seen.push(format!("row {:?} {:?}", row.get(0), second));
                }
                SimpleQueryMessage::CommandComplete(n) => seen.push(format!("complete {n}")),
                _ => unreachable!(),
            }
        }
        assert_eq!(
            seen,
            [
                "columns n,case",
                "row Some(\"1\") None",
                "row Some(\"2\") Some(\"two\")",
                "complete 2",
                "complete 0",
                "columns text",
                "row Some(\"é\") None",
                "complete 1",
            ]
        );
    };
    let sql = "select g as n, case when g = 2 then 'two' end from generate_series(1, 2) g;
               set application_name = 'simple';
               select 'é'::text as text";
    let mut conn = connection().await;
    expect(conn.simple_query(sql).await.unwrap());
    let client = client().await;
    expect(client.simple_query(sql).await.unwrap());
    let err = client
        .simple_query("select 1; select nope")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNDEFINED_COLUMN));
}

#[tokio::test]
async fn query_typed_runs_without_a_prepare_round_trip() {
    let mut conn = connection().await;
    conn.batch_execute(
        "drop type if exists typed_mood; create type typed_mood as enum ('ok', 'meh')",
    )
    .await
    .unwrap();
    let client = client().await;
    for attempt in 0..2 {
        let rows = if attempt == 0 {
            conn.query_typed(
                "select $1 + 1, $2 || '!', 'meh'::typed_mood",
                &[(&1i64, Type::INT8), (&"hi", Type::TEXT)],
            )
            .await
            .unwrap()
        } else {
            client
                .query_typed(
                    "select $1 + 1, $2 || '!', 'meh'::typed_mood",
                    &[(&1i64, Type::INT8), (&"hi", Type::TEXT)],
                )
                .await
                .unwrap()
        };
        assert_eq!(rows[0].get::<_, i64>(0), 2);
        assert_eq!(rows[0].get::<_, &str>(1), "hi!");
        // The enum's type was learned from the catalog after the rows came.
        assert_eq!(rows[0].columns()[2].type_().name(), "typed_mood");
    }
    // Nothing was prepared under a name on either.
    let named: i64 = conn
        .query_one("select count(*) from pg_prepared_statements", &[])
        .await
        .unwrap()
        .get(0);
    assert!(named <= 2, "{named}");
    let err = client
        .query_typed("select $1", &[(&"text", Type::INT4)])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ToSql);
    assert_eq!(
        client
            .query_one("select 1", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        1
    );
}

#[tokio::test]
async fn notifications_come_as_streams() {
    let mut notifier = connection().await;
    let mut conn = connection().await;
    conn.batch_execute("listen stream_a").await.unwrap();
    let client = client().await;
    client.batch_execute("listen stream_b").await.unwrap();
    notifier
        .batch_execute(
            "notify stream_a, 'one'; notify stream_a, 'two'; notify stream_b, 'three'; notify stream_b, 'four'",
        )
        .await
        .unwrap();
    let on_conn: Vec<String> = conn
        .notifications()
        .take(2)
        .map_ok(|n| n.payload().to_owned())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(on_conn, ["one", "two"]);
    let on_client: Vec<String> = tokio::time::timeout(
        Duration::from_secs(10),
        client
            .notifications()
            .take(2)
            .map_ok(|n| n.payload().to_owned())
            .try_collect(),
    )
    .await
    .expect("in time")
    .unwrap();
    assert_eq!(on_client, ["three", "four"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_streams_dropped_half_way_disturb_no_other_task() {
    let client = Arc::new(client().await);
    let mut tasks = Vec::new();
    for t in 0..8i32 {
        let client = Arc::clone(&client);
        tasks.push(tokio::spawn(async move {
            for k in 0..20i32 {
                let n = 1000 + t * 100 + k;
                let mut rows = client
                    .query_raw("select g from generate_series(1, $1::int4) g", [n])
                    .await
                    .unwrap();
                // Some streams are read to their end, the others dropped early.
                let take = if k % 2 == 0 { n } else { k * 7 };
                let mut expected = 1;
                while expected <= take {
                    let row = rows.try_next().await.unwrap().unwrap();
                    assert_eq!(row.get::<_, i32>(0), expected, "task {t}, stream {k}");
                    expected += 1;
                }
                if k % 2 == 0 {
                    assert!(rows.try_next().await.unwrap().is_none());
                    assert_eq!(rows.rows_affected(), Some(n as u64));
                }
                drop(rows);
                let v: i32 = client
                    .query_one("select $1::int4", &[&n])
                    .await
                    .unwrap()
                    .get(0);
                assert_eq!(v, n);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert!(!client.is_closed());
}

#[tokio::test]
async fn client_copy_out_and_its_binary_reader() {
    let client = client().await;
    client
        .batch_execute(
            "create temp table pair (a int8, b text);
             insert into pair select g, 'v' || g from generate_series(1, 5000) g",
        )
        .await
        .unwrap();
    let copy = client
        .copy_out("copy (select a, b from pair order by a) to stdout (format binary)")
        .await
        .unwrap();
    let rows: Vec<(i64, String)> = BinaryCopyOutStream::new(copy, &[Type::INT8, Type::TEXT])
        .map_ok(|row| (row.get(0), row.get(1)))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(rows.len(), 5000);
    assert_eq!(rows[4999], (5000, "v5000".to_owned()));

    let mut copy = client.copy_out("copy pair to stdout").await.unwrap();
    let mut lines = 0;
    while let Some(chunk) = copy.next().await {
        assert!(chunk.unwrap().ends_with(b"\n"));
        lines += 1;
    }
    assert_eq!((lines, copy.rows_affected()), (5000, Some(5000)));

    let err = client.copy_out("select 1").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Copy);
    let err = client
        .copy_out("copy no_such_table to stdout")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNDEFINED_TABLE));
    assert_eq!(
        client
            .query_one("select 2", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_copy_in_holds_other_tasks_back_until_it_ends() {
    let client = Arc::new(client().await);
    client
        .batch_execute(
            "create table if not exists client_copy (id int4, name text); truncate client_copy",
        )
        .await
        .unwrap();
    let mut copy = client
        .copy_in("copy client_copy (id, name) from stdin (format csv)")
        .await
        .unwrap();
    copy.send("1,one\n2,").await.unwrap();
    // Other tasks query meanwhile: their requests wait behind the COPY.
    let others: Vec<_> = (0..10i32)
        .map(|i| {
            let client = Arc::clone(&client);
            tokio::spawn(async move {
                client
                    .query_one("select $1::int4 * 10", &[&i])
                    .await
                    .map(|r| r.get::<_, i32>(0))
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        others.iter().all(|t| !t.is_finished()),
        "a request went out during the COPY"
    );
    let mut sink = copy;
    let rows = (3..=2000).map(|i| Ok::<_, ferropg::Error>(Bytes::from(format!("{i},n{i}\n"))));
    sink.send(Bytes::from_static(b"two\n")).await.unwrap();
    sink.send_all(&mut futures_util::stream::iter(rows))
        .await
        .unwrap();
    sink.close().await.unwrap();
    assert_eq!(sink.rows_affected(), Some(2000));
    drop(sink);
    for (i, task) in (0..10i32).zip(others) {
        assert_eq!(task.await.unwrap().unwrap(), i * 10);
    }
    let row = client
        .query_one("select count(*), max(id), min(name) from client_copy", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 2000);
    assert_eq!(row.get::<_, i32>(1), 2000);
    assert_eq!(row.get::<_, &str>(2), "n10");
    client
        .batch_execute("drop table client_copy")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_copy_in_that_fails_or_is_dropped_lets_the_others_go() {
    let client = Arc::new(client().await);
    client
        .batch_execute("create temp table cc (id int4)")
        .await
        .unwrap();
    // Bad data: the server ends the COPY; finish reports it.
    let mut copy = client.copy_in("copy cc from stdin").await.unwrap();
    copy.send("1\nnot a number\n").await.unwrap();
    let err = copy.finish().await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::INVALID_TEXT_REPRESENTATION));

    // Aborted: rolled back, Ok.
    let mut copy = client.copy_in("copy cc from stdin").await.unwrap();
    copy.send("5\n6\n").await.unwrap();
    copy.abort("changed my mind").await.unwrap();

    // Dropped half-way, with a query of another task waiting behind it.
    let mut copy = client.copy_in("copy cc from stdin").await.unwrap();
    copy.send("7\n").await.unwrap();
    let waiting = {
        let client = Arc::clone(&client);
        tokio::spawn(async move { client.query_one("select 'after'", &[]).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished());
    drop(copy);
    assert_eq!(waiting.await.unwrap().unwrap().get::<_, &str>(0), "after");

    // Not a COPY FROM STDIN, or a failing one: an error, and the client goes on.
    let err = client.copy_in("select 1").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Copy);
    let err = client
        .copy_in("copy no_such_table from stdin")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNDEFINED_TABLE));

    // The start dropped before the server was ready: the driver fails the COPY.
    let _ = tokio::time::timeout(Duration::ZERO, client.copy_in("copy cc from stdin")).await;

    // Two COPYs at once take turns.
    let copies: Vec<_> = [100i32, 200]
        .into_iter()
        .map(|base| {
            let client = Arc::clone(&client);
            tokio::spawn(async move {
                let mut copy = client.copy_in("copy cc from stdin").await?;
                for i in 0..50 {
                    copy.send(format!("{}\n", base + i)).await?;
                    tokio::task::yield_now().await;
                }
                copy.finish().await
            })
        })
        .collect();
    for copy in copies {
        assert_eq!(copy.await.unwrap().unwrap(), 50);
    }
    let ids: Vec<i32> = client
        .query("select id from cc order by id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let expected: Vec<i32> = (100..150).chain(200..250).collect();
    assert_eq!(ids, expected);
    assert!(!client.is_closed());
}

/// `BinaryCopyIn` over a shared client's COPY: batches of rows large enough to
/// take several flushes (the buffers swapped with the driver's), NULLs, other
/// tasks held back until the end, then an abort that keeps nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_copy_in_on_a_shared_client() {
    let client = Arc::new(client().await);
    client
        .batch_execute(
            "create table if not exists client_bin (id int4, name text, score float8); \
             truncate client_bin",
        )
        .await
        .unwrap();
    let copy = client
        .copy_in("copy client_bin (id, name, score) from stdin (format binary)")
        .await
        .unwrap();
    let mut writer = BinaryCopyIn::new(copy, &[Type::INT4, Type::TEXT, Type::FLOAT8]);
    let other = {
        let client = Arc::clone(&client);
        tokio::spawn(async move {
            client
                .query_one("select count(*) from client_bin", &[])
                .await
        })
    };
    for i in 0..50_000i32 {
        let name = (i % 4 != 0).then(|| format!("name {i}"));
        writer
            .write(&[&i, &name, &(f64::from(i) * 0.25)])
            .await
            .unwrap();
    }
    let err = writer
        .write(&[&1.5f64, &None::<&str>, &0.0f64])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ToSql, "{err}");
    assert!(!other.is_finished(), "a request went out during the COPY");
    assert_eq!(writer.finish().await.unwrap(), 50_000);
    // The held query ran after the COPY: it sees every row.
    assert_eq!(other.await.unwrap().unwrap().get::<_, i64>(0), 50_000);
    let row = client
        .query_one(
            "select sum(id)::int8, count(name), sum(score), min(name) from client_bin",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 49_999 * 50_000 / 2);
    assert_eq!(row.get::<_, i64>(1), 37_500);
    assert_eq!(row.get::<_, f64>(2), 49_999.0 * 50_000.0 / 8.0);
    assert_eq!(row.get::<_, &str>(3), "name 1");

    let copy = client
        .copy_in("copy client_bin (id, name, score) from stdin (format binary)")
        .await
        .unwrap();
    let mut writer = BinaryCopyIn::new(copy, &[Type::INT4, Type::TEXT, Type::FLOAT8]);
    // Its futures may move between a runtime's threads.
    fn sendable<F: std::future::Future + Send>(f: F) -> F {
        f
    }
    sendable(writer.write(&[&-1i32, &"gone", &0.0f64]))
        .await
        .unwrap();
    sendable(writer.abort("not wanted")).await.unwrap();
    let count: i64 = client
        .query_one("select count(*) from client_bin where id < 0", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 0);
    client.batch_execute("drop table client_bin").await.unwrap();
}

/// A row stream dropped after its first row, when the whole result (and its end)
/// came in the same read as that row, or when more reads were still to come: the
/// next calls find the connection in step, with their own rows.
#[tokio::test]
async fn a_row_stream_dropped_early_leaves_the_connection_in_step() {
    let mut conn = ferropg::connect(&support::shared_config()).await.unwrap();
    for rows in [3i32, 50_000] {
        for _ in 0..3 {
            let mut stream = conn
                .query_stream("select g from generate_series(1, $1) g", &[&rows])
                .await
                .unwrap();
            let first = stream.next().await.unwrap().unwrap();
            assert_eq!(first.get::<_, i32>(0), 1);
            drop(stream);
            let row = conn
                .query_one("select $1::int4 + 1", &[&rows])
                .await
                .unwrap();
            assert_eq!(row.get::<_, i32>(0), rows + 1);
        }
    }
    let mut stream = conn
        .query_stream("select g from generate_series(1, 5) g", &[])
        .await
        .unwrap();
    let mut seen = Vec::new();
    while let Some(row) = stream.next().await {
        seen.push(row.unwrap().get::<_, i32>(0));
    }
    assert_eq!(seen, [1, 2, 3, 4, 5]);
    assert_eq!(stream.rows_affected(), Some(5));
}
