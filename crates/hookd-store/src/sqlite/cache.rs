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
    apps: HashMap<String, Arc<Vec<Endpoint>>>,
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
    pub(super) fn cached(&self, app_id: &str) -> Option<Arc<Vec<Endpoint>>> {
        self.lock().apps.get(app_id).cloned()
    }

    /// All endpoints of the app (disabled ones included), in id order.
    pub(super) async fn endpoints_of(
        &self,
        conn: &mut SqliteConnection,
        app_id: &str,
    ) -> Result<Arc<Vec<Endpoint>>> {
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
        let list = Arc::new(
            rows.iter()
                .map(|r| endpoints::from_cols(&Cols::new(r)))
                .collect::<Result<Vec<_>>>()?,
        );
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
    ) -> Result<Option<Endpoint>> {
        let hit = self.lock().apps.get(app_id).cloned();
        let list = match hit {
            Some(list) => list,
            None => {
                let mut conn = pool.acquire().await.map_err(db)?;
                self.endpoints_of(&mut conn, app_id).await?
            }
        };
        Ok(find_endpoint(&list, key))
    }
}

/// The endpoint with this id or uid in `list`.
fn find_endpoint(list: &[Endpoint], key: &str) -> Option<Endpoint> {
    let by_id = IdKind::Endpoint.is_id(key);
    list.iter()
        .find(|e| {
            if by_id {
                e.id == key
            } else {
                e.uid.as_deref() == Some(key)
            }
        })
        .cloned()
}
