//! Idempotency keys: one owner at a time, replay until expiry, takeover of
//! abandoned claims, and release on abort.

use hookd_store::{IdempotencyState, StoredResponse};

use super::{now, secs, DynStore};

const TTL_MS: i64 = 30_000;

fn response(body: &str) -> StoredResponse {
    StoredResponse {
        status: 202,
        content_type: Some("application/json".to_owned()),
        body: body.as_bytes().to_vec(),
    }
}

pub async fn idempotency_key_is_claimed_once_then_replayed(store: DynStore) {
    let t = now();
    assert_eq!(
        store.idempotency_begin("k1", t, TTL_MS).await.unwrap(),
        IdempotencyState::Started
    );
    assert_eq!(
        store
            .idempotency_begin("k1", t + secs(1), TTL_MS)
            .await
            .unwrap(),
        IdempotencyState::InProgress
    );
    assert_eq!(
        store.idempotency_begin("k2", t, TTL_MS).await.unwrap(),
        IdempotencyState::Started,
        "keys are independent"
    );

    let done = response(r#"{"id":"msg_1"}"#);
    store
        .idempotency_complete("k1", &done, t + secs(3600))
        .await
        .unwrap();
    assert_eq!(
        store
            .idempotency_begin("k1", t + secs(2), TTL_MS)
            .await
            .unwrap(),
        IdempotencyState::Completed(done)
    );

    // A response without a content type or body replays as such.
    let bare = StoredResponse {
        status: 204,
        content_type: None,
        body: Vec::new(),
    };
    store
        .idempotency_complete("k2", &bare, t + secs(3600))
        .await
        .unwrap();
    assert_eq!(
        store
            .idempotency_begin("k2", t + secs(2), TTL_MS)
            .await
            .unwrap(),
        IdempotencyState::Completed(bare)
    );
}

pub async fn concurrent_idempotency_begin_has_one_winner(store: DynStore) {
    let t = now();
    for round in 0..5 {
        let key = format!("race-{round}");
        let racers: Vec<_> = (0..12)
            .map(|_| {
                let (store, key) = (store.clone(), key.clone());
                tokio::spawn(async move { store.idempotency_begin(&key, t, TTL_MS).await.unwrap() })
            })
            .collect();
        let mut started = 0;
        for racer in racers {
            match racer.await.unwrap() {
                IdempotencyState::Started => started += 1,
                IdempotencyState::InProgress => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(started, 1, "round {round}");
    }
}

pub async fn concurrent_takeover_of_an_abandoned_claim_has_one_winner(store: DynStore) {
    let t = now();
    assert_eq!(
        store.idempotency_begin("stale", t, TTL_MS).await.unwrap(),
        IdempotencyState::Started
    );
    let later = t + secs(60);
    let racers: Vec<_> = (0..12)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .idempotency_begin("stale", later, TTL_MS)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut started = 0;
    for racer in racers {
        if racer.await.unwrap() == IdempotencyState::Started {
            started += 1;
        }
    }
    assert_eq!(started, 1);
}

pub async fn abandoned_idempotency_claim_is_taken_over(store: DynStore) {
    let t = now();
    assert_eq!(
        store.idempotency_begin("k", t, TTL_MS).await.unwrap(),
        IdempotencyState::Started
    );
    // Still within the lock's lifetime.
    let inside = t + chrono::Duration::milliseconds(TTL_MS - 1);
    assert_eq!(
        store.idempotency_begin("k", inside, TTL_MS).await.unwrap(),
        IdempotencyState::InProgress
    );
    // Past it: the claim was abandoned and the new request owns the key.
    let past = t + chrono::Duration::milliseconds(TTL_MS + 1);
    assert_eq!(
        store.idempotency_begin("k", past, TTL_MS).await.unwrap(),
        IdempotencyState::Started
    );
    // The new claim counts from its own start.
    assert_eq!(
        store
            .idempotency_begin("k", past + secs(1), TTL_MS)
            .await
            .unwrap(),
        IdempotencyState::InProgress
    );
}

pub async fn expired_idempotent_response_is_not_replayed(store: DynStore) {
    let t = now();
    store.idempotency_begin("k", t, TTL_MS).await.unwrap();
    store
        .idempotency_complete("k", &response("{}"), t + secs(10))
        .await
        .unwrap();
    assert!(matches!(
        store
            .idempotency_begin("k", t + secs(9), TTL_MS)
            .await
            .unwrap(),
        IdempotencyState::Completed(_)
    ));
    assert_eq!(
        store
            .idempotency_begin("k", t + secs(11), TTL_MS)
            .await
            .unwrap(),
        IdempotencyState::Started
    );
    // The old response is gone: the new owner's claim is in progress.
    assert_eq!(
        store
            .idempotency_begin("k", t + secs(12), TTL_MS)
            .await
            .unwrap(),
        IdempotencyState::InProgress
    );
}

pub async fn aborted_idempotency_key_can_be_claimed_again(store: DynStore) {
    let t = now();
    assert_eq!(
        store.idempotency_begin("k", t, TTL_MS).await.unwrap(),
        IdempotencyState::Started
    );
    store.idempotency_abort("k").await.unwrap();
    assert_eq!(
        store
            .idempotency_begin("k", t + secs(1), TTL_MS)
            .await
            .unwrap(),
        IdempotencyState::Started
    );
    // Aborting a key nobody holds is harmless.
    store.idempotency_abort("never-claimed").await.unwrap();
}
