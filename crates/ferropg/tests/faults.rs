//! Fault injection on the Rust face: the backend killed by `pg_terminate_backend`
//! and by SIGKILL in every phase of a client's work, and links broken by a fault
//! proxy (black hole, RST, half close, one byte at a time).
//!
//! The kills run one after another on a cluster of their own (a SIGKILL makes the
//! server restart every session, so no other test may share it). After each one the
//! call must fail promptly with an error that says the connection is gone, the
//! committed row must be there and nothing the killed work wrote.

mod support;

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ferropg::{Config, Connection, Error, ErrorKind};
use support::faultproxy::{FaultProxy, Mode};
use support::TempCluster;

/// A call must hear of the kill well within this.
const PROMPT: Duration = Duration::from_secs(8);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kill {
    Terminate,
    SigKill,
}

fn config_for(host: &str, port: u16, user: &str) -> Config {
    let mut c = Config::new();
    c.host(host)
        .port(port)
        .user(user)
        .dbname("postgres")
        .sslmode("disable");
    c
}

struct Server {
    pg: TempCluster,
}

impl Server {
    fn config(&self) -> Config {
        config_for(&self.pg.host, self.pg.port, &self.pg.user)
    }

    /// A connection, waiting out a crash restart.
    async fn connect(&self) -> Connection {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match ferropg::connect(&self.config()).await {
                Ok(mut c) => {
                    if c.query_one("SELECT 1", &[]).await.is_ok() {
                        return c;
                    }
                }
                Err(e) if Instant::now() > deadline => panic!("server not back: {e}"),
                Err(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_for_state(&self, pid: i32, predicate: &str) {
        let mut admin = self.connect().await;
        let sql = format!("SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND {predicate}");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let n: i64 = admin.query_one(sql.as_str(), &[&pid]).await.unwrap().get(0);
            if n > 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "backend {pid} never reached {predicate}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn kill(&self, how: Kill, pid: i32) {
        match how {
            Kill::Terminate => {
                let mut admin = self.connect().await;
                admin
                    .execute("SELECT pg_terminate_backend($1)", &[&pid])
                    .await
                    .unwrap();
            }
            Kill::SigKill => {
                let mut bystander = self.connect().await;
                let status = std::process::Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status()
                    .unwrap();
                assert!(status.success());
                // The server ends every session, then restarts: wait for it to end
                // this one, so that nothing later meets a server about to do so.
                let deadline = Instant::now() + Duration::from_secs(30);
                while bystander.query_one("SELECT 1", &[]).await.is_ok() {
                    assert!(Instant::now() < deadline, "the server never restarted");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
}

/// Runs `call` while the backend `pid` is killed once it matches `predicate`;
/// returns the error the call ended with.
async fn killed_during<T, F>(
    server: &Server,
    how: Kill,
    pid: i32,
    predicate: &str,
    call: F,
) -> Error
where
    F: Future<Output = Result<T, Error>>,
{
    let killer = async {
        server.wait_for_state(pid, predicate).await;
        server.kill(how, pid).await;
        Instant::now()
    };
    let call = async {
        let r = call.await;
        (r, Instant::now())
    };
    let ((result, returned), killed) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(call, killer)
    })
    .await
    .expect("the call and the kill did not end");
    let err = match result {
        Ok(_) => panic!("{predicate}: the call succeeded although its backend was killed"),
        Err(e) => e,
    };
    assert!(
        returned.saturating_duration_since(killed) < PROMPT,
        "{predicate}: no answer within {PROMPT:?} of the kill"
    );
    assert!(
        err.is_closed(),
        "{predicate}: {err} does not say the connection is gone"
    );
    err
}

async fn phase(server: &Server, how: Kill, name: &str) {
    let mut setup = server.connect().await;
    setup
        .batch_execute("DROP TABLE IF EXISTS t; CREATE TABLE t (x int); INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    let mut conn = server.connect().await;
    let pid = conn.backend_pid();
    match name {
        "prepare" | "bind" => {
            let stmt = if name == "bind" {
                Some(conn.prepare("SELECT * FROM t").await.unwrap())
            } else {
                None
            };
            let mut locker = server.connect().await;
            locker
                .batch_execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
                .await
                .unwrap();
            let lock = "wait_event_type = 'Lock'";
            match stmt {
                Some(stmt) => {
                    killed_during(server, how, pid, lock, conn.query(&stmt, &[])).await;
                }
                None => {
                    killed_during(server, how, pid, lock, conn.prepare("SELECT * FROM t")).await;
                }
            }
        }
        "rows" => {
            let call = async {
                let mut stream = conn
                    .query_stream("SELECT g FROM generate_series(1, 200000000) g", &[])
                    .await?;
                while let Some(row) = stream.next().await {
                    row?;
                }
                Ok::<_, Error>(())
            };
            killed_during(server, how, pid, "state = 'active'", call).await;
        }
        "transaction" => {
            let call = async {
                let mut tx = conn.transaction().await?;
                tx.execute("INSERT INTO t VALUES (2)", &[]).await?;
                tx.execute("SELECT pg_sleep(30)", &[]).await?;
                tx.commit().await
            };
            killed_during(server, how, pid, "query LIKE '%pg_sleep(30)%'", call).await;
        }
        "copy-in" => {
            let call = async {
                let mut copy = conn.copy_in("COPY t FROM STDIN").await?;
                for i in 100.. {
                    copy.send(format!("{i}\n")).await?;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                copy.finish().await
            };
            killed_during(server, how, pid, "query LIKE 'COPY%'", call).await;
        }
        "copy-out" => {
            let call = async {
                let mut copy = conn
                    .copy_out("COPY (SELECT generate_series(1, 200000000)) TO STDOUT")
                    .await?;
                while let Some(chunk) = copy.next().await {
                    chunk?;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Ok::<_, Error>(())
            };
            killed_during(server, how, pid, "query LIKE 'COPY%'", call).await;
        }
        "cursor" => {
            let call = async {
                let mut tx = conn.transaction().await?;
                tx.execute("INSERT INTO t VALUES (3)", &[]).await?;
                let mut portal = tx
                    .bind(
                        "SELECT g, pg_sleep(0.5) FROM generate_series(1, 100) g",
                        &[],
                    )
                    .await?;
                portal.fetch(50).await?;
                Ok::<_, Error>(())
            };
            killed_during(server, how, pid, "query LIKE '%pg_sleep(0.5)%'", call).await;
        }
        other => panic!("no phase {other}"),
    }
    assert!(
        conn.is_closed(),
        "{name}: the connection does not say it is closed"
    );
    let err = conn.query_one("SELECT 1", &[]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed, "{name}: {err}");
    let mut check = server.connect().await;
    let rows: Vec<i32> = check
        .query("SELECT x FROM t ORDER BY x", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(rows, [1], "{name}: committed rows only");
}

/// The PID of a backend of `user` that is still authenticating.
fn authenticating_backend(user: &str) -> Option<i32> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(title) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let title = String::from_utf8_lossy(&title);
        if title.starts_with(&format!("postgres: {user} ")) && title.contains("authentication") {
            return Some(pid);
        }
    }
    None
}

async fn startup(server: &Server, how: Kill) {
    let proxy = FaultProxy::start(SocketAddr::from(([127, 0, 0, 1], server.pg.port)));
    proxy.set_mode(Mode::Delay(Duration::from_millis(300)));
    let mut config = config_for("127.0.0.1", proxy.addr().port(), "victim");
    config.password("pw");
    let killer = async {
        let deadline = Instant::now() + Duration::from_secs(10);
        let pid = loop {
            if let Some(pid) = authenticating_backend("victim") {
                break pid;
            }
            assert!(Instant::now() < deadline, "the backend never started");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        server.kill(how, pid).await;
        Instant::now()
    };
    let call = async {
        let r = ferropg::connect(&config).await;
        (r, Instant::now())
    };
    let ((result, returned), killed) = tokio::join!(call, killer);
    assert!(
        result.is_err(),
        "connect() succeeded although its backend was killed"
    );
    assert!(returned.saturating_duration_since(killed) < PROMPT);
    proxy.set_mode(Mode::Pass);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_killed_in_every_phase() {
    let pg = TempCluster::start().expect("cluster");
    pg.sql("SET password_encryption = 'scram-sha-256'; CREATE ROLE victim LOGIN PASSWORD 'pw'")
        .unwrap();
    // The password role first: its backends wait for the client while they
    // authenticate, where the startup kill lands.
    pg.reset_hba().unwrap();
    pg.add_hba_entry("local", "all", "all", None, "trust")
        .unwrap();
    pg.add_hba_entry("host", "all", "victim", None, "scram-sha-256")
        .unwrap();
    pg.add_hba_entry("host", "all", "all", None, "trust")
        .unwrap();
    pg.reload().unwrap();
    let server = Server { pg };
    for how in [Kill::Terminate, Kill::SigKill] {
        for name in [
            "prepare",
            "bind",
            "rows",
            "transaction",
            "copy-in",
            "copy-out",
            "cursor",
        ] {
            phase(&server, how, name).await;
        }
        startup(&server, how).await;
    }
}

fn proxied(proxy: &FaultProxy) -> Config {
    let pg = support::shared();
    config_for("127.0.0.1", proxy.addr().port(), &pg.user)
}

fn shared_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], support::shared().port))
}

#[tokio::test]
async fn a_blackholed_link_cannot_hold_a_call_past_its_timeout() {
    let proxy = FaultProxy::start(shared_addr());
    let mut conn = ferropg::connect(&proxied(&proxy)).await.unwrap();
    conn.set_timeout(Some(Duration::from_secs(1)));
    let one: i32 = conn.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    proxy.set_mode(Mode::Blackhole);
    for _ in 0..2 {
        let started = Instant::now();
        let err = conn.query_one("SELECT 1", &[]).await.unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::Timeout | ErrorKind::Closed),
            "{err}"
        );
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{:?}",
            started.elapsed()
        );
    }
    proxy.set_mode(Mode::Pass);
    // A new connection through the healed link works.
    let mut fresh = ferropg::connect(&proxied(&proxy)).await.unwrap();
    let two: i32 = fresh.query_one("SELECT 2", &[]).await.unwrap().get(0);
    assert_eq!(two, 2);
}

#[tokio::test]
async fn replies_one_byte_at_a_time_decode_the_same() {
    let proxy = FaultProxy::start(shared_addr());
    proxy.set_mode(Mode::Bytewise);
    let mut conn = ferropg::connect(&proxied(&proxy)).await.unwrap();
    let rows = conn
        .query(
            "SELECT g, repeat('x', g) FROM generate_series(1, 300) g",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 300);
    for (i, row) in rows.iter().enumerate() {
        let g: i32 = row.get(0);
        let s: String = row.get(1);
        assert_eq!(g as usize, i + 1);
        assert_eq!(s.len(), i + 1);
    }
}

#[tokio::test]
async fn a_link_cut_or_half_closed_fails_the_call_at_once() {
    for cut in ["reset", "half-close"] {
        let proxy = FaultProxy::start(shared_addr());
        let mut conn = ferropg::connect(&proxied(&proxy)).await.unwrap();
        let call = conn.query_one("SELECT pg_sleep(30)", &[]);
        let cutter = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if cut == "reset" {
                proxy.reset();
            } else {
                proxy.half_close();
            }
            Instant::now()
        };
        let (result, at) = tokio::join!(call, cutter);
        let err = result.unwrap_err();
        assert!(at.elapsed() < PROMPT, "{cut}");
        assert!(err.is_closed(), "{cut}: {err}");
        assert!(conn.is_closed(), "{cut}");
    }
}
