//! The worker process: runs one cell on the runtime it was asked for and prints what
//! it measured as one line on stdout, for the parent ([`parse_line`]).

use std::time::Duration;

use crate::cell::{self, Plan};
use crate::cpu::{Sample, Usage};
use crate::drivers::ferropg::Ferropg;
#[cfg(feature = "peers")]
use crate::drivers::sqlx::Sqlx;
#[cfg(feature = "peers")]
use crate::drivers::tokio_postgres::TokioPostgres;
use crate::drivers::Result;
use crate::spec::{Driver, Runtime, Workload};
use crate::target::Target;

/// Runs the cell; the sample, or why the cell failed.
pub fn run(
    driver: Driver,
    workload: Workload,
    runtime: Runtime,
    target: Target,
    plan: Plan,
) -> Result<Sample> {
    let rt = match runtime {
        Runtime::CurrentThread => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        Runtime::MultiThread => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?,
    };
    // The cell runs as a spawned task, as application code does: on the
    // multi-thread runtime it runs on (and moves between) the worker threads.
    rt.block_on(async move {
        let task = match driver {
            Driver::Ferropg => tokio::spawn(cell::run::<Ferropg>(workload, target, plan)),
            #[cfg(feature = "peers")]
            Driver::TokioPostgres => {
                tokio::spawn(cell::run::<TokioPostgres>(workload, target, plan))
            }
            #[cfg(feature = "peers")]
            Driver::Sqlx => tokio::spawn(cell::run::<Sqlx>(workload, target, plan)),
            #[cfg(not(feature = "peers"))]
            other => return Err(format!("{other}: built without the `peers` feature").into()),
        };
        task.await?
    })
}

/// The line the worker prints for `sample`.
pub fn format_line(sample: &Sample) -> String {
    format!(
        "ok\t{}\t{}\t{}\t{}",
        sample.ops,
        sample.cpu.user.as_nanos(),
        sample.cpu.sys.as_nanos(),
        sample.wall.as_nanos()
    )
}

/// Reads a line of [`format_line`].
pub fn parse_line(line: &str) -> Option<Sample> {
    let fields: Vec<&str> = line.trim().split('\t').collect();
    let [ok, ops, user, sys, wall] = fields[..] else {
        return None;
    };
    let nanos = |s: &str| s.parse::<u64>().ok().map(Duration::from_nanos);
    (ok == "ok").then_some(())?;
    Some(Sample {
        ops: ops.parse().ok()?,
        cpu: Usage {
            user: nanos(user)?,
            sys: nanos(sys)?,
        },
        wall: nanos(wall)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_round_trip() {
        let sample = Sample {
            ops: 20_000,
            cpu: Usage {
                user: Duration::from_nanos(1_234_567),
                sys: Duration::from_nanos(89),
            },
            wall: Duration::from_secs(2),
        };
        assert_eq!(parse_line(&format_line(&sample)), Some(sample));
        assert_eq!(parse_line("ok\t1\t2\t3"), None);
        assert_eq!(parse_line("err\t1\t2\t3\t4"), None);
    }
}
