//! The harness end to end, cheaply: ferropg's cells only (the peers are behind the
//! `peers` feature), one quick round on the current-thread runtime, against a
//! temporary cluster. Every cell checks its results, so a harness or fixture
//! mistake fails here rather than in `make bench-rust`.

use std::process::Command;

#[test]
fn quick_round_of_ferropg_cells() {
    let out = Command::new(env!("CARGO_BIN_EXE_ferropg-bench"))
        .args(["--quick", "--no-pgbench", "--driver", "ferropg"])
        .args(["--runtime", "current-thread"])
        .output()
        .expect("run ferropg-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(!stdout.contains("FAIL"), "{stdout}\n{stderr}");
    for workload in [
        "tiny",
        "one_row",
        "mixed_1000x10",
        "copy_in_100k",
        "client_tiny",
        "shared_tiny_10",
        "client_executemany_10k",
    ] {
        assert!(stdout.contains(&format!("| {workload} |")), "{stdout}");
    }
}
