//! A tour of the `ferropg` crate.
//!
//! Run it against any server you may create temporary tables on:
//!
//! ```sh
//! PGDSN=postgresql://postgres@localhost/postgres cargo run -p ferropg --example tour
//! ```
//!
//! Without `PGDSN`, the usual `PG*` variables and libpq's defaults apply.

use std::time::Duration;

use ferropg::types::Numeric;
use ferropg::{sqlstate, Config, Error};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let dsn = std::env::var("PGDSN").unwrap_or_default();
    let config: Config = dsn.parse()?;
    let mut conn = ferropg::connect(&config).await?;
    println!(
        "connected to PostgreSQL {} (backend pid {})",
        conn.server_version().unwrap_or("?"),
        conn.backend_pid()
    );

    // Several statements at once, with the simple query protocol.
    conn.batch_execute(
        "create temp table fruit (
             id int4 primary key,
             name text not null,
             price numeric(6, 2),
             tags text[]
         )",
    )
    .await?;

    // A prepared statement, reused inside a transaction.
    let insert = conn
        .prepare("insert into fruit values ($1, $2, $3, $4)")
        .await?;
    println!("insert takes {:?}", insert.params());
    let mut tx = conn.transaction().await?;
    for (id, name, price, tags) in [
        (1, "apple", "0.50", vec!["red", "crisp"]),
        (2, "pear", "0.75", vec![]),
        (3, "quince", "2.10", vec!["rare"]),
    ] {
        let price: Numeric = price.parse().expect("a decimal");
        tx.execute(&insert, &[&id, &name, &price, &tags]).await?;
    }
    tx.commit().await?;

    // Parameters go in binary with the types the server inferred; columns come
    // back through FromSql, by position or by name.
    for row in conn
        .query(
            "select id, name, price, tags from fruit where price < $1 order by id",
            &[&"1.00".parse::<Numeric>().expect("a decimal")],
        )
        .await?
    {
        let id: i32 = row.get(0);
        let name: &str = row.get("name");
        let price: Option<Numeric> = row.get("price");
        let tags: Vec<String> = row.get("tags");
        println!("{id}: {name} at {price:?}, tags {tags:?}");
    }

    // Server errors carry every field and leave the connection usable.
    match conn
        .execute(
            &insert,
            &[&1i32, &"again", &None::<Numeric>, &Vec::<String>::new()],
        )
        .await
    {
        Err(e) if e.code() == Some(&sqlstate::UNIQUE_VIOLATION) => {
            let db = e.as_db_error().expect("a server error");
            println!(
                "refused: {} ({:?}, constraint {:?})",
                db.message(),
                db.detail(),
                db.constraint()
            );
        }
        other => panic!("expected a unique violation, got {other:?}"),
    }
    let one = conn.query_one("select count(*) from fruit", &[]).await?;
    println!("{} fruits", one.get::<_, i64>(0));

    // A transaction dropped without commit is rolled back.
    {
        let mut tx = conn.transaction().await?;
        tx.execute("delete from fruit", &[]).await?;
    }
    let left: i64 = conn
        .query_one("select count(*) from fruit", &[])
        .await?
        .get(0);
    println!("{left} fruits after the dropped transaction");

    // Cancel a slow query from elsewhere.
    let token = conn.cancel_token();
    let (slow, _) = tokio::join!(conn.query("select pg_sleep(30)", &[]), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        token.cancel().await
    });
    let err = slow.expect_err("cancelled");
    println!("cancelled: {}", err.code().map_or("?", |c| c.code()));

    // Or give every call a time limit: a call that takes longer is cancelled on
    // the server, and the connection stays usable.
    conn.set_timeout(Some(Duration::from_millis(100)));
    let err = conn
        .execute("select pg_sleep(30)", &[])
        .await
        .expect_err("timed out");
    println!("timed out: {err}");
    conn.set_timeout(None);

    // SQL text is prepared once through the statement cache; repeats only bind
    // and execute it.
    for _ in 0..3 {
        conn.query_one("select count(*) from fruit where id > $1", &[&1i32])
            .await?;
    }
    println!("{} statement(s) cached", conn.statement_cache_len());

    // COPY in and out.
    let mut copy = conn
        .copy_in("copy fruit (id, name) from stdin (format csv)")
        .await?;
    copy.send("10,fig\n11,date\n").await?;
    println!("copied in {} rows", copy.finish().await?);
    let mut copy = conn
        .copy_out("copy (select id, name from fruit order by id) to stdout (format csv)")
        .await?;
    while let Some(line) = copy.next().await {
        print!("csv: {}", String::from_utf8_lossy(&line?));
    }

    // Rows as they arrive, without collecting them.
    let mut rows = conn
        .query_stream("select g from generate_series(1, 100000) g", &[])
        .await?;
    let mut sum = 0i64;
    while let Some(row) = rows.next().await {
        sum += i64::from(row?.get::<_, i32>(0));
    }
    println!("streamed sum {sum}");

    // A portal fetched in steps, inside a transaction.
    let mut tx = conn.transaction().await?;
    let mut portal = tx.bind("select name from fruit order by id", &[]).await?;
    while !portal.is_done() {
        let names: Vec<String> = portal.fetch(2).await?.iter().map(|r| r.get(0)).collect();
        println!("batch {names:?}");
    }
    drop(portal);
    tx.commit().await?;

    // LISTEN/NOTIFY: notifications wait in the socket until asked for.
    conn.batch_execute("listen tour; notify tour, 'hello'")
        .await?;
    let note = conn.notification().await?;
    println!("notification on {}: {}", note.channel(), note.payload());

    conn.close().await?;
    Ok(())
}
