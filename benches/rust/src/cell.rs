//! One cell, in a worker process: a driver, a workload, a runtime. Connects, warms
//! up, then measures the operations, checking every result; the checks are the
//! same code for every driver (this module is generic over [`Adapter`]).

use crate::cpu::{Sample, Span};
use crate::drivers::ferropg::config;
use crate::drivers::{Adapter, Result};
use crate::spec::{self, MixedCheck, SeriesSum, SinkRow, Workload, SERIES_ROWS};
use crate::target::Target;

/// How many operations to run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Unmeasured operations first.
    pub warmup: u64,
    /// Measured operations.
    pub ops: u64,
}

/// Runs `workload` with driver `A`: the measured sample, or the first error (a
/// wrong result is an error).
pub async fn run<A: Adapter>(workload: Workload, target: Target, plan: Plan) -> Result<Sample> {
    let mut db = A::connect(&target).await?;
    let mut sample = Sample::default();
    match workload {
        Workload::Tiny => {
            for i in 0..plan.warmup {
                tiny(&mut db, i).await?;
            }
            let span = Span::start();
            for i in 0..plan.ops {
                tiny(&mut db, i).await?;
            }
            span.stop(&mut sample, plan.ops);
        }
        Workload::OneRow => {
            let check = MixedCheck::new();
            for i in 0..plan.warmup {
                one_row(&mut db, &check, i).await?;
            }
            let span = Span::start();
            for i in 0..plan.ops {
                one_row(&mut db, &check, i).await?;
            }
            span.stop(&mut sample, plan.ops);
        }
        Workload::Mixed1000x10 => {
            let mut check = MixedCheck::new();
            for _ in 0..plan.warmup {
                mixed(&mut db, &mut check).await?;
            }
            let span = Span::start();
            for _ in 0..plan.ops {
                mixed(&mut db, &mut check).await?;
            }
            span.stop(&mut sample, plan.ops);
        }
        Workload::Series100k | Workload::Series100kStream => {
            let stream = workload == Workload::Series100kStream;
            for _ in 0..plan.warmup {
                series(&mut db, stream).await?;
            }
            let span = Span::start();
            for _ in 0..plan.ops {
                series(&mut db, stream).await?;
            }
            span.stop(&mut sample, plan.ops);
        }
        Workload::ClientTiny | Workload::SharedTiny10 => {
            // Each op is one query of one of the tasks: ops split among the tasks.
            let tasks = if workload == Workload::ClientTiny {
                1
            } else {
                spec::SHARED_TASKS
            };
            let warm = plan.warmup.div_ceil(tasks);
            db.shared_tiny(tasks, warm, 0).await?;
            let per_task = plan.ops.div_ceil(tasks);
            let span = Span::start();
            db.shared_tiny(tasks, per_task, tasks * warm).await?;
            span.stop(&mut sample, per_task * tasks);
        }
        Workload::Executemany10k | Workload::CopyIn100k | Workload::ClientExecutemany10k => {
            // Each operation writes into an empty table and is checked on the server
            // afterwards; emptying and checking go through a second connection
            // (ferropg's, for every driver) and are not measured.
            let rows = spec::sink_rows(workload.rows_per_op() as usize);
            let mut control = ferropg::connect(&config(&target)).await?;
            for i in 0..plan.warmup + plan.ops {
                control.batch_execute("TRUNCATE bench_sink").await?;
                let span = Span::start();
                write(&mut db, workload, &rows).await?;
                if i >= plan.warmup {
                    span.stop(&mut sample, 1);
                }
                check_sink(&mut control, &rows).await?;
            }
        }
    }
    Ok(sample)
}

async fn tiny<A: Adapter>(db: &mut A, i: u64) -> Result<()> {
    let value = i as i32;
    let got = db.tiny(value).await?;
    if got != value {
        return Err(format!("tiny: sent {value}, got {got}").into());
    }
    Ok(())
}

async fn one_row<A: Adapter>(db: &mut A, check: &MixedCheck, i: u64) -> Result<()> {
    let key = (i % spec::MIXED_ROWS as u64) as i32 + 1;
    let row = db.one_row(key).await?;
    if check.row(key) != Some(&row) {
        return Err(format!("one_row: key {key} came back as {row:?}").into());
    }
    Ok(())
}

async fn mixed<A: Adapter>(db: &mut A, check: &mut MixedCheck) -> Result<()> {
    check.rows = 0;
    db.mixed(check).await?;
    if check.rows != spec::MIXED_ROWS as u64 || check.wrong != 0 {
        return Err(format!(
            "mixed_1000x10: {} rows, {} of them wrong",
            check.rows, check.wrong
        )
        .into());
    }
    Ok(())
}

async fn series<A: Adapter>(db: &mut A, stream: bool) -> Result<()> {
    let mut sum = SeriesSum::default();
    if stream {
        db.series_stream(SERIES_ROWS, &mut sum).await?;
    } else {
        db.series(SERIES_ROWS, &mut sum).await?;
    }
    let expected = SeriesSum::expected(SERIES_ROWS);
    if sum != expected {
        return Err(format!("series: got {sum:?}, expected {expected:?}").into());
    }
    Ok(())
}

async fn write<A: Adapter>(db: &mut A, workload: Workload, rows: &[SinkRow]) -> Result<()> {
    match workload {
        Workload::CopyIn100k => {
            let copied = db.copy_in(rows).await?;
            if copied != rows.len() as u64 {
                return Err(format!("copy_in: {copied} rows copied, not {}", rows.len()).into());
            }
        }
        Workload::ClientExecutemany10k => db.client_executemany(rows).await?,
        _ => db.executemany(rows).await?,
    }
    Ok(())
}

/// Compares what `bench_sink` holds with what was written, value by value.
async fn check_sink(control: &mut ferropg::Connection, rows: &[SinkRow]) -> Result<()> {
    let row = control.query_one(spec::SINK_CHECK_SQL, &[]).await?;
    let got: (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    let expected = spec::sink_check_expected(rows.len());
    if got != expected {
        return Err(format!(
            "bench_sink: (rows, sum of ids, wrong rows) = {got:?}, expected {expected:?}"
        )
        .into());
    }
    Ok(())
}
