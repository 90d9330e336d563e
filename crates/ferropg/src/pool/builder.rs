//! [`PoolBuilder`]: a pool's knobs, named and defaulted as the Python face's
//! `create_pool` names them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ferropg_core::reset::ResetPolicy;

use super::Pool;
use crate::{Client, Config, Error};

/// The future a pool hook returns.
pub type HookFuture<'a> = Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'a>>;

/// A hook the pool runs on a client (see [`PoolBuilder::init`] and
/// [`PoolBuilder::setup`]).
pub(super) type Hook = Arc<dyn for<'a> Fn(&'a Client) -> HookFuture<'a> + Send + Sync>;

/// What a pool is made of, beyond its [`Config`].
#[derive(Clone)]
pub(super) struct Settings {
    pub(super) min_size: usize,
    pub(super) max_size: usize,
    pub(super) max_queries: u64,
    pub(super) max_inactive_lifetime: Option<Duration>,
    pub(super) reset: ResetPolicy,
    pub(super) ping_after_idle: Option<Duration>,
    pub(super) release_timeout: Duration,
    pub(super) init: Option<Hook>,
    pub(super) setup: Option<Hook>,
}

/// Builds a [`Pool`]: `Pool::builder(config)`, then the knobs, then
/// [`build`](PoolBuilder::build). The defaults are asyncpg's: 10 connections
/// (opened at once and kept), 50,000 requests before a connection is replaced,
/// 300 s before an idle connection beyond `min_size` is closed, the full reset
/// at every release.
///
/// ```no_run
/// use std::time::Duration;
/// use ferropg::Pool;
///
/// # async fn f() -> Result<(), ferropg::Error> {
/// let config: ferropg::Config = "postgresql://postgres@localhost/postgres".parse()?;
/// let pool = Pool::builder(config)
///     .min_size(2)
///     .max_size(20)
///     .max_inactive_lifetime(Some(Duration::from_secs(60)))
///     .init(|client| Box::pin(async move { client.batch_execute("set jit = off").await }))
///     .build()
///     .await?;
/// let client = pool.acquire().await?;
/// let n: i32 = client.query_one("select 1", &[]).await?.get(0);
/// # Ok(()) }
/// ```
pub struct PoolBuilder {
    pub(super) config: Config,
    pub(super) settings: Settings,
}

impl PoolBuilder {
    pub(super) fn new(config: Config) -> PoolBuilder {
        PoolBuilder {
            config,
            settings: Settings {
                min_size: 10,
                max_size: 10,
                max_queries: 50_000,
                max_inactive_lifetime: Some(Duration::from_secs(300)),
                reset: ResetPolicy::default(),
                ping_after_idle: Some(Duration::from_secs(30)),
                release_timeout: Duration::from_secs(30),
                init: None,
                setup: None,
            },
        }
    }

    /// Connections opened when the pool is built and kept open (replaced in the
    /// background when one is closed). Unlike asyncpg, whose idle connections may
    /// fall below `min_size` after `max_inactive_connection_lifetime`, this pool
    /// keeps `min_size` open, as sqlx and bb8 do.
    pub fn min_size(mut self, n: usize) -> Self {
        self.settings.min_size = n;
        self
    }

    /// The most connections open at once, checked out or not. Must be at least 1
    /// and at least `min_size`.
    pub fn max_size(mut self, n: usize) -> Self {
        self.settings.max_size = n;
        self
    }

    /// A connection that has written this many requests (its resets included) is
    /// closed at its next release and replaced (asyncpg's `max_queries`). At
    /// least 1.
    pub fn max_queries(mut self, n: u64) -> Self {
        self.settings.max_queries = n;
        self
    }

    /// An idle connection beyond `min_size` is closed after sitting idle this long
    /// (asyncpg's `max_inactive_connection_lifetime`); `None` keeps them all.
    pub fn max_inactive_lifetime(mut self, lifetime: Option<Duration>) -> Self {
        self.settings.max_inactive_lifetime = lifetime;
        self
    }

    /// What a release undoes. The default is everything (rollback, advisory locks,
    /// cursors, LISTENs, settings, temporary tables), each only if the session may
    /// have done it: see [`ResetPolicy`]. Turning `advisory_locks` off spares a
    /// round trip per release when the application takes none.
    pub fn reset_policy(mut self, policy: ResetPolicy) -> Self {
        self.settings.reset = policy;
        self
    }

    /// An acquire that finds a connection idle for at least this long first checks
    /// it with an empty query, and moves on to another if it fails; `None` only
    /// checks that the connection is still open. Default: 30 s. (A release's reset
    /// also finds a link that went dark.)
    pub fn ping_after_idle(mut self, idle: Option<Duration>) -> Self {
        self.settings.ping_after_idle = idle;
        self
    }

    /// How long a release's reset may take before the connection is closed
    /// instead of kept. Default: 30 s.
    pub fn release_timeout(mut self, timeout: Duration) -> Self {
        self.settings.release_timeout = timeout;
        self
    }

    /// Runs on each new connection before its first use (asyncpg's `init`); an
    /// error closes the connection and fails the acquire or build that opened it.
    pub fn init<F>(mut self, hook: F) -> Self
    where
        F: for<'a> Fn(&'a Client) -> HookFuture<'a> + Send + Sync + 'static,
    {
        self.settings.init = Some(Arc::new(hook));
        self
    }

    /// Runs on each connection as it is acquired, before
    /// [`acquire`](Pool::acquire) returns it (asyncpg's `setup`); an error releases
    /// the connection and fails the acquire.
    pub fn setup<F>(mut self, hook: F) -> Self
    where
        F: for<'a> Fn(&'a Client) -> HookFuture<'a> + Send + Sync + 'static,
    {
        self.settings.setup = Some(Arc::new(hook));
        self
    }

    /// Checks the knobs, opens `min_size` connections and returns the pool. Must
    /// run inside a tokio runtime, which runs the pool's background work (releases,
    /// keeping `min_size`, closing idle connections).
    pub async fn build(self) -> Result<Pool, Error> {
        let s = &self.settings;
        if s.max_size == 0 {
            return Err(Error::config("max_size must be at least 1"));
        }
        if s.min_size > s.max_size {
            return Err(Error::config("min_size must not exceed max_size"));
        }
        if s.max_queries == 0 {
            return Err(Error::config("max_queries must be at least 1"));
        }
        Pool::start(self).await
    }
}
