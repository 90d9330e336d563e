//! The crate's examples (`examples/rust/`), each run to its end against a real
//! server: each checks its own results and exits non-zero if one is wrong.
//! `cargo test` builds the examples before it runs the tests.

mod support;

use std::path::PathBuf;
use std::process::Command;

const EXAMPLES: &[&str] = &[
    "tour",
    "web_pool",
    "stream_large",
    "copy",
    "listen",
    "retry_transactions",
];

/// Where cargo put the example binaries: `examples/` beside this test's `deps/`.
fn examples_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let deps = exe.parent().expect("deps directory");
    deps.parent().expect("profile directory").join("examples")
}

#[test]
fn every_example_runs_to_its_end() {
    let dsn = support::shared().dsn();
    let dir = examples_dir();
    for name in EXAMPLES {
        let binary = dir.join(name);
        assert!(
            binary.exists(),
            "{} is missing: run `cargo test` (which builds the examples) or `cargo build --examples`",
            binary.display()
        );
        let out = Command::new(&binary)
            .env("PGDSN", &dsn)
            .output()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            out.status.success(),
            "{name} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
