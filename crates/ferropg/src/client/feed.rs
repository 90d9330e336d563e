//! [`Feed`]: the bounded queue between a [`Client`](super::Client)'s driver and
//! one streaming request's consumer (a row stream, a COPY OUT).
//!
//! The driver puts items in; once the queue holds [`FEED_CAPACITY`] of them it
//! stops reading the socket (the server then waits, its send buffer full), and the
//! consumer wakes it when it takes them. So a slow consumer holds at most about
//! two queues' worth of items in memory (the queue, and the batch it took), plus
//! what the kernel buffers, whatever the size of the result. The requests queued
//! behind a stalled stream wait for it, as on any pipelined connection.
//!
//! The consumer takes everything queued in one swap, so each side takes the lock
//! about once per batch, not once per item.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{ready, Context, Poll, Waker};

use crate::Error;

/// How many items a feed holds before the driver stops reading.
pub(crate) const FEED_CAPACITY: usize = 256;

/// How a stream ends: the row count of its command tag, or its error.
pub(crate) type End = Result<u64, Error>;

/// One streaming request's queue.
pub(crate) struct Feed<T> {
    state: Mutex<FeedState<T>>,
}

struct FeedState<T> {
    items: VecDeque<T>,
    /// A COPY TO STDOUT began (CopyOutResponse).
    started: bool,
    /// Set at the request's ReadyForQuery; taken by the consumer.
    end: Option<End>,
    /// The end was set (and may have been taken).
    ended: bool,
    /// The consumer, waiting for items.
    consumer: Option<Waker>,
    /// The driver, waiting for room.
    driver: Option<Waker>,
    /// The consumer went away: items are dropped, the driver never waits.
    closed: bool,
}

/// What the consumer found.
pub(crate) enum Taken {
    /// Items were moved into its buffer.
    Items,
    /// The request ended (after every item was taken).
    End(End),
}

/// Replaces `slot` with `waker` unless it would wake the same task.
fn store(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(w) if w.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}

impl<T> Feed<T> {
    pub(crate) fn new() -> Arc<Feed<T>> {
        Arc::new(Feed {
            state: Mutex::new(FeedState {
                items: VecDeque::new(),
                started: false,
                end: None,
                ended: false,
                consumer: None,
                driver: None,
                closed: false,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, FeedState<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    // ---------------------------------------------------------------- driver

    /// How many more items the queue takes now; `None` once the consumer left.
    pub(crate) fn room(&self) -> Option<usize> {
        let state = self.lock();
        (!state.closed).then(|| FEED_CAPACITY.saturating_sub(state.items.len()))
    }

    /// Moves `batch` into the queue; returns the consumer to wake.
    pub(crate) fn push(&self, batch: &mut Vec<T>) -> Option<Waker> {
        let mut state = self.lock();
        if state.closed {
            batch.clear();
            return None;
        }
        state.items.extend(batch.drain(..));
        state.consumer.take()
    }

    /// Notes that the COPY began; returns the consumer to wake.
    pub(crate) fn start(&self) -> Option<Waker> {
        let mut state = self.lock();
        state.started = true;
        state.consumer.take()
    }

    /// Ends the feed (once; later calls do nothing) and wakes the consumer.
    pub(crate) fn end(&self, end: End) {
        let waker = {
            let mut state = self.lock();
            if state.ended {
                return;
            }
            state.ended = true;
            state.end = Some(end);
            state.consumer.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// True while the queue is full and its consumer still there: the driver
    /// must not read, and is woken through `waker` once there is room.
    pub(crate) fn full(&self, waker: &Waker) -> bool {
        let mut state = self.lock();
        if state.closed || state.items.len() < FEED_CAPACITY {
            return false;
        }
        store(&mut state.driver, waker);
        true
    }

    // -------------------------------------------------------------- consumer

    /// Moves every queued item into `into` (which must be empty), or takes the
    /// end once all were taken; otherwise waits.
    pub(crate) fn poll_take(&self, cx: &mut Context<'_>, into: &mut VecDeque<T>) -> Poll<Taken> {
        let (taken, driver) = {
            let mut state = self.lock();
            if !state.items.is_empty() {
                std::mem::swap(into, &mut state.items);
                (Taken::Items, state.driver.take())
            } else if let Some(end) = state.end.take() {
                (Taken::End(end), None)
            } else if state.ended {
                // Taken before: nothing more comes.
                (Taken::End(Ok(0)), None)
            } else {
                store(&mut state.consumer, cx.waker());
                return Poll::Pending;
            }
        };
        if let Some(driver) = driver {
            driver.wake();
        }
        Poll::Ready(taken)
    }

    /// Waits until the COPY began; its error (or `not_started`'s) if the request
    /// ended without one.
    pub(crate) fn poll_started(
        &self,
        cx: &mut Context<'_>,
        not_started: impl FnOnce() -> Error,
    ) -> Poll<Result<(), Error>> {
        let mut state = self.lock();
        if state.started {
            return Poll::Ready(Ok(()));
        }
        match state.end.take() {
            Some(Err(e)) => Poll::Ready(Err(e)),
            Some(Ok(_)) => Poll::Ready(Err(not_started())),
            None if state.ended => Poll::Ready(Err(not_started())),
            None => {
                store(&mut state.consumer, cx.waker());
                Poll::Pending
            }
        }
    }

    /// The consumer leaves: what is queued is dropped, and the driver, should it
    /// wait for room, goes on.
    fn close(&self) {
        let (items, driver) = {
            let mut state = self.lock();
            state.closed = true;
            (std::mem::take(&mut state.items), state.driver.take())
        };
        drop(items);
        if let Some(driver) = driver {
            driver.wake();
        }
    }
}

/// The consumer's hold on a feed: dropping it tells the driver to discard the
/// rest.
pub(crate) struct FeedHandle<T>(Arc<Feed<T>>);

impl<T> FeedHandle<T> {
    pub(crate) fn new() -> FeedHandle<T> {
        FeedHandle(Feed::new())
    }

    /// The driver's end.
    pub(crate) fn sender(&self) -> FeedTx<T> {
        FeedTx(Arc::clone(&self.0))
    }
}

impl<T> std::ops::Deref for FeedHandle<T> {
    type Target = Feed<T>;

    fn deref(&self) -> &Feed<T> {
        &self.0
    }
}

impl<T> Drop for FeedHandle<T> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The consumer's side of a feed as a stream: the items in order, then the end
/// (the row count kept, or the error as the last item). The result streams read
/// through it.
pub(crate) struct FeedReader<T> {
    feed: FeedHandle<T>,
    /// Items taken from the queue in one batch.
    taken: VecDeque<T>,
    rows_affected: Option<u64>,
    done: bool,
}

impl<T> FeedReader<T> {
    pub(crate) fn new(feed: FeedHandle<T>) -> FeedReader<T> {
        FeedReader {
            feed,
            taken: VecDeque::new(),
            rows_affected: None,
            done: false,
        }
    }

    /// The row count of the command tag, once the feed ended without error.
    pub(crate) fn rows_affected(&self) -> Option<u64> {
        self.rows_affected
    }

    /// Whether the end was read.
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// The next item; `None` after the end.
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, Error>>> {
        loop {
            if let Some(item) = self.taken.pop_front() {
                return Poll::Ready(Some(Ok(item)));
            }
            if self.done {
                return Poll::Ready(None);
            }
            match ready!(self.feed.poll_take(cx, &mut self.taken)) {
                Taken::Items => {}
                Taken::End(end) => {
                    self.done = true;
                    match end {
                        Ok(n) => self.rows_affected = Some(n),
                        Err(e) => return Poll::Ready(Some(Err(e))),
                    }
                }
            }
        }
    }
}

/// The driver's hold on a feed: dropped before the feed ended (the request was
/// dropped unanswered, the connection having closed), it ends the feed with an
/// error rather than leave its consumer waiting forever.
pub(crate) struct FeedTx<T>(Arc<Feed<T>>);

impl<T> std::ops::Deref for FeedTx<T> {
    type Target = Arc<Feed<T>>;

    fn deref(&self) -> &Arc<Feed<T>> {
        &self.0
    }
}

impl<T> Drop for FeedTx<T> {
    fn drop(&mut self) {
        self.0.end(Err(Error::closed(
            "the connection closed before the end of the result",
        )));
    }
}

/// What the driver gathers for one feed while it hands the core a chunk of
/// input: items are moved into the queue in batches, at most as many as it has
/// room for.
pub(crate) struct Stage<T> {
    feed: Option<Arc<Feed<T>>>,
    items: Vec<T>,
    room: usize,
}

impl<T> Default for Stage<T> {
    fn default() -> Self {
        Stage {
            feed: None,
            items: Vec::new(),
            room: 0,
        }
    }
}

impl<T> Stage<T> {
    /// Gets ready to stage items for `feed`; false when its consumer left (the
    /// item need not even be built).
    pub(crate) fn begin(&mut self, feed: &Arc<Feed<T>>, wake: &mut Vec<Waker>) -> bool {
        if !self.feed.as_ref().is_some_and(|f| Arc::ptr_eq(f, feed)) {
            self.flush(wake);
            let room = feed.room();
            self.room = room.unwrap_or(0);
            self.feed = room.map(|_| Arc::clone(feed));
        }
        self.feed.is_some()
    }

    /// Stages an item for the feed of the last [`begin`](Stage::begin); true
    /// when the queue is now full (the batch is moved in already).
    pub(crate) fn push(&mut self, item: T, wake: &mut Vec<Waker>) -> bool {
        self.items.push(item);
        self.room = self.room.saturating_sub(1);
        if self.room > 0 {
            return false;
        }
        self.flush(wake);
        true
    }

    /// Moves the staged items into their queue, and forgets the feed (its room is
    /// looked up again next time).
    pub(crate) fn flush(&mut self, wake: &mut Vec<Waker>) {
        if let Some(feed) = self.feed.take() {
            if !self.items.is_empty() {
                wake.extend(feed.push(&mut self.items));
            }
        }
        self.items.clear();
    }
}
