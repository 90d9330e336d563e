//! How a client tells that a transaction-mode pooler (pgbouncer) sits between it
//! and the server: ahead of time with a probe, or when a statement it named goes
//! missing.
//!
//! A pooler answers the startup itself, with a backend key of its own making, so
//! the process ID in that key names no server process of the session. The probe
//! asks the server whether it runs in that process; it rides ahead of the first
//! request, in the same write, so it costs no round trip.

use crate::message::TransactionStatus;
use crate::sqlstate::{self, SqlState};

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
/// assert!(ferropg_core::pooler::probe_tag_says_pooler("SELECT 0"));
/// assert!(!ferropg_core::pooler::probe_tag_says_pooler("SELECT 1"));
/// ```
pub fn probe_query(process_id: i32) -> String {
    format!("SELECT 1 WHERE pg_backend_pid() = {process_id}")
}

/// Whether the probe's row count (from its `SELECT n` tag) means a pooler.
pub fn probe_says_pooler(rows: u64) -> bool {
    rows == 0
}

/// [`probe_says_pooler`] read from the probe's command tag (`SELECT n`); a tag
/// without a row count says nothing.
pub fn probe_tag_says_pooler(tag: &str) -> bool {
    crate::conn::rows_affected(tag).is_some_and(probe_says_pooler)
}

/// Whether a server error with this SQLSTATE, raised for a statement the client
/// named, says that statement is missing from the server session (26000) or that
/// one of that name is there already (42P05): what a transaction-mode pooler does
/// when it moves the client to another server session.
///
/// ```
/// use ferropg_core::{pooler::statement_lost, sqlstate};
///
/// assert!(statement_lost(&sqlstate::INVALID_SQL_STATEMENT_NAME));
/// assert!(statement_lost(&sqlstate::DUPLICATE_PREPARED_STATEMENT));
/// assert!(!statement_lost(&sqlstate::SYNTAX_ERROR));
/// ```
pub fn statement_lost(code: &SqlState) -> bool {
    *code == sqlstate::INVALID_SQL_STATEMENT_NAME || *code == sqlstate::DUPLICATE_PREPARED_STATEMENT
}

/// Whether a lost named statement (see [`statement_lost`]) means a pooler, in a
/// session that has run `statements_discarded` `DEALLOCATE` or `DISCARD ALL`
/// commands (`Conn::statements_discarded`): after one of the user's, the loss is
/// explained, and the caller prepares again instead.
pub fn loss_means_pooler(statements_discarded: u64) -> bool {
    statements_discarded == 0
}

/// Whether a statement is bound as the unnamed one, parsed again in the request
/// that runs it: in pooler mode, and inside a transaction block when a pooler is
/// only suspected (the probe found one). Inside a block a named statement that is
/// missing from the server session would abort the transaction, where outside one
/// its failure is retried (and switches to pooler mode); a pooler that keeps
/// prepared statements itself (pgbouncer 1.21's `max_prepared_statements`) never
/// fails it, and is not taken for one that needs pooler mode.
///
/// ```
/// use ferropg_core::message::TransactionStatus;
/// use ferropg_core::pooler::binds_unnamed;
///
/// assert!(binds_unnamed(true, false, TransactionStatus::Idle));
/// assert!(!binds_unnamed(false, true, TransactionStatus::Idle));
/// assert!(binds_unnamed(false, true, TransactionStatus::InTransaction));
/// assert!(!binds_unnamed(false, false, TransactionStatus::InTransaction));
/// ```
pub fn binds_unnamed(pooler_mode: bool, suspected: bool, status: TransactionStatus) -> bool {
    pooler_mode || (suspected && status != TransactionStatus::Idle)
}
