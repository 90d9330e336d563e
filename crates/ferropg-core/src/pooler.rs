//! How a client tells that a transaction-mode pooler (pgbouncer) sits between it
//! and the server, before any statement of its own goes missing.
//!
//! A pooler answers the startup itself, with a backend key of its own making, so
//! the process ID in that key names no server process of the session. The probe
//! asks the server whether it runs in that process; it rides ahead of the first
//! request, in the same write, so it costs no round trip.

/// The probe for a session whose startup's backend key named `process_id`: one
/// row when the server runs in that process, none behind a pooler.
///
/// ```
/// assert_eq!(
///     ferropg_core::pooler::probe_query(4242),
///     "SELECT 1 WHERE pg_backend_pid() = 4242"
/// );
/// assert!(ferropg_core::pooler::probe_says_pooler(0));
/// assert!(!ferropg_core::pooler::probe_says_pooler(1));
/// ```
pub fn probe_query(process_id: i32) -> String {
    format!("SELECT 1 WHERE pg_backend_pid() = {process_id}")
}

/// Whether the probe's row count (from its `SELECT n` tag) means a pooler.
pub fn probe_says_pooler(rows: u64) -> bool {
    rows == 0
}
