//! The parent process: a server (a temporary cluster, or `--dsn`), the fixtures,
//! then rounds of cells, each cell a worker process of its own, the drivers
//! interleaved (their order rotating from round to round); pgbench once per round.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use crate::args::Args;
use crate::cpu::Usage;
use crate::drivers::ferropg::config;
use crate::drivers::Result;
use crate::report::{Cell, Key, Run};
use crate::spec::{self, Workload};
use crate::support::TempCluster;
use crate::target::Target;
use crate::worker;

/// The cluster helper, found the way `support` finds it.
const CLUSTER_PY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../python/ferropg/cluster.py"
);

/// Server settings of the temporary cluster: nothing durable, nothing in the
/// background (the writes go to UNLOGGED tables anyway).
const SETTINGS: &[(&str, &str)] = &[
    ("synchronous_commit", "off"),
    ("full_page_writes", "off"),
    ("autovacuum", "off"),
    ("jit", "off"),
];

/// Runs the whole benchmark; the collected results.
pub fn run(args: &Args) -> Result<Run> {
    let started = Instant::now();
    let log = |msg: &str| eprintln!("[{:7.1}s] {msg}", started.elapsed().as_secs_f64());
    // Held until the end: dropping it stops the server.
    let cluster = match &args.dsn {
        Some(_) => None,
        None => {
            log("starting a temporary cluster");
            Some(TempCluster::start_with(SETTINGS)?)
        }
    };
    let dsn = match (&args.dsn, &cluster) {
        (Some(dsn), _) => dsn.clone(),
        (None, Some(c)) if args.tcp => {
            format!("postgresql://{}@{}:{}/postgres", c.user, c.host, c.port)
        }
        (None, Some(c)) => format!(
            "postgresql://{}@/postgres?host={}&port={}",
            c.user,
            c.socket_dir.display(),
            c.port
        ),
        (None, None) => unreachable!("a cluster is started when no --dsn is given"),
    };
    let target = Target::from_dsn(&dsn)?;
    log(&format!("server: {dsn}; loading fixtures"));
    let server_version = load_fixtures(&target)?;
    let pgbench = match args.pgbench_queries {
        Some(_) => find_pgbench(cluster.as_ref().map(|c| c.bindir.as_path())),
        None => None,
    };
    let mut run = Run::new(args, &target, server_version);
    for round in 1..=args.rounds {
        if let (Some(exe), Some(queries)) = (&pgbench, args.pgbench_queries) {
            let us = run_pgbench(exe, &dsn, queries);
            match &us {
                Ok(us) => log(&format!("round {round}: pgbench {us:.2} µs CPU/query")),
                Err(e) => log(&format!("round {round}: pgbench failed: {e}")),
            }
            run.pgbench.push(us.ok());
        }
        // The drivers' order rotates from round to round, so that a burst of load
        // on the machine, or the warmth one cell leaves, does not favour one driver.
        let mut drivers = args.drivers.clone();
        let turn = (round - 1) % drivers.len();
        drivers.rotate_left(turn);
        for &workload in &args.workloads {
            for &runtime in &args.runtimes {
                for &driver in &drivers {
                    if !workload.supports(driver) {
                        continue;
                    }
                    let cell = worker_cell(args, &dsn, driver, workload, runtime);
                    match &cell {
                        Ok(s) => log(&format!(
                            "r{round} {workload} {runtime} {driver}: {:.2} µs CPU/op, {:.0} ops/s",
                            s.cpu.total().as_secs_f64() * 1e6 / s.ops as f64,
                            s.ops as f64 / s.wall.as_secs_f64()
                        )),
                        Err(e) => log(&format!(
                            "r{round} {workload} {runtime} {driver}: FAILED {e}"
                        )),
                    }
                    run.cells
                        .entry(Key {
                            workload,
                            runtime,
                            driver,
                        })
                        .or_default()
                        .push(cell);
                }
            }
        }
    }
    log("done");
    Ok(run)
}

/// Creates the tables; the server's version.
fn load_fixtures(target: &Target) -> Result<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut conn = ferropg::connect(&config(target)).await?;
        conn.batch_execute(spec::FIXTURES).await?;
        conn.batch_execute(spec::FIXTURES_VACUUM).await?;
        let version = conn.server_version().unwrap_or("?").to_owned();
        conn.close().await?;
        Ok(version)
    })
}

/// One cell in a worker process (this binary with `--worker`): its sample, or why
/// it failed (the worker's last line of stderr).
fn worker_cell(
    args: &Args,
    dsn: &str,
    driver: spec::Driver,
    workload: Workload,
    runtime: spec::Runtime,
) -> Cell {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.arg("--worker")
        .args([driver.name(), workload.name(), runtime.name()])
        .args(["--dsn", dsn]);
    if args.quick {
        cmd.arg("--quick");
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start a worker: {e}"))?;
    let pid = child.id();
    // Waiting on a thread of its own lets this one give up after the timeout.
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(args.cell_timeout) {
        Ok(output) => output,
        Err(_) => {
            // SAFETY: kill(2) on the pid of our own child, which has not been
            // reaped (its waiter has not returned), so the pid is still its.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            let _ = rx.recv();
            return Err(format!("timed out after {:?}", args.cell_timeout));
        }
    }
    .map_err(|e| format!("waiting for the worker: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    match stdout.lines().last().and_then(worker::parse_line) {
        Some(sample) if output.status.success() => Ok(sample),
        _ => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let why = stderr.lines().last().unwrap_or("no output").trim();
            Err(format!("{}: {}", output.status, truncate(why, 300)))
        }
    }
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// pgbench next to the server binaries (`cluster.py --print-bindir`), else on `PATH`.
fn find_pgbench(bindir: Option<&Path>) -> Option<PathBuf> {
    let bindir = bindir.map(Path::to_path_buf).or_else(|| {
        let python = std::env::var("FERROPG_PYTHON").unwrap_or_else(|_| "python3".into());
        let out = Command::new(python)
            .args([CLUSTER_PY, "--print-bindir"])
            .output()
            .ok()?;
        let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (out.status.success() && !dir.is_empty()).then(|| PathBuf::from(dir))
    });
    let beside = bindir.map(|d| d.join("pgbench")).filter(|p| p.is_file());
    beside.or_else(|| {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join("pgbench"))
                .find(|p| p.is_file())
        })
    })
}

/// `pgbench -n -M prepared -c 1 -j 1 -t N` on `SELECT :x::int4` (the tiny query, as
/// `benches/run.py` runs it): its client CPU per query in µs, from
/// `getrusage(RUSAGE_CHILDREN)` around it (connection setup included).
fn run_pgbench(exe: &Path, dsn: &str, queries: u64) -> Result<f64> {
    let script = std::env::temp_dir().join(format!("ferropg-bench-{}.sql", std::process::id()));
    std::fs::File::create(&script)?.write_all(b"\\set x random(1, 1000000)\nSELECT :x::int4;\n")?;
    let before = Usage::children();
    let output = Command::new(exe)
        .args(["-n", "-M", "prepared", "-c", "1", "-j", "1", "-t"])
        .arg(queries.to_string())
        .arg("-f")
        .arg(&script)
        .arg(dsn)
        .stdin(Stdio::null())
        .output();
    let cpu = Usage::children().since(before);
    let _ = std::fs::remove_file(&script);
    let output = output?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let done = format!("number of transactions actually processed: {queries}/{queries}");
    if !output.status.success() || !stdout.contains(&done) {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!("pgbench: {} {}", output.status, stderr.trim()).into());
    }
    Ok(cpu.total().as_secs_f64() * 1e6 / queries as f64)
}
