//! The command line (no parser crate: a handful of flags).

use std::time::Duration;

use crate::spec::{self, Driver, Runtime, Workload};

/// What `--help` prints.
pub const USAGE: &str = "\
ferropg-bench: ferropg, tokio-postgres and sqlx side by side (client CPU per op)

usage: ferropg-bench [options]

  --quick               smoke run: 1 round, a tenth of the operations
  --rounds N            rounds of interleaved cells (default 3; 1 with --quick)
  --dsn DSN             an existing server (creates and drops bench_mixed, bench_sink)
                        instead of a temporary cluster over its Unix socket
  --tcp                 temporary cluster over TCP 127.0.0.1 instead
  --driver NAME         ferropg, tokio-postgres, sqlx (repeatable; default all that
                        were built: the peers need the `peers` feature)
  --workload NAME       tiny, one_row, mixed_1000x10, series_100k, series_100k_stream,
                        executemany_10k, copy_in_100k, client_tiny,
                        shared_tiny_10, client_executemany_10k (repeatable;
                        default all)
  --runtime NAME        current-thread, multi-thread (repeatable; default both)
  --markdown FILE       also write the report there
  --pgbench-queries N   queries of each round's pgbench run (default 20000)
  --no-pgbench          skip pgbench
  --cell-timeout SECS   a cell running longer is killed and reported failed (default 600)

internal: --worker DRIVER WORKLOAD RUNTIME --dsn DSN [--quick]
";

/// Parsed options.
#[derive(Debug, Clone)]
pub struct Args {
    /// `--quick`.
    pub quick: bool,
    /// Rounds to run.
    pub rounds: usize,
    /// `--dsn`.
    pub dsn: Option<String>,
    /// `--tcp`.
    pub tcp: bool,
    /// Drivers to run, in report order.
    pub drivers: Vec<Driver>,
    /// Workloads to run, in report order.
    pub workloads: Vec<Workload>,
    /// Runtimes to run, in report order.
    pub runtimes: Vec<Runtime>,
    /// `--markdown`.
    pub markdown: Option<String>,
    /// pgbench queries per round; `None` skips pgbench.
    pub pgbench_queries: Option<u64>,
    /// `--cell-timeout`.
    pub cell_timeout: Duration,
    /// `--worker`: run one cell and print its line.
    pub worker: Option<(Driver, Workload, Runtime)>,
}

fn value(args: &mut impl Iterator<Item = String>, flag: &str) -> Result<String, String> {
    args.next().ok_or_else(|| format!("{flag} needs a value"))
}

fn number<T: std::str::FromStr>(text: &str, flag: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{flag}: not a number: {text:?}"))
}

fn driver(name: &str) -> Result<Driver, String> {
    spec::parse(&Driver::ALL, name, Driver::name).ok_or_else(|| format!("unknown driver {name:?}"))
}

fn workload(name: &str) -> Result<Workload, String> {
    spec::parse(&Workload::ALL, name, Workload::name)
        .ok_or_else(|| format!("unknown workload {name:?}"))
}

fn runtime(name: &str) -> Result<Runtime, String> {
    spec::parse(&Runtime::ALL, name, Runtime::name)
        .ok_or_else(|| format!("unknown runtime {name:?}"))
}

/// Keeps the report's order whatever the order on the command line.
fn ordered<T: Copy + PartialEq>(all: &[T], chosen: Vec<T>) -> Vec<T> {
    if chosen.is_empty() {
        return all.to_vec();
    }
    all.iter().copied().filter(|x| chosen.contains(x)).collect()
}

impl Args {
    /// Parses the arguments after the program name; `Ok(None)` for `--help`.
    pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
        let (mut drivers, mut workloads, mut runtimes) = (vec![], vec![], vec![]);
        let mut parsed = Args {
            quick: false,
            rounds: 0,
            dsn: None,
            tcp: false,
            drivers: vec![],
            workloads: vec![],
            runtimes: vec![],
            markdown: None,
            pgbench_queries: Some(0),
            cell_timeout: Duration::from_secs(600),
            worker: None,
        };
        while let Some(flag) = args.next() {
            match flag.as_str() {
                "-h" | "--help" => return Ok(None),
                "--quick" => parsed.quick = true,
                "--tcp" => parsed.tcp = true,
                "--no-pgbench" => parsed.pgbench_queries = None,
                "--rounds" => parsed.rounds = number(&value(&mut args, &flag)?, &flag)?,
                "--dsn" => parsed.dsn = Some(value(&mut args, &flag)?),
                "--markdown" => parsed.markdown = Some(value(&mut args, &flag)?),
                "--driver" => drivers.push(driver(&value(&mut args, &flag)?)?),
                "--workload" => workloads.push(workload(&value(&mut args, &flag)?)?),
                "--runtime" => runtimes.push(runtime(&value(&mut args, &flag)?)?),
                "--pgbench-queries" => {
                    let n = number(&value(&mut args, &flag)?, &flag)?;
                    if parsed.pgbench_queries.is_some() {
                        parsed.pgbench_queries = Some(n);
                    }
                }
                "--cell-timeout" => {
                    let secs = number(&value(&mut args, &flag)?, &flag)?;
                    parsed.cell_timeout = Duration::from_secs(secs);
                }
                "--worker" => {
                    parsed.worker = Some((
                        driver(&value(&mut args, &flag)?)?,
                        workload(&value(&mut args, &flag)?)?,
                        runtime(&value(&mut args, &flag)?)?,
                    ));
                }
                other => return Err(format!("unknown option {other:?} (see --help)")),
            }
        }
        if parsed.rounds == 0 {
            parsed.rounds = if parsed.quick { 1 } else { 3 };
        }
        if parsed.pgbench_queries == Some(0) {
            parsed.pgbench_queries = Some(if parsed.quick { 2_000 } else { 20_000 });
        }
        if let Some(d) = drivers.iter().find(|d| !Driver::available().contains(d)) {
            return Err(format!(
                "{d} needs the `peers` feature (make bench-rust turns it on)"
            ));
        }
        parsed.drivers = ordered(&Driver::available(), drivers);
        parsed.workloads = ordered(&Workload::ALL, workloads);
        parsed.runtimes = ordered(&Runtime::ALL, runtimes);
        Ok(Some(parsed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Option<Args>, String> {
        Args::parse(line.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn defaults_and_report_order() {
        let args = parse("--workload copy_in_100k --workload tiny --runtime current-thread")
            .unwrap()
            .unwrap();
        assert_eq!(args.rounds, 3);
        assert_eq!(args.workloads, [Workload::Tiny, Workload::CopyIn100k]);
        assert_eq!(args.runtimes, [Runtime::CurrentThread]);
        assert_eq!(args.drivers, Driver::available());
        assert_eq!(args.pgbench_queries, Some(20_000));
        let quick = parse("--quick --no-pgbench").unwrap().unwrap();
        assert_eq!((quick.rounds, quick.pgbench_queries), (1, None));
    }

    #[test]
    fn worker_and_errors() {
        let args = parse("--worker ferropg one_row multi-thread --dsn host=/tmp")
            .unwrap()
            .unwrap();
        assert_eq!(
            args.worker,
            Some((Driver::Ferropg, Workload::OneRow, Runtime::MultiThread))
        );
        assert!(parse("--help").unwrap().is_none());
        assert!(parse("--workload nope").is_err());
        assert!(parse("--rounds x").is_err());
        assert!(parse("--dsn").is_err());
    }
}
