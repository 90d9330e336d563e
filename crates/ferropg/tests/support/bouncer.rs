//! A transaction-mode pgbouncer in front of a [`TempCluster`], for the tests of
//! the Rust face behind a pooler. The project's one pgbouncer helper is
//! `tests/pgbouncer.py` (it writes the config, runs pgbouncer as the cluster's OS
//! user, and opens every server connection so that consecutive transactions of
//! one client alternate between two server sessions); this runs it in a Python
//! process that lives until our end of its stdin closes.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use super::TempCluster;

const DRIVER: &str = r#"
import sys
sys.path.insert(0, sys.argv[1])
from pgbouncer import PgBouncer

class Cluster:
    pass

c = Cluster()
c.host, c.port, c.user, c.socket_dir, c.bindir = sys.argv[2], int(sys.argv[3]), *sys.argv[4:7]
c.database = "postgres"
with PgBouncer(c) as bouncer:
    print(bouncer.port, flush=True)
    sys.stdin.read()
"#;

/// A running pgbouncer: `pool_mode = transaction`, two server connections used
/// round robin. Stopped when dropped.
pub struct Bouncer {
    child: Child,
    /// Where clients connect (TCP, `127.0.0.1`).
    pub port: u16,
}

impl Bouncer {
    /// Starts one in front of `cluster`. Panics if it cannot.
    pub fn start(cluster: &TempCluster) -> Bouncer {
        let python = std::env::var("FERROPG_PYTHON").unwrap_or_else(|_| "python3".into());
        let tests = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests");
        let mut child = Command::new(python)
            .arg("-c")
            .arg(DRIVER)
            .arg(tests)
            .arg(&cluster.host)
            .arg(cluster.port.to_string())
            .arg(&cluster.user)
            .arg(&cluster.socket_dir)
            .arg(&cluster.bindir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run tests/pgbouncer.py");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("piped"))
            .read_line(&mut line)
            .expect("read pgbouncer's port");
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("pgbouncer did not start: {line:?}"));
        Bouncer { child, port }
    }

    /// A client configuration that reaches the cluster through pgbouncer.
    pub fn config(&self) -> ferropg::Config {
        let mut c = ferropg::Config::new();
        c.host("127.0.0.1")
            .port(self.port)
            .user("postgres")
            .dbname("postgres")
            .sslmode("disable");
        c
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        // Closing its stdin ends the driver, which stops pgbouncer.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}
