//! Query cancellation: a CancelRequest sent on a new side connection, and the
//! per-call timeout built on it.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use ferropg_core::message::frontend;

use crate::socket::{Endpoint, Socket};
use crate::tls::Tls;
use crate::Error;

/// What is needed to cancel the query a connection is running, from anywhere: the
/// server's address, the backend's process ID and its secret key.
///
/// Get one with [`Connection::cancel_token`](crate::Connection::cancel_token) before
/// starting the query, move it to another task, and call [`CancelToken::cancel`].
/// The running query then fails with SQLSTATE `57014` (`query_canceled`). As with
/// libpq, a cancel that arrives when nothing runs has no effect.
#[derive(Debug, Clone)]
pub struct CancelToken {
    pub(crate) endpoint: Endpoint,
    /// Set when the connection used TLS: its cancel requests do too.
    pub(crate) tls: Option<(Tls, String)>,
    pub(crate) process_id: i32,
    pub(crate) secret_key: Vec<u8>,
    pub(crate) connect_timeout: Option<Duration>,
    /// The connection's record of its cancel requests in flight.
    pub(crate) gate: Arc<CancelGate>,
}

impl CancelToken {
    /// The backend's process ID.
    pub fn process_id(&self) -> i32 {
        self.process_id
    }

    /// Connects to the server, sends the CancelRequest and waits for the server to
    /// close that side connection (by then it has acted on the request). The
    /// connection's `connect_timeout` applies.
    ///
    /// The request runs in a task of its own: dropping this future does not stop it,
    /// and the connection starts nothing new until the server has answered it, so a
    /// late cancel can never reach a later query. If it was sent but no answer came in
    /// time, the connection is closed instead of used.
    pub async fn cancel(&self) -> Result<(), Error> {
        self.spawn_cancel(self.connect_timeout)
            .await
            .unwrap_or_else(|e| {
                Err(Error::closed(format!(
                    "the cancel request's task failed: {e}"
                )))
            })
    }

    /// Starts the cancel request in a task of its own, bounded by `limit`.
    fn spawn_cancel(&self, limit: Option<Duration>) -> tokio::task::JoinHandle<Result<(), Error>> {
        let token = self.clone();
        let mut ticket = self.gate.enter();
        tokio::spawn(async move {
            let sending = token.send(&mut ticket);
            let result = match limit {
                Some(t) => tokio::time::timeout(t, sending).await.unwrap_or_else(|_| {
                    Err(Error::timeout(format!(
                        "cancel request not done within {t:?}"
                    )))
                }),
                None => sending.await,
            };
            drop(ticket);
            result
        })
    }

    async fn send(&self, ticket: &mut GateTicket) -> Result<(), Error> {
        let mut socket = match (self.endpoint.connect().await?, &self.tls) {
            (Socket::Tcp(tcp), Some((tls, name))) => match tls.upgrade(tcp, name).await? {
                Ok(stream) => Socket::Tls(Box::new(stream)),
                Err(plain) => Socket::Tcp(plain),
            },
            (socket, _) => socket,
        };
        let mut buf = BytesMut::with_capacity(12 + self.secret_key.len());
        frontend::cancel_request_with_key(self.process_id, &self.secret_key, &mut buf);
        ticket.sent = true;
        while !buf.is_empty() {
            let n = socket
                .write_buf(&mut buf)
                .await
                .map_err(|e| Error::io("sending the cancel request", e))?;
            if n == 0 {
                return Err(Error::closed("the server closed the cancel connection"));
            }
        }
        // The server answers nothing and closes the connection once done.
        let mut sink = BytesMut::with_capacity(64);
        loop {
            sink.clear();
            match socket.read_buf(&mut sink).await {
                Ok(0) => break,
                Ok(_) => {}
                // A reset instead of an orderly close still means the request was read.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => return Err(Error::io("waiting for the cancel request", e)),
            }
        }
        ticket.answered = true;
        Ok(())
    }
}

/// The cancel requests of one connection that are still on their way.
///
/// The server applies a CancelRequest to whatever the backend runs when the request
/// arrives, and drops it if the backend is idle. So, as libpq and pgx do, a
/// connection writes nothing new until every request sent for it has been answered
/// (the server closes the side connection after signalling the backend). A request
/// that was sent but never answered leaves its fate unknown: the connection is then
/// closed rather than used.
#[derive(Debug, Default)]
pub(crate) struct CancelGate {
    state: Mutex<GateState>,
    settled: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct GateState {
    in_flight: usize,
    in_doubt: bool,
}

impl CancelGate {
    fn enter(self: &Arc<Self>) -> GateTicket {
        self.lock().in_flight += 1;
        GateTicket {
            gate: Arc::clone(self),
            sent: false,
            answered: false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Returns once no cancel request is in flight; an error if one may still reach
    /// the server.
    pub(crate) async fn settled(&self) -> Result<(), Error> {
        loop {
            let notified = self.settled.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let state = self.lock();
                if state.in_doubt {
                    return Err(Error::closed(
                        "a cancel request was sent but never answered: it could still cancel a later query",
                    ));
                }
                if state.in_flight == 0 {
                    return Ok(());
                }
            }
            notified.await;
        }
    }
}

/// One cancel request's place in its [`CancelGate`], given back when dropped.
struct GateTicket {
    gate: Arc<CancelGate>,
    /// The request's bytes may have reached the server.
    sent: bool,
    /// The server closed the side connection: it has acted on the request.
    answered: bool,
}

impl Drop for GateTicket {
    fn drop(&mut self) {
        {
            let mut state = self.gate.lock();
            state.in_flight -= 1;
            if self.sent && !self.answered {
                state.in_doubt = true;
            }
        }
        self.gate.settled.notify_waiters();
    }
}

/// How long a CancelRequest may take when the connection has no connect timeout.
const CANCEL_LIMIT: Duration = Duration::from_secs(10);

/// The time limit of one call, and how to cancel what it started.
pub(crate) struct Deadline {
    pub(crate) limit: Duration,
    pub(crate) token: CancelToken,
}

/// Runs `fut` within `deadline`. When time runs out the future is dropped (its
/// request, if sent, stays queued on the connection, whose next call reads the
/// rest of its response), a CancelRequest is started, and the call fails with
/// [`Timeout`](crate::ErrorKind::Timeout) at once: a link gone silent cannot hold
/// it past its limit. The connection's next call waits for the cancel request to be
/// answered (within the connect timeout, or [`CANCEL_LIMIT`]), and finds the
/// connection closed if it never is.
///
/// Without a deadline the call costs nothing more than `fut` itself: the timer lives
/// in a box made only when there is one (inline, it would make every call's future
/// kilobytes larger, and a row stream pays for its future on every row).
pub(crate) async fn timed<T>(
    deadline: Option<Deadline>,
    fut: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    match deadline {
        None => fut.await,
        Some(Deadline { limit, token }) => Box::pin(limited(limit, token, fut)).await,
    }
}

/// [`timed`] with its deadline.
async fn limited<T>(
    limit: Duration,
    token: CancelToken,
    fut: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    match tokio::time::timeout(limit, fut).await {
        Ok(result) => result,
        Err(_) => Err(timed_out(limit, &token)),
    }
}

/// What a call that ran out of time does: starts the CancelRequest (the
/// connection's next call waits for its answer) and returns the call's error.
fn timed_out(limit: Duration, token: &CancelToken) -> Error {
    drop(token.spawn_cancel(Some(token.connect_timeout.unwrap_or(CANCEL_LIMIT))));
    Error::timeout(format!(
        "the call did not finish within {limit:?}; the server was asked to cancel it"
    ))
}

/// The time limit of each step of a stream or sink polled by hand (a row, a COPY
/// chunk, a flush): [`timed`] for code that has no future to wrap.
///
/// Without a limit it is one `None`: no timer is made, and a step costs nothing
/// more. With one, the timer is boxed once and re-armed for each step.
#[derive(Default)]
pub(crate) struct StepTimer {
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The timer counts down for the step under way.
    armed: bool,
}

impl StepTimer {
    /// Polled when a step is not ready: the timeout error once `limit` has passed
    /// since the step began (the running query is then being cancelled).
    fn poll_expired(
        &mut self,
        cx: &mut Context<'_>,
        limit: Option<Duration>,
        token: impl FnOnce() -> CancelToken,
    ) -> Poll<Error> {
        let Some(limit) = limit else {
            return Poll::Pending;
        };
        let deadline = tokio::time::Instant::now() + limit;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !self.armed {
            sleep.as_mut().reset(deadline);
            self.armed = true;
        }
        ready!(sleep.as_mut().poll(cx));
        self.armed = false;
        Poll::Ready(timed_out(limit, &token()))
    }

    /// A step's outcome within `limit`: its own once it is ready (the next step
    /// then gets a limit of its own), or, while it is not, the timeout error once
    /// `limit` has passed since the step began (the running query is then being
    /// cancelled, through `token`'s CancelRequest). Inlined: a stream's every row
    /// passes here, almost always ready.
    #[inline]
    pub(crate) fn bound<T>(
        &mut self,
        cx: &mut Context<'_>,
        step: Poll<Result<T, Error>>,
        limit: Option<Duration>,
        token: impl FnOnce() -> CancelToken,
    ) -> Poll<Result<T, Error>> {
        match step {
            Poll::Ready(result) => {
                self.armed = false;
                Poll::Ready(result)
            }
            Poll::Pending => self.poll_expired(cx, limit, token).map(Err),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::task::{Context, Poll, Waker};

    use super::StepTimer;
    use crate::Error;

    /// Without a limit a step makes no timer at all: a row stream pays nothing per
    /// row for the timeout it does not have.
    #[test]
    fn no_limit_makes_no_timer() {
        let mut timer = StepTimer::default();
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..3 {
            let pending: Poll<Result<(), Error>> = Poll::Pending;
            let polled = timer.bound(&mut cx, pending, None, || unreachable!("no cancel"));
            assert!(polled.is_pending());
            let polled = timer.bound(&mut cx, Poll::Ready(Ok(1)), None, || unreachable!());
            assert!(matches!(polled, Poll::Ready(Ok(1))));
        }
        assert!(timer.sleep.is_none());
    }
}
