//! Streaming a large result: a million rows read as they arrive, in constant
//! memory, with `query_raw` on a shared client (a `futures::Stream`), and the same
//! rows as binary COPY data decoded by `BinaryCopyOutStream`.
//!
//! ```sh
//! PGDSN=postgresql://postgres@localhost/postgres cargo run -p ferropg --example stream_large
//! ```

use futures_util::{pin_mut, TryStreamExt};

use ferropg::{BinaryCopyOutStream, Client, Config, Error, Type};

const ROWS: i64 = 1_000_000;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let config: Config = std::env::var("PGDSN").unwrap_or_default().parse()?;
    let client = Client::connect(&config).await?;

    // Rows one at a time: only a small window of them is ever in memory, and the
    // server is paused (by TCP backpressure) when the consumer falls behind.
    let rows = client
        .query_raw(
            "select g, g % 7 = 0 from generate_series(1, $1::int8) g",
            [ROWS],
        )
        .await?;
    pin_mut!(rows);
    let (mut sum, mut sevens) = (0i64, 0u64);
    while let Some(row) = rows.try_next().await? {
        sum += row.get::<_, i64>(0);
        sevens += u64::from(row.get::<_, bool>(1));
    }
    assert_eq!(sum, ROWS * (ROWS + 1) / 2);
    assert_eq!(sevens, (ROWS / 7) as u64);
    println!("streamed {ROWS} rows: sum {sum}, {sevens} multiples of 7");

    // The same rows as binary COPY: the cheapest way out of the server.
    let copy = client
        .copy_out(&format!(
            "copy (select g::int8, g::text from generate_series(1, {ROWS}) g) to stdout (format binary)"
        ))
        .await?;
    let decoded = BinaryCopyOutStream::new(copy, &[Type::INT8, Type::TEXT]);
    pin_mut!(decoded);
    let mut count = 0i64;
    while let Some(row) = decoded.try_next().await? {
        count += 1;
        let (n, text): (i64, &str) = (row.get(0), row.get(1));
        assert_eq!(n.to_string(), text);
    }
    assert_eq!(count, ROWS);
    println!("read {count} rows of binary COPY");
    Ok(())
}
