//! ferropg against a real PostgreSQL server (one per test binary, started by
//! `support::shared()`).

mod support;

use std::fmt::Debug;
use std::future::Future;
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferropg::types::Numeric;
use ferropg::{sqlstate, Config, Connection, ErrorKind, FromSql, ToSql, TransactionStatus, Type};

fn config() -> Config {
    let pg = support::shared();
    let mut c = Config::new();
    c.host(&pg.host)
        .port(pg.port)
        .user(&pg.user)
        .dbname("postgres")
        .application_name("ferropg-tests");
    c
}

async fn connect() -> Connection {
    ferropg::connect(&config()).await.expect("connect")
}

/// A connection without the statement cache: SQL text is the unnamed statement.
async fn connect_uncached() -> Connection {
    let mut c = config();
    c.statement_cache_size(0);
    ferropg::connect(&c).await.expect("connect")
}

/// A second connection's view: runs `sql` and returns the first column of the row.
async fn scalar_i64(conn: &mut Connection, sql: &str) -> i64 {
    conn.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn connects_over_tcp() {
    let mut conn = connect().await;
    assert!(!conn.is_closed());
    assert!(conn.backend_pid() > 0);
    let version = conn.server_version().expect("server_version reported");
    assert!(
        version.chars().next().unwrap().is_ascii_digit(),
        "{version}"
    );
    assert_eq!(conn.parameter("server_encoding"), Some("UTF8"));
    assert_eq!(conn.parameter("client_encoding"), Some("UTF8"));
    assert_eq!(conn.parameter("application_name"), Some("ferropg-tests"));
    assert_eq!(conn.parameter("no_such_parameter"), None);
    let row = conn
        .query_one(
            "select pg_backend_pid(), inet_client_addr() is not null",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), conn.backend_pid());
    assert!(row.get::<_, bool>(1), "a TCP session has a client address");
    conn.close().await.unwrap();
    assert!(conn.is_closed());
}

#[tokio::test]
async fn connects_over_the_unix_socket() {
    let pg = support::shared();
    let mut c = Config::new();
    c.host_path(&pg.socket_dir).port(pg.port).user(&pg.user);
    let mut conn = ferropg::connect(&c).await.unwrap();
    let row = conn
        .query_one("select inet_client_addr() is null, current_user::text", &[])
        .await
        .unwrap();
    assert!(
        row.get::<_, bool>(0),
        "a Unix-socket session has no client address"
    );
    assert_eq!(row.get::<_, &str>(1), pg.user);

    // The same through a keyword DSN with the directory as host.
    let dsn = format!(
        "host={} port={} user={}",
        pg.socket_dir.display(),
        pg.port,
        pg.user
    );
    let mut conn = ferropg::connect(&dsn.parse().unwrap()).await.unwrap();
    assert_eq!(scalar_i64(&mut conn, "select 7::int8").await, 7);
}

#[tokio::test]
async fn connects_with_a_uri_and_tries_hosts_in_order() {
    let pg = support::shared();
    let mut conn = ferropg::connect(&Config::parse(&pg.dsn()).unwrap())
        .await
        .unwrap();
    assert_eq!(scalar_i64(&mut conn, "select 1::int8").await, 1);

    // A first host that refuses (a port nothing listens on), then the server.
    let dead_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let uri = format!(
        "postgresql://{}@127.0.0.1:{dead_port},127.0.0.1:{}/postgres",
        pg.user, pg.port
    );
    let mut conn = ferropg::connect(&uri.parse().unwrap()).await.unwrap();
    assert_eq!(scalar_i64(&mut conn, "select 2::int8").await, 2);

    // Only the dead host: an I/O error.
    let mut c = Config::new();
    c.host("127.0.0.1").port(dead_port).user("x");
    let err = ferropg::connect(&c).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
}

#[tokio::test]
async fn connect_timeout_is_honoured() {
    // A listener that accepts (the kernel does) but never answers the startup.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut c = Config::new();
    c.host("127.0.0.1")
        .port(port)
        .user("x")
        .connect_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let err = ferropg::connect(&c).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));
    drop(listener);
}

#[tokio::test]
async fn unsupported_settings_are_config_errors() {
    let mut c = config();
    c.sslmode("require");
    assert_eq!(
        ferropg::connect(&c).await.unwrap_err().kind(),
        ErrorKind::Config
    );
    assert_eq!(
        "port=notaport".parse::<Config>().unwrap_err().kind(),
        ErrorKind::Config
    );
}

/// Sends `value` as a parameter of type `pg_type`, checks the server sees it equal
/// to `literal`, and reads it back.
async fn roundtrip<T>(conn: &mut Connection, pg_type: &str, value: T, literal: &str)
where
    T: ToSql + Sync + for<'a> FromSql<'a> + PartialEq + Debug,
{
    let sql = format!(
        "select $1::{pg_type}, $1::{pg_type} is not distinct from ({literal})::{pg_type}, \
         ({literal})::{pg_type}"
    );
    let row = conn
        .query_one(&sql, &[&value])
        .await
        .unwrap_or_else(|e| panic!("{pg_type} {value:?}: {e}"));
    let back: T = row.get(0);
    assert_eq!(back, value, "{pg_type} round trip");
    assert!(
        row.get::<_, bool>(1),
        "server sees {value:?} as {literal} ({pg_type})"
    );
    let decoded: T = row.get(2);
    assert_eq!(decoded, value, "{pg_type} literal {literal} decoded");
}

#[tokio::test]
async fn core_types_round_trip_with_null() {
    let mut conn = connect().await;
    let c = &mut conn;
    roundtrip(c, "bool", true, "true").await;
    roundtrip(c, "bool", false, "false").await;
    roundtrip(c, "bool", None::<bool>, "null").await;
    roundtrip(c, "\"char\"", 65i8, "'A'").await;
    roundtrip(c, "int2", i16::MIN, "-32768").await;
    roundtrip(c, "int2", Some(i16::MAX), "32767").await;
    roundtrip(c, "int2", None::<i16>, "null").await;
    roundtrip(c, "int4", i32::MIN, "-2147483648").await;
    roundtrip(c, "int4", 42i32, "42").await;
    roundtrip(c, "int4", None::<i32>, "null").await;
    roundtrip(c, "int8", i64::MAX, "9223372036854775807").await;
    roundtrip(c, "int8", -1i64, "-1").await;
    roundtrip(c, "int8", None::<i64>, "null").await;
    roundtrip(c, "oid", u32::MAX, "4294967295").await;
    roundtrip(c, "float4", 1.5f32, "1.5").await;
    roundtrip(c, "float4", f32::NEG_INFINITY, "'-Infinity'").await;
    roundtrip(c, "float4", None::<f32>, "null").await;
    roundtrip(c, "float8", -0.125f64, "-0.125").await;
    roundtrip(c, "float8", f64::INFINITY, "'Infinity'").await;
    roundtrip(c, "float8", None::<f64>, "null").await;
    roundtrip(
        c,
        "text",
        String::from("héllo wörld ✓ 🐘"),
        "'héllo wörld ✓ 🐘'",
    )
    .await;
    roundtrip(c, "text", String::new(), "''").await;
    roundtrip(c, "text", None::<String>, "null").await;
    roundtrip(c, "varchar", String::from("it's"), "'it''s'").await;
    roundtrip(c, "name", String::from("a_name"), "'a_name'").await;
    roundtrip(c, "bytea", vec![0u8, 1, 0xfe, 0xff], "'\\x0001feff'").await;
    roundtrip(c, "bytea", Vec::<u8>::new(), "''").await;
    roundtrip(c, "bytea", None::<Vec<u8>>, "null").await;
    let ts = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
    roundtrip(c, "timestamptz", ts, "'2023-11-14 22:13:20.123456+00'").await;
    roundtrip(c, "timestamp", ts, "'2023-11-14 22:13:20.123456'").await;
    roundtrip(c, "timestamptz", None::<SystemTime>, "null").await;
    let v4: IpAddr = "192.168.0.1".parse().unwrap();
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    roundtrip(c, "inet", v4, "'192.168.0.1'").await;
    roundtrip(c, "inet", v6, "'2001:db8::1'").await;
    roundtrip(c, "int4[]", vec![1i32, 2, 3], "'{1,2,3}'").await;
    roundtrip(c, "int4[]", Vec::<i32>::new(), "'{}'").await;
    roundtrip(
        c,
        "text[]",
        vec![Some("a".to_string()), None, Some("c".into())],
        "array['a', null, 'c']",
    )
    .await;
    roundtrip(c, "int8[]", None::<Vec<i64>>, "null").await;

    // NaN is not equal to itself in Rust, but is in PostgreSQL.
    let row = conn
        .query_one("select $1::float8, $1::float8 = 'NaN'", &[&f64::NAN])
        .await
        .unwrap();
    assert!(row.get::<_, f64>(0).is_nan());
    assert!(row.get::<_, bool>(1));
}

#[tokio::test]
async fn borrowed_values_and_text_types() {
    let mut conn = connect().await;
    let bytes: &[u8] = b"\x00raw\xff";
    let row = conn
        .query_one(
            "select $1::text, $2::bytea, 'ab'::varchar(5), 'ab'::char(4), length($2::bytea)",
            &[&"borrowed", &bytes],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, &str>(0), "borrowed");
    assert_eq!(row.get::<_, &[u8]>(1), bytes);
    assert_eq!(row.get::<_, String>(2), "ab");
    assert_eq!(row.get::<_, String>(3), "ab  ");
    assert_eq!(row.get::<_, i32>(4), 5);
}

#[tokio::test]
async fn numeric_as_exact_text() {
    let mut conn = connect().await;
    let row = conn
        .query_one(
            "select 12.3400::numeric, -0.001::numeric, 'NaN'::numeric, 123456789012345678901234567890::numeric, null::numeric",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Numeric>(0).as_str(), "12.3400");
    assert_eq!(row.get::<_, Numeric>(1).as_str(), "-0.001");
    assert_eq!(row.get::<_, Numeric>(2).as_str(), "NaN");
    assert_eq!(
        row.get::<_, Numeric>(3).as_str(),
        "123456789012345678901234567890"
    );
    assert_eq!(row.get::<_, Option<Numeric>>(4), None);
    let n: Numeric = "-1.5e3".parse().unwrap();
    let row = conn
        .query_one("select $1::numeric = -1500, $1::numeric::text", &[&n])
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0));
    assert_eq!(row.get::<_, &str>(1), "-1500");
    // numeric cannot be read as a string in binary format: a FromSql error.
    let err = row_err(&mut conn, "select 1.5::numeric").await;
    assert_eq!(err.kind(), ErrorKind::FromSql, "{err}");
}

async fn row_err(conn: &mut Connection, sql: &str) -> ferropg::Error {
    let row = conn.query_one(sql, &[]).await.unwrap();
    row.try_get::<_, String>(0).unwrap_err()
}

#[tokio::test]
async fn conversion_errors_leave_the_connection_usable() {
    let mut conn = connect().await;
    let row = conn
        .query_one("select 1::int4 as n, null::int4 as z", &[])
        .await
        .unwrap();
    let err = row.try_get::<_, String>("n").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FromSql);
    assert!(err.to_string().contains("n"), "{err}");
    let err = row.try_get::<_, i32>("z").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FromSql, "NULL into i32: {err}");
    assert_eq!(row.try_get::<_, Option<i32>>("z").unwrap(), None);

    // A Rust value of the wrong type for the parameter: nothing is sent.
    let err = conn
        .query("select $1::int4", &[&"not an int"])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ToSql, "{err}");
    assert!(err.to_string().contains("$1"), "{err}");
    let stmt = conn.prepare("select $1::int8").await.unwrap();
    let err = conn.query(&stmt, &[&1i32]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ToSql, "{err}");
    assert_eq!(scalar_i64(&mut conn, "select 3::int8").await, 3);
}

#[tokio::test]
async fn rows_by_index_and_name() {
    let mut conn = connect().await;
    let row = conn
        .query_one("select 1::int4 as id, 'x'::text as \"Name\", true", &[])
        .await
        .unwrap();
    assert_eq!(row.len(), 3);
    assert!(!row.is_empty());
    let names: Vec<&str> = row.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["id", "Name", "?column?"]);
    let types: Vec<&Type> = row.columns().iter().map(|c| c.type_()).collect();
    assert_eq!(types, [&Type::INT4, &Type::TEXT, &Type::BOOL]);
    assert_eq!(row.get::<_, i32>("id"), 1);
    assert_eq!(row.get::<_, &str>("Name"), "x");
    assert_eq!(row.get::<_, &str>("name"), "x", "case-insensitive fallback");
    assert!(row.get::<_, bool>(2));
    let missing = row.try_get::<_, i32>("nope").unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::ColumnNotFound);
    assert_eq!(
        row.try_get::<_, i32>(3).unwrap_err().kind(),
        ErrorKind::ColumnNotFound
    );
    let panicked = std::panic::catch_unwind(|| row.get::<_, i32>("nope")).is_err();
    assert!(panicked, "get panics on a missing column");

    // Columns of a table carry their origin.
    conn.batch_execute("create temp table origin (a int4, b text)")
        .await
        .unwrap();
    let rows = conn.query("select b, a from origin", &[]).await.unwrap();
    assert!(rows.is_empty());
    let stmt = conn.prepare("select b, a, 1 from origin").await.unwrap();
    assert_eq!(stmt.columns()[0].column_id(), Some(2));
    assert!(stmt.columns()[0].table_oid().is_some());
    assert_eq!(stmt.columns()[2].table_oid(), None);
}

#[tokio::test]
async fn query_one_and_query_opt_count_rows() {
    let mut conn = connect().await;
    let none = "select 1 where false";
    let two = "select * from (values (1), (2)) v";
    let err = conn.query_one(none, &[]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RowCount, "{err}");
    let err = conn.query_one(two, &[]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RowCount, "{err}");
    assert!(conn.query_opt(none, &[]).await.unwrap().is_none());
    let one = conn.query_opt("select 5::int4", &[]).await.unwrap();
    assert_eq!(one.unwrap().get::<_, i32>(0), 5);
    let err = conn.query_opt(two, &[]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RowCount);
    assert_eq!(conn.query(two, &[]).await.unwrap().len(), 2);
}

#[tokio::test]
async fn server_errors_carry_every_field() {
    let mut conn = connect().await;
    let err = conn.query("select * frm nowhere", &[]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Db);
    assert_eq!(err.code(), Some(&sqlstate::SYNTAX_ERROR));
    let db = err.as_db_error().unwrap();
    assert_eq!(db.severity_en(), "ERROR");
    assert_eq!(db.parsed_severity(), Some(ferropg::Severity::Error));
    assert!(db.message().contains("frm"), "{}", db.message());
    assert_eq!(db.position(), Some(&ferropg::ErrorPosition::Original(10)));
    assert!(err.to_string().contains("42601"), "{err}");
    assert!(std::error::Error::source(&err).is_some());
    let source = err.into_source().expect("the server's error");
    assert!(source.to_string().contains("frm"), "{source}");

    conn.batch_execute("create temp table uniq (id int4 constraint uniq_pk primary key, v text)")
        .await
        .unwrap();
    conn.execute("insert into uniq values (1, 'a')", &[])
        .await
        .unwrap();
    let err = conn
        .execute("insert into uniq values ($1, 'b')", &[&1i32])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&sqlstate::UNIQUE_VIOLATION));
    let db = err.as_db_error().unwrap();
    assert_eq!(db.constraint(), Some("uniq_pk"));
    assert_eq!(db.table(), Some("uniq"));
    assert!(db.schema().unwrap().starts_with("pg_temp"));
    assert_eq!(db.detail(), Some("Key (id)=(1) already exists."));
    assert!(db.routine().is_some());

    let err = conn
        .batch_execute(
            "do $$ begin raise exception 'custom %', 1 using detail = 'the detail', \
             hint = 'the hint', errcode = 'P0001'; end $$",
        )
        .await
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("P0001"));
    let db = err.as_db_error().unwrap();
    assert_eq!(db.message(), "custom 1");
    assert_eq!(db.detail(), Some("the detail"));
    assert_eq!(db.hint(), Some("the hint"));
    assert!(db.where_().unwrap().contains("PL/pgSQL"));
    assert!(db.file().is_some() && db.line().is_some_and(|l| l > 0));

    // An error in a query the server runs for a function: its position is internal.
    let err = conn
        .batch_execute("do $$ begin execute 'select 1 frm t'; end $$")
        .await
        .unwrap_err();
    let db = err.as_db_error().unwrap();
    assert_eq!(*db.code(), sqlstate::SYNTAX_ERROR);
    assert_eq!(
        db.position(),
        // "frm" reads as an alias of 1: the error is at "t".
        Some(&ferropg::ErrorPosition::Internal {
            position: 14,
            query: "select 1 frm t".to_owned()
        })
    );
}

#[tokio::test]
async fn connection_recovers_after_errors() {
    let mut conn = connect().await;
    for _ in 0..3 {
        assert_eq!(
            conn.query("select 1/0", &[]).await.unwrap_err().code(),
            Some(&sqlstate::DIVISION_BY_ZERO)
        );
        assert_eq!(
            conn.batch_execute("select 1; select nope")
                .await
                .unwrap_err()
                .code(),
            Some(&sqlstate::UNDEFINED_COLUMN)
        );
        // A statement with parameters fails in its Parse step.
        assert_eq!(
            conn.query("select $1::int4 from nowhere", &[&1i32])
                .await
                .unwrap_err()
                .code(),
            Some(&sqlstate::UNDEFINED_TABLE)
        );
        assert_eq!(scalar_i64(&mut conn, "select 4::int8").await, 4);
    }
    assert_eq!(conn.transaction_status(), TransactionStatus::Idle);

    // Inside a transaction an error aborts it until rollback.
    let mut tx = conn.transaction().await.unwrap();
    tx.execute("select 1/0", &[]).await.unwrap_err();
    let err = tx.execute("select 1", &[]).await.unwrap_err();
    assert_eq!(err.code(), Some(&sqlstate::IN_FAILED_SQL_TRANSACTION));
    assert_eq!(
        tx.connection().transaction_status(),
        TransactionStatus::Failed
    );
    tx.rollback().await.unwrap();
    assert_eq!(scalar_i64(&mut conn, "select 5::int8").await, 5);
}

#[tokio::test]
async fn parameter_count_mismatch_keeps_the_connection() {
    let mut conn = connect().await;
    let stmt = conn.prepare("select $1::int4 + $2::int4").await.unwrap();
    assert_eq!(stmt.params(), [Type::INT4, Type::INT4]);
    let err = conn.query(&stmt, &[&1i32]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ParameterCount, "{err}");
    let err = conn
        .query("select $1::int4", &[&1i32, &2i32])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ParameterCount, "{err}");
    // That text is cached now, so the count is checked before anything is sent.
    let err = conn.query("select $1::int4", &[]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ParameterCount, "{err}");
    // New text with placeholders but no parameters: the server refuses the Bind
    // (and the statement is cached, so the next try fails on the client).
    let err = conn.query("select $1::int8", &[]).await.unwrap_err();
    assert_eq!(err.code(), Some(&sqlstate::PROTOCOL_VIOLATION), "{err}");
    let err = conn.query("select $1::int8", &[]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ParameterCount, "{err}");
    // Without the cache, the server refuses it every time.
    let mut uncached = connect_uncached().await;
    for _ in 0..2 {
        let err = uncached.query("select $1::int4", &[]).await.unwrap_err();
        assert_eq!(err.code(), Some(&sqlstate::PROTOCOL_VIOLATION), "{err}");
    }
    let row = conn.query_one(&stmt, &[&1i32, &2i32]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 3);
}

#[tokio::test]
async fn execute_counts_rows_and_batch_runs_many_statements() {
    let mut conn = connect().await;
    conn.batch_execute(
        "create temp table counted (id int4, v text); \
         insert into counted select g, 'x' from generate_series(1, 5) g;",
    )
    .await
    .unwrap();
    assert_eq!(
        conn.execute("update counted set v = $1 where id > $2", &[&"y", &2i32])
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        conn.execute("insert into counted values (6, 'z'), (7, 'z')", &[])
            .await
            .unwrap(),
        2
    );
    assert_eq!(conn.execute("select * from counted", &[]).await.unwrap(), 7);
    assert_eq!(
        conn.execute("delete from counted where v = 'z'", &[])
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        conn.execute("create temp table other (a int)", &[])
            .await
            .unwrap(),
        0
    );
    // A failing batch outside a transaction rolls back as a whole.
    conn.batch_execute("insert into counted values (100, 'w'); select 1/0")
        .await
        .unwrap_err();
    assert_eq!(
        scalar_i64(&mut conn, "select count(*) from counted where id = 100").await,
        0
    );
    conn.batch_execute("").await.unwrap();
}

#[tokio::test]
async fn transactions_commit_roll_back_and_roll_back_on_drop() {
    let mut conn = connect().await;
    let mut other = connect().await;
    let table = format!("tx_{}", std::process::id());
    conn.batch_execute(&format!(
        "drop table if exists {table}; create table {table} (id int4)"
    ))
    .await
    .unwrap();
    let count = format!("select count(*) from {table}");
    let insert = format!("insert into {table} values ($1)");

    let mut tx = conn.transaction().await.unwrap();
    tx.execute(&insert, &[&1i32]).await.unwrap();
    assert_eq!(
        tx.connection().transaction_status(),
        TransactionStatus::InTransaction
    );
    assert_eq!(scalar_i64(&mut other, &count).await, 0, "not yet visible");
    tx.commit().await.unwrap();
    assert_eq!(scalar_i64(&mut other, &count).await, 1, "committed");

    let mut tx = conn.transaction().await.unwrap();
    tx.execute(&insert, &[&2i32]).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(scalar_i64(&mut conn, &count).await, 1, "rolled back");

    {
        let mut tx = conn.transaction().await.unwrap();
        tx.execute(&insert, &[&3i32]).await.unwrap();
        // dropped here
    }
    // The ROLLBACK goes out with the next request.
    assert_eq!(
        scalar_i64(&mut conn, &count).await,
        1,
        "dropped = rolled back"
    );
    assert_eq!(conn.transaction_status(), TransactionStatus::Idle);

    // Savepoints: the inner one rolled back (by drop), the outer committed.
    let mut tx = conn.transaction().await.unwrap();
    tx.execute(&insert, &[&4i32]).await.unwrap();
    {
        let mut sp = tx.transaction().await.unwrap();
        sp.execute(&insert, &[&5i32]).await.unwrap();
    }
    {
        let mut sp = tx.transaction().await.unwrap();
        sp.execute(&insert, &[&6i32]).await.unwrap();
        sp.commit().await.unwrap();
    }
    let mut sp = tx.transaction().await.unwrap();
    sp.execute("select 1/0", &[]).await.unwrap_err();
    sp.rollback().await.unwrap();
    tx.commit().await.unwrap();
    let ids: Vec<i32> = conn
        .query(&format!("select id from {table} order by id"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, [1, 4, 6]);
    conn.batch_execute(&format!("drop table {table}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn prepared_statements_are_reused_and_closed() {
    // Without the cache, so that only these statements are prepared.
    let mut conn = connect_uncached().await;
    let stmt = conn
        .prepare("select $1::int4 * 2 as doubled, $2::text as label")
        .await
        .unwrap();
    assert_eq!(stmt.params(), [Type::INT4, Type::TEXT]);
    let cols: Vec<(&str, &Type)> = stmt
        .columns()
        .iter()
        .map(|c| (c.name(), c.type_()))
        .collect();
    assert_eq!(cols, [("doubled", &Type::INT4), ("label", &Type::TEXT)]);
    for i in 0..5i32 {
        let row = conn.query_one(&stmt, &[&i, &"l"]).await.unwrap();
        assert_eq!(row.get::<_, i32>("doubled"), i * 2);
    }
    let typed = conn
        .prepare_typed("select $1", &[Type::INT8])
        .await
        .unwrap();
    assert_eq!(typed.params(), [Type::INT8]);
    let ddl = conn.prepare("set local work_mem = '8MB'").await.unwrap();
    assert!(ddl.columns().is_empty());
    let prepared = "select count(*) from pg_prepared_statements";
    assert_eq!(scalar_i64(&mut conn, prepared).await, 3);

    // Dropping every clone closes it on the next exchange.
    let clone = stmt.clone();
    drop(stmt);
    assert_eq!(scalar_i64(&mut conn, prepared).await, 3);
    drop(clone);
    drop(typed);
    conn.batch_execute("select 1").await.unwrap();
    assert_eq!(scalar_i64(&mut conn, prepared).await, 1);

    // A statement only works on the connection that prepared it.
    let mut other = connect().await;
    let err = other.query(&ddl, &[]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WrongConnection);
}

#[tokio::test]
async fn cancel_stops_a_running_query() {
    let mut conn = connect().await;
    let token = conn.cancel_token();
    assert_eq!(token.process_id(), conn.backend_pid());
    let started = Instant::now();
    let (result, cancelled) = tokio::join!(conn.query("select pg_sleep(10)", &[]), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        token.cancel().await
    });
    cancelled.unwrap();
    let err = result.unwrap_err();
    assert_eq!(err.code(), Some(&sqlstate::QUERY_CANCELED), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(scalar_i64(&mut conn, "select 6::int8").await, 6);

    // Over the Unix socket too.
    let pg = support::shared();
    let mut c = Config::new();
    c.host_path(&pg.socket_dir).port(pg.port).user(&pg.user);
    let mut conn = ferropg::connect(&c).await.unwrap();
    let token = conn.cancel_token();
    let (result, cancelled) = tokio::join!(conn.execute("select pg_sleep(10)", &[]), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        token.cancel().await
    });
    cancelled.unwrap();
    assert_eq!(result.unwrap_err().code(), Some(&sqlstate::QUERY_CANCELED));
}

#[tokio::test]
async fn dropped_futures_leave_the_connection_in_step() {
    let mut conn = connect().await;
    let slow = conn.query("select pg_sleep(0.3), 1::int4", &[]);
    assert!(tokio::time::timeout(Duration::from_millis(50), slow)
        .await
        .is_err());
    // The abandoned response is read and skipped first.
    let row = conn.query_one("select 8::int4", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 8);

    // A transaction() future dropped after BEGIN was sent rolls back.
    {
        let begin = conn.transaction();
        let mut begin = Box::pin(begin);
        let waker = std::task::Waker::noop();
        let _ = begin
            .as_mut()
            .poll(&mut std::task::Context::from_waker(waker));
    }
    assert_eq!(scalar_i64(&mut conn, "select 9::int8").await, 9);
    assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
}

#[tokio::test]
async fn copy_from_stdin_is_refused_cleanly() {
    let mut conn = connect().await;
    conn.batch_execute("create temp table copied (a int4)")
        .await
        .unwrap();
    let err = conn
        .execute("copy copied from stdin", &[])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Db, "{err}");
    let err = conn
        .batch_execute("copy copied from stdin")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Db, "{err}");
    // An abandoned COPY (its future dropped after the request went out) is
    // refused by whichever call reads its response.
    {
        let mut copy = Box::pin(conn.execute("copy copied from stdin", &[]));
        let waker = std::task::Waker::noop();
        let _ = copy
            .as_mut()
            .poll(&mut std::task::Context::from_waker(waker));
    }
    let row = tokio::time::timeout(
        Duration::from_secs(5),
        conn.query_one("select 1::int4", &[]),
    )
    .await
    .expect("no hang")
    .unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
    // COPY TO STDOUT data is discarded.
    conn.batch_execute("copy (select 1) to stdout")
        .await
        .unwrap();
    assert_eq!(scalar_i64(&mut conn, "select 10::int8").await, 10);
}

#[tokio::test]
async fn unencodable_requests_send_nothing() {
    let mut conn = connect().await;
    let err = conn.batch_execute("select 1\0").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Encode, "{err}");
    let err = conn.query("select $1::text\0", &[&"x"]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Encode, "{err}");
    let err = conn.prepare("select\0").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Encode, "{err}");
    assert_eq!(scalar_i64(&mut conn, "select 12::int8").await, 12);
}

#[tokio::test]
async fn large_values_and_many_rows() {
    let mut conn = connect().await;
    let big = "é".repeat(600_000);
    let row = conn
        .query_one("select $1::text, length($1::text)", &[&big])
        .await
        .unwrap();
    assert_eq!(row.get::<_, &str>(0), big);
    assert_eq!(row.get::<_, i32>(1), 600_000);
    let rows = conn
        .query(
            "select g, repeat('x', g % 100), g % 3 = 0 from generate_series(1, 20000) g",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 20000);
    for (i, row) in rows.iter().enumerate() {
        let g = i as i32 + 1;
        assert_eq!(row.get::<_, i32>(0), g);
        assert_eq!(row.get::<_, &str>(1).len(), (g % 100) as usize);
        assert_eq!(row.get::<_, bool>(2), g % 3 == 0);
    }
    // Rows outlive later reads into the buffer they came from.
    let first = rows.into_iter().next().unwrap();
    conn.query("select repeat('y', 100000) from generate_series(1, 5)", &[])
        .await
        .unwrap();
    assert_eq!(first.get::<_, i32>(0), 1);
}

#[tokio::test]
async fn notices_and_notifications() {
    let mut conn = connect().await;
    let (tx, rx) = std::sync::mpsc::channel();
    conn.set_notice_handler(move |n| {
        let _ = tx.send(n.message().to_owned());
    });
    conn.batch_execute("do $$ begin raise notice 'hello %', 42; end $$")
        .await
        .unwrap();
    assert_eq!(rx.try_recv().unwrap(), "hello 42");

    conn.batch_execute("listen ferropg_chan").await.unwrap();
    conn.batch_execute("notify ferropg_chan, 'first'")
        .await
        .unwrap();
    let got = conn.take_notifications();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].channel(), "ferropg_chan");
    assert_eq!(got[0].payload(), "first");
    assert_eq!(got[0].process_id(), conn.backend_pid());

    let mut other = connect().await;
    let (n, _) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(5), conn.notification()),
        async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            other
                .batch_execute("notify ferropg_chan, 'second'")
                .await
                .unwrap();
        }
    );
    let n = n.expect("notification in time").unwrap();
    assert_eq!(n.payload(), "second");
    assert_eq!(n.process_id(), other.backend_pid());
}

#[tokio::test]
async fn a_terminated_backend_closes_the_connection() {
    let mut conn = connect().await;
    let mut admin = connect().await;
    let pid = conn.backend_pid();
    let killed: bool = admin
        .query_one("select pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap()
        .get(0);
    assert!(killed);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let err = tokio::time::timeout(Duration::from_secs(5), conn.query("select 1", &[]))
        .await
        .expect("no hang")
        .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::Db | ErrorKind::Io | ErrorKind::Closed
        ),
        "{err:?}"
    );
    if err.kind() == ErrorKind::Db {
        assert_eq!(err.code(), Some(&sqlstate::ADMIN_SHUTDOWN));
    }
    assert!(err.is_closed());
    assert!(conn.is_closed());
    let again = conn.query("select 1", &[]).await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Closed);
}

#[tokio::test]
async fn closed_connections_refuse_work() {
    let mut conn = connect().await;
    conn.close().await.unwrap();
    conn.close().await.unwrap();
    assert!(conn.is_closed());
    let err = conn.query("select 1", &[]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed);
    assert_eq!(
        conn.transaction().await.unwrap_err().kind(),
        ErrorKind::Closed
    );
}

#[tokio::test]
async fn futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let mut conn = connect().await;
    let fut = conn.query("select 1", &[]);
    assert_send(&fut);
    drop(fut);
    let stmt = conn.prepare("select 1").await.unwrap();
    let fut = conn.query_one(&stmt, &[]);
    assert_send(&fut);
    drop(fut);
    // And usable from a spawned task on a multi-threaded runtime's worker.
    let handle = tokio::spawn(async move {
        let row = conn.query_one("select 11::int4", &[]).await.unwrap();
        row.get::<_, i32>(0)
    });
    assert_eq!(handle.await.unwrap(), 11);
}

/// Rows of every width around the one kept without an allocation (12 values),
/// with NULLs and values of several lengths, read back value by value: collected,
/// streamed, and as simple-query text rows.
#[tokio::test]
async fn rows_of_every_width_read_back_value_by_value() {
    let mut conn = connect().await;
    for width in [0usize, 1, 11, 12, 13, 40] {
        // Column i holds repeat('x', i), NULL for every third column.
        let columns: Vec<String> = (0..width)
            .map(|i| match i % 3 {
                2 => format!("null::text as c{i}"),
                _ => format!("repeat('x', {i}) as c{i}"),
            })
            .collect();
        let sql = format!("select {} from generate_series(1, 3)", columns.join(", "));
        let check = |values: Vec<Option<String>>| {
            assert_eq!(values.len(), width);
            for (i, value) in values.into_iter().enumerate() {
                let expected = (i % 3 != 2).then(|| "x".repeat(i));
                assert_eq!(value, expected, "width {width}, column {i}");
            }
        };
        let rows = conn.query(sql.as_str(), &[]).await.unwrap();
        assert_eq!(rows.len(), 3);
        for row in &rows {
            assert_eq!(row.len(), width);
            check((0..width).map(|i| row.get(i)).collect());
        }
        let mut stream = conn.query_stream(sql.as_str(), &[]).await.unwrap();
        let mut streamed = 0;
        while let Some(row) = stream.next().await {
            let row = row.unwrap();
            check((0..width).map(|i| row.get(i)).collect());
            streamed += 1;
        }
        assert_eq!(streamed, 3);
        for message in conn.simple_query(&sql).await.unwrap() {
            if let ferropg::SimpleQueryMessage::Row(row) = message {
                check((0..width).map(|i| row.get(i).map(str::to_owned)).collect());
            }
        }
    }
}

/// A narrow row whose bytes pass 64 KiB (its value offsets no longer fit in 16
/// bits) reads back whole, collected and streamed, with the values after the
/// large one in place.
#[tokio::test]
async fn a_narrow_row_past_64_kib_reads_back_whole() {
    let mut conn = connect().await;
    let sql = "select repeat('y', 70000) as big, 7::int4 as n, null::text as none, 'z' as z";
    let check = |row: &ferropg::Row| {
        assert_eq!(row.get::<_, String>(0).len(), 70_000);
        assert_eq!(row.get::<_, i32>(1), 7);
        assert_eq!(row.get::<_, Option<String>>(2), None);
        assert_eq!(row.get::<_, &str>(3), "z");
    };
    check(&conn.query_one(sql, &[]).await.unwrap());
    let mut stream = conn.query_stream(sql, &[]).await.unwrap();
    check(&stream.next().await.unwrap().unwrap());
    assert!(stream.next().await.is_none());
}
