//! A [`Client`](super::Client)'s streams: [`ClientRowStream`] (rows as they
//! arrive), [`ClientCopyOut`] (COPY TO STDOUT data) and [`ClientNotifications`].
//!
//! The two result streams read from a bounded queue the driver fills (see
//! `feed.rs`): a consumer that lags makes the driver stop reading, so memory stays
//! bounded whatever the size of the result.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use tokio::sync::futures::Notified;

use super::feed::{FeedHandle, FeedReader};
use super::shared::Shared;
use super::Client;
use crate::connection::is_stale;
use crate::notification::Notification;
use crate::row::Row;
use crate::statement::{Column, Statement};
use crate::Error;

/// The rows of one query on a [`Client`], as they arrive: from
/// [`Client::query_raw`] (tokio-postgres's `RowStream`). A [`Stream`]; it owns
/// what it needs (`'static`), so it can move to another task.
///
/// The driver puts rows into a queue of a few hundred; while the queue is full it
/// stops reading the socket, and the server waits. A result of any size thus takes
/// bounded memory however slowly it is read, but the requests of other tasks queued
/// behind it wait too: read it to its end (or drop it) promptly.
///
/// Dropping it before its end is safe: the driver reads the rest of the result and
/// discards it, without building the rows.
pub struct ClientRowStream {
    rows: FeedReader<Row>,
    columns: Arc<[Column]>,
    /// The statement bound, kept open until the result ends.
    _statement: Statement,
    /// The statement came from the shared cache (a stale one clears it).
    cached: bool,
    shared: Arc<Shared>,
}

impl ClientRowStream {
    pub(super) fn new(
        feed: FeedHandle<Row>,
        statement: Statement,
        columns: Arc<[Column]>,
        cached: bool,
        shared: Arc<Shared>,
    ) -> ClientRowStream {
        ClientRowStream {
            rows: FeedReader::new(feed),
            columns,
            _statement: statement,
            cached,
            shared,
        }
    }

    /// The result columns.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The row count of the command tag, once the stream has ended without error.
    pub fn rows_affected(&self) -> Option<u64> {
        self.rows.rows_affected()
    }

    /// The next row; `None` at the end. The same as the [`Stream`]
    /// implementation's, for use without the `futures` crate. Cancel-safe.
    #[allow(clippy::should_implement_trait)]
    pub async fn next(&mut self) -> Option<Result<Row, Error>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl Stream for ClientRowStream {
    type Item = Result<Row, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let item = ready!(this.rows.poll_next(cx));
        if let Some(Err(e)) = &item {
            if this.cached && is_stale(e) {
                let dropped = this.shared.lock().cache.clear();
                drop(dropped);
            }
        }
        Poll::Ready(item)
    }
}

impl fmt::Debug for ClientRowStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientRowStream")
            .field("columns", &self.columns)
            .field("done", &self.rows.is_done())
            .finish_non_exhaustive()
    }
}

/// A `COPY ... TO STDOUT` on a [`Client`], from [`Client::copy_out`]: a [`Stream`]
/// of the data in the chunks the server sends (one row each, for text and csv),
/// each a shared slice of what was read. Bounded as a [`ClientRowStream`] is, and
/// safe to drop before its end in the same way.
pub struct ClientCopyOut {
    chunks: FeedReader<Bytes>,
}

impl ClientCopyOut {
    /// Waits for the server's CopyOutResponse.
    pub(super) async fn start(feed: FeedHandle<Bytes>) -> Result<ClientCopyOut, Error> {
        let not_a_copy = || Error::copy("the statement did not start a COPY TO STDOUT");
        std::future::poll_fn(|cx| feed.poll_started(cx, not_a_copy)).await?;
        Ok(ClientCopyOut {
            chunks: FeedReader::new(feed),
        })
    }

    /// The number of rows copied, once the stream has ended without error.
    pub fn rows_affected(&self) -> Option<u64> {
        self.chunks.rows_affected()
    }

    /// The next chunk; `None` at the end. The same as the [`Stream`]
    /// implementation's. Cancel-safe.
    #[allow(clippy::should_implement_trait)]
    pub async fn next(&mut self) -> Option<Result<Bytes, Error>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl Stream for ClientCopyOut {
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().chunks.poll_next(cx)
    }
}

impl fmt::Debug for ClientCopyOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCopyOut")
            .field("done", &self.chunks.is_done())
            .finish_non_exhaustive()
    }
}

/// The notifications a [`Client`] receives, from [`Client::notifications`]: a
/// [`Stream`] of what [`Client::notification`] waits for. Several may be polled
/// at once; each notification goes to one of them. When the connection closes the
/// stream gives its error once, then ends.
pub struct ClientNotifications<'a> {
    client: &'a Client,
    /// Registered before the queue is looked at, so no wake-up is missed. Boxed
    /// (a `Notified` must not move once polled); made only when the queue is empty.
    waiting: Option<Pin<Box<Notified<'a>>>>,
    ended: bool,
}

impl<'a> ClientNotifications<'a> {
    pub(super) fn new(client: &'a Client) -> ClientNotifications<'a> {
        ClientNotifications {
            client,
            waiting: None,
            ended: false,
        }
    }
}

impl Stream for ClientNotifications<'_> {
    type Item = Result<Notification, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        loop {
            let waiting = this.waiting.get_or_insert_with(|| {
                let mut notified = Box::pin(this.client.shared.notified.notified());
                notified.as_mut().enable();
                notified
            });
            {
                let mut state = this.client.shared.lock();
                if let Some(n) = state.notifications.pop_front() {
                    this.waiting = None;
                    return Poll::Ready(Some(Ok(n)));
                }
                if let Err(e) = state.check_open() {
                    this.ended = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
            ready!(waiting.as_mut().poll(cx));
            this.waiting = None;
        }
    }
}

impl fmt::Debug for ClientNotifications<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientNotifications")
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}
