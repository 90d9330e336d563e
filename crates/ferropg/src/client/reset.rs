//! A pool's reset of a [`Client`]'s session. What to undo is the core's rule
//! ([`ferropg_core::reset`]); this writes it: the part due at release in one
//! request with one Sync, the rest held in the core to ride ahead of the next
//! user's first request.

use ferropg_core::message::TransactionStatus;
use ferropg_core::reset::{self, ResetPolicy, UNLOCK_ADVISORY};

use super::shared::{Reply, ReplyTo, Waiting};
use super::Client;
use crate::connection::{bind, NO_PARAMS};
use crate::exchange::Response;
use crate::statement::Statement;
use crate::Error;

/// The reply to the part of a reset that waits for the next request: a pool looks
/// at it at the next release, and retires a session whose reset failed.
pub(crate) struct DeferredReset(Reply);

impl DeferredReset {
    /// `Some(true)` once it ran cleanly, `Some(false)` if it failed (or the
    /// connection ended first), `None` while it has not been answered.
    pub(crate) fn succeeded(&mut self) -> Option<bool> {
        let outcome = self.0.try_response()?;
        Some(matches!(outcome, Ok(resp) if resp.error.is_none()))
    }
}

impl Client {
    /// Hands the session to its next user clean, paying only for what it did (see
    /// [`ferropg_core::reset`]). Requests that callers left in flight are settled
    /// first. Returns the reply of the part deferred to the next request, if any.
    /// A failure leaves a session nobody should trust: the pool closes it.
    pub(crate) async fn reset_session(
        &self,
        policy: ResetPolicy,
    ) -> Result<Option<DeferredReset>, Error> {
        self.settle().await?;
        let (plan, status) = {
            let mut state = self.shared.lock();
            state.notifications.clear();
            state.notice_handler = None;
            let footprint = state.core.take_footprint();
            let status = state.core.transaction_status();
            let policy = match state.behind_pooler() {
                true => ResetPolicy::behind_pooler(),
                false => policy,
            };
            (reset::plan(status, footprint, policy), status)
        };
        if !plan.deferred.is_empty() {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let mut state = self.shared.lock();
            state.check_open()?;
            let op = Waiting::new(Response::default(), ReplyTo::Once(tx));
            state.core.defer_query(&plan.deferred, op)?;
            return Ok(Some(DeferredReset(Reply::new(rx))));
        }
        if plan.at_release.is_empty() && !plan.unlock_advisory {
            return Ok(None);
        }
        let unlock = match plan.unlock_advisory {
            true => self.unlock_statement(status).await?,
            false => None,
        };
        let parsed_unlock = plan.unlock_advisory && unlock.is_none();
        let reply = self.shared.submit(Response::default(), |state, op| {
            let mut wire = state.core.request(&mut state.write_buf);
            // Utility statements, parsed as the unnamed statement: one implicit
            // transaction and one answer for the whole reset, where a script and
            // a separate statement would cost the server two.
            let parsed = plan.at_release.lines();
            for sql in parsed.chain(parsed_unlock.then_some(UNLOCK_ADVISORY)) {
                wire.parse("", sql, [])?;
                bind(&mut wire, "", "", &[], NO_PARAMS)?;
                wire.execute("", 0)?;
            }
            if let Some(statement) = &unlock {
                bind(&mut wire, "", statement.name(), &[], NO_PARAMS)?;
                wire.execute("", 0)?;
            }
            if plan.unlock_advisory {
                // Its one row (a void) is read and dropped.
                wire.rows_of(1);
            }
            wire.send(op);
            Ok(())
        })?;
        let resp = reply.response().await?;
        // The reset's own statements are no footprint of the next user's.
        self.shared.lock().core.take_footprint();
        let Some(db) = resp.error else {
            return Ok(None);
        };
        let err = Error::db(db);
        if unlock.is_some() && self.pooler_found(&err) {
            // The unlock statement was not in the session the request reached: a
            // transaction-mode pooler, where the session is any client's and a
            // reset only ends an open transaction of ours.
            if self.transaction_status() != TransactionStatus::Idle {
                self.batch_execute("ROLLBACK").await?;
            }
            self.shared.lock().core.take_footprint();
            return Ok(None);
        }
        Err(err)
    }

    /// The advisory unlock as a cached statement (prepared once per session), or
    /// None where it is parsed in the reset itself: with the statement cache off,
    /// or inside a transaction block (an aborted one refuses a Parse; the reset's
    /// ROLLBACK comes first).
    async fn unlock_statement(
        &self,
        status: TransactionStatus,
    ) -> Result<Option<Statement>, Error> {
        match self.shared.cache_lookup(UNLOCK_ADVISORY) {
            Ok(Some(statement)) => Ok(Some(statement)),
            Ok(None) if status == TransactionStatus::Idle => {
                self.prepare_cached(UNLOCK_ADVISORY).await.map(Some)
            }
            _ => Ok(None),
        }
    }

    /// Waits until no request a caller left behind is still running. A call whose
    /// future was dropped leaves its request to run to its end; the pool owns the
    /// session now, so a CancelRequest can reach nothing but such a request. The
    /// empty query behind them is answered once all of them are.
    async fn settle(&self) -> Result<(), Error> {
        let (busy, abandoned) = {
            let state = self.shared.lock();
            state.check_open()?;
            let busy = state.core.pending_len() > 0 || state.copy_hold.is_some();
            let abandoned = state.core.pending().any(Waiting::abandoned);
            (busy, abandoned)
        };
        if !busy {
            return Ok(());
        }
        if abandoned {
            // Whatever it stops, nobody waits for; a cancel that arrives once the
            // server is idle is ignored by it.
            let _ = self.shared.cancel.cancel().await;
        }
        match self.batch_execute("").await {
            Err(e) if e.as_db_error().is_none() => Err(e),
            // The cancel may have reached the empty query itself.
            _ => Ok(()),
        }
    }

    /// How many requests this client has written (a pool retires a session after
    /// `max_queries`).
    pub(crate) fn requests_written(&self) -> u64 {
        self.shared.lock().requests
    }
}
