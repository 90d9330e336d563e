//! Serializable transactions retried on serialization failure (SQLSTATE 40001)
//! and deadlocks (40P01): ten tasks move money between two accounts at once, on
//! a pool; conflicts are retried with a back-off, and the total never changes.
//!
//! ```sh
//! PGDSN=postgresql://postgres@localhost/postgres cargo run -p ferropg --example retry_transactions
//! ```

use std::time::Duration;

use ferropg::{Config, Error, IsolationLevel, Pool, SqlState};

/// Whether an error means "run the whole transaction again".
fn retryable(e: &Error) -> bool {
    matches!(
        e.code(),
        Some(&SqlState::SERIALIZATION_FAILURE) | Some(&SqlState::DEADLOCK_DETECTED)
    )
}

/// Moves `amount` from one account to the other in a serializable transaction,
/// retrying it from the start when the server says it conflicted. Returns how
/// many attempts it took.
async fn transfer(pool: &Pool, from: i32, to: i32, amount: i64) -> Result<u32, Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut client = pool.acquire().await?;
        let result = async {
            let tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::Serializable)
                .start()
                .await?;
            let balance: i64 = tx
                .query_one("select balance from account where id = $1", &[&from])
                .await?
                .get(0);
            tx.execute(
                "update account set balance = $2 where id = $1",
                &[&from, &(balance - amount)],
            )
            .await?;
            tx.execute(
                "update account set balance = balance + $2 where id = $1",
                &[&to, &amount],
            )
            .await?;
            tx.commit().await
        }
        .await;
        match result {
            Ok(()) => return Ok(attempt),
            Err(e) if retryable(&e) && attempt < 50 => {
                // The failed transaction was rolled back when it was dropped.
                drop(client);
                tokio::time::sleep(Duration::from_millis(u64::from(attempt) * 2)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config: Config = std::env::var("PGDSN").unwrap_or_default().parse()?;
    let pool = Pool::builder(config)
        .min_size(1)
        .max_size(10)
        .build()
        .await?;
    pool.acquire()
        .await?
        .batch_execute(
            "drop table if exists account;
             create table account (id int4 primary key, balance int8 not null);
             insert into account values (1, 1000), (2, 1000)",
        )
        .await?;

    let mut tasks = Vec::new();
    for i in 0..10 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let (from, to) = if i % 2 == 0 { (1, 2) } else { (2, 1) };
            let mut attempts = 0;
            for _ in 0..5 {
                attempts += transfer(&pool, from, to, 10).await?;
            }
            Ok::<u32, Error>(attempts)
        }));
    }
    let mut attempts = 0;
    for task in tasks {
        attempts += task.await.expect("transfer task")?;
    }
    let client = pool.acquire().await?;
    let total: i64 = client
        .query_one("select sum(balance)::int8 from account", &[])
        .await?
        .get(0);
    assert_eq!(total, 2000, "money was created or lost");
    println!("50 transfers committed in {attempts} attempts; the total is still {total}");
    client.batch_execute("drop table account").await?;
    Ok(())
}
