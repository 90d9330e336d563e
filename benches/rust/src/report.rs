//! The report: medians over the rounds, ratios to tokio-postgres, the acceptance
//! bars of issue 11 (item 6), and every round's figure, as markdown.

use std::collections::HashMap;
use std::fmt::Write;

use crate::args::Args;
use crate::cpu::Sample;
use crate::spec::{Driver, Runtime, Workload};
use crate::target::Target;

/// One cell's outcome in one round.
pub type Cell = Result<Sample, String>;

/// A cell of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    /// The workload.
    pub workload: Workload,
    /// The runtime.
    pub runtime: Runtime,
    /// The driver.
    pub driver: Driver,
}

/// Everything a run collected.
pub struct Run {
    /// The options it ran with.
    pub args: Args,
    /// Unix socket or TCP.
    pub transport: &'static str,
    /// The server's version.
    pub server_version: String,
    /// pgbench's client CPU per query (µs) in each round; `None` where it failed.
    pub pgbench: Vec<Option<f64>>,
    /// Each cell's outcome in each round, in round order.
    pub cells: HashMap<Key, Vec<Cell>>,
}

impl Run {
    /// An empty run.
    pub fn new(args: &Args, target: &Target, server_version: String) -> Run {
        Run {
            args: args.clone(),
            transport: if target.is_socket() {
                "Unix socket"
            } else {
                "TCP"
            },
            server_version,
            pgbench: vec![],
            cells: HashMap::new(),
        }
    }

    fn ok(&self, key: Key) -> Vec<&Sample> {
        self.cells
            .get(&key)
            .map(|cells| cells.iter().filter_map(|c| c.as_ref().ok()).collect())
            .unwrap_or_default()
    }

    /// Median client CPU per unit (µs per op for 1-row workloads, ns per row for
    /// the others) over the rounds that succeeded.
    pub fn cpu(&self, key: Key) -> Option<f64> {
        median(
            self.ok(key)
                .iter()
                .map(|s| per_unit(s, key.workload, s.cpu.total().as_secs_f64())),
        )
    }

    fn part(&self, key: Key, sys: bool) -> Option<f64> {
        median(self.ok(key).iter().map(|s| {
            let t = if sys { s.cpu.sys } else { s.cpu.user };
            per_unit(s, key.workload, t.as_secs_f64())
        }))
    }

    fn rate(&self, key: Key) -> Option<f64> {
        median(
            self.ok(key)
                .iter()
                .map(|s| s.ops as f64 / s.wall.as_secs_f64()),
        )
    }

    /// Median of pgbench's rounds, µs per query.
    pub fn pgbench_median(&self) -> Option<f64> {
        median(self.pgbench.iter().flatten().copied())
    }
}

/// `seconds` of CPU over the sample's operations, in the workload's unit.
fn per_unit(s: &Sample, workload: Workload, seconds: f64) -> f64 {
    let per_op = seconds / s.ops as f64;
    match workload.rows_per_op() {
        1 => per_op * 1e6,
        rows => per_op * 1e9 / rows as f64,
    }
}

fn unit(workload: Workload) -> &'static str {
    if workload.rows_per_op() == 1 {
        "µs/op"
    } else {
        "ns/row"
    }
}

fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// A figure with about three significant digits.
fn fig(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// Whether a driver sends one statement at a time in `executemany_10k`.
fn not_pipelined(workload: Workload, driver: Driver) -> bool {
    workload == Workload::Executemany10k && driver == Driver::Sqlx
}

/// The markdown report.
pub fn render(run: &Run) -> String {
    let mut out = String::new();
    let args = &run.args;
    let pgbench = run.pgbench_median();
    let _ =
        writeln!(
        out,
        "Rust drivers side by side (`make bench-rust`): {} round(s), median shown; {} CPUs; {}; \
         PostgreSQL {}; ferropg {} (this tree), {}; one connection per cell, each cell a process \
         of its own{}.",
        args.rounds,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        run.transport,
        run.server_version,
        env!("CARGO_PKG_VERSION"),
        env!("BENCH_PEERS"),
        if args.quick { "; --quick (a tenth of the operations)" } else { "" },
    );
    if !run.pgbench.is_empty() {
        let rounds: Vec<String> = run
            .pgbench
            .iter()
            .map(|p| p.map_or("n/a".into(), |p| format!("{p:.2}")))
            .collect();
        let _ = writeln!(
            out,
            "\npgbench (C, libpq; `SELECT :x::int4` prepared, 1 connection) client CPU per query \
             in each round, µs: {} (median {}).",
            rounds.join(" · "),
            pgbench.map_or("n/a".into(), fig)
        );
    }
    for &runtime in &args.runtimes {
        render_runtime(&mut out, run, runtime, pgbench);
    }
    if args.runtimes.contains(&Runtime::CurrentThread) {
        render_bars(&mut out, run, pgbench);
    }
    render_detail(&mut out, run);
    out
}

fn render_runtime(out: &mut String, run: &Run, runtime: Runtime, pgbench: Option<f64>) {
    let drivers = &run.args.drivers;
    let _ = writeln!(
        out,
        "\n### {runtime} runtime\n\nClient CPU (user + system, all threads) per op for the \
         one-row workloads, per row for the others; median of the rounds; (×) = ratio to \
         tokio-postgres. Then throughput: operations per second (wall clock).\n"
    );
    let mut header = format!("| workload | unit | {} |", names(drivers));
    let mut rule = format!("|---|---|{}", "---:|".repeat(drivers.len()));
    if pgbench.is_some() && drivers.contains(&Driver::Ferropg) {
        header.push_str(" ferropg / pgbench |");
        rule.push_str("---:|");
    }
    let _ = writeln!(out, "{header}\n{rule}");
    let mut footnote = false;
    for &workload in &run.args.workloads {
        let key = |driver| Key {
            workload,
            runtime,
            driver,
        };
        let reference = run.cpu(key(Driver::REFERENCE));
        let mut line = format!("| {workload} | {} |", unit(workload));
        for &driver in drivers {
            let text = match run.cpu(key(driver)) {
                None if !workload.supports(driver) => "–".to_owned(),
                None => "FAIL".to_owned(),
                Some(cpu) => {
                    let mut t = fig(cpu);
                    if let Some(r) = reference {
                        let _ = write!(t, " ({:.2}×)", cpu / r);
                    }
                    if not_pipelined(workload, driver) {
                        t.push_str(" †");
                        footnote = true;
                    }
                    t
                }
            };
            let _ = write!(line, " {text} |");
        }
        if pgbench.is_some() && drivers.contains(&Driver::Ferropg) {
            let ratio = match (
                workload.round_trip_bound(),
                run.cpu(key(Driver::Ferropg)),
                pgbench,
            ) {
                (true, Some(cpu), Some(p)) => format!("{:.2}×", cpu / p),
                _ => String::new(),
            };
            let _ = write!(line, " {ratio} |");
        }
        let _ = writeln!(out, "{line}");
    }
    if footnote {
        let _ = writeln!(
            out,
            "\n† one round trip per row, not pipelined: sqlx cannot pipeline (each query takes \
             `&mut` of the connection). tokio-postgres pipelines (all 10,000 execute futures are \
             polled together), ferropg too (`execute_many`: Sync groups of 256 rows, 4 in flight). \
             – : the driver has no such client (sqlx: no client shared by tasks, no pipelining)."
        );
    }
    let _ = writeln!(
        out,
        "\n| ops/s | {} |\n|---|{}",
        names(drivers),
        "---:|".repeat(drivers.len())
    );
    for &workload in &run.args.workloads {
        let mut line = format!("| {workload} |");
        for &driver in drivers {
            let rate = run.rate(Key {
                workload,
                runtime,
                driver,
            });
            let missing = if workload.supports(driver) {
                "FAIL"
            } else {
                "–"
            };
            let _ = write!(line, " {} |", rate.map_or(missing.into(), fig));
        }
        let _ = writeln!(out, "{line}");
    }
}

fn names(drivers: &[Driver]) -> String {
    drivers
        .iter()
        .map(|d| d.name())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Issue 11 item 6's bars on the current-thread runtime, each with its figure.
fn render_bars(out: &mut String, run: &Run, pgbench: Option<f64>) {
    let cpu = |workload, driver| {
        run.cpu(Key {
            workload,
            runtime: Runtime::CurrentThread,
            driver,
        })
    };
    let mut rows: Vec<(String, Option<f64>, f64)> = vec![];
    for &workload in &run.args.workloads {
        let Some(ours) = cpu(workload, Driver::Ferropg) else {
            continue;
        };
        let tp = cpu(workload, Driver::TokioPostgres);
        if matches!(workload, Workload::ClientTiny | Workload::SharedTiny10) {
            // Not one of the bars: round-trip bound as `tiny` is, but a
            // client's driver task against pgbench's one loop compares little.
            rows.push((
                format!("{workload}: ≤ 1.0× tokio-postgres"),
                tp.map(|t| ours / t),
                1.0,
            ));
            continue;
        }
        if workload.round_trip_bound() {
            rows.push((
                format!("{workload}: ≤ 1.0× tokio-postgres"),
                tp.map(|t| ours / t),
                1.0,
            ));
            rows.push((
                format!("{workload}: ≤ 1.1× pgbench"),
                pgbench.map(|p| ours / p),
                1.1,
            ));
            continue;
        }
        rows.push((
            format!("{workload}: ≤ 0.8× tokio-postgres"),
            tp.map(|t| ours / t),
            0.8,
        ));
        if workload.supports(Driver::Sqlx) {
            let sqlx = cpu(workload, Driver::Sqlx);
            rows.push((
                format!("{workload}: ≤ 1.0× sqlx"),
                sqlx.map(|s| ours / s),
                1.0,
            ));
        }
        let absolute = match workload {
            Workload::Mixed1000x10 => Some(("≤ 700 ns/row", 700.0)),
            Workload::CopyIn100k => Some(("≤ 30 ns/row", 30.0)),
            Workload::Executemany10k | Workload::ClientExecutemany10k => {
                Some(("≤ 1 µs/row (pipelined)", 1000.0))
            }
            _ => None,
        };
        if let Some((text, bar)) = absolute {
            rows.push((format!("{workload}: {text}"), Some(ours), bar));
        }
    }
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n### Acceptance bars (issue 11, item 6): ferropg on the current-thread runtime\n\n\
         | bar | measured | met |\n|---|---:|:---:|"
    );
    for (bar, measured, limit) in rows {
        let (text, met) = match measured {
            Some(m) if bar.contains("ns/row") || bar.contains("µs/row") => {
                (format!("{} ns/row", fig(m)), m <= limit)
            }
            Some(m) => (format!("{m:.2}×"), m <= limit),
            None => ("n/a".into(), false),
        };
        let _ = writeln!(
            out,
            "| {bar} | {text} | {} |",
            if met { "yes" } else { "no" }
        );
    }
}

/// Every cell: each round's figure, and the medians of user and system time.
fn render_detail(out: &mut String, run: &Run) {
    let _ = writeln!(
        out,
        "\n### Detail\n\nClient CPU in each round, and the medians of its user and system parts, \
         in the workload's unit.\n\n\
         | workload | runtime | driver | unit | rounds | user | sys |\n|---|---|---|---|---|---:|---:|"
    );
    let mut failures = vec![];
    for &workload in &run.args.workloads {
        for &runtime in &run.args.runtimes {
            for &driver in &run.args.drivers {
                let key = Key {
                    workload,
                    runtime,
                    driver,
                };
                let rounds: Vec<String> = run
                    .cells
                    .get(&key)
                    .map(|cells| {
                        cells
                            .iter()
                            .enumerate()
                            .map(|(i, c)| match c {
                                Ok(s) => fig(per_unit(s, workload, s.cpu.total().as_secs_f64())),
                                Err(e) => {
                                    failures.push(format!(
                                        "{workload} {runtime} {driver} round {}: {e}",
                                        i + 1
                                    ));
                                    "FAIL".into()
                                }
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let part = |sys| run.part(key, sys).map_or("-".into(), fig);
                let _ = writeln!(
                    out,
                    "| {workload} | {runtime} | {driver} | {} | {} | {} | {} |",
                    unit(workload),
                    rounds.join(" · "),
                    part(false),
                    part(true)
                );
            }
        }
    }
    if !failures.is_empty() {
        let _ = writeln!(out, "\nFailures:\n");
        for f in failures {
            let _ = writeln!(out, "- {f}");
        }
    }
}
