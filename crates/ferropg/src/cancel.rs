//! Query cancellation: a CancelRequest sent on a new side connection.

use std::time::Duration;

use bytes::BytesMut;
use ferropg_core::message::frontend;

use crate::socket::Endpoint;
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

    async fn send(&self) -> Result<(), Error> {
        let mut socket = self.endpoint.connect().await?;
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
