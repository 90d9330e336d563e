//! The connections a pool owns: each one's bookkeeping, and the count of those
//! open.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::client::DeferredReset;
use crate::Client;

/// One connection of a pool, wherever it is (idle, checked out, being reset).
/// Dropping it closes the connection and frees its place in the count.
pub(super) struct Member {
    pub(super) client: Client,
    /// The pool's generation when it was opened ([`Pool::expire_connections`]
    /// starts a new one).
    ///
    /// [`Pool::expire_connections`]: super::Pool::expire_connections
    pub(super) generation: u64,
    /// The part of its last reset that rides with its next request.
    pub(super) deferred: Option<DeferredReset>,
    /// When it last went idle.
    pub(super) idle_since: Instant,
    _place: Place,
}

impl Member {
    pub(super) fn new(client: Client, generation: u64, place: Place) -> Member {
        Member {
            client,
            generation,
            deferred: None,
            idle_since: Instant::now(),
            _place: place,
        }
    }

    /// Whether the last deferred reset failed (the session cannot be trusted);
    /// forgets one that succeeded.
    pub(super) fn reset_failed(&mut self) -> bool {
        match self.deferred.as_mut().map(DeferredReset::succeeded) {
            Some(Some(false)) => true,
            Some(Some(true)) => {
                self.deferred = None;
                false
            }
            _ => false,
        }
    }

    /// Leaves the pool: the connection is the caller's, its place is freed.
    pub(super) fn into_client(self) -> Client {
        self.client
    }
}

/// A place in the count of open connections, taken before connecting and given
/// back when dropped (with its connection, or with a connect that failed or was
/// abandoned).
pub(super) struct Place(Arc<AtomicUsize>);

impl Place {
    pub(super) fn take(open: &Arc<AtomicUsize>) -> Place {
        open.fetch_add(1, Ordering::AcqRel);
        Place(Arc::clone(open))
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
