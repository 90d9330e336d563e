//! [`ClientCopyIn`]: a `COPY ... FROM STDIN` on a shared [`Client`].
//!
//! While a COPY FROM STDIN runs, the server takes every message for COPY data, so
//! nothing of another task's may reach it between the COPY's Query and its
//! CopyDone (or CopyFail). From the moment the COPY is queued, the requests other
//! tasks make are encoded aside (`State::held`) and go out right after the COPY's
//! last message; the COPY data itself goes into the shared output buffer, which
//! the driver writes. A second COPY FROM STDIN waits for the first to end.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use ferropg_core::sqlstate;
use futures_sink::Sink;
use tokio::sync::oneshot;

use super::shared::Outcome;
use super::Client;
use crate::copy::FLUSH_AT;
use crate::Error;

/// A `COPY ... FROM STDIN` in progress on a [`Client`], from [`Client::copy_in`]:
/// a [`Sink`] of [`Bytes`] in the COPY's format (text, csv, binary), with
/// [`send`](ClientCopyIn::send), [`finish`](ClientCopyIn::finish) and
/// [`abort`](ClientCopyIn::abort) as on a [`Connection`](crate::Connection)'s
/// [`CopyIn`](crate::CopyIn).
///
/// **Other tasks' requests wait** until the COPY ends (the server would take them
/// for COPY data): they are queued, and sent right after the COPY's end. Feed it
/// promptly and finish it. At most one buffer of data (128 kB) waits to be
/// written; `send` waits for the driver beyond that.
///
/// **Dropped** without `finish` or `abort`, the COPY is aborted (a CopyFail is
/// queued at once), and the requests held back go out after it.
pub struct ClientCopyIn<'a> {
    client: &'a Client,
    id: u64,
    /// Until the server is ready for the data.
    ready: Option<oneshot::Receiver<()>>,
    done: Option<oneshot::Receiver<Outcome>>,
    /// How the COPY ended, once the server said so (an early error, or after
    /// CopyDone): the row count or the error's text is kept for later calls.
    ended: Option<Result<u64, Error>>,
    /// CopyDone or CopyFail is queued (and the hold ended).
    closing: bool,
}

impl<'a> ClientCopyIn<'a> {
    /// Queues `sql` and waits for the server's CopyInResponse.
    pub(super) async fn start(client: &'a Client, sql: &str) -> Result<ClientCopyIn<'a>, Error> {
        let (ready_tx, ready_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel();
        let id = client.shared.submit_copy_in(sql, ready_tx, done_tx).await?;
        // From here a drop (of this future too) aborts the COPY: see `Drop`.
        let mut copy = ClientCopyIn {
            client,
            id,
            ready: Some(ready_rx),
            done: Some(done_rx),
            ended: None,
            closing: false,
        };
        std::future::poll_fn(|cx| copy.poll_started(cx)).await?;
        Ok(copy)
    }

    /// Waits for the server to be ready for the data; its error if the statement
    /// ended without starting a COPY FROM STDIN.
    fn poll_started(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let Some(ready) = &mut self.ready else {
            return Poll::Ready(Ok(()));
        };
        if ready!(Pin::new(ready).poll(cx)).is_ok() {
            self.ready = None;
            return Poll::Ready(Ok(()));
        }
        // The reply came instead (the slot for `ready` went with it).
        self.ready = None;
        self.closing = true;
        Poll::Ready(match self.take_outcome() {
            Some(Ok(_)) => Err(Error::copy("the statement did not start a COPY FROM STDIN")),
            Some(Err(e)) => Err(e),
            None => Err(Error::closed("the connection's driver stopped")),
        })
    }

    /// The outcome, if the server has ended the operation.
    fn take_outcome(&mut self) -> Option<Result<u64, Error>> {
        let outcome = self.done.as_mut()?.try_recv().ok()?;
        self.done = None;
        Some(outcome.and_then(|resp| match resp.error {
            Some(e) => Err(Error::db(e)),
            None => Ok(resp.rows_affected),
        }))
    }

    /// Fails when the COPY is over: the server's error (it ended the COPY early)
    /// or a closed connection.
    fn check(&mut self) -> Result<(), Error> {
        if self.ended.is_none() {
            self.ended = self.take_outcome();
        }
        match &self.ended {
            None => self.client.shared.lock().check_open(),
            Some(Ok(_)) => Err(Error::copy("the COPY has already ended")),
            Some(Err(e)) => Err(same_error(e)),
        }
    }

    /// Sends a chunk of COPY data (rows may be split across chunks). It is
    /// written by the driver; this waits only while a full buffer of data is
    /// waiting to be written.
    pub async fn send(&mut self, data: impl AsRef<[u8]>) -> Result<(), Error> {
        self.check()?;
        {
            let mut state = self.client.shared.lock();
            let state = &mut *state;
            state.core.copy_data(data.as_ref(), &mut state.write_buf)?;
            state.wake_driver();
        }
        std::future::poll_fn(|cx| self.poll_room(cx, FLUSH_AT)).await
    }

    /// Queues a whole CopyData message (a batch of binary rows), without copying it
    /// when nothing else waits to be written; `frame` is left empty.
    pub(crate) async fn send_frame(&mut self, frame: &mut BytesMut) -> Result<(), Error> {
        self.check()?;
        {
            let mut state = self.client.shared.lock();
            let out = &mut state.write_buf;
            if out.is_empty() {
                // The two buffers take turns: the one the driver wrote out comes back.
                std::mem::swap(out, frame);
            } else {
                out.extend_from_slice(frame);
            }
            frame.clear();
            state.wake_driver();
        }
        std::future::poll_fn(|cx| self.poll_room(cx, FLUSH_AT)).await
    }

    /// Waits until less than `limit` bytes wait to be written.
    fn poll_room(&mut self, cx: &mut Context<'_>, limit: usize) -> Poll<Result<(), Error>> {
        self.check()?;
        let mut state = self.client.shared.lock();
        if state.write_buf.len() < limit.max(1) {
            return Poll::Ready(Ok(()));
        }
        state.drained = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Queues CopyDone (or CopyFail with `fail`) and lets the held requests go.
    fn close(&mut self, fail: Option<&str>) -> Result<(), Error> {
        if self.closing {
            return Ok(());
        }
        self.closing = true;
        let mut guard = self.client.shared.lock();
        guard.check_open()?;
        let state = &mut *guard;
        let written = match fail {
            Some(message) => state.core.copy_fail(message, &mut state.write_buf),
            None => {
                state.core.copy_done(&mut state.write_buf);
                Ok(())
            }
        };
        self.client.shared.end_copy_hold(state, self.id);
        written.map_err(|e| Error::encode(e.0))
    }

    /// Waits for the end of the operation.
    fn poll_end(&mut self, cx: &mut Context<'_>) -> Poll<Result<u64, Error>> {
        if let Some(ended) = &self.ended {
            return Poll::Ready(match ended {
                Ok(n) => Ok(*n),
                Err(e) => Err(same_error(e)),
            });
        }
        let Some(done) = &mut self.done else {
            return Poll::Ready(Err(Error::closed("the connection's driver stopped")));
        };
        let outcome = ready!(Pin::new(done).poll(cx));
        self.done = None;
        let ended = outcome
            .unwrap_or_else(|_| Err(Error::closed("the connection's driver stopped")))
            .and_then(|resp| match resp.error {
                Some(e) => Err(Error::db(e)),
                None => Ok(resp.rows_affected),
            });
        let result = match &ended {
            Ok(n) => Ok(*n),
            Err(e) => Err(same_error(e)),
        };
        self.ended = Some(ended);
        Poll::Ready(result)
    }

    /// Ends the data (CopyDone) and waits for the server: the number of rows
    /// copied, or the error that made the COPY fail.
    pub async fn finish(mut self) -> Result<u64, Error> {
        if self.ended.is_none() {
            self.ended = self.take_outcome();
        }
        if self.ended.is_none() {
            self.close(None)?;
        }
        std::future::poll_fn(|cx| self.poll_end(cx)).await
    }

    /// Makes the COPY fail with `message` (a CopyFail): the server rolls back what
    /// it copied. `Ok(())` once the server confirmed; if the COPY had already
    /// failed for another reason, that error.
    pub async fn abort(mut self, message: &str) -> Result<(), Error> {
        if self.ended.is_none() {
            self.ended = self.take_outcome();
        }
        let failed_before = self.ended.is_some();
        if !failed_before {
            self.close(Some(message))?;
        }
        match std::future::poll_fn(|cx| self.poll_end(cx)).await {
            Err(e) if e.code() == Some(&sqlstate::QUERY_CANCELED) && !failed_before => Ok(()),
            Err(e) => Err(e),
            Ok(_) => Ok(()),
        }
    }

    /// The number of rows copied, once the COPY has ended successfully (after
    /// `SinkExt::close`).
    pub fn rows_affected(&self) -> Option<u64> {
        match &self.ended {
            Some(Ok(n)) => Some(*n),
            _ => None,
        }
    }
}

/// An error again, for a later call (`Error` is not `Clone`): the server's error
/// whole, anything else by its kind and text.
fn same_error(e: &Error) -> Error {
    match e.as_db_error() {
        Some(db) => Error::db(db.clone()),
        None => Error::copy(e.to_string()),
    }
}

/// The data as a [`Sink`] of [`Bytes`], as [`CopyIn`](crate::CopyIn)'s: `send`,
/// `send_all`, and `close` (CopyDone, then the server's answer; the count in
/// [`rows_affected`](ClientCopyIn::rows_affected)).
impl Sink<Bytes> for ClientCopyIn<'_> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_room(cx, FLUSH_AT)
    }

    fn start_send(self: Pin<&mut Self>, item: Bytes) -> Result<(), Error> {
        let this = self.get_mut();
        this.check()?;
        let mut state = this.client.shared.lock();
        let state = &mut *state;
        state.core.copy_data(&item, &mut state.write_buf)?;
        state.wake_driver();
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_room(cx, 1)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        if !this.closing && this.ended.is_none() {
            this.ended = this.take_outcome();
            if this.ended.is_none() {
                this.close(None)?;
            }
        }
        this.poll_end(cx).map_ok(|_| ())
    }
}

impl fmt::Debug for ClientCopyIn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCopyIn")
            .field("closing", &self.closing)
            .finish_non_exhaustive()
    }
}

impl Drop for ClientCopyIn<'_> {
    /// Aborts a COPY neither finished nor aborted: a CopyFail once the server is
    /// ready for data; before that, the driver fails it (the core's `Abandon`)
    /// when the server gets there. Either way the held requests then go out.
    fn drop(&mut self) {
        if self.closing {
            return;
        }
        self.closing = true;
        let mut guard = self.client.shared.lock();
        if guard.check_open().is_err() {
            return;
        }
        let state = &mut *guard;
        let started = match &mut self.ready {
            None => true,
            Some(ready) => ready.try_recv().is_ok(),
        };
        if started {
            if self.done.as_mut().is_some_and(|d| d.try_recv().is_err()) {
                let _ = state
                    .core
                    .copy_fail("the COPY was abandoned by the client", &mut state.write_buf);
            }
            self.client.shared.end_copy_hold(state, self.id);
        } else {
            // Closed under the lock, so that the driver, when the server gets
            // ready, sees that nobody will feed the COPY.
            self.done = None;
            self.ready = None;
        }
    }
}
