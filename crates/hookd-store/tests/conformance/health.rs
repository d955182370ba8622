//! Readiness: the round trip health checks make.

use super::DynStore;

pub async fn ping_succeeds_on_an_open_store(store: DynStore) {
    store.ping().await.expect("ping");
}
