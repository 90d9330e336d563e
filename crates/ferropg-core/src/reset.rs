//! What a pool runs to hand a used session to its next user clean, paying only for
//! what the session did.
//!
//! The protocol shows some of what a session did (its transaction status, the command
//! tags of its statements: see [`SessionFootprint`]) and hides the rest: a function
//! can take advisory locks or change settings that are never reported. So a session
//! that ran anything gets its settings reset, and advisory locks are released at
//! every release unless the policy opts out (asyncpg's release, whose round trip
//! also finds a link that went dark, does the same). A session that ran nothing since
//! its last reset, with advisory locks opted out, needs nothing at all.
//!
//! The parts split by whom they affect while the connection sits idle in its pool:
//! an open transaction, advisory locks and LISTENs touch other sessions, so they go
//! at release; settings, holdable cursors and temporary tables touch only the next
//! user, so they may wait and ride in the next request's write ([`ResetPlan`]).
//! A LISTEN or a holdable cursor can also come from inside a function, unseen: the
//! deferred part therefore always closes cursors and unlistens too, which costs the
//! server little beside the next request; a LISTEN seen in a tag is undone at release.

use crate::message::TransactionStatus;

/// What a session did since its footprint was last cleared, as seen in its command
/// tags: the parts of a reset that are provably needed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionFootprint {
    /// Some operation reached its end (any statement may have changed settings or
    /// taken advisory locks through a function).
    pub ran: bool,
    /// A `LISTEN` ran.
    pub listened: bool,
}

impl SessionFootprint {
    /// Takes one command tag into account.
    pub fn note_tag(&mut self, tag: &str) {
        if tag == "LISTEN" {
            self.listened = true;
        }
    }

    /// The footprint of a session that may have done anything.
    pub fn unknown() -> Self {
        SessionFootprint {
            ran: true,
            listened: true,
        }
    }
}

/// Which parts of a reset may run: what the server supports, narrowed by the user
/// (advisory locks and temporary tables are opt-outs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResetPolicy {
    /// `SELECT pg_advisory_unlock_all()`.
    pub advisory_locks: bool,
    /// `CLOSE ALL`.
    pub close_cursors: bool,
    /// `UNLISTEN *`.
    pub unlisten: bool,
    /// `RESET ALL`.
    pub reset_settings: bool,
    /// `DISCARD TEMP`: the next user neither sees nor collides with the last one's
    /// temporary tables.
    pub temp_tables: bool,
}

impl Default for ResetPolicy {
    fn default() -> Self {
        ResetPolicy {
            advisory_locks: true,
            close_cursors: true,
            unlisten: true,
            reset_settings: true,
            temp_tables: true,
        }
    }
}

impl ResetPolicy {
    /// Behind a transaction-mode pooler: outside a transaction the next statement
    /// may reach any server session, where unlocking, unlistening or resetting
    /// would undo another client's session. Only an open transaction is ours to
    /// end, and [`plan`] always ends one.
    pub fn behind_pooler() -> ResetPolicy {
        ResetPolicy {
            advisory_locks: false,
            close_cursors: false,
            unlisten: false,
            reset_settings: false,
            temp_tables: false,
        }
    }
}

/// The query that releases a session's advisory locks. It costs the server a parse
/// and a plan as a simple query, where a prepared statement costs neither: a front end
/// runs it through its statement cache, with the rest of the reset ahead of it in the
/// same write.
pub const UNLOCK_ADVISORY: &str = "SELECT pg_advisory_unlock_all()";

/// A session's reset: a script to run at release, the advisory unlock, and a script
/// that may wait for the next request (each may be empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResetPlan {
    /// To run at release, before the connection goes back to the pool, ahead of the
    /// advisory unlock when there is one.
    pub at_release: String,
    /// Run [`UNLOCK_ADVISORY`] at release.
    pub unlock_advisory: bool,
    /// What may instead go ahead of the next request, in the same write. Empty
    /// whenever something is due at release: that round trip carries everything.
    pub deferred: String,
}

impl ResetPlan {
    /// True when the session needs no reset at all.
    pub fn is_empty(&self) -> bool {
        self.at_release.is_empty() && !self.unlock_advisory && self.deferred.is_empty()
    }

    /// The whole reset as one script, the unlock first.
    pub fn script(&self) -> String {
        let unlock = format!("{UNLOCK_ADVISORY};");
        script(&[
            (unlock.as_str(), self.unlock_advisory),
            (self.at_release.as_str(), true),
            (self.deferred.as_str(), true),
        ])
    }
}

/// The reset a session with `footprint` needs, its last ReadyForQuery having said
/// `status`.
///
/// ```
/// use ferropg_core::message::TransactionStatus;
/// use ferropg_core::reset::{plan, ResetPolicy, SessionFootprint};
///
/// let idle = TransactionStatus::Idle;
/// let policy = ResetPolicy::default();
/// // Nothing ran: only the advisory locks, which nothing shows, are released.
/// let p = plan(idle, SessionFootprint::default(), policy);
/// assert!(p.unlock_advisory && p.at_release.is_empty() && p.deferred.is_empty());
///
/// let ran = SessionFootprint { ran: true, ..Default::default() };
/// let p = plan(idle, ran, policy);
/// assert!(p.unlock_advisory);
/// assert_eq!(p.at_release, "CLOSE ALL;\nUNLISTEN *;\nRESET ALL;\nDISCARD TEMP;");
/// assert_eq!(
///     p.script(),
///     "SELECT pg_advisory_unlock_all();\nCLOSE ALL;\nUNLISTEN *;\nRESET ALL;\nDISCARD TEMP;"
/// );
///
/// // Without advisory locks, nothing has to happen at release.
/// let no_locks = ResetPolicy { advisory_locks: false, ..policy };
/// let p = plan(idle, ran, no_locks);
/// assert_eq!((p.at_release.as_str(), p.unlock_advisory), ("", false));
/// assert_eq!(p.deferred, "CLOSE ALL;\nUNLISTEN *;\nRESET ALL;\nDISCARD TEMP;");
/// // And a session that ran nothing needs no reset at all.
/// assert!(plan(idle, SessionFootprint::default(), no_locks).is_empty());
/// ```
pub fn plan(
    status: TransactionStatus,
    footprint: SessionFootprint,
    policy: ResetPolicy,
) -> ResetPlan {
    let in_transaction = status != TransactionStatus::Idle;
    let ran = footprint.ran || in_transaction;
    let release = [
        ("ROLLBACK;", in_transaction),
        ("UNLISTEN *;", policy.unlisten && footprint.listened),
    ];
    let later = [
        ("CLOSE ALL;", policy.close_cursors && ran),
        ("UNLISTEN *;", policy.unlisten && ran && !footprint.listened),
        ("RESET ALL;", policy.reset_settings && ran),
        ("DISCARD TEMP;", policy.temp_tables && ran),
    ];
    let now = script(&release);
    let deferred = script(&later);
    if now.is_empty() && !policy.advisory_locks {
        ResetPlan {
            at_release: now,
            unlock_advisory: false,
            deferred,
        }
    } else {
        ResetPlan {
            at_release: script(&[(now.as_str(), true), (deferred.as_str(), true)]),
            unlock_advisory: policy.advisory_locks,
            deferred: String::new(),
        }
    }
}

/// The statements whose condition holds, one per line.
fn script(steps: &[(&str, bool)]) -> String {
    let kept: Vec<&str> = steps
        .iter()
        .filter(|(sql, wanted)| *wanted && !sql.is_empty())
        .map(|(sql, _)| *sql)
        .collect();
    kept.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAN: SessionFootprint = SessionFootprint {
        ran: true,
        listened: false,
    };
    const DEFERRED: &str = "CLOSE ALL;\nUNLISTEN *;\nRESET ALL;\nDISCARD TEMP;";

    fn without_advisory_locks() -> ResetPolicy {
        ResetPolicy {
            advisory_locks: false,
            ..ResetPolicy::default()
        }
    }

    #[test]
    fn a_transaction_left_open_is_rolled_back_first() {
        for status in [TransactionStatus::InTransaction, TransactionStatus::Failed] {
            let p = plan(
                status,
                SessionFootprint::default(),
                without_advisory_locks(),
            );
            assert_eq!(p.at_release, format!("ROLLBACK;\n{DEFERRED}"));
            assert_eq!(p.deferred, "");
            let p = plan(status, SessionFootprint::default(), ResetPolicy::default());
            assert!(p.unlock_advisory);
            assert!(p
                .script()
                .starts_with("SELECT pg_advisory_unlock_all();\nROLLBACK;\n"));
        }
    }

    #[test]
    fn a_listen_seen_is_undone_at_release_once() {
        let mut seen = RAN;
        seen.note_tag("SELECT 1");
        assert_eq!(seen, RAN);
        seen.note_tag("LISTEN");
        let p = plan(TransactionStatus::Idle, seen, without_advisory_locks());
        assert_eq!(
            p.at_release,
            "UNLISTEN *;\nCLOSE ALL;\nRESET ALL;\nDISCARD TEMP;"
        );
        assert_eq!(p.deferred, "");
    }

    #[test]
    fn the_rest_waits_for_the_next_request_when_nothing_is_due_at_release() {
        let p = plan(TransactionStatus::Idle, RAN, without_advisory_locks());
        assert_eq!((p.at_release.as_str(), p.deferred.as_str()), ("", DEFERRED));
        assert!(!p.unlock_advisory);
    }

    #[test]
    fn opt_outs_and_unsupported_parts_are_left_out() {
        let none = ResetPolicy {
            advisory_locks: false,
            close_cursors: false,
            unlisten: false,
            reset_settings: false,
            temp_tables: false,
        };
        let p = plan(TransactionStatus::Idle, SessionFootprint::unknown(), none);
        assert!(p.is_empty(), "{p:?}");
        let p = plan(TransactionStatus::Failed, SessionFootprint::unknown(), none);
        assert_eq!(p.script(), "ROLLBACK;");
    }

    #[test]
    fn an_unknown_footprint_gets_the_whole_reset() {
        let p = plan(
            TransactionStatus::Idle,
            SessionFootprint::unknown(),
            ResetPolicy::default(),
        );
        assert_eq!(
            p.script(),
            "SELECT pg_advisory_unlock_all();\nUNLISTEN *;\nCLOSE ALL;\nRESET ALL;\nDISCARD TEMP;"
        );
    }
}
