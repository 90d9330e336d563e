//! The statement-cache handle: the connection's cached statements (the core's LRU
//! with a lifetime), keyed by query text and result variant, and the statements
//! waiting to be closed on the server with the next request.

use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::BytesMut;
use ferropg_core::message::frontend::{self, EncodeError};
use ferropg_core::statement_cache::{Lookup, StatementCache};
use pyo3::prelude::*;
use pyo3::types::PyType;

use crate::statement::Statement;

/// The statement cache key: the query text alone for the connection's own record class
/// without `ignore_custom_codec` (so the hot path looks it up by `&str`), else the text
/// followed by NUL and the variant. PostgreSQL rejects NUL in query text, so no query
/// can collide with a variant's key.
type CacheKey = String;

fn variant_key(sql: &str, cls: usize, own: usize, icc: bool) -> CacheKey {
    if cls == own && !icc {
        sql.to_owned()
    } else {
        format!("{sql}\0{cls:x}\0{}", u8::from(icc))
    }
}

/// A lookup's result owning what it found (so the cache is free to change):
/// `Ok` with the hit or nothing, `Err` with an expired statement.
fn owned(
    py: Python<'_>,
    found: Lookup<'_, Py<Statement>>,
) -> Result<Option<Py<Statement>>, Py<Statement>> {
    match found {
        Lookup::Hit(s) => Ok(Some(s.clone_ref(py))),
        Lookup::Miss => Ok(None),
        Lookup::Expired(old) => Err(old),
    }
}

/// A connection's statements: the cache and the queue of statements to close.
pub(super) struct Statements {
    cache: StatementCache<CacheKey, Py<Statement>>,
    /// Statements to close on the server with the next request.
    to_close: Vec<Py<Statement>>,
    /// The connection's own record class (the variant whose key is the bare text).
    record_class: Py<PyType>,
    clock: Instant,
}

impl Statements {
    pub(super) fn new(max_size: usize, max_lifetime: f64, record_class: Py<PyType>) -> Self {
        Statements {
            cache: StatementCache::new(max_size, max_lifetime),
            to_close: Vec::new(),
            record_class,
            clock: Instant::now(),
        }
    }

    /// The connection's own record class.
    pub(super) fn record_class(&self, py: Python<'_>) -> Py<PyType> {
        self.record_class.clone_ref(py)
    }

    fn now(&self) -> f64 {
        self.clock.elapsed().as_secs_f64()
    }

    fn key(
        &self,
        py: Python<'_>,
        sql: &str,
        record_class: Option<&Bound<'_, PyType>>,
        icc: bool,
    ) -> CacheKey {
        let own = self.record_class.bind(py).as_ptr() as usize;
        let cls = record_class.map_or(own, |c| c.as_ptr() as usize);
        variant_key(sql, cls, own, icc)
    }

    /// The live statement a lookup found; an expired one is retired.
    fn settle(
        &mut self,
        found: Result<Option<Py<Statement>>, Py<Statement>>,
    ) -> Option<Py<Statement>> {
        match found {
            Ok(hit) => hit,
            Err(expired) => {
                self.retire(expired);
                None
            }
        }
    }

    /// The hot path's lookup: the statement of `sql` for the connection's own
    /// record class, without building a key.
    pub(super) fn get_own(&mut self, py: Python<'_>, sql: &str) -> Option<Py<Statement>> {
        let now = self.now();
        let found = owned(py, self.cache.get_borrowed(sql, now));
        self.settle(found)
    }

    /// The statement cached for `sql` in this variant, if any.
    pub(super) fn get(
        &mut self,
        py: Python<'_>,
        sql: &str,
        record_class: Option<&Bound<'_, PyType>>,
        icc: bool,
    ) -> Option<Py<Statement>> {
        let key = self.key(py, sql, record_class, icc);
        let now = self.now();
        let found = owned(py, self.cache.get(&key, now));
        self.settle(found)
    }

    /// Caches `stmt` under its query, retiring what it pushes out.
    pub(super) fn put(
        &mut self,
        py: Python<'_>,
        stmt: Py<Statement>,
        record_class: Option<&Bound<'_, PyType>>,
        icc: bool,
    ) {
        let key = self.key(py, &stmt.get().query, record_class, icc);
        let now = self.now();
        stmt.get().cached.store(true, Ordering::Relaxed);
        let keep = stmt.clone_ref(py);
        for old in self.cache.put(key, stmt, now) {
            if !old.is(&keep) {
                self.retire(old);
            } else {
                old.get().cached.store(false, Ordering::Relaxed);
            }
        }
    }

    /// Takes a statement out of service: closed on the server with the next request,
    /// unless a PreparedStatement still holds it (it then goes when released).
    pub(super) fn retire(&mut self, stmt: Py<Statement>) {
        let st = stmt.get();
        st.cached.store(false, Ordering::Relaxed);
        if st.unreferenced() && !st.is_closed() {
            st.closed.store(true, Ordering::Relaxed);
            self.to_close.push(stmt);
        }
    }

    /// A PreparedStatement let go of `stmt`: close it unless the cache keeps it.
    pub(super) fn release(&mut self, stmt: Py<Statement>) {
        let st = stmt.get();
        if st.unreferenced() && !st.cached.load(Ordering::Relaxed) && !st.is_closed() {
            st.closed.store(true, Ordering::Relaxed);
            self.to_close.push(stmt);
        }
    }

    /// Closes `stmt` on the server with the next request, taking it out of the cache.
    pub(super) fn close(&mut self, py: Python<'_>, stmt: Py<Statement>) {
        let st = stmt.get();
        if st.cached.load(Ordering::Relaxed) {
            let key = variant_key(
                &st.query,
                st.record_class.bind(py).as_ptr() as usize,
                self.record_class.bind(py).as_ptr() as usize,
                false,
            );
            if self.cache.peek(&key).is_some_and(|s| s.is(&stmt)) {
                self.cache.remove(&key);
            }
            st.cached.store(false, Ordering::Relaxed);
        }
        if !st.is_closed() {
            st.closed.store(true, Ordering::Relaxed);
            self.to_close.push(stmt);
        }
    }

    /// Writes Close for every statement waiting to be closed.
    pub(super) fn write_closes(&mut self, out: &mut BytesMut) -> Result<(), EncodeError> {
        for stmt in self.to_close.drain(..) {
            let name = &stmt.get().name;
            if !name.is_empty() {
                frontend::close(b'S', name, out)?;
            }
        }
        Ok(())
    }

    /// The statements waiting to be closed.
    pub(super) fn pending_closes(&self, py: Python<'_>) -> Vec<Py<Statement>> {
        self.to_close.iter().map(|s| s.clone_ref(py)).collect()
    }

    /// Forgets the statements waiting to be closed (the session is gone, or reset).
    pub(super) fn discard_pending_closes(&mut self) {
        self.to_close.clear();
    }

    pub(super) fn len(&self) -> usize {
        self.cache.len()
    }

    pub(super) fn max_size(&self) -> usize {
        self.cache.max_size()
    }

    /// Changes the size limit, retiring what no longer fits.
    pub(super) fn set_max_size(&mut self, size: usize) {
        for old in self.cache.set_max_size(size) {
            self.retire(old);
        }
    }

    pub(super) fn max_lifetime(&self) -> f64 {
        self.cache.max_lifetime()
    }

    pub(super) fn set_max_lifetime(&mut self, seconds: f64) {
        self.cache.set_max_lifetime(seconds);
    }

    /// The cached statements, least recently used first.
    pub(super) fn values(&self, py: Python<'_>) -> Vec<Py<Statement>> {
        self.cache.values().map(|s| s.clone_ref(py)).collect()
    }

    /// Empties the cache, retiring its statements.
    pub(super) fn clear(&mut self) {
        for old in self.cache.clear() {
            self.retire(old);
        }
    }
}
