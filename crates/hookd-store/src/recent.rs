//! Records looked up often and changed rarely (applications, endpoints), kept
//! in memory under each of their keys (id, uid). Every message creation
//! resolves its app, and every delivery step its endpoint, so a hit saves a
//! query each time. Misses are not cached (a record may be created at any
//! moment). Any write of that kind of record through this store clears the
//! whole cache, and a generation counter keeps a read that raced with a write
//! from being cached. A store whose database other processes also write
//! (PostgreSQL, shared by a cluster) gives entries a short life, so other
//! nodes' changes show within that time.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::Result;

/// Past this many keys the cache starts afresh rather than grow.
const MAX_KEYS: usize = 20_000;

pub(crate) struct Recent<V> {
    /// `None`: entries live until the next write.
    max_age: Option<Duration>,
    /// The keys a record is found under.
    keys: fn(&V) -> Vec<String>,
    inner: Mutex<Inner<V>>,
}

struct Inner<V> {
    generation: u64,
    by_key: HashMap<String, (V, Instant)>,
}

impl<V: Clone> Recent<V> {
    pub(crate) fn new(max_age: Option<Duration>, keys: fn(&V) -> Vec<String>) -> Self {
        Self {
            max_age,
            keys,
            inner: Mutex::new(Inner {
                generation: 0,
                by_key: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<V>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The record under `key`: from memory, else from `load` (and then
    /// remembered under all its keys).
    pub(crate) async fn get_or_load<F>(&self, key: &str, load: F) -> Result<Option<V>>
    where
        F: Future<Output = Result<Option<V>>>,
    {
        let generation = {
            let inner = self.lock();
            let hit = inner
                .by_key
                .get(key)
                .filter(|(_, at)| self.max_age.is_none_or(|age| at.elapsed() < age));
            if let Some((v, _)) = hit {
                return Ok(Some(v.clone()));
            }
            inner.generation
        };
        let found = load.await?;
        if let Some(v) = &found {
            self.put(v, generation);
        }
        Ok(found)
    }

    /// Caches a record read at `generation`, unless one was written since.
    fn put(&self, v: &V, generation: u64) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.by_key.len() >= MAX_KEYS {
            inner.by_key.clear();
        }
        let now = Instant::now();
        for key in (self.keys)(v) {
            inner.by_key.insert(key, (v.clone(), now));
        }
    }

    /// Forgets everything; call after any write (the generation bump also
    /// stops reads in flight from caching what they saw before it).
    pub(crate) fn invalidate(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.by_key.clear();
    }
}

/// Applications, under their id and uid.
pub(crate) fn apps(max_age: Option<Duration>) -> Recent<hookd_core::model::Application> {
    Recent::new(max_age, |a| {
        let mut keys = vec![a.id.clone()];
        keys.extend(a.uid.clone());
        keys
    })
}

/// Endpoints, under `{app id}/{endpoint id}` and `{app id}/{uid}`.
pub(crate) fn endpoints(
    max_age: Option<Duration>,
) -> Recent<std::sync::Arc<hookd_core::model::Endpoint>> {
    Recent::new(max_age, |e| {
        let mut keys = vec![endpoint_key(&e.app_id, &e.id)];
        keys.extend(e.uid.as_deref().map(|uid| endpoint_key(&e.app_id, uid)));
        keys
    })
}

/// The key an endpoint is found under within its app.
pub(crate) fn endpoint_key(app_id: &str, id_or_uid: &str) -> String {
    format!("{app_id}/{id_or_uid}")
}
