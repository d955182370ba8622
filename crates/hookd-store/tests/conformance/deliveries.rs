//! Deliveries: lookups, the listings that pair them with endpoints or
//! messages, the pending scan, upserts (recover) and failed-delivery windows.

use hookd_core::model::{Delivery, MessageStatus};
use hookd_core::{new_id, IdKind};
use hookd_store::{MessageFilter, PageReq};

use super::{asc, new_app, new_endpoint, now, record, secs, send, sorted, walk, DynStore};

fn with_status(d: &Delivery, status: MessageStatus) -> Delivery {
    Delivery {
        status,
        ..d.clone()
    }
}

pub async fn deliveries_are_found_by_id_and_by_message_and_endpoint(store: DynStore) {
    let app = new_app(&store).await;
    let ep = new_endpoint(&store, &app.id, |_| {}).await;
    let (msg, deliveries) = send(&store, &app.id, "user.created", |_| {}).await;
    let d = &deliveries[0];

    assert_eq!(store.delivery(&d.id).await.unwrap().as_ref(), Some(d));
    assert_eq!(
        store.delivery_for(&msg.id, &ep.id).await.unwrap().as_ref(),
        Some(d)
    );
    assert_eq!(
        store.delivery(&new_id(IdKind::Destination)).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .delivery_for(&msg.id, &new_id(IdKind::Endpoint))
            .await
            .unwrap(),
        None
    );
}

/// The dispatcher's one read for a task that carries nothing: the delivery's
/// current state with its message, whose payload may since have been expunged.
pub async fn a_delivery_is_read_with_its_message(store: DynStore) {
    let app = new_app(&store).await;
    new_endpoint(&store, &app.id, |_| {}).await;
    new_endpoint(&store, &app.id, |_| {}).await;
    let (msg, deliveries) = send(&store, &app.id, "user.created", |_| {}).await;
    let (other, _) = send(&store, &app.id, "user.deleted", |_| {}).await;
    assert_eq!(deliveries.len(), 2);
    for d in &deliveries {
        assert_eq!(
            store.delivery_with_message(&d.id).await.unwrap(),
            Some((d.clone(), msg.clone()))
        );
    }

    let sent = with_status(&deliveries[0], MessageStatus::Success);
    store.upsert_delivery(&sent).await.unwrap();
    assert!(store
        .expunge_message_content(&app.id, &msg.id)
        .await
        .unwrap());
    let (d, m) = store
        .delivery_with_message(&sent.id)
        .await
        .unwrap()
        .expect("the delivery is still there");
    assert_eq!(d.status, MessageStatus::Success);
    assert_eq!(
        (m.id.as_str(), m.payload.as_deref()),
        (msg.id.as_str(), None)
    );
    assert_ne!(m.id, other.id);

    assert_eq!(
        store
            .delivery_with_message(&new_id(IdKind::Destination))
            .await
            .unwrap(),
        None
    );
}

pub async fn message_destinations_pair_deliveries_with_endpoints_in_pages(store: DynStore) {
    let app = new_app(&store).await;
    let mut endpoints = Vec::new();
    for i in 0..5 {
        endpoints.push(new_endpoint(&store, &app.id, |e| e.description = format!("ep {i}")).await);
    }
    let (msg, _) = send(&store, &app.id, "user.created", |_| {}).await;
    send(&store, &app.id, "user.created", |_| {}).await;

    let list = |p: PageReq| {
        let (s, app_id, msg_id) = (store.clone(), app.id.clone(), msg.id.clone());
        async move { s.list_message_destinations(&app_id, &msg_id, &p).await }
    };
    let expected = sorted(endpoints.iter().map(|e| e.id.clone()).collect());
    assert_eq!(walk(2, false, list, |(_, e)| e.id.clone()).await, expected);
    let mut reversed = expected.clone();
    reversed.reverse();
    assert_eq!(walk(3, true, list, |(_, e)| e.id.clone()).await, reversed);

    for (d, e) in store
        .list_message_destinations(&app.id, &msg.id, &asc(10))
        .await
        .unwrap()
    {
        assert_eq!(d.msg_id, msg.id);
        assert_eq!(d.endpoint_id, e.id);
        assert_eq!(
            Some(&e),
            endpoints.iter().find(|x| x.id == e.id),
            "the whole endpoint comes back"
        );
        assert_eq!(store.delivery_for(&msg.id, &e.id).await.unwrap(), Some(d));
    }
    let stranger = new_app(&store).await;
    assert!(store
        .list_message_destinations(&stranger.id, &msg.id, &asc(10))
        .await
        .unwrap()
        .is_empty());
}

pub async fn endpoint_messages_filter_by_delivery_status_and_page_by_message_id(store: DynStore) {
    let app = new_app(&store).await;
    let ep = new_endpoint(&store, &app.id, |_| {}).await;
    let t0 = now() - secs(100);
    let mut sent = Vec::new();
    for i in 0..5 {
        let (msg, deliveries) = send(&store, &app.id, if i == 4 { "b" } else { "a" }, |m| {
            m.created_at = t0 + secs(i);
            if i == 2 {
                m.channels = Some(vec!["x".to_owned()]);
                m.tags = Some(vec!["t".to_owned()]);
            }
        })
        .await;
        if i % 2 == 0 {
            record(&store, &deliveries[0], MessageStatus::Success, 200).await;
        }
        sent.push(msg);
    }
    let ids = |idx: &[usize]| sorted(idx.iter().map(|&i| sent[i].id.clone()).collect());

    let found = |filter: MessageFilter| {
        let (store, app_id, ep_id) = (store.clone(), app.id.clone(), ep.id.clone());
        async move {
            let rows = store
                .list_endpoint_messages(&app_id, &ep_id, &filter, &asc(50))
                .await
                .unwrap();
            for (d, m) in &rows {
                assert_eq!(
                    (d.msg_id.as_str(), d.endpoint_id.as_str()),
                    (m.id.as_str(), ep_id.as_str())
                );
            }
            rows.into_iter().map(|(_, m)| m.id).collect::<Vec<_>>()
        }
    };
    let status = |s: MessageStatus| MessageFilter {
        status: Some(s),
        ..Default::default()
    };
    assert_eq!(found(MessageFilter::default()).await, ids(&[0, 1, 2, 3, 4]));
    assert_eq!(found(status(MessageStatus::Success)).await, ids(&[0, 2, 4]));
    assert_eq!(found(status(MessageStatus::Pending)).await, ids(&[1, 3]));
    assert_eq!(found(status(MessageStatus::Fail)).await, ids(&[]));
    assert_eq!(
        found(MessageFilter {
            channel: Some("x".to_owned()),
            ..Default::default()
        })
        .await,
        ids(&[2])
    );
    assert_eq!(
        found(MessageFilter {
            tag: Some("t".to_owned()),
            ..Default::default()
        })
        .await,
        ids(&[2])
    );
    assert_eq!(
        found(MessageFilter {
            event_types: Some(vec!["b".to_owned()]),
            ..Default::default()
        })
        .await,
        ids(&[4])
    );
    let window = MessageFilter {
        after: Some(t0),
        before: Some(t0 + secs(3)),
        ..Default::default()
    };
    assert_eq!(found(window).await, ids(&[1, 2]));

    // The returned delivery is the current one.
    let (d, m) = store
        .list_endpoint_messages(&app.id, &ep.id, &status(MessageStatus::Success), &asc(1))
        .await
        .unwrap()[0]
        .clone();
    assert_eq!(store.delivery_for(&m.id, &ep.id).await.unwrap(), Some(d));

    let list = |p: PageReq| {
        let (s, app_id, ep_id) = (store.clone(), app.id.clone(), ep.id.clone());
        async move {
            s.list_endpoint_messages(&app_id, &ep_id, &MessageFilter::default(), &p)
                .await
        }
    };
    let mut newest_first = ids(&[0, 1, 2, 3, 4]);
    newest_first.reverse();
    assert_eq!(
        walk(2, true, list, |(_, m)| m.id.clone()).await,
        newest_first
    );

    let stranger = new_app(&store).await;
    assert!(store
        .list_endpoint_messages(&stranger.id, &ep.id, &MessageFilter::default(), &asc(10))
        .await
        .unwrap()
        .is_empty());
}

pub async fn pending_deliveries_include_sending_and_page_by_id(store: DynStore) {
    let app = new_app(&store).await;
    for _ in 0..6 {
        new_endpoint(&store, &app.id, |_| {}).await;
    }
    let (_, deliveries) = send(&store, &app.id, "user.created", |_| {}).await;
    let statuses = [
        MessageStatus::Pending,
        MessageStatus::Sending,
        MessageStatus::Success,
        MessageStatus::Fail,
        MessageStatus::Canceled,
        MessageStatus::Pending,
    ];
    let mut unfinished = Vec::new();
    for (d, s) in deliveries.iter().zip(statuses) {
        store.upsert_delivery(&with_status(d, s)).await.unwrap();
        if matches!(s, MessageStatus::Pending | MessageStatus::Sending) {
            unfinished.push(d.id.clone());
        }
    }
    let unfinished = sorted(unfinished);

    let all = store.list_pending_deliveries(None, 100).await.unwrap();
    assert_eq!(
        all.iter().map(|d| d.id.clone()).collect::<Vec<_>>(),
        unfinished
    );

    let mut walked = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .list_pending_deliveries(after.as_deref(), 1)
            .await
            .unwrap();
        let Some(d) = page.first() else { break };
        assert_eq!(page.len(), 1);
        walked.push(d.id.clone());
        after = Some(d.id.clone());
    }
    assert_eq!(walked, unfinished);
}

pub async fn upsert_delivery_resets_an_existing_row_and_keeps_its_id(store: DynStore) {
    let app = new_app(&store).await;
    new_endpoint(&store, &app.id, |_| {}).await;
    let (msg, deliveries) = send(&store, &app.id, "user.created", |_| {}).await;
    let original = &deliveries[0];
    let failed = Delivery {
        status: MessageStatus::Fail,
        attempts: 3,
        next_attempt: None,
        ..original.clone()
    };
    assert_eq!(store.upsert_delivery(&failed).await.unwrap(), failed);
    assert_eq!(
        store.delivery(&original.id).await.unwrap().as_ref(),
        Some(&failed)
    );

    let later = now() + secs(60);
    let recover = Delivery {
        id: new_id(IdKind::Destination),
        status: MessageStatus::Pending,
        attempts: 0,
        next_attempt: Some(later),
        created_at: later,
        updated_at: later,
        ..original.clone()
    };
    let stored = store.upsert_delivery(&recover).await.unwrap();
    let expected = Delivery {
        id: original.id.clone(),
        created_at: original.created_at,
        status: MessageStatus::Pending,
        attempts: 0,
        next_attempt: Some(later),
        updated_at: later,
        ..original.clone()
    };
    assert_eq!(stored, expected);
    assert_eq!(store.delivery(&original.id).await.unwrap(), Some(expected));
    assert_eq!(
        store.delivery(&recover.id).await.unwrap(),
        None,
        "no second row"
    );

    // A pair with no delivery yet is inserted as given.
    let late = new_endpoint(&store, &app.id, |_| {}).await;
    let fresh = Delivery {
        id: new_id(IdKind::Destination),
        endpoint_id: late.id.clone(),
        ..recover
    };
    assert_eq!(store.upsert_delivery(&fresh).await.unwrap(), fresh);
    assert_eq!(
        store.delivery_for(&msg.id, &late.id).await.unwrap(),
        Some(fresh)
    );
}

pub async fn failed_deliveries_are_listed_within_the_window(store: DynStore) {
    let app = new_app(&store).await;
    let ep = new_endpoint(&store, &app.id, |_| {}).await;
    let other = new_endpoint(&store, &app.id, |_| {}).await;
    let t0 = now() - secs(3600);
    let mut mine = Vec::new();
    for i in 0..4 {
        let (_, deliveries) = send(&store, &app.id, "user.created", |m| {
            m.created_at = t0 + secs(i)
        })
        .await;
        let status = if i == 2 {
            MessageStatus::Success
        } else {
            MessageStatus::Fail
        };
        for d in &deliveries {
            store
                .upsert_delivery(&with_status(d, status))
                .await
                .unwrap();
        }
        mine.push(
            deliveries
                .into_iter()
                .find(|d| d.endpoint_id == ep.id)
                .unwrap()
                .id,
        );
    }
    let ids = |idx: &[usize]| sorted(idx.iter().map(|&i| mine[i].clone()).collect());
    let failed = |since: i64, until: Option<i64>| {
        let (store, app_id, ep_id) = (store.clone(), app.id.clone(), ep.id.clone());
        async move {
            let rows = store
                .list_failed_deliveries(
                    &app_id,
                    &ep_id,
                    t0 + secs(since),
                    until.map(|u| t0 + secs(u)),
                    None,
                    100,
                )
                .await
                .unwrap();
            assert!(rows
                .iter()
                .all(|d| d.status == MessageStatus::Fail && d.endpoint_id == ep_id));
            rows.into_iter().map(|d| d.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(failed(0, None).await, ids(&[0, 1, 3]));
    assert_eq!(failed(1, None).await, ids(&[1, 3]), "since is inclusive");
    assert_eq!(failed(0, Some(3)).await, ids(&[0, 1]), "until is exclusive");
    assert_eq!(failed(4, None).await, ids(&[]));
    let theirs = store
        .list_failed_deliveries(&app.id, &other.id, t0, None, None, 100)
        .await
        .unwrap();
    assert_eq!(theirs.len(), 3);

    // Recover walks the window a page at a time, in id order.
    let all = ids(&[0, 1, 3]);
    let mut walked = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..all.len() + 1 {
        let page = store
            .list_failed_deliveries(&app.id, &ep.id, t0, None, after.as_deref(), 2)
            .await
            .unwrap();
        assert!(page.len() <= 2, "a page holds at most the limit");
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        walked.extend(page.into_iter().map(|d| d.id));
    }
    assert_eq!(walked, all, "pages cover the window once, in id order");
}

/// Recover's write: the failed ones among the ids go back to pending at once,
/// with no attempts, due at the given time; any other status (a resend got
/// there first) and unknown ids are left alone and not returned.
pub async fn retrying_failed_deliveries_revives_only_the_failed_ones(store: DynStore) {
    let app = new_app(&store).await;
    for _ in 0..4 {
        new_endpoint(&store, &app.id, |_| {}).await;
    }
    let (_, deliveries) = send(&store, &app.id, "user.created", |_| {}).await;
    let statuses = [
        MessageStatus::Fail,
        MessageStatus::Success,
        MessageStatus::Fail,
        MessageStatus::Pending,
    ];
    for (d, s) in deliveries.iter().zip(statuses) {
        let stored = Delivery {
            attempts: 5,
            next_attempt: None,
            ..with_status(d, s)
        };
        store.upsert_delivery(&stored).await.unwrap();
    }
    let mut ids: Vec<String> = deliveries.iter().map(|d| d.id.clone()).collect();
    ids.push(new_id(IdKind::Destination));
    let at = now() + secs(5);

    let revived = store.retry_failed_deliveries(&ids, at).await.unwrap();
    let failed: Vec<String> = deliveries
        .iter()
        .zip(statuses)
        .filter(|(_, s)| *s == MessageStatus::Fail)
        .map(|(d, _)| d.id.clone())
        .collect();
    assert_eq!(
        revived.iter().map(|d| d.id.clone()).collect::<Vec<_>>(),
        sorted(failed)
    );
    for d in &revived {
        assert_eq!(
            (d.status, d.attempts, d.next_attempt, d.updated_at),
            (MessageStatus::Pending, 0, Some(at), at)
        );
        assert_eq!(store.delivery(&d.id).await.unwrap().as_ref(), Some(d));
    }
    for (d, s) in deliveries.iter().zip(statuses) {
        if s != MessageStatus::Fail {
            let kept = store.delivery(&d.id).await.unwrap().unwrap();
            assert_eq!((kept.status, kept.attempts), (s, 5), "left alone");
        }
    }
    assert!(
        store
            .retry_failed_deliveries(&ids, at)
            .await
            .unwrap()
            .is_empty(),
        "none failed any more"
    );
}
