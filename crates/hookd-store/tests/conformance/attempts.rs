//! Attempts: filed together with their delivery's state, filtered, paged,
//! scoped to their app and message, and expunged.

use hookd_core::model::{Attempt, Delivery, MessageStatus, TriggerType};
use hookd_core::{new_id, IdKind};
use hookd_store::{AttemptFilter, PageReq, StoreError};

use super::{
    asc, attempt_on, desc, new_app, new_endpoint, now, record, secs, send, sorted, walk, DynStore,
};

pub async fn recording_an_attempt_updates_its_delivery(store: DynStore) {
    let app = new_app(&store).await;
    new_endpoint(&store, &app.id, |_| {}).await;
    let (msg, deliveries) = send(&store, &app.id, "user.created", |_| {}).await;
    let at = now();
    let attempt = Attempt {
        trigger_type: TriggerType::Manual,
        ..attempt_on(&deliveries[0], MessageStatus::Fail, 500, at)
    };
    let next = Delivery {
        status: MessageStatus::Pending,
        attempts: 1,
        next_attempt: Some(at + secs(5)),
        updated_at: at,
        ..deliveries[0].clone()
    };
    store.record_attempt(&attempt, &next).await.unwrap();

    assert_eq!(store.delivery(&next.id).await.unwrap(), Some(next));
    assert_eq!(
        store.attempt(&app.id, &msg.id, &attempt.id).await.unwrap(),
        Some(attempt)
    );
}

pub async fn recording_an_attempt_for_a_missing_delivery_stores_nothing(store: DynStore) {
    let app = new_app(&store).await;
    new_endpoint(&store, &app.id, |_| {}).await;
    let (msg, deliveries) = send(&store, &app.id, "user.created", |_| {}).await;
    let ghost = Delivery {
        id: new_id(IdKind::Destination),
        status: MessageStatus::Success,
        ..deliveries[0].clone()
    };
    let attempt = attempt_on(&ghost, MessageStatus::Success, 200, now());

    assert!(matches!(
        store.record_attempt(&attempt, &ghost).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store.attempt(&app.id, &msg.id, &attempt.id).await.unwrap(),
        None,
        "the attempt was rolled back"
    );
    assert_eq!(
        store.delivery(&deliveries[0].id).await.unwrap().as_ref(),
        Some(&deliveries[0])
    );
}

pub async fn attempt_filters_select_by_status_code_class_and_message(store: DynStore) {
    let app = new_app(&store).await;
    let ep1 = new_endpoint(&store, &app.id, |_| {}).await;
    let ep2 = new_endpoint(&store, &app.id, |_| {}).await;
    let (ma, da) = send(&store, &app.id, "a", |m| {
        m.channels = Some(vec!["x".to_owned()]);
        m.tags = Some(vec!["t".to_owned()]);
    })
    .await;
    let (_mb, db) = send(&store, &app.id, "b", |_| {}).await;
    let on = |ds: &[Delivery], ep: &str| ds.iter().find(|d| d.endpoint_id == ep).unwrap().clone();

    let t0 = now() - secs(60);
    let plan = [
        (on(&da, &ep1.id), MessageStatus::Fail, 0),
        (on(&da, &ep1.id), MessageStatus::Success, 200),
        (on(&da, &ep2.id), MessageStatus::Fail, 503),
        (on(&db, &ep1.id), MessageStatus::Fail, 404),
        (on(&db, &ep2.id), MessageStatus::Success, 201),
    ];
    let mut made = Vec::new();
    for (i, (d, status, code)) in plan.into_iter().enumerate() {
        let attempt = attempt_on(&d, status, code, t0 + secs(i as i64));
        store
            .record_attempt(&attempt, &Delivery { status, ..d })
            .await
            .unwrap();
        made.push(attempt.id);
    }
    // Another app's attempts never show up.
    let stranger = new_app(&store).await;
    new_endpoint(&store, &stranger.id, |_| {}).await;
    let (_, theirs) = send(&store, &stranger.id, "a", |m| {
        m.channels = Some(vec!["x".to_owned()])
    })
    .await;
    record(&store, &theirs[0], MessageStatus::Fail, 0).await;

    let ids = |idx: &[usize]| sorted(idx.iter().map(|&i| made[i].clone()).collect());
    let found = |filter: AttemptFilter| {
        let (store, app_id) = (store.clone(), app.id.clone());
        async move {
            let rows = store
                .list_attempts(&app_id, &filter, &asc(50))
                .await
                .unwrap();
            rows.into_iter().map(|a| a.id).collect::<Vec<_>>()
        }
    };
    let f = AttemptFilter::default;
    assert_eq!(found(f()).await, ids(&[0, 1, 2, 3, 4]));
    assert_eq!(
        found(AttemptFilter {
            msg_id: Some(ma.id.clone()),
            ..f()
        })
        .await,
        ids(&[0, 1, 2])
    );
    assert_eq!(
        found(AttemptFilter {
            endpoint_id: Some(ep2.id.clone()),
            ..f()
        })
        .await,
        ids(&[2, 4])
    );
    assert_eq!(
        found(AttemptFilter {
            status: Some(MessageStatus::Success),
            ..f()
        })
        .await,
        ids(&[1, 4])
    );
    let class = |c: i32| AttemptFilter {
        status_code_class: Some(c),
        ..f()
    };
    assert_eq!(found(class(0)).await, ids(&[0]));
    assert_eq!(found(class(200)).await, ids(&[1, 4]));
    assert_eq!(found(class(300)).await, ids(&[]));
    assert_eq!(found(class(400)).await, ids(&[3]));
    assert_eq!(found(class(500)).await, ids(&[2]));
    assert_eq!(
        found(AttemptFilter {
            channel: Some("x".to_owned()),
            ..f()
        })
        .await,
        ids(&[0, 1, 2])
    );
    assert_eq!(
        found(AttemptFilter {
            tag: Some("t".to_owned()),
            ..f()
        })
        .await,
        ids(&[0, 1, 2])
    );
    assert_eq!(
        found(AttemptFilter {
            event_types: Some(vec!["b".to_owned()]),
            ..f()
        })
        .await,
        ids(&[3, 4])
    );
    assert_eq!(
        found(AttemptFilter {
            before: Some(t0 + secs(2)),
            ..f()
        })
        .await,
        ids(&[0, 1])
    );
    assert_eq!(
        found(AttemptFilter {
            after: Some(t0 + secs(2)),
            ..f()
        })
        .await,
        ids(&[3, 4])
    );
    let failed_on_a = AttemptFilter {
        msg_id: Some(ma.id.clone()),
        status: Some(MessageStatus::Fail),
        ..f()
    };
    assert_eq!(found(failed_on_a).await, ids(&[0, 2]));
}

pub async fn attempts_page_newest_first(store: DynStore) {
    let app = new_app(&store).await;
    new_endpoint(&store, &app.id, |_| {}).await;
    let (_, deliveries) = send(&store, &app.id, "user.created", |_| {}).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            record(&store, &deliveries[0], MessageStatus::Fail, 500)
                .await
                .id,
        );
    }
    let mut newest_first = sorted(ids);
    newest_first.reverse();
    let list = |p: PageReq| {
        let (s, app_id) = (store.clone(), app.id.clone());
        async move {
            s.list_attempts(&app_id, &AttemptFilter::default(), &p)
                .await
        }
    };
    assert_eq!(walk(2, true, list, |a| a.id.clone()).await, newest_first);
}

pub async fn attempts_are_scoped_to_their_app_and_message(store: DynStore) {
    let app = new_app(&store).await;
    new_endpoint(&store, &app.id, |_| {}).await;
    let (msg, deliveries) = send(&store, &app.id, "user.created", |_| {}).await;
    let (other_msg, _) = send(&store, &app.id, "user.created", |_| {}).await;
    let attempt = record(&store, &deliveries[0], MessageStatus::Success, 204).await;
    let stranger = new_app(&store).await;

    assert_eq!(
        store.attempt(&app.id, &msg.id, &attempt.id).await.unwrap(),
        Some(attempt.clone())
    );
    assert_eq!(
        store
            .attempt(&app.id, &other_msg.id, &attempt.id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .attempt(&stranger.id, &msg.id, &attempt.id)
            .await
            .unwrap(),
        None
    );
    assert!(store
        .list_attempts(&stranger.id, &AttemptFilter::default(), &desc(10))
        .await
        .unwrap()
        .is_empty());
}

pub async fn expunged_attempt_reads_back_without_response(store: DynStore) {
    let app = new_app(&store).await;
    new_endpoint(&store, &app.id, |_| {}).await;
    let (msg, deliveries) = send(&store, &app.id, "user.created", |_| {}).await;
    let (other_msg, _) = send(&store, &app.id, "user.created", |_| {}).await;
    let attempt = record(&store, &deliveries[0], MessageStatus::Fail, 500).await;
    assert!(attempt.response.is_some());

    assert!(!store
        .expunge_attempt_content(&app.id, &other_msg.id, &attempt.id)
        .await
        .unwrap());
    assert!(store
        .expunge_attempt_content(&app.id, &msg.id, &attempt.id)
        .await
        .unwrap());
    let expunged = Attempt {
        response: None,
        ..attempt.clone()
    };
    assert_eq!(
        store.attempt(&app.id, &msg.id, &attempt.id).await.unwrap(),
        Some(expunged.clone())
    );
    let listed = store
        .list_attempts(&app.id, &AttemptFilter::default(), &desc(10))
        .await
        .unwrap();
    assert_eq!(listed, vec![expunged]);
    let missing = new_id(IdKind::Attempt);
    assert!(!store
        .expunge_attempt_content(&app.id, &msg.id, &missing)
        .await
        .unwrap());
}

/// Outcomes recorded at the same moment (the stores commit them as one group)
/// each land with their delivery's new state, and a set naming a delivery that
/// vanished fails alone and whole: every other set is stored.
/// Two outcomes for one delivery in one call (a retry and then a success):
/// both attempts are filed and the delivery ends in the later state, on
/// every delivery of the call.
pub async fn a_delivery_twice_in_one_record_keeps_its_last_state(store: DynStore) {
    let app = new_app(&store).await;
    new_endpoint(&store, &app.id, |_| {}).await;
    let mut outcomes = Vec::new();
    let mut finals = Vec::new();
    for _ in 0..20 {
        let (_, deliveries) = send(&store, &app.id, "user.created", |_| {}).await;
        let d = &deliveries[0];
        let at = now();
        let retrying = Delivery {
            status: MessageStatus::Pending,
            attempts: 1,
            next_attempt: Some(at + secs(5)),
            updated_at: at,
            ..d.clone()
        };
        let done = Delivery {
            status: MessageStatus::Success,
            attempts: 2,
            next_attempt: None,
            updated_at: at + secs(1),
            ..d.clone()
        };
        outcomes.push((attempt_on(d, MessageStatus::Fail, 500, at), retrying));
        outcomes.push((
            attempt_on(d, MessageStatus::Success, 200, at + secs(1)),
            done.clone(),
        ));
        finals.push(done);
    }
    store.record_attempts(&outcomes).await.unwrap();
    for done in &finals {
        assert_eq!(store.delivery(&done.id).await.unwrap().as_ref(), Some(done));
    }
    for (attempt, _) in &outcomes {
        assert!(store
            .attempt(&app.id, &attempt.msg_id, &attempt.id)
            .await
            .unwrap()
            .is_some());
    }
}

pub async fn concurrent_records_fail_alone(store: DynStore) {
    let app = new_app(&store).await;
    new_endpoint(&store, &app.id, |_| {}).await;
    new_endpoint(&store, &app.id, |_| {}).await;
    let mut sets = Vec::new();
    for i in 0..30 {
        let (_, deliveries) = send(&store, &app.id, "user.created", |_| {}).await;
        assert_eq!(deliveries.len(), 2);
        let mut outcomes: Vec<(Attempt, Delivery)> = deliveries
            .iter()
            .map(|d| {
                let at = now();
                let next = Delivery {
                    status: MessageStatus::Success,
                    attempts: 1,
                    next_attempt: None,
                    updated_at: at,
                    ..d.clone()
                };
                (attempt_on(d, MessageStatus::Success, 200, at), next)
            })
            .collect();
        if i == 13 {
            // The second delivery of this set is gone.
            outcomes[1].1.id = new_id(IdKind::Destination);
            outcomes[1].0 = attempt_on(&outcomes[1].1, MessageStatus::Success, 200, now());
        }
        if i == 21 {
            // The second attempt names a message that does not exist (its
            // delivery does): only a foreign key can refuse it.
            outcomes[1].0.msg_id = new_id(IdKind::Message);
        }
        sets.push((deliveries, outcomes));
    }
    let mut running = tokio::task::JoinSet::new();
    for (i, (_, outcomes)) in sets.iter().enumerate() {
        let store = store.clone();
        let outcomes = outcomes.clone();
        running.spawn(async move { (i, store.record_attempts(&outcomes).await) });
    }
    let mut results = Vec::new();
    while let Some(joined) = running.join_next().await {
        results.push(joined.expect("record task"));
    }
    results.sort_by_key(|(i, _)| *i);
    for (i, result) in results {
        let (deliveries, outcomes) = &sets[i];
        if i == 13 || i == 21 {
            assert!(
                matches!(result, Err(StoreError::NotFound)),
                "{i}: {result:?}"
            );
            let (attempt, _) = &outcomes[0];
            assert_eq!(
                store
                    .attempt(&app.id, &attempt.msg_id, &attempt.id)
                    .await
                    .unwrap(),
                None,
                "the failing set's other attempt was rolled back"
            );
            assert_eq!(
                store.delivery(&deliveries[0].id).await.unwrap().as_ref(),
                Some(&deliveries[0])
            );
            continue;
        }
        result.expect("a set naming live deliveries is stored");
        for (attempt, next) in outcomes {
            assert_eq!(
                store
                    .attempt(&app.id, &attempt.msg_id, &attempt.id)
                    .await
                    .unwrap()
                    .as_ref(),
                Some(attempt),
                "set {i}"
            );
            assert_eq!(store.delivery(&next.id).await.unwrap().as_ref(), Some(next));
        }
    }
}
