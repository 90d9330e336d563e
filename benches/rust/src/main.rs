//! `ferropg-bench`: ferropg, tokio-postgres and sqlx side by side, in one binary
//! (`make bench-rust`; `docs/benchmarks.md` has the method and the results).
//!
//! The parent starts a temporary PostgreSQL (through `python/ferropg/cluster.py`,
//! the project's one cluster helper, driven by the integration tests' `support`
//! module) or takes `--dsn`, loads the fixtures, then runs every cell (driver ×
//! workload × runtime) in a worker process of its own, this binary again with
//! `--worker`, so that `getrusage(RUSAGE_SELF)` there is that driver's client CPU,
//! all threads included. Cells run one at a time, the drivers interleaved, for N
//! rounds; pgbench runs once per round as the C floor. The report gives medians
//! and ratios to tokio-postgres. Every result is checked: a driver that returns a
//! wrong value fails its cell instead of looking fast.
//!
//! ```sh
//! cargo run -p ferropg-bench --release               # 3 rounds, both runtimes
//! cargo run -p ferropg-bench --release -- --quick    # smoke run
//! cargo run -p ferropg-bench --release -- --help
//! ```

mod args;
mod cell;
mod cpu;
mod drivers;
mod parent;
mod report;
mod spec;
#[path = "../../../crates/ferropg/tests/support/mod.rs"]
mod support;
mod target;
mod worker;

use std::process::ExitCode;

use args::{Args, USAGE};
use cell::Plan;
use target::Target;

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("ferropg-bench: {e}");
            return ExitCode::from(2);
        }
    };
    match args.worker {
        Some(cell) => run_worker(&args, cell),
        None => run_parent(&args),
    }
}

/// `--worker`: one cell, its line on stdout, or its error on stderr and a failure status.
fn run_worker(
    args: &Args,
    (driver, workload, runtime): (spec::Driver, spec::Workload, spec::Runtime),
) -> ExitCode {
    let Some(dsn) = &args.dsn else {
        eprintln!("ferropg-bench: --worker needs --dsn");
        return ExitCode::from(2);
    };
    let plan = Plan {
        warmup: workload.warmup(args.quick),
        ops: workload.ops(args.quick),
    };
    let result = Target::from_dsn(dsn)
        .map_err(Into::into)
        .and_then(|target| worker::run(driver, workload, runtime, target, plan));
    match result {
        Ok(sample) => {
            println!("{}", worker::format_line(&sample));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{driver} {workload} {runtime}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The whole run; the report on stdout (and in `--markdown`), progress on stderr.
fn run_parent(args: &Args) -> ExitCode {
    let run = match parent::run(args) {
        Ok(run) => run,
        Err(e) => {
            eprintln!("ferropg-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = report::render(&run);
    print!("{report}");
    if let Some(path) = &args.markdown {
        if let Err(e) = std::fs::write(path, &report) {
            eprintln!("ferropg-bench: cannot write {path}: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
