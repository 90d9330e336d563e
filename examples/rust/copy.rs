//! COPY both ways: 100,000 rows loaded with binary `COPY ... FROM STDIN`
//! (`BinaryCopyIn`), a CSV load through the shared client's `Sink`, and the table
//! read back with `COPY ... TO STDOUT` as CSV.
//!
//! ```sh
//! PGDSN=postgresql://postgres@localhost/postgres cargo run -p ferropg --example copy
//! ```

use futures_util::{SinkExt, TryStreamExt};

use ferropg::{BinaryCopyIn, Client, Config, Error, Type};

const ROWS: i32 = 100_000;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let config: Config = std::env::var("PGDSN").unwrap_or_default().parse()?;

    // An owned connection: binary COPY, rows encoded by their types.
    let mut conn = ferropg::connect(&config).await?;
    conn.batch_execute(
        "drop table if exists copy_example;
         create table copy_example (id int4, name text, score float8)",
    )
    .await?;
    let copy = conn
        .copy_in("copy copy_example (id, name, score) from stdin (format binary)")
        .await?;
    let mut writer = BinaryCopyIn::new(copy, &[Type::INT4, Type::TEXT, Type::FLOAT8]);
    for id in 0..ROWS {
        let name = format!("item {id}");
        writer.write(&[&id, &name, &(f64::from(id) / 2.0)]).await?;
    }
    let loaded = writer.finish().await?;
    assert_eq!(loaded, ROWS as u64);
    println!("binary COPY loaded {loaded} rows");

    // A shared client: CSV text through a `Sink<Bytes>`, while other tasks could
    // go on querying (their requests wait for the COPY's end).
    let client = Client::connect(&config).await?;
    let mut sink = client
        .copy_in("copy copy_example (id, name, score) from stdin (format csv)")
        .await?;
    for id in ROWS..ROWS + 3 {
        let line = format!("{id},\"late, but here\",{id}.5\n");
        SinkExt::send(&mut sink, bytes::Bytes::from(line)).await?;
    }
    assert_eq!(sink.finish().await?, 3);

    // And out again, as CSV chunks.
    let out = client
        .copy_out("copy (select * from copy_example where id >= 99999 order by id) to stdout (format csv)")
        .await?;
    let chunks: Vec<bytes::Bytes> = out.try_collect().await?;
    let csv: String = chunks.iter().map(|c| String::from_utf8_lossy(c)).collect();
    print!("{csv}");
    assert_eq!(csv.lines().count(), 4);
    assert!(csv.contains("100002,\"late, but here\",100002.5"));

    client.batch_execute("drop table copy_example").await?;
    Ok(())
}
