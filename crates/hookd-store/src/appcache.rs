//! Applications by id and by uid, kept in memory. Every message creation
//! resolves its app, so a hit saves a query per `POST /msg`. Misses are not
//! cached (an app may be created at any moment). Any app write through this
//! store clears the whole cache, and a generation counter keeps a read that
//! raced with a write from being cached. A store whose database other
//! processes also write (PostgreSQL, shared by a cluster) gives entries a
//! short life, so other nodes' changes show within that time.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hookd_core::model::Application;

use crate::Result;

/// Past this many keys the cache starts afresh rather than grow.
const MAX_KEYS: usize = 20_000;

#[derive(Default)]
pub(crate) struct AppCache {
    /// `None`: entries live until the next app write.
    max_age: Option<Duration>,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    generation: u64,
    by_key: HashMap<String, (Application, Instant)>,
}

impl AppCache {
    pub(crate) fn new(max_age: Option<Duration>) -> Self {
        Self {
            max_age,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The app with this id or uid: from memory, else from `load` (and then
    /// remembered).
    pub(crate) async fn get_or_load<F>(&self, key: &str, load: F) -> Result<Option<Application>>
    where
        F: Future<Output = Result<Option<Application>>>,
    {
        let (hit, generation) = self.get(key);
        if hit.is_some() {
            return Ok(hit);
        }
        let app = load.await?;
        if let Some(app) = &app {
            self.put(app, generation);
        }
        Ok(app)
    }

    /// The cached app with this id or uid, and the generation to pass to
    /// [`AppCache::put`] after a miss.
    fn get(&self, key: &str) -> (Option<Application>, u64) {
        let inner = self.lock();
        let hit = inner
            .by_key
            .get(key)
            .filter(|(_, at)| self.max_age.is_none_or(|age| at.elapsed() < age))
            .map(|(app, _)| app.clone());
        (hit, inner.generation)
    }

    /// Caches an app read at `generation`, unless an app was written since.
    fn put(&self, app: &Application, generation: u64) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.by_key.len() >= MAX_KEYS {
            inner.by_key.clear();
        }
        let now = Instant::now();
        inner.by_key.insert(app.id.clone(), (app.clone(), now));
        if let Some(uid) = &app.uid {
            inner.by_key.insert(uid.clone(), (app.clone(), now));
        }
    }

    /// Forgets every app; call after any app write (the generation bump also
    /// stops reads in flight from caching what they saw before it).
    pub(crate) fn invalidate(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.by_key.clear();
    }
}
