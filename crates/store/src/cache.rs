//! A bounded in-memory cache of loaded aggregates, so a command does not reread the history.
//! Entries may be stale: the append's optimistic concurrency catches that, and the handler then
//! catches up from the cached sequence.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use uuid::Uuid;
use wasl_domain::AggregateKind;

type Key = (AggregateKind, Uuid);

pub(crate) struct Cache {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Key, (u64, Box<dyn Any + Send>)>,
    /// Insertion order with the generation inserted; a stale generation is skipped on eviction.
    order: VecDeque<(Key, u64)>,
    generation: u64,
}

impl Cache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves at worst a stale entry, which OCC catches.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn get<T: Clone + 'static>(&self, key: Key) -> Option<T> {
        self.lock()
            .entries
            .get(&key)
            .and_then(|(_, value)| value.downcast_ref::<T>())
            .cloned()
    }

    pub(crate) fn put<T: Send + 'static>(&self, key: Key, value: T) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.lock();
        inner.generation += 1;
        let generation = inner.generation;
        inner.entries.insert(key, (generation, Box::new(value)));
        inner.order.push_back((key, generation));
        while inner.entries.len() > self.capacity {
            let Some((old, old_generation)) = inner.order.pop_front() else {
                break;
            };
            if inner.entries.get(&old).is_some_and(|(g, _)| *g == old_generation) {
                inner.entries.remove(&old);
            }
        }
        // Keep the order queue from growing without bound when the same keys are rewritten.
        if inner.order.len() > self.capacity.saturating_mul(4).max(64) {
            let entries = &inner.entries;
            let kept: VecDeque<(Key, u64)> = inner
                .order
                .iter()
                .copied()
                .filter(|(k, g)| entries.get(k).is_some_and(|(eg, _)| eg == g))
                .collect();
            inner.order = kept;
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u128) -> Key {
        (AggregateKind::Referral, Uuid::from_u128(n))
    }

    #[test]
    fn the_cache_stays_within_its_capacity_and_evicts_the_oldest() {
        let cache = Cache::new(2);
        cache.put(key(1), 1u32);
        cache.put(key(2), 2u32);
        cache.put(key(3), 3u32);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get::<u32>(key(1)), None);
        assert_eq!(cache.get::<u32>(key(3)), Some(3));
    }

    #[test]
    fn rewriting_a_key_refreshes_it() {
        let cache = Cache::new(2);
        cache.put(key(1), 1u32);
        cache.put(key(2), 2u32);
        cache.put(key(1), 10u32);
        cache.put(key(3), 3u32);
        assert_eq!(cache.get::<u32>(key(1)), Some(10));
        assert_eq!(cache.get::<u32>(key(2)), None);
        for n in 0..1000 {
            cache.put(key(1), n);
        }
        assert!(cache.lock().order.len() <= 64);
    }

    #[test]
    fn a_value_of_another_type_is_a_miss() {
        let cache = Cache::new(2);
        cache.put(key(1), 1u32);
        assert_eq!(cache.get::<u64>(key(1)), None);
    }
}
