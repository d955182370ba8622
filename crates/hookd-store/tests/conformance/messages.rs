//! Messages: fan-out at creation, eventId uniqueness, lookups, filters, pages
//! and expunging.

use hookd_core::model::{Message, MessageStatus};
use hookd_store::{Accepted, MessageFilter, StoreError, INLINE_FANOUT};

use super::{
    asc, desc, message_for, new_app, new_endpoint, now, secs, send, sorted, walk, DynStore,
};

fn strings(items: &[&str]) -> Option<Vec<String>> {
    Some(items.iter().map(|s| s.to_string()).collect())
}

pub async fn create_message_fans_out_only_to_matching_enabled_endpoints(store: DynStore) {
    let app = new_app(&store).await;
    let everything = new_endpoint(&store, &app.id, |_| {}).await;
    let empty_filters = new_endpoint(&store, &app.id, |e| {
        e.event_types = Some(vec![]);
        e.channels = Some(vec![]);
    })
    .await;
    let typed = new_endpoint(&store, &app.id, |e| {
        e.event_types = strings(&["user.created", "user.deleted"])
    })
    .await;
    let other_type = new_endpoint(&store, &app.id, |e| {
        e.event_types = strings(&["invoice.paid"])
    })
    .await;
    let eu = new_endpoint(&store, &app.id, |e| e.channels = strings(&["eu"])).await;
    let disabled = new_endpoint(&store, &app.id, |e| e.disabled = true).await;
    let stranger = new_app(&store).await;
    let foreign = new_endpoint(&store, &stranger.id, |_| {}).await;

    let (msg, deliveries) = send(&store, &app.id, "user.created", |m| {
        m.channels = strings(&["eu", "us"])
    })
    .await;
    let mut got: Vec<String> = deliveries.iter().map(|d| d.endpoint_id.clone()).collect();
    got.sort();
    assert_eq!(
        got,
        sorted(vec![
            everything.id.clone(),
            empty_filters.id.clone(),
            typed.id.clone(),
            eu.id.clone()
        ])
    );
    for d in &deliveries {
        assert!(hookd_core::IdKind::Destination.is_id(&d.id), "{}", d.id);
        assert_eq!(d.app_id, app.id);
        assert_eq!(d.msg_id, msg.id);
        assert_eq!(d.status, MessageStatus::Pending);
        assert_eq!(d.attempts, 0);
        assert_eq!(d.next_attempt, Some(msg.created_at));
        assert_eq!(
            (d.created_at, d.updated_at),
            (msg.created_at, msg.created_at)
        );
        assert_eq!(
            store.delivery(&d.id).await.unwrap().as_ref(),
            Some(d),
            "the returned delivery is stored"
        );
    }
    for skipped in [&other_type, &disabled, &foreign] {
        assert_eq!(
            store.delivery_for(&msg.id, &skipped.id).await.unwrap(),
            None
        );
    }

    // Without channels, the channel-filtered endpoint is skipped too.
    let (_, deliveries) = send(&store, &app.id, "user.deleted", |_| {}).await;
    let mut got: Vec<String> = deliveries.iter().map(|d| d.endpoint_id.clone()).collect();
    got.sort();
    assert_eq!(got, sorted(vec![everything.id, empty_filters.id, typed.id]));

    // A message for an app without endpoints is stored with no deliveries.
    let lonely = new_app(&store).await;
    let (quiet, deliveries) = send(&store, &lonely.id, "x.y", |_| {}).await;
    assert!(deliveries.is_empty());
    assert_eq!(
        store.message_by_key(&lonely.id, &quiet.id).await.unwrap(),
        Some(quiet)
    );
}

pub async fn creating_a_message_for_a_missing_app_is_not_found(store: DynStore) {
    let msg = message_for(&hookd_core::new_id(hookd_core::IdKind::App), "user.created");
    assert!(matches!(
        store.create_message(&msg).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn duplicate_event_id_is_a_conflict(store: DynStore) {
    let app = new_app(&store).await;
    let ep = new_endpoint(&store, &app.id, |_| {}).await;
    send(&store, &app.id, "user.created", |m| {
        m.event_id = Some("evt-1".to_owned())
    })
    .await;

    let dup = Message {
        event_id: Some("evt-1".to_owned()),
        ..message_for(&app.id, "user.created")
    };
    match store.create_message(&dup).await {
        Err(StoreError::Conflict(text)) => assert!(text.contains("eventId"), "{text}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    // Nothing of the refused message was kept: no row, no delivery.
    assert_eq!(store.message_by_key(&app.id, &dup.id).await.unwrap(), None);
    assert_eq!(store.delivery_for(&dup.id, &ep.id).await.unwrap(), None);

    // Another app may use the same eventId; messages without one never clash.
    let other = new_app(&store).await;
    send(&store, &other.id, "user.created", |m| {
        m.event_id = Some("evt-1".to_owned())
    })
    .await;
    send(&store, &app.id, "user.created", |_| {}).await;
    send(&store, &app.id, "user.created", |_| {}).await;
}

pub async fn messages_are_found_by_id_or_event_id_within_their_app(store: DynStore) {
    let app = new_app(&store).await;
    let other = new_app(&store).await;
    let (msg, _) = send(&store, &app.id, "user.created", |m| {
        m.event_id = Some("order-77".to_owned());
        m.channels = strings(&["eu"]);
        m.tags = strings(&["vip", "retry"]);
        m.payload = Some(r#"{"b": 1, "a": [true, null, 2.5]}"#.to_owned());
    })
    .await;

    assert_eq!(
        store.message_by_key(&app.id, &msg.id).await.unwrap(),
        Some(msg.clone())
    );
    assert_eq!(
        store.message_by_key(&app.id, "order-77").await.unwrap(),
        Some(msg.clone())
    );
    assert_eq!(
        store.message_by_key(&app.id, "order-78").await.unwrap(),
        None
    );
    assert_eq!(
        store.message_by_key(&other.id, &msg.id).await.unwrap(),
        None
    );
    assert_eq!(
        store.message_by_key(&other.id, "order-77").await.unwrap(),
        None
    );
}

pub async fn message_filters_select_by_channel_tag_type_and_time(store: DynStore) {
    let app = new_app(&store).await;
    let t0 = now() - secs(600);
    let (m1, _) = send(&store, &app.id, "a", |m| {
        m.channels = strings(&["x"]);
        m.tags = strings(&["t1"]);
        m.created_at = t0;
    })
    .await;
    let (m2, _) = send(&store, &app.id, "b", |m| {
        m.channels = strings(&["x", "y"]);
        m.created_at = t0 + secs(1);
    })
    .await;
    let (m3, _) = send(&store, &app.id, "a", |m| {
        m.tags = strings(&["t1", "t2"]);
        m.created_at = t0 + secs(2);
    })
    .await;
    let (m4, _) = send(&store, &app.id, "c", |m| m.created_at = t0 + secs(3)).await;
    let other = new_app(&store).await;
    send(&store, &other.id, "a", |m| m.channels = strings(&["x"])).await;

    let found = |filter: MessageFilter| {
        let (store, app_id) = (store.clone(), app.id.clone());
        async move {
            let rows = store
                .list_messages(&app_id, &filter, &asc(50))
                .await
                .unwrap();
            rows.into_iter().map(|m| m.id).collect::<Vec<_>>()
        }
    };
    let ids = |ms: &[&Message]| sorted(ms.iter().map(|m| m.id.clone()).collect());

    assert_eq!(
        found(MessageFilter::default()).await,
        ids(&[&m1, &m2, &m3, &m4])
    );
    let by_channel = |c: &str| MessageFilter {
        channel: Some(c.to_owned()),
        ..Default::default()
    };
    assert_eq!(found(by_channel("x")).await, ids(&[&m1, &m2]));
    assert_eq!(found(by_channel("y")).await, ids(&[&m2]));
    assert_eq!(found(by_channel("z")).await, ids(&[]));
    let by_tag = |t: &str| MessageFilter {
        tag: Some(t.to_owned()),
        ..Default::default()
    };
    assert_eq!(found(by_tag("t1")).await, ids(&[&m1, &m3]));
    assert_eq!(found(by_tag("t2")).await, ids(&[&m3]));
    let by_types = |t: &[&str]| MessageFilter {
        event_types: strings(t),
        ..Default::default()
    };
    assert_eq!(found(by_types(&["a", "c"])).await, ids(&[&m1, &m3, &m4]));
    assert_eq!(found(by_types(&["b"])).await, ids(&[&m2]));
    // An empty list of types is no filter at all.
    assert_eq!(found(by_types(&[])).await, ids(&[&m1, &m2, &m3, &m4]));

    let window = |before: Option<i64>, after: Option<i64>| MessageFilter {
        before: before.map(|s| t0 + secs(s)),
        after: after.map(|s| t0 + secs(s)),
        ..Default::default()
    };
    assert_eq!(
        found(window(Some(2), None)).await,
        ids(&[&m1, &m2]),
        "before is exclusive"
    );
    assert_eq!(
        found(window(None, Some(1))).await,
        ids(&[&m3, &m4]),
        "after is exclusive"
    );
    assert_eq!(found(window(Some(3), Some(0))).await, ids(&[&m2, &m3]));

    let combined = MessageFilter {
        channel: Some("x".to_owned()),
        ..by_types(&["a"])
    };
    assert_eq!(found(combined).await, ids(&[&m1]));
}

pub async fn messages_page_by_id_in_either_direction(store: DynStore) {
    let app = new_app(&store).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(send(&store, &app.id, "user.created", |_| {}).await.0.id);
    }
    let ascending = sorted(ids);
    let mut descending = ascending.clone();
    descending.reverse();

    let list = |p: hookd_store::PageReq| {
        let (s, app_id) = (store.clone(), app.id.clone());
        async move {
            s.list_messages(&app_id, &MessageFilter::default(), &p)
                .await
        }
    };
    assert_eq!(walk(2, true, list, |m| m.id.clone()).await, descending);
    assert_eq!(walk(2, false, list, |m| m.id.clone()).await, ascending);
    assert_eq!(
        store
            .list_messages(&app.id, &MessageFilter::default(), &desc(1))
            .await
            .unwrap()[0]
            .id,
        descending[0]
    );
}

pub async fn messages_with_small_payloads_leave_out_large_expunged_and_missing(store: DynStore) {
    let app = new_app(&store).await;
    let other = new_app(&store).await;
    // 10 bytes of JSON text, and 12 characters that are 22 bytes: the bound is
    // in bytes.
    let (small, _) = send(&store, &app.id, "user.created", |m| {
        m.payload = Some(r#"{"a":"xy"}"#.to_owned())
    })
    .await;
    let (wide, _) = send(&store, &app.id, "user.created", |m| {
        m.payload = Some("{\"a\":\"ééééééé\"}".to_owned())
    })
    .await;
    assert_eq!(wide.payload.as_ref().unwrap().chars().count(), 15);
    assert_eq!(wide.payload.as_ref().unwrap().len(), 22);
    let (foreign, _) = send(&store, &other.id, "user.created", |m| {
        m.payload = Some("[1]".to_owned())
    })
    .await;
    let (gone, _) = send(&store, &app.id, "user.created", |_| {}).await;
    assert!(store
        .expunge_message_content(&app.id, &gone.id)
        .await
        .unwrap());
    let ids = vec![
        small.id.clone(),
        wide.id.clone(),
        foreign.id.clone(),
        gone.id.clone(),
        hookd_core::new_id(hookd_core::IdKind::Message),
    ];
    let by_id = |max: usize| {
        let store = store.clone();
        let ids = ids.clone();
        async move {
            let mut got = store.messages_with_small_payloads(&ids, max).await.unwrap();
            got.sort_by(|a, b| a.id.cmp(&b.id));
            got
        }
    };
    let mut all = vec![small.clone(), wide.clone(), foreign.clone()];
    all.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(
        by_id(22).await,
        all,
        "every app's, none expunged or missing"
    );
    let mut no_wide = vec![small.clone(), foreign.clone()];
    no_wide.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(by_id(21).await, no_wide, "22 bytes is over 21");
    assert_eq!(by_id(3).await, vec![foreign.clone()]);
    assert_eq!(by_id(2).await, vec![]);
    assert!(store
        .messages_with_small_payloads(&[], 1 << 20)
        .await
        .unwrap()
        .is_empty());
    // More ids than one statement takes.
    let mut many: Vec<String> = (0..1_200)
        .map(|_| hookd_core::new_id(hookd_core::IdKind::Message))
        .collect();
    many.push(small.id.clone());
    assert_eq!(
        store
            .messages_with_small_payloads(&many, 1 << 20)
            .await
            .unwrap(),
        vec![small]
    );
}

pub async fn expunged_message_reads_back_without_payload(store: DynStore) {
    let app = new_app(&store).await;
    let other = new_app(&store).await;
    let (msg, _) = send(&store, &app.id, "user.created", |m| {
        m.event_id = Some("e1".to_owned())
    })
    .await;

    assert!(
        !store
            .expunge_message_content(&other.id, &msg.id)
            .await
            .unwrap(),
        "not through another app"
    );
    assert_eq!(
        store.message_by_key(&app.id, &msg.id).await.unwrap(),
        Some(msg.clone())
    );

    let epoch = store.content_epoch();
    assert!(store
        .expunge_message_content(&app.id, &msg.id)
        .await
        .unwrap());
    assert!(
        store.content_epoch() > epoch,
        "an expunge advances the content epoch, which copies of payloads are checked by"
    );
    let expunged = Message {
        payload: None,
        ..msg.clone()
    };
    assert_eq!(
        store.message_by_key(&app.id, &msg.id).await.unwrap(),
        Some(expunged.clone())
    );
    let listed = store
        .list_messages(&app.id, &MessageFilter::default(), &asc(10))
        .await
        .unwrap();
    assert_eq!(listed, vec![expunged]);

    assert!(
        store
            .expunge_message_content(&app.id, &msg.id)
            .await
            .unwrap(),
        "expunging again still finds it"
    );
    let missing = hookd_core::new_id(hookd_core::IdKind::Message);
    assert!(!store
        .expunge_message_content(&app.id, &missing)
        .await
        .unwrap());
}

pub async fn scheduled_message_deliveries_are_due_at_deliver_at(store: DynStore) {
    let app = new_app(&store).await;
    new_endpoint(&store, &app.id, |_| {}).await;
    let at = now() + secs(3600);
    let mut msg = message_for(&app.id, "user.created");
    msg.deliver_at = Some(at);
    let deliveries = store.create_message(&msg).await.unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].next_attempt, Some(at));
    let stored = store
        .message_by_key(&app.id, &msg.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.deliver_at, Some(at));
    let pending = store.list_pending_deliveries(None, 10).await.unwrap();
    assert_eq!(pending[0].next_attempt, Some(at));
}

/// Messages created at the same moment (the embedded store commits them as one
/// group) each get their own fan-out, and one refused for its eventId fails
/// alone: every other one is stored with its deliveries.
pub async fn concurrent_creations_fail_alone(store: DynStore) {
    let app = new_app(&store).await;
    let ep = new_endpoint(&store, &app.id, |_| {}).await;
    send(&store, &app.id, "user.created", |m| {
        m.event_id = Some("taken".to_owned())
    })
    .await;

    let msgs: Vec<Message> = (0..40)
        .map(|i| Message {
            event_id: Some(if i == 17 {
                "taken".to_owned()
            } else {
                format!("evt-{i}")
            }),
            ..message_for(&app.id, "user.created")
        })
        .collect();
    let mut running = tokio::task::JoinSet::new();
    for (i, msg) in msgs.iter().cloned().enumerate() {
        let store = store.clone();
        running.spawn(async move { (i, store.create_message(&msg).await) });
    }
    let mut outcomes = Vec::new();
    while let Some(joined) = running.join_next().await {
        outcomes.push(joined.expect("creation task"));
    }
    outcomes.sort_by_key(|(i, _)| *i);
    for (i, outcome) in outcomes {
        let msg = &msgs[i];
        if i == 17 {
            assert!(
                matches!(outcome, Err(StoreError::Conflict(_))),
                "{outcome:?}"
            );
            assert_eq!(store.message_by_key(&app.id, &msg.id).await.unwrap(), None);
            continue;
        }
        let deliveries = outcome.expect("an unclashing message is stored");
        assert_eq!(deliveries.len(), 1, "message {i}");
        assert_eq!(deliveries[0].msg_id, msg.id);
        assert_eq!(deliveries[0].endpoint_id, ep.id);
        assert_eq!(
            store.delivery_for(&msg.id, &ep.id).await.unwrap().as_ref(),
            Some(&deliveries[0])
        );
        assert_eq!(
            store
                .message_by_key(&app.id, &msg.id)
                .await
                .unwrap()
                .as_ref(),
            Some(msg)
        );
    }
}

/// A message for an app that does not exist, created at the same moment as
/// others (one group in the embedded store, whose first try checks foreign
/// keys only at its commit), fails alone with `NotFound`; the others are
/// stored with their deliveries.
pub async fn a_message_for_a_missing_app_fails_alone_among_concurrent_ones(store: DynStore) {
    let app = new_app(&store).await;
    let ep = new_endpoint(&store, &app.id, |_| {}).await;
    let gone = hookd_core::new_id(hookd_core::IdKind::App);
    let msgs: Vec<Message> = (0..40)
        .map(|i| message_for(if i == 23 { &gone } else { &app.id }, "user.created"))
        .collect();
    let mut running = tokio::task::JoinSet::new();
    for (i, msg) in msgs.iter().cloned().enumerate() {
        let store = store.clone();
        running.spawn(async move { (i, store.create_message(&msg).await) });
    }
    while let Some(joined) = running.join_next().await {
        let (i, outcome) = joined.expect("creation task");
        let msg = &msgs[i];
        if i == 23 {
            assert!(matches!(outcome, Err(StoreError::NotFound)), "{outcome:?}");
            assert_eq!(store.message_by_key(&gone, &msg.id).await.unwrap(), None);
            continue;
        }
        let deliveries = outcome.unwrap_or_else(|e| panic!("message {i} of a live app: {e:?}"));
        assert_eq!(deliveries.len(), 1, "message {i}");
        assert_eq!(
            store.delivery_for(&msg.id, &ep.id).await.unwrap().as_ref(),
            Some(&deliveries[0])
        );
    }
}

/// How many deliveries are pending (at most 1,000).
async fn pending_count(store: &DynStore) -> usize {
    store
        .list_pending_deliveries(None, 1000)
        .await
        .unwrap()
        .len()
}

/// An app with more than `INLINE_FANOUT` endpoints, and those endpoints' ids.
async fn wide_app(store: &DynStore) -> (String, Vec<String>) {
    let app = new_app(store).await;
    let mut eps = Vec::new();
    for _ in 0..=INLINE_FANOUT {
        eps.push(new_endpoint(store, &app.id, |_| {}).await.id);
    }
    eps.sort();
    (app.id, eps)
}

/// A message to an app of few endpoints is fanned out in the transaction that
/// accepts it: its deliveries come back at once and nothing is left pending.
pub async fn a_narrow_apps_message_is_fanned_out_as_it_is_accepted(store: DynStore) {
    let app = new_app(&store).await;
    for _ in 0..INLINE_FANOUT {
        new_endpoint(&store, &app.id, |_| {}).await;
    }
    let msg = message_for(&app.id, "user.created");
    let Accepted::FannedOut(deliveries) = store.accept_message(&msg).await.unwrap() else {
        panic!("a narrow app's message is fanned out at once");
    };
    assert_eq!(deliveries.len(), INLINE_FANOUT);
    assert!(store
        .list_pending_fanouts(now() + secs(1), None, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(
        store.fan_out(&msg, 0).await.unwrap().is_empty(),
        "nothing left to fan out"
    );
    assert_eq!(pending_count(&store).await, INLINE_FANOUT);
}

/// A message to a wide app is stored with no deliveries and its fan-out
/// pending; the fan-out writes them and ends the pending state, once: a second
/// fan-out (a sweep, another node) writes and answers nothing.
pub async fn a_wide_apps_message_is_accepted_then_fanned_out_exactly_once(store: DynStore) {
    let (app, eps) = wide_app(&store).await;
    let msg = message_for(&app, "user.created");
    assert_eq!(
        store.accept_message(&msg).await.unwrap(),
        Accepted::Pending {
            endpoints: eps.len()
        }
    );

    assert_eq!(
        store.message_by_key(&app, &msg.id).await.unwrap().as_ref(),
        Some(&msg)
    );
    assert_eq!(store.delivery_for(&msg.id, &eps[0]).await.unwrap(), None);
    assert!(store
        .list_pending_deliveries(None, 10)
        .await
        .unwrap()
        .is_empty());
    let pending = store
        .list_pending_fanouts(now() + secs(1), None, 10)
        .await
        .unwrap();
    assert_eq!(pending, vec![msg.clone()]);
    // The sweep's age cut: a message created at `before` or later is not listed.
    assert!(store
        .list_pending_fanouts(msg.created_at, None, 10)
        .await
        .unwrap()
        .is_empty());

    let deliveries = store.fan_out(&msg, 0).await.unwrap();
    let mut got: Vec<String> = deliveries.iter().map(|d| d.endpoint_id.clone()).collect();
    got.sort();
    assert_eq!(got, eps);
    assert!(deliveries
        .iter()
        .all(|d| d.status == MessageStatus::Pending));
    assert_eq!(
        store.delivery_for(&msg.id, &eps[0]).await.unwrap().as_ref(),
        deliveries.iter().find(|d| d.endpoint_id == eps[0])
    );
    assert!(store
        .list_pending_fanouts(now() + secs(1), None, 10)
        .await
        .unwrap()
        .is_empty());

    assert!(store.fan_out(&msg, 0).await.unwrap().is_empty());
    assert_eq!(pending_count(&store).await, eps.len());
}

/// Fan-outs started side by side on one message (the stage and a sweep, or two
/// nodes) write its deliveries once between them, and fan-outs of different
/// messages in one group each get their own.
pub async fn concurrent_fan_outs_write_each_message_once(store: DynStore) {
    let (app, eps) = wide_app(&store).await;
    let msgs: Vec<Message> = (0..10).map(|_| message_for(&app, "user.created")).collect();
    for msg in &msgs {
        assert_eq!(
            store.accept_message(msg).await.unwrap(),
            Accepted::Pending {
                endpoints: eps.len()
            }
        );
    }
    let mut running = tokio::task::JoinSet::new();
    for _ in 0..3 {
        for (i, msg) in msgs.iter().cloned().enumerate() {
            let store = store.clone();
            running.spawn(async move { (i, store.fan_out(&msg, 0).await) });
        }
    }
    let mut written = vec![0; msgs.len()];
    while let Some(joined) = running.join_next().await {
        let (i, outcome) = joined.expect("fan-out task");
        let deliveries = outcome.expect("a fan-out succeeds");
        assert!(deliveries.iter().all(|d| d.msg_id == msgs[i].id));
        written[i] += deliveries.len();
    }
    assert_eq!(written, vec![eps.len(); msgs.len()], "written once each");
    assert_eq!(pending_count(&store).await, eps.len() * msgs.len());
}

/// Pending fan-outs page in id order, so a sweep over many walks them all.
pub async fn pending_fan_outs_page_in_id_order(store: DynStore) {
    let (app, _) = wide_app(&store).await;
    let mut ids = Vec::new();
    for _ in 0..7 {
        let msg = message_for(&app, "user.created");
        store.accept_message(&msg).await.unwrap();
        ids.push(msg.id);
    }
    ids.sort();
    let before = now() + secs(1);
    let (mut after, mut seen) = (None::<String>, Vec::new());
    for _ in 0..10 {
        let page = store
            .list_pending_fanouts(before, after.as_deref(), 3)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        seen.extend(page.into_iter().map(|m| m.id));
    }
    assert_eq!(seen, ids);
}
