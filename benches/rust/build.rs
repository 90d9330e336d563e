//! Tells the report which versions of the peers it measured: the ones Cargo.lock
//! resolved (`BENCH_PEERS`, e.g. `tokio-postgres 0.7.13, sqlx 0.8.6`).

use std::fs;
use std::path::Path;

fn main() {
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = fs::read_to_string(&lock).unwrap_or_default();
    let version = |name: &str| {
        let key = format!("name = \"{name}\"\nversion = \"");
        text.find(&key)
            .map(|at| {
                let rest = &text[at + key.len()..];
                rest[..rest.find('"').unwrap_or(0)].to_owned()
            })
            .unwrap_or_else(|| "?".into())
    };
    println!(
        "cargo:rustc-env=BENCH_PEERS=tokio-postgres {}, sqlx {}, tokio {}",
        version("tokio-postgres"),
        version("sqlx"),
        version("tokio")
    );
}
