//! Each application's endpoints, kept in memory. The embedded store is the
//! only writer of its file, so every endpoint change passes through this
//! process and can invalidate the cache: fan-out and the delivery step then
//! need no query (and no JSON decoding) per message. A generation counter stops
//! a load that raced with a change from caching what it read before the change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hookd_core::model::Endpoint;
use hookd_core::IdKind;
use sqlx::{SqliteConnection, SqlitePool};

use super::codec::Cols;
use super::endpoints;
use super::error::db;
use crate::Result;

/// Past this many applications the cache starts afresh rather than grow.
const MAX_APPS: usize = 10_000;

#[derive(Default)]
pub(super) struct EndpointCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    generation: u64,
    apps: HashMap<String, Arc<AppEndpoints>>,
}

/// One application's endpoints, shared by the fan-outs and delivery steps
/// that read them: a step finds its endpoint by key and takes a reference to
/// it, copying nothing.
pub(super) struct AppEndpoints {
    /// All of them (disabled ones included), in id order.
    pub(super) list: Vec<Arc<Endpoint>>,
    /// Positions in `list` by id, and by uid for those that have one.
    by_id: HashMap<String, usize>,
    by_uid: HashMap<String, usize>,
}

impl AppEndpoints {
    fn new(list: Vec<Endpoint>) -> Self {
        let by_id = list
            .iter()
            .enumerate()
            .map(|(i, e)| (e.id.clone(), i))
            .collect();
        let by_uid = list
            .iter()
            .enumerate()
            .filter_map(|(i, e)| Some((e.uid.clone()?, i)))
            .collect();
        Self {
            list: list.into_iter().map(Arc::new).collect(),
            by_id,
            by_uid,
        }
    }

    /// The endpoint with this id or uid.
    fn find(&self, key: &str) -> Option<Arc<Endpoint>> {
        let index = if IdKind::Endpoint.is_id(key) {
            &self.by_id
        } else {
            &self.by_uid
        };
        index.get(key).map(|&i| self.list[i].clone())
    }
}

impl EndpointCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets `app_id`'s endpoints (or every app's); call after the write commits.
    pub(super) fn invalidate(&self, app_id: Option<&str>) {
        let mut inner = self.lock();
        inner.generation += 1;
        match app_id {
            Some(id) => {
                inner.apps.remove(id);
            }
            None => inner.apps.clear(),
        }
    }

    /// The app's endpoints if they are in the cache (see [`Self::endpoints_of`]).
    pub(super) fn cached(&self, app_id: &str) -> Option<Arc<AppEndpoints>> {
        self.lock().apps.get(app_id).cloned()
    }

    /// All endpoints of the app (disabled ones included), in id order.
    pub(super) async fn endpoints_of(
        &self,
        conn: &mut SqliteConnection,
        app_id: &str,
    ) -> Result<Arc<AppEndpoints>> {
        let generation = {
            let inner = self.lock();
            if let Some(list) = inner.apps.get(app_id) {
                return Ok(list.clone());
            }
            inner.generation
        };
        let rows = sqlx::query(&endpoints::select("app_id = ? ORDER BY id"))
            .bind(app_id)
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?;
        let list = Arc::new(AppEndpoints::new(
            rows.iter()
                .map(|r| endpoints::from_cols(&Cols::new(r)))
                .collect::<Result<Vec<_>>>()?,
        ));
        let mut inner = self.lock();
        if inner.generation == generation {
            if inner.apps.len() >= MAX_APPS {
                inner.apps.clear();
            }
            inner.apps.insert(app_id.to_string(), list.clone());
        }
        Ok(list)
    }

    /// The app's endpoint with this id or uid. A cache hit needs no
    /// connection; only a miss takes one from `pool`.
    pub(super) async fn by_key(
        &self,
        pool: &SqlitePool,
        app_id: &str,
        key: &str,
    ) -> Result<Option<Arc<Endpoint>>> {
        let hit = self.lock().apps.get(app_id).cloned();
        let list = match hit {
            Some(list) => list,
            None => {
                let mut conn = pool.acquire().await.map_err(db)?;
                self.endpoints_of(&mut conn, app_id).await?
            }
        };
        Ok(list.find(key))
    }
}
