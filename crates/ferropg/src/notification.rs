//! LISTEN/NOTIFY notifications, and the stream of them a [`Connection`] gives.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use crate::{Connection, Error};

/// A notification sent with `NOTIFY` (or `pg_notify`) on a channel this session
/// listens to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub(crate) process_id: i32,
    pub(crate) channel: String,
    pub(crate) payload: String,
}

impl Notification {
    /// The process ID of the notifying backend.
    pub fn process_id(&self) -> i32 {
        self.process_id
    }

    /// The channel.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The payload (empty when none was given).
    pub fn payload(&self) -> &str {
        &self.payload
    }
}

/// The notifications of a [`Connection`] as they arrive, from
/// [`Connection::notifications`]: a [`Stream`] that reads the socket while it is
/// polled. An error (the connection closed) comes once, then the stream ends.
pub struct Notifications<'a> {
    conn: &'a mut Connection,
    ended: bool,
}

impl<'a> Notifications<'a> {
    pub(crate) fn new(conn: &'a mut Connection) -> Notifications<'a> {
        Notifications { conn, ended: false }
    }
}

impl Stream for Notifications<'_> {
    type Item = Result<Notification, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        let next = std::task::ready!(this.conn.poll_notification(cx));
        this.ended = next.is_err();
        Poll::Ready(Some(next))
    }
}

impl fmt::Debug for Notifications<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifications")
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}
