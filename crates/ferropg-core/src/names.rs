//! Names of server-side objects the client creates (prepared statements, portals).
//!
//! Behind a transaction-mode pooler (pgbouncer) many clients share one server
//! session, and a statement one client prepared is there for the next: two clients
//! that picked the same name would run each other's statements, silently. So a name
//! carries what sets its client apart: a random key drawn once per process, the
//! process ID (a forked worker keeps its parent's key), and a counter.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The process-wide counter behind [`next_unique_name`].
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// `kind`'s name number `n`, unique to this process among clients of a server.
///
/// ```
/// use ferropg_core::names::unique_name;
///
/// let a = unique_name("stmt", 1);
/// assert!(a.starts_with("__ferropg_stmt_") && a.ends_with("_1__"));
/// assert_ne!(a, unique_name("stmt", 2));
/// assert!(a.len() < 64);
/// ```
pub fn unique_name(kind: &str, n: u64) -> String {
    format!(
        "__ferropg_{kind}_{:08x}{:x}_{n:x}__",
        process_key(),
        std::process::id()
    )
}

/// The next name of `kind` from a counter shared by the whole process.
pub fn next_unique_name(kind: &str) -> String {
    unique_name(kind, COUNTER.fetch_add(1, Ordering::Relaxed) + 1)
}

/// 32 random bits, drawn once per process from the standard library's randomly
/// keyed hasher.
fn process_key() -> u32 {
    static KEY: OnceLock<u32> = OnceLock::new();
    *KEY.get_or_init(|| RandomState::new().hash_one(0x5eed_u64) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_differ_by_counter_and_share_the_process_part() {
        let a = next_unique_name("stmt");
        let b = next_unique_name("stmt");
        assert_ne!(a, b);
        let prefix = |s: &str| s.rsplit_once('_').map(|(p, _)| p.to_owned());
        let (pa, pb) = (
            prefix(a.trim_end_matches('_')),
            prefix(b.trim_end_matches('_')),
        );
        assert_eq!(pa, pb);
        assert!(a.contains(&format!("{:x}_", std::process::id())), "{a}");
    }
}
