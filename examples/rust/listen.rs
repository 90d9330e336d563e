//! LISTEN/NOTIFY: one shared client listens and reads notifications as a
//! `Stream`, while it goes on answering queries; another sends them, some inside
//! a transaction (delivered only at its commit).
//!
//! ```sh
//! PGDSN=postgresql://postgres@localhost/postgres cargo run -p ferropg --example listen
//! ```

use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt;

use ferropg::{Client, Config, Error};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let config: Config = std::env::var("PGDSN").unwrap_or_default().parse()?;
    let listener = Arc::new(Client::connect(&config).await?);
    listener.batch_execute("listen jobs").await?;

    let mut sender = Client::connect(&config).await?;
    let sending = tokio::spawn(async move {
        for i in 0..3 {
            sender
                .execute("select pg_notify('jobs', $1)", &[&format!("job {i}")])
                .await?;
        }
        // Notifications sent in a transaction arrive together, at the commit.
        let tx = sender.transaction().await?;
        tx.batch_execute("notify jobs, 'job 3'; notify jobs, 'job 4'")
            .await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        tx.commit().await?;
        Ok::<(), Error>(())
    });

    let mut received = Vec::new();
    {
        let mut stream = listener.notifications();
        while received.len() < 5 {
            let next = tokio::time::timeout(Duration::from_secs(10), stream.try_next());
            let note = next
                .await
                .expect("a notification within 10 s")?
                .expect("open");
            // The same client still answers queries meanwhile.
            let one: i32 = listener.query_one("select 1", &[]).await?.get(0);
            assert_eq!(one, 1);
            println!(
                "{} from pid {}: {}",
                note.channel(),
                note.process_id(),
                note.payload()
            );
            received.push(note.payload().to_owned());
        }
    }
    sending.await.expect("sender task")?;
    let expected: Vec<String> = (0..5).map(|i| format!("job {i}")).collect();
    assert_eq!(received, expected);
    listener.batch_execute("unlisten jobs").await?;
    Ok(())
}
