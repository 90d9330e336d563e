//! Temporary PostgreSQL servers for ferropg's integration tests.
//!
//! Use it from an integration test with `mod support;` (this file is
//! `tests/support/mod.rs`, which Cargo does not build as a test of its own):
//!
//! ```ignore
//! mod support;
//!
//! #[test]
//! fn answers() {
//!     let pg = support::shared(); // one server per test binary
//!     assert_eq!(pg.sql("select 1").unwrap(), "1");
//! }
//! ```
//!
//! Tests that edit `pg_hba.conf` or stop the server should start their own
//! [`TempCluster`] instead of using [`shared`].
//!
//! The project has one helper that finds the PostgreSQL binaries and runs
//! clusters, `python/ferropg/cluster.py` (standard library only; the Python
//! tests and `scripts/setup.sh` use it too). Each [`TempCluster`] is one
//! `cluster.py --serve` process, driven over its stdin and stdout; its rules
//! (binary discovery, running the server as the `postgres` OS user when root,
//! clean-up) are documented there. The interpreter is `$FERROPG_PYTHON`, else
//! `python3`. When this process ends, however it ends, the helper's stdin
//! closes and it stops the server and removes its directories.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

pub mod bouncer;
pub mod certs;
pub mod faultproxy;
pub mod listener;
pub mod rng;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// The helper script, from this crate's directory.
const HELPER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../python/ferropg/cluster.py"
);

/// A throw-away PostgreSQL server listening on 127.0.0.1 and on a unix socket
/// in a private directory; stopped and removed on drop.
pub struct TempCluster {
    /// TCP address the server listens on (`127.0.0.1`).
    pub host: String,
    /// TCP port (picked free at start).
    pub port: u16,
    /// Directory of the unix socket `.s.PGSQL.<port>`.
    pub socket_dir: PathBuf,
    /// Bootstrap superuser (`postgres`, trusted without a password).
    pub user: String,
    /// The cluster's data directory (contains `pg_hba.conf`).
    pub data_dir: PathBuf,
    /// Directory of the PostgreSQL binaries in use.
    pub bindir: PathBuf,
    log_file: PathBuf,
    helper: Mutex<Helper>,
    child: Child,
}

/// The helper's pipes: requests go in, one reply line comes back for each.
struct Helper {
    requests: Option<ChildStdin>,
    replies: BufReader<ChildStdout>,
}

fn other_error(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

fn escape(field: &str) -> String {
    field
        .replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
}

fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

impl Helper {
    /// Reads one line of fields.
    fn read_line(&mut self) -> io::Result<Option<Vec<String>>> {
        let mut line = String::new();
        if self.replies.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let line = line.trim_end_matches('\n');
        Ok(Some(line.split('\t').map(unescape).collect()))
    }

    fn request(&mut self, fields: &[&str]) -> io::Result<String> {
        let requests = self
            .requests
            .as_mut()
            .ok_or_else(|| other_error("the cluster helper was shut down"))?;
        let line: Vec<String> = fields.iter().map(|f| escape(f)).collect();
        writeln!(requests, "{}", line.join("\t"))?;
        requests.flush()?;
        match self.read_line()? {
            Some(reply) if reply[0] == "ok" => Ok(reply.get(1).cloned().unwrap_or_default()),
            Some(reply) if reply[0] == "err" => {
                Err(other_error(reply.get(1).cloned().unwrap_or_default()))
            }
            other => Err(other_error(format!(
                "the cluster helper answered {other:?}"
            ))),
        }
    }
}

impl TempCluster {
    /// Runs initdb in a new temporary directory and starts a server on a free
    /// port; returns once it accepts connections.
    pub fn start() -> io::Result<Self> {
        Self::start_with(&[])
    }

    /// Like [`TempCluster::start`], with extra server settings
    /// (`-c name=value`), e.g. `&[("ssl", "on")]`.
    pub fn start_with(settings: &[(&str, &str)]) -> io::Result<Self> {
        Self::spawn(settings, None)
    }

    /// A hot standby of this (running) server: a copy made with `pg_basebackup`
    /// that streams from this server over its Unix socket, started on a free port.
    pub fn start_standby(&self) -> io::Result<TempCluster> {
        let primary = format!("{}:{}", self.socket_dir.display(), self.port);
        Self::spawn(&[], Some(&primary))
    }

    fn spawn(settings: &[(&str, &str)], standby_of: Option<&str>) -> io::Result<Self> {
        let python = std::env::var("FERROPG_PYTHON").unwrap_or_else(|_| "python3".into());
        let mut cmd = Command::new(&python);
        cmd.arg(HELPER).arg("--serve");
        for (name, value) in settings {
            cmd.arg("-c").arg(format!("{name}={value}"));
        }
        if let Some(primary) = standby_of {
            cmd.arg("--standby-of").arg(primary);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| other_error(format!("cannot run {python} {HELPER}: {e}")))?;
        let mut helper = Helper {
            requests: child.stdin.take(),
            replies: BufReader::new(child.stdout.take().expect("piped stdout")),
        };
        let ready = match helper.read_line()? {
            Some(fields) if fields.len() == 8 && fields[0] == "ready" => fields,
            other => {
                let mut why = String::new();
                if let Some(mut stderr) = child.stderr.take() {
                    let _ = stderr.read_to_string(&mut why);
                }
                let _ = child.wait();
                return Err(other_error(format!(
                    "the cluster helper did not start a server ({other:?}): {}",
                    why.trim()
                )));
            }
        };
        let port = ready[2]
            .parse()
            .map_err(|_| other_error(format!("bad port from the helper: {:?}", ready[2])))?;
        Ok(TempCluster {
            host: ready[1].clone(),
            port,
            socket_dir: PathBuf::from(&ready[3]),
            data_dir: PathBuf::from(&ready[4]),
            bindir: PathBuf::from(&ready[5]),
            log_file: PathBuf::from(&ready[6]),
            user: ready[7].clone(),
            helper: Mutex::new(helper),
            child,
        })
    }

    fn request(&self, fields: &[&str]) -> io::Result<String> {
        self.helper
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .request(fields)
    }

    /// `postgresql://postgres@127.0.0.1:<port>/postgres`.
    pub fn dsn(&self) -> String {
        format!(
            "postgresql://{}@{}:{}/postgres",
            self.user, self.host, self.port
        )
    }

    /// The server log written by `pg_ctl -l`.
    pub fn log_file(&self) -> &Path {
        &self.log_file
    }

    /// Path of the cluster's `pg_hba.conf`.
    pub fn hba_file(&self) -> PathBuf {
        self.data_dir.join("pg_hba.conf")
    }

    /// Runs SQL with `psql` over the unix socket as `postgres` and returns the
    /// unaligned, tuples-only output (columns joined by `|`, rows by
    /// newlines). Statements run one after another in one session; any error
    /// is returned with psql's message.
    pub fn sql(&self, query: &str) -> io::Result<String> {
        self.request(&["sql", query])
    }

    /// Like [`TempCluster::sql`], connecting as `user` to `host` (a socket
    /// directory, or `127.0.0.1` for TCP) with an optional password; use it
    /// to test authentication rules.
    pub fn sql_as(
        &self,
        query: &str,
        user: &str,
        host: &str,
        password: Option<&str>,
    ) -> io::Result<String> {
        self.request(&["sql", query, user, host, password.unwrap_or("")])
    }

    /// `server_version_num` of the running server, e.g. `150018`.
    pub fn server_version_num(&self) -> io::Result<u32> {
        let text = self.sql("show server_version_num")?;
        text.trim()
            .parse()
            .map_err(|_| other_error(format!("unexpected server_version_num {text:?}")))
    }

    /// Hands `path` to the OS user the server runs as (when the tests run as
    /// root), so that the server may read it, a private key included.
    pub fn give_to_server(&self, path: &Path) -> io::Result<()> {
        self.request(&["give", &path.to_string_lossy()]).map(drop)
    }

    /// Removes all records from `pg_hba.conf` (applied by
    /// [`TempCluster::reload`]).
    pub fn reset_hba(&self) -> io::Result<()> {
        self.request(&["reset_hba"]).map(drop)
    }

    /// Appends a record to `pg_hba.conf`; the first matching record wins.
    /// `kind` is `local`, `host`, `hostssl`, ...; `address` is ignored for
    /// `local` and defaults to `127.0.0.1/32` otherwise. Apply with
    /// [`TempCluster::reload`].
    pub fn add_hba_entry(
        &self,
        kind: &str,
        database: &str,
        user: &str,
        address: Option<&str>,
        auth_method: &str,
    ) -> io::Result<()> {
        let address = address.unwrap_or("");
        self.request(&["add_hba", kind, database, user, address, auth_method])
            .map(drop)
    }

    /// Reloads the configuration and waits until the server has applied it, so
    /// that new connections see new `pg_hba.conf` rules.
    pub fn reload(&self) -> io::Result<()> {
        self.request(&["reload"]).map(drop)
    }

    /// Stops the server; idempotent. The directory is removed on drop.
    pub fn stop(&mut self) -> io::Result<()> {
        self.request(&["stop"]).map(drop)
    }
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        // The end of its requests tells the helper to stop the server and remove
        // the directories; waiting for it keeps servers from piling up.
        let helper = self.helper.get_mut().unwrap_or_else(|e| e.into_inner());
        helper.requests.take();
        if let Err(e) = self.child.wait() {
            eprintln!("support::TempCluster: waiting for the helper: {e}");
        }
    }
}

/// A client configuration for the shared cluster's `postgres` database.
pub fn shared_config() -> ferropg::Config {
    let pg = shared();
    let mut c = ferropg::Config::new();
    c.host(&pg.host)
        .port(pg.port)
        .user(&pg.user)
        .dbname("postgres");
    c
}

/// One cluster per test binary, started on first use and shared by all its
/// tests (so do not edit its HBA rules or stop it). It is never dropped; its
/// watchdog stops the server and removes its directory after the test
/// process exits. Panics if the cluster cannot be started.
pub fn shared() -> &'static TempCluster {
    static SHARED: OnceLock<TempCluster> = OnceLock::new();
    SHARED.get_or_init(|| {
        TempCluster::start().unwrap_or_else(|e| panic!("cannot start the test cluster: {e}"))
    })
}
