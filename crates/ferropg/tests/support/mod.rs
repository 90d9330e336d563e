//! Temporary PostgreSQL servers for ferropg's integration tests (std only).
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
//! Binary discovery is the same as `ferropg.cluster`'s: `$PGINSTALLATION`,
//! then `$PGBIN` (a bin directory or a prefix with `bin/`), then
//! `pg_config --bindir` (only if it has `postgres` and `initdb`), then the
//! newest `/usr/lib/postgresql/*/bin`.
//!
//! Running as root: PostgreSQL refuses to run as root, so the data and socket
//! directories are handed to the `postgres` OS user and `initdb`/`pg_ctl` run
//! as that user via `setpriv --reuid --regid --init-groups` (or
//! `runuser -u`). A `postgres` that is a `#!` script is assumed to drop
//! privileges itself. `$FERROPG_PG_OS_USER` overrides the user (empty: never
//! switch). `psql` runs as the calling user.
//!
//! Clean-up: [`Drop`] stops the server (`pg_ctl stop -m fast`, falling back to
//! `-m immediate`) and removes its directory. Statics are never dropped and a
//! test binary may also be killed, so every server additionally gets a small
//! `sh` watchdog in its own process group that polls the test process with
//! `kill -0` once a second and, when it is gone, runs
//! `pg_ctl stop -m immediate` and removes the directory. This is what cleans up
//! after [`shared`].

#![allow(dead_code)]

pub mod faultproxy;

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long to wait for the server to start or stop.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The watchdog: waits for process `$1` to exit, then stops the server
/// (`$FPG_STOP_CMD`, shell-quoted) and removes `$2`.
const WATCHDOG_SCRIPT: &str = r#"
pid=$1; dir=$2
while kill -0 "$pid" 2>/dev/null; do sleep 1; done
eval "$FPG_STOP_CMD" >/dev/null 2>&1
rm -rf -- "$dir"
"#;

extern "C" {
    fn geteuid() -> u32;
}

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
    base_dir: PathBuf,
    log_file: PathBuf,
    run_as: Vec<String>,
    psql: Option<PathBuf>,
    watchdog: Option<Child>,
    running: bool,
}

fn other_error(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

/// The last `max` bytes of `s` (or a little less, at a char boundary).
fn tail(s: &str, max: usize) -> &str {
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

fn is_exe(path: &Path) -> bool {
    fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn has_server(dir: &Path, need_initdb: bool) -> bool {
    is_exe(&dir.join("postgres"))
        && is_exe(&dir.join("pg_ctl"))
        && (!need_initdb || is_exe(&dir.join("initdb")))
}

/// Finds `name` on `$PATH` or in the usual system directories.
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            [
                "/usr/local/sbin",
                "/usr/local/bin",
                "/usr/sbin",
                "/usr/bin",
                "/sbin",
                "/bin",
            ]
            .iter()
            .map(PathBuf::from),
        )
        .map(|d| d.join(name))
        .find(|p| is_exe(p))
}

/// A `Command` with the `PG*` environment variables removed.
fn command(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn pg_config_bindir(pg_config: &Path) -> Option<PathBuf> {
    let out = command(pg_config).arg("--bindir").output().ok()?;
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !dir.is_empty()).then(|| PathBuf::from(dir))
}

fn version_key(bindir: &Path) -> Vec<u32> {
    let name = bindir
        .parent()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Returns the directory of the PostgreSQL server binaries (see the module
/// documentation for the search order).
pub fn find_bindir() -> io::Result<PathBuf> {
    for var in ["PGINSTALLATION", "PGBIN"] {
        if let Some(value) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            let dir = PathBuf::from(&value);
            for candidate in [dir.clone(), dir.join("bin")] {
                if has_server(&candidate, false) {
                    return Ok(candidate);
                }
            }
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("${var}={value:?} has no postgres and pg_ctl executables (nor its bin/)"),
            ));
        }
    }
    if let Some(dir) = which("pg_config").and_then(|p| pg_config_bindir(&p)) {
        if has_server(&dir, true) {
            return Ok(dir);
        }
    }
    let mut candidates: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|d| has_server(d, true))
        .collect();
    candidates.sort_by_key(|d| version_key(d));
    candidates.pop().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "could not find the PostgreSQL server binaries (postgres, initdb, pg_ctl): set \
             $PGBIN, put pg_config on $PATH, or run scripts/setup.sh",
        )
    })
}

fn find_psql(bindir: &Path) -> Option<PathBuf> {
    let mut candidates = vec![bindir.join("psql")];
    if let Some(dir) = which("pg_config").and_then(|p| pg_config_bindir(&p)) {
        candidates.push(dir.join("psql"));
    }
    let mut versioned: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .collect();
    versioned.sort_by_key(|d| std::cmp::Reverse(version_key(d)));
    candidates.extend(versioned.into_iter().map(|d| d.join("psql")));
    candidates
        .into_iter()
        .find(|p| is_exe(p))
        .or_else(|| which("psql"))
}

/// Quotes `s` for `/bin/sh`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn output_text(out: &Output) -> String {
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    text.trim().to_string()
}

/// `(user name, uid, gid)` of the OS user the server must run as, if any.
fn server_os_user() -> io::Result<Option<(String, u32, u32)>> {
    // SAFETY: geteuid() has no preconditions and cannot fail.
    let euid = unsafe { geteuid() };
    let name = match std::env::var("FERROPG_PG_OS_USER") {
        Ok(name) if name.is_empty() => return Ok(None),
        Ok(name) => name,
        Err(_) if euid == 0 => "postgres".to_string(),
        Err(_) => return Ok(None),
    };
    let id = |flag: &str| -> io::Result<u32> {
        let out = command("id").args([flag, &name]).output()?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| {
                other_error(format!(
                    "PostgreSQL cannot run as root and there is no OS user {name:?} to run it \
                     as (create it, or run scripts/setup.sh)"
                ))
            })
    };
    let (uid, gid) = (id("-u")?, id("-g")?);
    Ok((uid != euid).then_some((name, uid, gid)))
}

fn is_script(path: &Path) -> bool {
    let mut magic = [0u8; 2];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .map(|_| &magic == b"#!")
        .unwrap_or(false)
}

fn privilege_drop_command(name: &str, uid: u32, gid: u32) -> io::Result<Vec<String>> {
    if let Some(setpriv) = which("setpriv") {
        return Ok(vec![
            setpriv.to_string_lossy().into_owned(),
            format!("--reuid={uid}"),
            format!("--regid={gid}"),
            "--init-groups".into(),
            "--".into(),
        ]);
    }
    if let Some(runuser) = which("runuser") {
        return Ok(vec![
            runuser.to_string_lossy().into_owned(),
            "-u".into(),
            name.into(),
            "--".into(),
        ]);
    }
    Err(other_error(format!(
        "running as root, but neither setpriv nor runuser is available to run PostgreSQL as {name}"
    )))
}

/// A short directory for the cluster: `$TMPDIR` if short (and reachable by
/// everyone when the server runs as another user), else `/tmp`.
fn short_tmpdir(need_world_access: bool) -> PathBuf {
    let tmp = std::env::temp_dir();
    if tmp.as_os_str().len() > 60 {
        return PathBuf::from("/tmp");
    }
    if need_world_access {
        let reachable = tmp.ancestors().all(|p| {
            fs::metadata(p)
                .map(|m| m.permissions().mode() & 0o001 != 0)
                .unwrap_or(false)
        });
        if !reachable {
            return PathBuf::from("/tmp");
        }
    }
    tmp
}

fn make_private_dir(parent: &Path) -> io::Result<PathBuf> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    loop {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = parent.join(format!("fpg{}-{n}-{nanos:x}", std::process::id()));
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
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
        let bindir = find_bindir()?;
        let os_user = server_os_user()?;
        let run_as = match &os_user {
            Some((name, uid, gid)) if !is_script(&bindir.join("postgres")) => {
                privilege_drop_command(name, *uid, *gid)?
            }
            _ => Vec::new(),
        };
        let base_dir = make_private_dir(&short_tmpdir(os_user.is_some()))?;
        let mut cluster = TempCluster {
            host: "127.0.0.1".into(),
            port: 0,
            socket_dir: base_dir.clone(),
            user: "postgres".into(),
            data_dir: base_dir.join("data"),
            log_file: base_dir.join("postgres.log"),
            psql: find_psql(&bindir),
            bindir,
            base_dir,
            run_as,
            watchdog: None,
            running: false,
        };
        // From here on, Drop removes the directory if anything fails.
        if let Some((_, uid, gid)) = &os_user {
            std::os::unix::fs::chown(&cluster.base_dir, Some(*uid), Some(*gid))?;
        }
        cluster.initdb()?;
        cluster.start_server(settings)?;
        Ok(cluster)
    }

    /// A hot standby of this (running) server: a copy made with `pg_basebackup -R`
    /// (which writes `standby.signal` and `primary_conninfo`), started on a free
    /// port; it streams from this server over its Unix socket.
    pub fn start_standby(&self) -> io::Result<TempCluster> {
        let os_user = server_os_user()?;
        let base_dir = make_private_dir(&short_tmpdir(os_user.is_some()))?;
        let mut standby = TempCluster {
            host: self.host.clone(),
            port: 0,
            socket_dir: base_dir.clone(),
            user: self.user.clone(),
            data_dir: base_dir.join("data"),
            log_file: base_dir.join("postgres.log"),
            psql: self.psql.clone(),
            bindir: self.bindir.clone(),
            base_dir,
            run_as: self.run_as.clone(),
            watchdog: None,
            running: false,
        };
        if let Some((_, uid, gid)) = &os_user {
            std::os::unix::fs::chown(&standby.base_dir, Some(*uid), Some(*gid))?;
        }
        let socket_dir = self.socket_dir.to_string_lossy().into_owned();
        let port = self.port.to_string();
        let data = standby.data_dir.to_string_lossy().into_owned();
        let words = [
            "-D",
            data.as_str(),
            "-h",
            socket_dir.as_str(),
            "-p",
            port.as_str(),
            "-U",
            self.user.as_str(),
            "-R",
            "-X",
            "stream",
        ];
        let args: Vec<&OsStr> = words.iter().map(OsStr::new).collect();
        let out = standby.run_tool(&self.bindir.join("pg_basebackup"), &args)?;
        if !out.status.success() {
            return Err(other_error(format!(
                "pg_basebackup failed ({}):\n{}",
                out.status,
                output_text(&out)
            )));
        }
        standby.start_server(&[("hot_standby", "on")])?;
        Ok(standby)
    }

    /// Runs a server-side tool (initdb, pg_ctl) as the server's OS user.
    fn run_tool(&self, program: &Path, args: &[&OsStr]) -> io::Result<Output> {
        let mut cmd = match self.run_as.split_first() {
            Some((wrapper, wrapper_args)) => {
                let mut c = command(wrapper);
                c.args(wrapper_args).arg(program);
                c
            }
            None => command(program),
        };
        cmd.args(args)
            .current_dir(&self.base_dir)
            .env("LC_MESSAGES", "C")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| other_error(format!("cannot run {}: {e}", program.display())))
    }

    fn initdb(&self) -> io::Result<()> {
        let initdb = self.bindir.join("initdb");
        let opts = [
            "--username=postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "-N",
        ];
        let data = self.data_dir.as_os_str();
        let out = if is_exe(&initdb) {
            let mut args: Vec<&OsStr> = vec![OsStr::new("-D"), data];
            args.extend(opts.iter().map(OsStr::new));
            self.run_tool(&initdb, &args)?
        } else {
            let opts = opts.join(" ");
            let args: Vec<&OsStr> = ["init", "-s", "-D"]
                .iter()
                .map(OsStr::new)
                .chain([data, OsStr::new("-o"), OsStr::new(&opts)])
                .collect();
            self.run_tool(&self.bindir.join("pg_ctl"), &args)?
        };
        if !out.status.success() {
            return Err(other_error(format!(
                "initdb failed ({}):\n{}",
                out.status,
                output_text(&out)
            )));
        }
        Ok(())
    }

    fn log_since(&self, offset: u64) -> String {
        let text = fs::read(&self.log_file).unwrap_or_default();
        let start = (offset as usize).min(text.len());
        tail(&String::from_utf8_lossy(&text[start..]), 6000).to_string()
    }

    fn pg_ctl(&self, args: &[&str]) -> io::Result<Output> {
        let data = self.data_dir.to_string_lossy().into_owned();
        let mut all: Vec<&OsStr> = Vec::with_capacity(args.len() + 3);
        all.extend(args.iter().map(OsStr::new));
        all.extend([OsStr::new("-D"), OsStr::new(&data), OsStr::new("-s")]);
        self.run_tool(&self.bindir.join("pg_ctl"), &all)
    }

    fn start_server(&mut self, settings: &[(&str, &str)]) -> io::Result<()> {
        let socket_dir = self.socket_dir.to_string_lossy().into_owned();
        let mut base_opts = vec![
            ("listen_addresses", "127.0.0.1"),
            ("unix_socket_directories", socket_dir.as_str()),
            ("fsync", "off"),
        ];
        base_opts.extend_from_slice(settings);
        let log = self.log_file.to_string_lossy().into_owned();
        let timeout = STARTUP_TIMEOUT.as_secs().to_string();
        let attempts = 5;
        for attempt in 1..=attempts {
            let port = free_port()?;
            let mut opts = format!("-p {port}");
            for (name, value) in &base_opts {
                opts.push_str(" -c ");
                opts.push_str(&sh_quote(&format!("{name}={value}")));
            }
            let offset = fs::metadata(&self.log_file).map(|m| m.len()).unwrap_or(0);
            let out = self.pg_ctl(&["start", "-w", "-t", &timeout, "-l", &log, "-o", &opts])?;
            let log_tail = self.log_since(offset);
            if out.status.success() {
                self.port = port;
                self.running = true;
                break;
            }
            if attempt < attempts && log_tail.contains("could not bind") {
                continue; // someone took the port in the meantime
            }
            return Err(other_error(format!(
                "pg_ctl start failed ({}): {}\nserver log ({}):\n{}",
                out.status,
                output_text(&out),
                self.log_file.display(),
                log_tail.trim()
            )));
        }
        self.spawn_watchdog()?;
        self.wait_until_accepting()
    }

    fn stop_command(&self, mode: &str) -> String {
        let mut words: Vec<String> = self.run_as.clone();
        words.push(self.bindir.join("pg_ctl").to_string_lossy().into_owned());
        words.extend(["stop", "-s", "-w", "-m", mode, "-D"].map(String::from));
        words.push(self.data_dir.to_string_lossy().into_owned());
        words
            .iter()
            .map(|w| sh_quote(w))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn spawn_watchdog(&mut self) -> io::Result<()> {
        let child = command("/bin/sh")
            .arg("-c")
            .arg(WATCHDOG_SCRIPT)
            .arg("ferropg-cluster-watchdog")
            .arg(std::process::id().to_string())
            .arg(&self.base_dir)
            .env("FPG_STOP_CMD", self.stop_command("immediate"))
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0) // not hit by a terminal's Ctrl-C
            .spawn()?;
        self.watchdog = Some(child);
        Ok(())
    }

    fn wait_until_accepting(&self) -> io::Result<()> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() > deadline => {
                    return Err(other_error(format!(
                        "server does not accept connections on {addr}: {e}; log: {}",
                        self.log_file.display()
                    )))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
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
    /// newlines, trailing newline removed). Statements run one after another
    /// in one session; any error is returned with psql's message.
    pub fn sql(&self, query: &str) -> io::Result<String> {
        let socket_dir = self.socket_dir.to_string_lossy().into_owned();
        self.sql_as(query, &self.user, &socket_dir, None)
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
        let psql = self
            .psql
            .as_ref()
            .ok_or_else(|| other_error("psql is not installed (needed by TempCluster::sql)"))?;
        let mut cmd = command(psql);
        cmd.args([
            "-X",
            "-A",
            "-t",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            host,
            "-p",
        ])
        .arg(self.port.to_string())
        .args(["-U", user, "-d", "postgres", "-f", "-"])
        .env("LC_ALL", "C")
        .env("PGCLIENTENCODING", "UTF8")
        .env("PGCONNECT_TIMEOUT", "10")
        .env("PGSSLMODE", "disable")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        if let Some(pw) = password {
            cmd.env("PGPASSWORD", pw);
        }
        let mut child = cmd.spawn()?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let query = query.to_string();
        let writer = std::thread::spawn(move || stdin.write_all(query.as_bytes()));
        let out = child.wait_with_output()?;
        // A write error only means psql exited early; its status says why.
        let _ = writer.join();
        if !out.status.success() {
            return Err(other_error(format!(
                "psql failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text.trim_end_matches('\n').to_string())
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
        if let Some((_, uid, gid)) = server_os_user()? {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
        }
        Ok(())
    }

    /// Removes all records from `pg_hba.conf` (applied by
    /// [`TempCluster::reload`]).
    pub fn reset_hba(&self) -> io::Result<()> {
        fs::write(self.hba_file(), "")
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
        let mut line = format!("{kind} {database} {user}");
        if kind != "local" {
            line.push(' ');
            line.push_str(address.unwrap_or("127.0.0.1/32"));
        }
        line.push(' ');
        line.push_str(auth_method);
        line.push('\n');
        fs::OpenOptions::new()
            .append(true)
            .open(self.hba_file())?
            .write_all(line.as_bytes())
    }

    /// Reloads the configuration (`pg_ctl reload`) and waits until the
    /// server has applied it (`pg_conf_load_time()` changed), so that new
    /// connections see new `pg_hba.conf` rules. If the new rules lock
    /// `postgres` out of the socket, a short pause is used instead.
    pub fn reload(&self) -> io::Result<()> {
        let load_time = || self.sql("select pg_conf_load_time()").ok();
        let before = load_time();
        let out = self.pg_ctl(&["reload"])?;
        if !out.status.success() {
            return Err(other_error(format!(
                "pg_ctl reload failed: {}",
                output_text(&out)
            )));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match (before.as_ref(), load_time()) {
                (Some(b), Some(now)) if &now == b => std::thread::sleep(Duration::from_millis(20)),
                (Some(_), Some(_)) => return Ok(()),
                _ => {
                    std::thread::sleep(Duration::from_millis(300));
                    return Ok(());
                }
            }
        }
        Err(other_error(
            "the server did not reload its configuration within 10 s",
        ))
    }

    /// Stops the server (`-m fast`, then `-m immediate`); idempotent. The
    /// directory is removed on drop.
    pub fn stop(&mut self) -> io::Result<()> {
        if self.running {
            let mut result = Ok(());
            for mode in ["fast", "immediate"] {
                let timeout = STARTUP_TIMEOUT.as_secs().to_string();
                match self.pg_ctl(&["stop", "-w", "-t", &timeout, "-m", mode]) {
                    Ok(out) if out.status.success() => {
                        result = Ok(());
                        break;
                    }
                    Ok(out) => result = Err(other_error(output_text(&out))),
                    Err(e) => result = Err(e),
                }
            }
            result?;
            self.running = false;
        }
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        Ok(())
    }
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!(
                "support::TempCluster: stopping {}: {e}",
                self.data_dir.display()
            );
        }
        let _ = fs::remove_dir_all(&self.base_dir);
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
