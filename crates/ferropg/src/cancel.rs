//! Query cancellation: a CancelRequest sent on a new side connection, and the
//! per-call timeout built on it.

use std::future::Future;
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
}

impl CancelToken {
    /// The backend's process ID.
    pub fn process_id(&self) -> i32 {
        self.process_id
    }

    /// Connects to the server, sends the CancelRequest and waits for the server to
    /// close that side connection (by then it has acted on the request). The
    /// connection's `connect_timeout` applies.
    pub async fn cancel(&self) -> Result<(), Error> {
        match self.connect_timeout {
            Some(t) => tokio::time::timeout(t, self.send())
                .await
                .map_err(|_| Error::timeout(format!("cancel request not done within {t:?}")))?,
            None => self.send().await,
        }
    }

    /// [`cancel`](CancelToken::cancel), bounded by the connect timeout or, without
    /// one, by `fallback`.
    async fn cancel_within(&self, fallback: Duration) -> Result<(), Error> {
        let limit = self.connect_timeout.unwrap_or(fallback);
        tokio::time::timeout(limit, self.send())
            .await
            .map_err(|_| Error::timeout(format!("cancel request not done within {limit:?}")))?
    }

    async fn send(&self) -> Result<(), Error> {
        let mut socket = match (self.endpoint.connect().await?, &self.tls) {
            (Socket::Tcp(tcp), Some((tls, name))) => match tls.upgrade(tcp, name).await? {
                Ok(stream) => Socket::Tls(Box::new(stream)),
                Err(plain) => Socket::Tcp(plain),
            },
            (socket, _) => socket,
        };
        let mut buf = BytesMut::with_capacity(12 + self.secret_key.len());
        frontend::cancel_request_with_key(self.process_id, &self.secret_key, &mut buf);
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
                Ok(0) => return Ok(()),
                Ok(_) => {}
                // A reset instead of an orderly close still means the request was read.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(()),
                Err(e) => return Err(Error::io("waiting for the cancel request", e)),
            }
        }
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
/// rest of its response), a CancelRequest is sent and awaited, and the call fails
/// with [`Timeout`](crate::ErrorKind::Timeout).
pub(crate) async fn timed<T>(
    deadline: Option<Deadline>,
    fut: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let Some(Deadline { limit, token }) = deadline else {
        return fut.await;
    };
    match tokio::time::timeout(limit, fut).await {
        Ok(result) => result,
        Err(_) => {
            let cancel = match token.cancel_within(CANCEL_LIMIT).await {
                Ok(()) => "the server was asked to cancel it".to_owned(),
                Err(e) => format!("cancelling it failed: {e}"),
            };
            Err(Error::timeout(format!(
                "the call did not finish within {limit:?}; {cancel}"
            )))
        }
    }
}
