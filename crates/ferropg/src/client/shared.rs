//! What a [`Client`](super::Client)'s callers and its driver share: the core, the
//! bytes waiting to be written, the session's caches, and one reply slot per
//! request in flight.
//!
//! A caller encodes its request and queues it in the core's FIFO in one step under
//! the lock, so requests from many tasks go out whole and in the order they were
//! queued, and replies come back in that same order. A caller that goes away leaves
//! its slot behind: the driver reads the reply into it and drops it unheard.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use ferropg_core::conn::{Connection as CoreConnection, Phase};
use ferropg_core::statement_cache::{self, Lookup, StatementCache};
use ferropg_core::{names, pooler};
use tokio::sync::{oneshot, Notify};

use super::feed::{End, FeedTx};
use crate::cancel::CancelToken;
use crate::connection::NoticeHandler;
use crate::exchange::Response;
use crate::introspect::TypeCache;
use crate::notification::Notification;
use crate::row::Row;
use crate::socket::PlainWriter;
use crate::statement::{CloseQueue, PendingName, Statement};
use crate::Error;

/// The reply to one request: its response up to its ReadyForQuery (a server error
/// is in [`Response::error`]), or why the connection ended first.
pub(crate) type Outcome = Result<Response, Error>;

/// One request in the core's FIFO: what its response is collected into, and where
/// it goes at the end.
pub(crate) struct Waiting {
    pub(crate) resp: Response,
    pub(crate) reply: ReplyTo,
}

/// Where a request's reply goes.
pub(crate) enum ReplyTo {
    /// Nobody waits for it (a lazy ROLLBACK, the Close of dropped statements).
    Nobody,
    /// The whole response, at the end.
    Once(oneshot::Sender<Outcome>),
    /// Rows as they come, into a bounded queue.
    Rows(FeedTx<Row>),
    /// COPY TO STDOUT data as it comes, into a bounded queue.
    Chunks(FeedTx<Bytes>),
    /// A COPY FROM STDIN: `ready` once the server waits for the data, `done` at
    /// the end. `id` names its hold on the other requests.
    CopyIn {
        id: u64,
        ready: Option<oneshot::Sender<()>>,
        done: oneshot::Sender<Outcome>,
    },
}

impl ReplyTo {
    /// Hands the outcome over (or drops it, when nobody waits).
    pub(crate) fn send(self, outcome: Outcome) {
        match self {
            ReplyTo::Nobody => {}
            ReplyTo::Once(tx) => {
                let _ = tx.send(outcome);
            }
            ReplyTo::Rows(feed) => feed.end(feed_end(outcome)),
            ReplyTo::Chunks(feed) => feed.end(feed_end(outcome)),
            ReplyTo::CopyIn { done, .. } => {
                let _ = done.send(outcome);
            }
        }
    }
}

/// How a streaming request ends, from its outcome.
fn feed_end(outcome: Outcome) -> End {
    let resp = outcome?;
    match resp.error {
        Some(e) => Err(Error::db(e)),
        None => Ok(resp.rows_affected),
    }
}

impl Waiting {
    /// A request whose whole response its caller takes through the [`Reply`].
    pub(crate) fn replying() -> (Waiting, Reply) {
        let (tx, rx) = oneshot::channel();
        let waiting = Waiting {
            resp: Response::default(),
            reply: ReplyTo::Once(tx),
        };
        (waiting, Reply::new(rx))
    }

    /// A request nobody will wait for.
    pub(crate) fn unheard() -> Waiting {
        Waiting {
            resp: Response::default(),
            reply: ReplyTo::Nobody,
        }
    }

    /// Whether its caller went away (a request nobody was to hear is not
    /// abandoned: it is the client's own).
    pub(crate) fn abandoned(&self) -> bool {
        !matches!(self.reply, ReplyTo::Nobody) && !self.wanted()
    }

    /// Whether anyone still waits for this reply: rows of a caller that went away
    /// are not even built.
    pub(crate) fn wanted(&self) -> bool {
        match &self.reply {
            ReplyTo::Nobody => false,
            ReplyTo::Once(tx) => !tx.is_closed(),
            ReplyTo::Rows(feed) => feed.room().is_some(),
            ReplyTo::Chunks(feed) => feed.room().is_some(),
            ReplyTo::CopyIn { done, .. } => !done.is_closed(),
        }
    }

    /// A request with its response record and reply.
    pub(crate) fn new(resp: Response, reply: ReplyTo) -> Waiting {
        Waiting { resp, reply }
    }

    /// Hands the response over (or drops it, when nobody waits).
    pub(crate) fn finish(self, outcome: Outcome) {
        self.reply.send(outcome);
    }

    /// Splits off the reply slot, to complete outside the lock.
    pub(crate) fn into_parts(self) -> (Response, ReplyTo) {
        (self.resp, self.reply)
    }
}

/// The caller's end of a request's reply slot.
pub(crate) struct Reply(oneshot::Receiver<Outcome>);

impl Reply {
    /// The caller's end of the slot `tx` answers.
    pub(crate) fn new(rx: oneshot::Receiver<Outcome>) -> Reply {
        Reply(rx)
    }

    /// Waits for the whole response. Cancel-safe in the sense that matters: dropping
    /// it leaves the request to the driver, which reads and discards its reply.
    pub(crate) async fn response(self) -> Outcome {
        self.0
            .await
            .unwrap_or_else(|_| Err(Error::closed("the connection's driver stopped")))
    }

    /// The response if it has come (or the connection ended), without waiting.
    pub(crate) fn try_response(&mut self) -> Option<Outcome> {
        match self.0.try_recv() {
            Ok(outcome) => Some(outcome),
            Err(oneshot::error::TryRecvError::Empty) => None,
            Err(oneshot::error::TryRecvError::Closed) => {
                Some(Err(Error::closed("the connection's driver stopped")))
            }
        }
    }
}

/// The state behind the lock.
pub(crate) struct State {
    pub(crate) core: CoreConnection<Waiting>,
    /// Requests encoded and not yet written (or taken by a TLS driver).
    pub(crate) write_buf: BytesMut,
    /// The write half of a TCP or Unix stream, which the driver and callers
    /// share (a TLS stream is the driver's alone).
    pub(crate) writer: Option<PlainWriter>,
    /// How many callers the driver's last pass over the input answered.
    pub(crate) answered_together: usize,
    /// The COPY FROM STDIN under way (its id), from its Query to its CopyDone or
    /// CopyFail: the server would take any other message for COPY data, so the
    /// requests other callers queue meanwhile are encoded into `held`, and go out
    /// after the COPY's end.
    pub(crate) copy_hold: Option<u64>,
    pub(crate) held: BytesMut,
    next_copy: u64,
    /// A COPY sender waiting for the output buffer to drain (woken whenever the
    /// driver has written).
    pub(crate) drained: Option<Waker>,
    pub(crate) closed_reason: Option<String>,
    /// The driver, to wake when there is something to write.
    driver: Option<Waker>,
    pub(crate) cache: StatementCache<String, Statement>,
    pub(crate) types: TypeCache,
    pub(crate) notifications: VecDeque<Notification>,
    pub(crate) notice_handler: Option<NoticeHandler>,
    /// Portals dropped while open, to close with the next request (see
    /// `ClientPortal`).
    pub(crate) portals_to_close: Vec<String>,
    /// Requests written so far (a pool retires a connection after `max_queries`).
    pub(crate) requests: u64,
    /// A transaction-mode pooler sits in between: statements are bound as the
    /// unnamed one, parsed again in each request (see `Client::enter_pooler_mode`).
    pub(crate) pooler_mode: bool,
    /// The startup probe's answer, until it is looked at.
    probe: Option<Reply>,
    /// The probe found the server process other than the startup's backend key
    /// names: a pooler may sit in between.
    pub(crate) pooler_suspected: bool,
}

/// Everything a Client and its driver share.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// The id statements carry (the one the connection had before the handover, so
    /// statements prepared on it stay valid).
    pub(crate) id: u64,
    pub(crate) close_queue: CloseQueue,
    /// The longest SQL text the statement cache takes (0: no limit).
    pub(crate) max_cacheable: usize,
    /// The origin of the statement cache's clock.
    clock: Instant,
    pub(crate) cancel: CancelToken,
    pub(crate) backend_pid: i32,
    /// Wakes the tasks waiting for a notification (or for the end).
    pub(crate) notified: Notify,
    /// Wakes a COPY FROM STDIN waiting for the one under way to end.
    copy_ended: Notify,
}

/// The parts of a connection a Client takes over.
pub(crate) struct Session {
    pub(crate) core: CoreConnection<Waiting>,
    pub(crate) write_buf: BytesMut,
    pub(crate) cache: StatementCache<String, Statement>,
    pub(crate) types: TypeCache,
    pub(crate) notifications: VecDeque<Notification>,
    pub(crate) notice_handler: Option<NoticeHandler>,
    pub(crate) id: u64,
    pub(crate) close_queue: CloseQueue,
    pub(crate) max_cacheable: usize,
    pub(crate) clock: Instant,
    pub(crate) cancel: CancelToken,
    /// The startup probe's answer, still to come (see `Connection::probe_for_pooler`).
    pub(crate) probe: Option<Reply>,
    /// What the probe found, if its answer came before the session became a client.
    pub(crate) pooler_suspected: bool,
}

impl Shared {
    pub(crate) fn new(session: Session, writer: Option<PlainWriter>) -> Arc<Shared> {
        let backend_pid = session.core.process_id();
        Arc::new(Shared {
            state: Mutex::new(State {
                core: session.core,
                write_buf: session.write_buf,
                closed_reason: None,
                driver: None,
                writer,
                answered_together: 0,
                copy_hold: None,
                held: BytesMut::new(),
                next_copy: 0,
                drained: None,
                cache: session.cache,
                types: session.types,
                notifications: session.notifications,
                notice_handler: session.notice_handler,
                portals_to_close: Vec::new(),
                requests: 0,
                pooler_mode: false,
                probe: session.probe,
                pooler_suspected: session.pooler_suspected,
            }),
            id: session.id,
            close_queue: session.close_queue,
            max_cacheable: session.max_cacheable,
            clock: session.clock,
            cancel: session.cancel,
            backend_pid,
            notified: Notify::new(),
            copy_ended: Notify::new(),
        })
    }

    /// The state. A panic under the lock leaves nothing half-done that matters
    /// more than going on: the core's requests are written whole or not at all.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues one request: `write` encodes it into the output buffer and queues the
    /// record it is given in the core's FIFO, in the same call (or writes nothing and
    /// fails). The clean-up left by dropped statements goes first.
    pub(crate) fn submit(
        &self,
        resp: Response,
        write: impl FnOnce(&mut State, Waiting) -> Result<(), Error>,
    ) -> Result<Reply, Error> {
        let (tx, rx) = oneshot::channel();
        self.submit_to(resp, ReplyTo::Once(tx), write)?;
        Ok(Reply::new(rx))
    }

    /// [`submit`](Shared::submit), with the reply going to `reply`.
    pub(crate) fn submit_to(
        &self,
        resp: Response,
        reply: ReplyTo,
        write: impl FnOnce(&mut State, Waiting) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut state = self.lock();
        state.check_open()?;
        let state = &mut *state;
        if state.copy_hold.is_some() {
            // Behind a COPY FROM STDIN: encoded aside, sent after its end.
            std::mem::swap(&mut state.write_buf, &mut state.held);
            let written = self.write_request(state, resp, reply, write);
            std::mem::swap(&mut state.write_buf, &mut state.held);
            return written;
        }
        // The fast path only for a request on an idle connection, and not right
        // after the driver answered several callers at once: then they are about
        // to queue their next requests, and the driver (woken by the first)
        // writes them all in one system call, where each caller writing its own
        // would take one each.
        let idle = state.write_buf.is_empty()
            && state.core.pending_len() == 0
            && state.answered_together <= 1;
        let written = self.write_request(state, resp, reply, write);
        if idle {
            state.write_direct();
        }
        state.wake_driver();
        written
    }

    /// Encodes the clean-up left by dropped statements, then the request.
    fn write_request(
        &self,
        state: &mut State,
        resp: Response,
        reply: ReplyTo,
        write: impl FnOnce(&mut State, Waiting) -> Result<(), Error>,
    ) -> Result<(), Error> {
        state.write_cleanup(&self.close_queue)?;
        state.requests += 1;
        write(state, Waiting { resp, reply })
    }

    /// Queues a `COPY ... FROM STDIN` (once no other is under way: their data
    /// must not mix) and starts holding other requests back. Returns its id.
    pub(crate) async fn submit_copy_in(
        &self,
        sql: &str,
        ready: oneshot::Sender<()>,
        done: oneshot::Sender<Outcome>,
    ) -> Result<u64, Error> {
        let mut slots = Some((ready, done));
        loop {
            let notified = self.copy_ended.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            {
                let mut guard = self.lock();
                guard.check_open()?;
                let state = &mut *guard;
                if state.copy_hold.is_none() {
                    state.next_copy += 1;
                    let id = state.next_copy;
                    let (ready, done) = slots.take().expect("submitted once");
                    let reply = ReplyTo::CopyIn {
                        id,
                        ready: Some(ready),
                        done,
                    };
                    state.write_cleanup(&self.close_queue)?;
                    state.core.copy_in(
                        sql,
                        Waiting::new(Response::default(), reply),
                        &mut state.write_buf,
                    )?;
                    state.copy_hold = Some(id);
                    state.wake_driver();
                    return Ok(id);
                }
            }
            notified.await;
        }
    }

    /// Ends COPY `id`'s hold, if it still holds: the requests held back follow
    /// what the COPY wrote last (its CopyDone or CopyFail, or nothing more when
    /// the server ended it), and a COPY waiting for its turn may start.
    pub(crate) fn end_copy_hold(&self, state: &mut State, id: u64) {
        if state.copy_hold != Some(id) {
            return;
        }
        state.copy_hold = None;
        let held = std::mem::take(&mut state.held);
        state.write_buf.extend_from_slice(&held);
        state.wake_driver();
        self.copy_ended.notify_waiters();
    }

    /// Queues a simple query nobody waits for (a lazy ROLLBACK). Best effort: on
    /// a closed connection there is nothing to roll back.
    pub(crate) fn submit_unheard(&self, sql: &str) {
        let mut state = self.lock();
        if state.check_open().is_err() {
            return;
        }
        let state = &mut *state;
        // Behind a COPY FROM STDIN it waits with the other held requests.
        let out = if state.copy_hold.is_some() {
            &mut state.held
        } else {
            &mut state.write_buf
        };
        if state.core.query(sql, Waiting::unheard(), out).is_ok() {
            state.wake_driver();
        }
    }

    /// Ends the session: every request in flight and every later call fails with
    /// an error that gives `reason`.
    pub(crate) fn close(&self, reason: String) {
        let pending = {
            let mut state = self.lock();
            state.core.mark_closed();
            state.closed_reason.get_or_insert(reason);
            state.write_buf.clear();
            state.core.take_pending()
        };
        let why = self.closed_error_text();
        for op in pending {
            op.finish(Err(Error::closed(why.clone())));
        }
        self.notified.notify_waiters();
    }

    /// The text of the error every call gets once the connection is closed.
    fn closed_error_text(&self) -> String {
        self.lock().closed_text()
    }

    /// The statement cache's clock, in seconds (0 when statements never expire).
    pub(crate) fn now(&self, cache: &StatementCache<String, Statement>) -> f64 {
        if cache.max_lifetime() > 0.0 {
            self.clock.elapsed().as_secs_f64()
        } else {
            0.0
        }
    }

    /// Whether the statement cache takes `sql`.
    pub(crate) fn cacheable(&self, state: &State, sql: &str) -> bool {
        statement_cache::takes(sql, state.cache.max_size() > 0, self.max_cacheable)
    }

    /// The live cached statement for `sql`, if the cache takes `sql` at all
    /// (`Err(())` when it does not).
    pub(crate) fn cache_lookup(&self, sql: &str) -> Result<Option<Statement>, ()> {
        let mut state = self.lock();
        if !self.cacheable(&state, sql) {
            return Err(());
        }
        let now = self.now(&state.cache);
        let found = match state.cache.get_borrowed(sql, now) {
            Lookup::Hit(statement) => Some(statement.clone()),
            Lookup::Miss => None,
            // Dropped here: closed with the next request unless a handle holds it.
            Lookup::Expired(old) => {
                drop(old);
                None
            }
        };
        Ok(found)
    }

    /// Caches `statement` for `sql`; what that evicts is closed lazily.
    pub(crate) fn cache_put(&self, sql: String, statement: Statement) {
        let mut state = self.lock();
        let now = self.now(&state.cache);
        drop(state.cache.put(sql, statement, now));
    }

    /// A fresh statement name, closed if its preparation is abandoned.
    pub(crate) fn new_statement_name(&self) -> PendingName {
        PendingName::new(names::next_unique_name("stmt"), &self.close_queue)
    }

    /// Registers the driver's waker.
    pub(crate) fn set_driver(&self, state: &mut State, waker: &Waker) {
        match &state.driver {
            Some(w) if w.will_wake(waker) => {}
            _ => state.driver = Some(waker.clone()),
        }
    }
}

impl State {
    /// Whether a pooler sits in between, or may: pooler mode, or the startup probe
    /// answered with no row.
    pub(crate) fn behind_pooler(&mut self) -> bool {
        if let Some(outcome) = self.probe.as_mut().and_then(Reply::try_response) {
            self.probe = None;
            self.pooler_suspected |= matches!(outcome, Ok(resp) if resp.error.is_none() && pooler::probe_says_pooler(resp.rows_affected));
        }
        self.pooler_mode || self.pooler_suspected
    }

    /// Whether statements are bound as the unnamed one, parsed again in the
    /// request: by the core's rule (`pooler::binds_unnamed`), once the startup
    /// probe's answer is in.
    pub(crate) fn binds_unnamed(&mut self) -> bool {
        let suspected = self.behind_pooler();
        pooler::binds_unnamed(self.pooler_mode, suspected, self.core.transaction_status())
    }

    /// Fails if the connection is closed.
    pub(crate) fn check_open(&self) -> Result<(), Error> {
        if self.core.phase() == Phase::Closed {
            return Err(Error::closed(self.closed_text()));
        }
        Ok(())
    }

    fn closed_text(&self) -> String {
        match &self.closed_reason {
            Some(why) => format!("the connection is closed: {why}"),
            None => "the connection is closed".to_owned(),
        }
    }

    /// The fast path: writes what is queued straight to the socket, as far as the
    /// kernel takes it without waiting, instead of waking the driver to do it
    /// (the driver is woken by the reply instead). Called only when the bytes
    /// queued are the caller's own request (nothing queued earlier is
    /// overtaken), under the lock, as the driver's writes are. What is not
    /// written, and any error, is left to the driver.
    fn write_direct(&mut self) {
        if let Some(writer) = &self.writer {
            if let Ok(n) = writer.try_write(&self.write_buf) {
                self.write_buf.advance(n);
            }
        }
    }

    /// Wakes a COPY sender waiting for the output to drain (it looks again).
    pub(crate) fn wake_copy_sender(&mut self) {
        if let Some(waker) = self.drained.take() {
            waker.wake();
        }
    }

    /// Wakes the driver if there is something for it to write.
    pub(crate) fn wake_driver(&self) {
        if !self.write_buf.is_empty() {
            if let Some(waker) = &self.driver {
                waker.wake_by_ref();
            }
        }
    }

    /// Queues the Close of every portal and statement dropped since the last
    /// request, as one request nobody waits for.
    fn write_cleanup(&mut self, close_queue: &CloseQueue) -> Result<(), Error> {
        let names = {
            let mut queue = close_queue.lock().unwrap_or_else(PoisonError::into_inner);
            std::mem::take(&mut *queue)
        };
        if names.is_empty() && self.portals_to_close.is_empty() {
            return Ok(());
        }
        let portals = std::mem::take(&mut self.portals_to_close);
        let mut req = self.core.request(&mut self.write_buf);
        for name in &portals {
            req.close_portal(name)?;
        }
        for name in &names {
            req.close_statement(name)?;
        }
        req.send(Waiting::unheard());
        Ok(())
    }
}
