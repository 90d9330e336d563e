//! One adapter per driver: the same operations, each written the way that driver's
//! users write it. The harness around them (`cell.rs`) is generic over [`Adapter`],
//! so its own per-operation work (the checks) is the same code for all three.

pub mod ferropg;
#[cfg(feature = "peers")]
pub mod sqlx;
#[cfg(feature = "peers")]
pub mod tokio_postgres;

use crate::spec::{MixedCheck, MixedRow, SeriesSum, SinkRow};
use crate::target::Target;

/// Any driver's error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A result with any driver's error.
pub type Result<T> = std::result::Result<T, BoxError>;

/// The operations of the workloads, on one connection. Results are decoded into
/// owned values and handed back (or to a check) so that the harness can compare
/// every one of them.
pub(crate) trait Adapter: Sized {
    /// Opens one connection and prepares what the driver's users prepare up front.
    async fn connect(target: &Target) -> Result<Self>;

    /// `SELECT $1::int4` with `value`: the value that came back.
    async fn tiny(&mut self, value: i32) -> Result<i32>;

    /// The row of `bench_mixed` with key `key`.
    async fn one_row(&mut self, key: i32) -> Result<MixedRow>;

    /// Every row of `bench_mixed`, fetched at once, each decoded and passed to `check`.
    async fn mixed(&mut self, check: &mut MixedCheck) -> Result<()>;

    /// `generate_series(1, n)`, fetched at once, each value added to `sum`.
    async fn series(&mut self, n: i32, sum: &mut SeriesSum) -> Result<()>;

    /// The same series as a stream of rows.
    async fn series_stream(&mut self, n: i32, sum: &mut SeriesSum) -> Result<()>;

    /// One INSERT per row into `bench_sink`, in a transaction.
    async fn executemany(&mut self, rows: &[SinkRow]) -> Result<()>;

    /// The rows into `bench_sink` by binary COPY: the row count the server reported.
    async fn copy_in(&mut self, rows: &[SinkRow]) -> Result<u64>;

    /// `tasks` tasks share one client, each running `tiny` `per_task` times (with
    /// values `first + task * per_task + i`), each value checked.
    async fn shared_tiny(&mut self, tasks: u64, per_task: u64, first: u64) -> Result<()> {
        let _ = (tasks, per_task, first);
        Err("this driver has no client shared by tasks".into())
    }

    /// `executemany` through the driver's shared client (the same as
    /// `executemany` for a driver whose connection is that client).
    async fn client_executemany(&mut self, rows: &[SinkRow]) -> Result<()> {
        self.executemany(rows).await
    }
}

/// The check of one `tiny` result.
pub fn check_tiny(sent: i32, got: i32) -> Result<()> {
    if got == sent {
        Ok(())
    } else {
        Err(format!("tiny: sent {sent}, got {got}").into())
    }
}
