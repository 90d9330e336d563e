//! [`Pool`]: shared [`Client`]s handed out to tasks one at a time, each reset at
//! release to a clean session (the core's rule: [`ferropg_core::reset`]).

mod builder;
mod members;

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use builder::Settings;
pub use builder::{HookFuture, PoolBuilder};
use members::{Member, Place};

use crate::{Client, Config, Error};

/// A pool of connections, each a [`Client`], for tasks that take one, use it and
/// give it back. Cloning a `Pool` is cheap: the clones share the connections.
///
/// [`acquire`](Pool::acquire) waits for a connection (first come, first served),
/// opening one when none is idle and fewer than `max_size` are open. Dropping the
/// [`PooledClient`] it returns releases it: in the background, the session is
/// reset (only what it may have changed: see [`ResetPolicy`](crate::ResetPolicy))
/// and goes back to the idle list, or is closed if the reset failed, it has run
/// `max_queries` requests, or the pool has moved on
/// ([`expire_connections`](Pool::expire_connections)).
///
/// **Cancel-safe.** An acquire dropped while it waits or connects leaves nothing
/// behind. A task dropped while it holds a connection releases it as above; a
/// request it left in flight is cancelled first (nobody else uses the connection
/// by then) and the reset waits for its end, so the next user never sees it. The
/// pool never holds more than `max_size` connections.
///
/// **Behind pgbouncer** the pool switches all its clients to
/// [`pooler_mode`](Client::pooler_mode) once one of them finds the pooler, and its
/// release then only ends an open transaction (a reset there would reach another
/// client's server session).
///
/// **Routing.** Connections are opened with the pool's [`Config`], so
/// `target_session_attrs` picks the server of each new connection. A connection
/// already open is not checked again: after a failover, those to the old
/// primary fail and are replaced as they are used.
///
/// ```no_run
/// # async fn f() -> Result<(), ferropg::Error> {
/// let config: ferropg::Config = "postgresql://postgres@localhost/postgres".parse()?;
/// let pool = ferropg::Pool::builder(config).max_size(4).build().await?;
/// let mut tasks = Vec::new();
/// for i in 0..100i64 {
///     let pool = pool.clone();
///     tasks.push(tokio::spawn(async move {
///         let client = pool.acquire().await?;
///         let row = client.query_one("select $1::int8 + 1", &[&i]).await?;
///         Ok::<i64, ferropg::Error>(row.get(0))
///     }));
/// }
/// for (i, task) in tasks.into_iter().enumerate() {
///     assert_eq!(task.await.unwrap()?, i as i64 + 1);
/// }
/// pool.close().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

/// What a pool's handles, its checked-out clients and its background work share.
struct Inner {
    config: Config,
    settings: Settings,
    /// One permit per connection that may be checked out (or being released).
    permits: Arc<Semaphore>,
    /// Idle connections, the most recently used last (taken first, so that the
    /// others age out).
    idle: Mutex<Vec<Member>>,
    open: Arc<AtomicUsize>,
    generation: AtomicU64,
    /// One of its clients met a transaction-mode pooler: all of them bind their
    /// statements unnamed (see [`Client::enter_pooler_mode`]).
    behind_pooler: AtomicBool,
    closed: AtomicBool,
    /// Where releases and the upkeep run (a `PooledClient` may be dropped outside
    /// any runtime).
    runtime: Handle,
}

impl Pool {
    /// Options for a pool on `config`: see [`PoolBuilder`].
    pub fn builder(config: Config) -> PoolBuilder {
        PoolBuilder::new(config)
    }

    /// A pool on `config` with the default knobs.
    pub async fn new(config: Config) -> Result<Pool, Error> {
        PoolBuilder::new(config).build().await
    }

    /// Starts a pool built and checked by `builder`.
    async fn start(builder: PoolBuilder) -> Result<Pool, Error> {
        let max = builder.settings.max_size;
        let inner = Arc::new(Inner {
            config: builder.config,
            settings: builder.settings,
            permits: Arc::new(Semaphore::new(max)),
            idle: Mutex::new(Vec::with_capacity(max)),
            open: Arc::new(AtomicUsize::new(0)),
            generation: AtomicU64::new(0),
            behind_pooler: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            runtime: Handle::current(),
        });
        let mut opening = tokio::task::JoinSet::new();
        for _ in 0..inner.settings.min_size {
            let inner = Arc::clone(&inner);
            opening.spawn(async move { inner.open_member().await });
        }
        while let Some(opened) = opening.join_next().await {
            let member = opened.map_err(|e| Error::closed(format!("opening failed: {e}")))??;
            inner.put_idle(member);
        }
        tokio::spawn(upkeep(Arc::downgrade(&inner)));
        Ok(Pool { inner })
    }

    /// Waits for a connection and returns it, opening one when none is idle and
    /// the pool is not full. An idle connection that is closed (or, idle longer
    /// than `ping_after_idle`, fails an empty query) is dropped and the next one
    /// tried. Fails if opening a connection fails, if the `setup` hook fails, or
    /// (kind [`Closed`](crate::ErrorKind::Closed)) once the pool is closed.
    ///
    /// Cancel-safe; for a time limit, wrap it in `tokio::time::timeout`.
    pub async fn acquire(&self) -> Result<PooledClient, Error> {
        let inner = &self.inner;
        // Not queued behind a close that waits for the checked-out clients.
        if inner.closed.load(Ordering::Acquire) {
            return Err(closed_pool());
        }
        let mut permit = Arc::clone(&inner.permits)
            .acquire_owned()
            .await
            .map_err(|_| closed_pool())?;
        let pooled = loop {
            if inner.closed.load(Ordering::Acquire) {
                return Err(closed_pool());
            }
            let Some(member) = inner.take_idle() else {
                let member = inner.open_member().await?;
                break inner.lend(member, permit);
            };
            let ping = inner
                .settings
                .ping_after_idle
                .is_some_and(|after| member.idle_since.elapsed() >= after);
            let pooled = inner.lend(member, permit);
            if !ping || pooled.ping().await {
                break pooled;
            }
            permit = pooled.discard();
        };
        if let Some(setup) = &inner.settings.setup {
            setup(&pooled).await?;
        }
        Ok(pooled)
    }

    /// How many connections are open: idle, checked out, or being reset.
    pub fn size(&self) -> usize {
        self.inner.open.load(Ordering::Acquire)
    }

    /// How many connections sit idle.
    pub fn idle_count(&self) -> usize {
        self.inner.lock_idle().len()
    }

    /// The pool's `min_size`.
    pub fn min_size(&self) -> usize {
        self.inner.settings.min_size
    }

    /// The pool's `max_size`.
    pub fn max_size(&self) -> usize {
        self.inner.settings.max_size
    }

    /// Replaces every connection: idle ones are closed now, checked-out ones at
    /// their release (asyncpg's `expire_connections`; use it after changing the
    /// server's settings or the schema under the statement caches).
    pub fn expire_connections(&self) {
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        let expired = std::mem::take(&mut *self.inner.lock_idle());
        drop(expired);
    }

    /// Closes the pool: acquires fail from now on, idle connections are closed,
    /// and this waits until every checked-out connection has been released (and
    /// closed).
    pub async fn close(&self) {
        let inner = &self.inner;
        if inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let max = u32::try_from(inner.settings.max_size).unwrap_or(u32::MAX);
        let all = inner.permits.acquire_many(max).await;
        inner.permits.close();
        drop(all);
        let idle = std::mem::take(&mut *inner.lock_idle());
        drop(idle);
    }

    /// True once [`close`](Pool::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }
}

impl Inner {
    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Member>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The most recently used idle connection that may still serve.
    fn take_idle(&self) -> Option<Member> {
        let generation = self.generation.load(Ordering::Acquire);
        let mut idle = self.lock_idle();
        while let Some(mut member) = idle.pop() {
            if member.generation == generation
                && !member.client.is_closed()
                && !member.reset_failed()
            {
                return Some(member);
            }
        }
        None
    }

    fn put_idle(&self, mut member: Member) {
        member.idle_since = Instant::now();
        self.lock_idle().push(member);
    }

    /// Opens a connection and runs the `init` hook on it.
    async fn open_member(&self) -> Result<Member, Error> {
        let place = Place::take(&self.open);
        let client = Client::connect(&self.config).await?;
        if let Some(init) = &self.settings.init {
            init(&client).await?;
        }
        let generation = self.generation.load(Ordering::Acquire);
        Ok(Member::new(client, generation, place))
    }

    fn lend(self: &Arc<Self>, member: Member, permit: OwnedSemaphorePermit) -> PooledClient {
        if self.behind_pooler.load(Ordering::Acquire) {
            member.client.enter_pooler_mode();
        }
        PooledClient {
            member: Some(member),
            permit: Some(permit),
            pool: Arc::clone(self),
        }
    }

    /// A released connection: reset, then back to the idle list, or closed.
    async fn release(self: Arc<Self>, mut member: Member, permit: OwnedSemaphorePermit) {
        if self.keeps(&mut member).await {
            self.put_idle(member);
        } else {
            drop(member);
        }
        // Only now may a waiting acquire go on: it finds the connection idle.
        drop(permit);
    }

    /// Whether a released connection may serve again, once reset.
    async fn keeps(&self, member: &mut Member) -> bool {
        let s = &self.settings;
        if self.closed.load(Ordering::Acquire)
            || member.generation != self.generation.load(Ordering::Acquire)
            || member.client.is_closed()
            || member.reset_failed()
        {
            return false;
        }
        if member.client.pooler_mode() {
            self.behind_pooler.store(true, Ordering::Release);
        }
        let reset = member.client.reset_session(s.reset);
        match tokio::time::timeout(s.release_timeout, reset).await {
            Ok(Ok(deferred)) => {
                if deferred.is_some() {
                    member.deferred = deferred;
                }
            }
            Ok(Err(_)) | Err(_) => return false,
        }
        member.client.requests_written() < s.max_queries
    }

    /// Drops idle connections that died, closes those beyond `min_size` that sat
    /// idle too long, and opens connections up to `min_size`.
    async fn upkeep_once(self: &Arc<Self>) {
        // Connections that died while idle make room for new ones.
        let dead: Vec<Member> = {
            let mut idle = self.lock_idle();
            let (dead, alive) = std::mem::take(&mut *idle)
                .into_iter()
                .partition(|m| m.client.is_closed());
            *idle = alive;
            dead
        };
        drop(dead);
        if let Some(lifetime) = self.settings.max_inactive_lifetime {
            let expired = {
                let mut idle = self.lock_idle();
                let mut surplus = self
                    .open
                    .load(Ordering::Acquire)
                    .saturating_sub(self.settings.min_size);
                let mut expired = Vec::new();
                // Oldest first: the front of the list went idle first.
                while surplus > 0
                    && idle
                        .first()
                        .is_some_and(|m| m.idle_since.elapsed() >= lifetime)
                {
                    expired.push(idle.remove(0));
                    surplus -= 1;
                }
                expired
            };
            drop(expired);
        }
        while !self.closed.load(Ordering::Acquire)
            && self.open.load(Ordering::Acquire) < self.settings.min_size
        {
            let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() else {
                return;
            };
            match self.open_member().await {
                Ok(member) => self.put_idle(member),
                // Tried again at the next round.
                Err(_) => return,
            }
            drop(permit);
        }
    }
}

/// How often the background upkeep runs.
const UPKEEP_EVERY: Duration = Duration::from_secs(1);

/// The pool's background work, for as long as the pool exists.
async fn upkeep(pool: Weak<Inner>) {
    loop {
        tokio::time::sleep(UPKEEP_EVERY).await;
        let Some(inner) = pool.upgrade() else {
            return;
        };
        if inner.closed.load(Ordering::Acquire) {
            return;
        }
        inner.upkeep_once().await;
    }
}

fn closed_pool() -> Error {
    Error::closed("the pool is closed")
}

/// A connection checked out of a [`Pool`]: a [`Client`] (through `Deref`; `&mut`
/// for [`transaction`](Client::transaction)). Dropping it releases it to the pool.
pub struct PooledClient {
    member: Option<Member>,
    permit: Option<OwnedSemaphorePermit>,
    pool: Arc<Inner>,
}

impl PooledClient {
    /// Takes the connection out of the pool for good: it is the caller's, and the
    /// pool may open another in its place.
    pub fn detach(mut self) -> Client {
        let member = self.member.take().expect("a checked-out client");
        member.into_client()
    }

    /// An empty query: whether the connection still answers (within the
    /// config's `connect_timeout`, or 10 s: a link gone dark never answers).
    async fn ping(&self) -> bool {
        let limit = self.pool.config.get_connect_timeout();
        let answer = self.batch_execute("");
        let answered = tokio::time::timeout(limit.unwrap_or(Duration::from_secs(10)), answer);
        matches!(answered.await, Ok(Ok(())))
    }

    /// Closes the connection instead of releasing it; returns the permit.
    fn discard(mut self) -> OwnedSemaphorePermit {
        self.member = None;
        self.permit
            .take()
            .expect("a checked-out client holds a permit")
    }

    fn client(&self) -> &Client {
        &self.member.as_ref().expect("a checked-out client").client
    }
}

impl Deref for PooledClient {
    type Target = Client;

    fn deref(&self) -> &Client {
        self.client()
    }
}

impl DerefMut for PooledClient {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.member.as_mut().expect("a checked-out client").client
    }
}

impl Drop for PooledClient {
    fn drop(&mut self) {
        let (Some(member), Some(permit)) = (self.member.take(), self.permit.take()) else {
            return;
        };
        let pool = Arc::clone(&self.pool);
        // On a runtime that is shutting down the task is dropped, and the
        // connection with it.
        self.pool.runtime.spawn(pool.release(member, permit));
    }
}

impl std::fmt::Debug for PooledClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledClient")
            .field("backend_pid", &self.backend_pid())
            .finish()
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("size", &self.size())
            .field("idle", &self.idle_count())
            .field("max_size", &self.max_size())
            .finish()
    }
}
