//! Background tasks: written whole, replaced by id, read back by id.

use hookd_core::model::{BackgroundTask, TaskStatus};
use hookd_core::{new_id, IdKind};

use super::{now, secs, DynStore};

pub async fn background_tasks_are_replaced_by_id(store: DynStore) {
    let t = now();
    let running = BackgroundTask {
        id: new_id(IdKind::Task),
        task: "endpoint.recover".to_owned(),
        status: TaskStatus::Running,
        data: serde_json::json!({ "since": "2026-01-01T00:00:00Z" }),
        created_at: t,
        updated_at: t,
    };
    store.upsert_task(&running).await.unwrap();
    assert_eq!(
        store.task(&running.id).await.unwrap(),
        Some(running.clone())
    );

    for status in [TaskStatus::Finished, TaskStatus::Failed] {
        let next = BackgroundTask {
            status,
            data: serde_json::json!({ "recovered": 3 }),
            updated_at: t + secs(5),
            ..running.clone()
        };
        store.upsert_task(&next).await.unwrap();
        assert_eq!(store.task(&running.id).await.unwrap(), Some(next));
    }
    assert_eq!(store.task(&new_id(IdKind::Task)).await.unwrap(), None);
}
