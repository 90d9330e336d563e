//! An LRU of prepared statements with asyncpg's rules: a maximum size, a maximum
//! lifetime counted from insertion (0 = forever), generic over key and value.
//!
//! The caller owns time: every call that can expire entries takes `now` in seconds
//! from any monotonic origin.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

/// Whether an entry inserted at `inserted` is past `max_lifetime` (0: never) at `now`.
fn outlived(max_lifetime: f64, inserted: f64, now: f64) -> bool {
    max_lifetime > 0.0 && now - inserted >= max_lifetime
}

struct Entry<V> {
    value: V,
    inserted: f64,
    tick: u64,
}

/// What a lookup found.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<'a, V> {
    /// A live entry, now the most recently used.
    Hit(&'a V),
    /// Nothing under that key.
    Miss,
    /// The entry outlived the maximum lifetime and was removed; the caller disposes of it.
    Expired(V),
}

/// Whether a statement prepared from SQL text `sql` goes into the cache: the cache
/// is on and the text is at most `max_chars` characters long (0: no limit), as
/// asyncpg's `max_cacheable_statement_size` says. Longer texts are prepared for the
/// one run only, so that a few huge statements cannot crowd out the common ones.
pub fn takes(sql: &str, cache_on: bool, max_chars: usize) -> bool {
    // Bytes are never fewer than characters: the cheap test settles most texts.
    cache_on && (max_chars == 0 || sql.len() <= max_chars || sql.chars().count() <= max_chars)
}

/// The cache.
pub struct StatementCache<K, V> {
    entries: HashMap<K, Entry<V>>,
    order: BTreeMap<u64, K>,
    tick: u64,
    max_size: usize,
    max_lifetime: f64,
}

impl<K: Hash + Eq + Clone, V> StatementCache<K, V> {
    /// A cache of at most `max_size` entries (0 disables caching), each kept at most
    /// `max_lifetime` seconds (0 = no limit).
    pub fn new(max_size: usize, max_lifetime: f64) -> Self {
        StatementCache {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            tick: 0,
            max_size,
            max_lifetime,
        }
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The size limit.
    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// The lifetime limit in seconds (0 = none).
    pub fn max_lifetime(&self) -> f64 {
        self.max_lifetime
    }

    /// Changes the size limit; returns what no longer fits, least recently used first.
    pub fn set_max_size(&mut self, max_size: usize) -> Vec<V> {
        self.max_size = max_size;
        self.shrink()
    }

    /// Changes the lifetime limit; it applies to entries already in the cache.
    pub fn set_max_lifetime(&mut self, seconds: f64) {
        self.max_lifetime = seconds.max(0.0);
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// Looks `key` up and marks it most recently used.
    pub fn get(&mut self, key: &K, now: f64) -> Lookup<'_, V> {
        self.get_borrowed(key, now)
    }

    /// [`get`](StatementCache::get) with a borrowed form of the key (a `&str` for a
    /// `String` key), so that a lookup needs no owned key.
    ///
    /// ```
    /// use ferropg_core::statement_cache::{Lookup, StatementCache};
    ///
    /// let mut c: StatementCache<String, u32> = StatementCache::new(4, 0.0);
    /// c.put("select 1".to_owned(), 7, 0.0);
    /// assert_eq!(c.get_borrowed("select 1", 0.0), Lookup::Hit(&7));
    /// assert_eq!(c.get_borrowed("select 2", 0.0), Lookup::Miss);
    /// ```
    pub fn get_borrowed<Q>(&mut self, key: &Q, now: f64) -> Lookup<'_, V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        let Some(entry) = self.entries.get(key) else {
            return Lookup::Miss;
        };
        if outlived(self.max_lifetime, entry.inserted, now) {
            self.order.remove(&entry.tick);
            return match self.entries.remove(key) {
                Some(e) => Lookup::Expired(e.value),
                None => Lookup::Miss,
            };
        }
        let Some(entry) = self.entries.get_mut(key) else {
            return Lookup::Miss;
        };
        // The most recently used entry stays where it is (a statement run in a loop).
        if entry.tick != self.tick {
            self.tick += 1;
            if let Some(k) = self.order.remove(&entry.tick) {
                self.order.insert(self.tick, k);
            }
            entry.tick = self.tick;
        }
        Lookup::Hit(&entry.value)
    }

    /// Looks `key` up without touching recency or expiry.
    pub fn peek(&self, key: &K) -> Option<&V> {
        self.entries.get(key).map(|e| &e.value)
    }

    /// Inserts (or replaces) an entry; returns the values pushed out: a replaced one and
    /// any least recently used ones beyond the size limit. With a size limit of 0 the
    /// value itself comes straight back.
    pub fn put(&mut self, key: K, value: V, now: f64) -> Vec<V> {
        let mut out = Vec::new();
        if self.max_size == 0 {
            out.push(value);
            return out;
        }
        if let Some(old) = self.remove(&key) {
            out.push(old);
        }
        let tick = self.next_tick();
        self.order.insert(tick, key.clone());
        self.entries.insert(
            key,
            Entry {
                value,
                inserted: now,
                tick,
            },
        );
        out.extend(self.shrink());
        out
    }

    /// Removes one entry.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let entry = self.entries.remove(key)?;
        self.order.remove(&entry.tick);
        Some(entry.value)
    }

    /// Removes every entry that has outlived the lifetime limit.
    pub fn expire(&mut self, now: f64) -> Vec<V> {
        let stale: Vec<K> = self
            .entries
            .iter()
            .filter(|(_, e)| outlived(self.max_lifetime, e.inserted, now))
            .map(|(k, _)| k.clone())
            .collect();
        stale.iter().filter_map(|k| self.remove(k)).collect()
    }

    /// Empties the cache, returning its values.
    pub fn clear(&mut self) -> Vec<V> {
        self.order.clear();
        self.entries.drain().map(|(_, e)| e.value).collect()
    }

    /// The values, least recently used first.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.order
            .values()
            .filter_map(|k| self.entries.get(k).map(|e| &e.value))
    }

    fn shrink(&mut self) -> Vec<V> {
        let mut out = Vec::new();
        while self.entries.len() > self.max_size {
            let Some((_, key)) = self.order.pop_first() else {
                break;
            };
            if let Some(e) = self.entries.remove(&key) {
                out.push(e.value);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_order_and_eviction() {
        let mut c = StatementCache::new(2, 0.0);
        assert!(c.put("a", 1, 0.0).is_empty());
        assert!(c.put("b", 2, 0.0).is_empty());
        assert_eq!(c.get(&"a", 0.0), Lookup::Hit(&1));
        assert_eq!(c.put("c", 3, 0.0), vec![2]);
        assert_eq!(c.values().copied().collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(c.set_max_size(1), vec![1]);
        assert_eq!(c.len(), 1);
        assert_eq!(c.put("c", 4, 0.0), vec![3]);
        assert_eq!(c.set_max_size(0), vec![4]);
        assert_eq!(c.put("d", 5, 0.0), vec![5]);
        assert!(c.is_empty());
    }

    #[test]
    fn repeated_hits_on_the_newest_keep_the_order() {
        let mut c = StatementCache::new(3, 0.0);
        for (k, v) in [("a", 1), ("b", 2), ("c", 3)] {
            assert!(c.put(k, v, 0.0).is_empty());
        }
        for _ in 0..3 {
            assert_eq!(c.get(&"c", 0.0), Lookup::Hit(&3));
        }
        assert_eq!(c.get(&"a", 0.0), Lookup::Hit(&1));
        assert_eq!(c.get(&"a", 0.0), Lookup::Hit(&1));
        // Least recently used first: b, then c.
        assert_eq!(c.put("d", 4, 0.0), vec![2]);
        assert_eq!(c.put("e", 5, 0.0), vec![3]);
        assert_eq!(c.values().copied().collect::<Vec<_>>(), vec![1, 4, 5]);
    }

    #[test]
    fn lifetime_counts_from_insertion() {
        let mut c = StatementCache::new(10, 5.0);
        c.put("a", 1, 100.0);
        assert_eq!(c.get(&"a", 104.0), Lookup::Hit(&1));
        assert_eq!(c.get(&"a", 105.0), Lookup::Expired(1));
        assert_eq!(c.get(&"a", 105.0), Lookup::Miss);
        c.put("b", 2, 100.0);
        c.set_max_lifetime(0.0);
        assert_eq!(c.get(&"b", 1e9), Lookup::Hit(&2));
        c.set_max_lifetime(1.0);
        assert_eq!(c.expire(200.0), vec![2]);
    }

    #[test]
    fn borrowed_lookups_follow_the_same_rules() {
        let mut c: StatementCache<String, i32> = StatementCache::new(2, 5.0);
        c.put("a".to_owned(), 1, 100.0);
        c.put("b".to_owned(), 2, 100.0);
        // A borrowed hit refreshes recency: "b" is now the least recently used.
        assert_eq!(c.get_borrowed("a", 101.0), Lookup::Hit(&1));
        assert_eq!(c.put("c".to_owned(), 3, 102.0), vec![2]);
        assert_eq!(c.get_borrowed("b", 102.0), Lookup::Miss);
        // Lifetime counts from insertion, not from the last hit.
        assert_eq!(c.get_borrowed("a", 104.9), Lookup::Hit(&1));
        assert_eq!(c.get_borrowed("a", 105.0), Lookup::Expired(1));
        assert_eq!(c.get_borrowed("a", 105.0), Lookup::Miss);
        assert_eq!(c.len(), 1);
        assert_eq!(c.values().copied().collect::<Vec<_>>(), vec![3]);
    }

    #[test]
    fn remove_and_clear() {
        let mut c = StatementCache::new(10, 0.0);
        c.put(1, "x", 0.0);
        c.put(2, "y", 0.0);
        assert_eq!(c.remove(&1), Some("x"));
        assert_eq!(c.peek(&2), Some(&"y"));
        assert_eq!(c.clear(), vec!["y"]);
        assert_eq!(c.values().count(), 0);
    }
}
