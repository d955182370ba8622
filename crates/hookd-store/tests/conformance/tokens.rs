//! Bearer tokens: lookup by hash, admin counting, and expiring an app's tokens.

use hookd_core::model::TokenScope;
use hookd_core::{new_id, IdKind};
use hookd_store::{StoreError, TokenRecord};

use super::{new_app, now, secs, DynStore};

fn token(hash: &str, scope: TokenScope) -> TokenRecord {
    TokenRecord {
        id: new_id(IdKind::Token),
        hash: hash.to_owned(),
        scope,
        read_only: false,
        created_at: now(),
        expires_at: None,
    }
}

pub async fn tokens_are_found_by_hash_with_their_scope(store: DynStore) {
    let app = new_app(&store).await;
    let admin = token("aa11", TokenScope::Admin);
    let scoped = TokenRecord {
        expires_at: Some(now() + secs(60)),
        read_only: true,
        ..token("bb22", TokenScope::App(app.id.clone()))
    };
    store.insert_token(&admin).await.unwrap();
    store.insert_token(&scoped).await.unwrap();

    assert_eq!(store.find_token("aa11").await.unwrap(), Some(admin));
    assert_eq!(store.find_token("bb22").await.unwrap(), Some(scoped));
    assert_eq!(store.find_token("cc33").await.unwrap(), None);
}

pub async fn expired_tokens_are_still_found(store: DynStore) {
    let old = TokenRecord {
        expires_at: Some(now() - secs(60)),
        ..token("dd44", TokenScope::Admin)
    };
    store.insert_token(&old).await.unwrap();
    assert_eq!(store.find_token("dd44").await.unwrap(), Some(old));
}

pub async fn duplicate_token_hash_is_a_conflict(store: DynStore) {
    store
        .insert_token(&token("ee55", TokenScope::Admin))
        .await
        .unwrap();
    let err = store
        .insert_token(&token("ee55", TokenScope::Admin))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
}

pub async fn admin_tokens_are_counted_apart_from_app_tokens(store: DynStore) {
    assert_eq!(store.count_admin_tokens().await.unwrap(), 0);
    let app = new_app(&store).await;
    store
        .insert_token(&token("h1", TokenScope::Admin))
        .await
        .unwrap();
    store
        .insert_token(&token("h2", TokenScope::App(app.id.clone())))
        .await
        .unwrap();
    store
        .insert_token(&token("h3", TokenScope::Admin))
        .await
        .unwrap();
    assert_eq!(store.count_admin_tokens().await.unwrap(), 2);
}

pub async fn expiring_app_tokens_caps_only_that_apps_tokens(store: DynStore) {
    let app = new_app(&store).await;
    let other = new_app(&store).await;
    let at = now() + secs(30);
    let sooner = now() + secs(5);
    let scope = TokenScope::App(app.id.clone());
    store
        .insert_token(&token("open", scope.clone()))
        .await
        .unwrap();
    store
        .insert_token(&TokenRecord {
            expires_at: Some(at + secs(600)),
            ..token("later", scope.clone())
        })
        .await
        .unwrap();
    store
        .insert_token(&TokenRecord {
            expires_at: Some(sooner),
            ..token("sooner", scope)
        })
        .await
        .unwrap();
    store
        .insert_token(&token("other", TokenScope::App(other.id.clone())))
        .await
        .unwrap();
    store
        .insert_token(&token("admin", TokenScope::Admin))
        .await
        .unwrap();

    store.expire_app_tokens(&app.id, at).await.unwrap();

    let expiry = |hash: &'static str| {
        let store = store.clone();
        async move {
            store
                .find_token(hash)
                .await
                .unwrap()
                .expect("token exists")
                .expires_at
        }
    };
    assert_eq!(expiry("open").await, Some(at));
    assert_eq!(expiry("later").await, Some(at));
    assert_eq!(
        expiry("sooner").await,
        Some(sooner),
        "an earlier expiry is kept"
    );
    assert_eq!(
        expiry("other").await,
        None,
        "other apps' tokens are untouched"
    );
    assert_eq!(expiry("admin").await, None, "admin tokens are untouched");
}
