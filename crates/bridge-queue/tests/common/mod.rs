//! What the queue's test binaries share.

use bridge_queue::{NewJob, Queue};
use serde_json::json;

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Enqueues `j` in a transaction of its own; answers its id.
pub async fn enqueue(q: &Queue, j: &NewJob, now: i64) -> i64 {
    let mut tx = q.store().begin().await.unwrap();
    let id = q.enqueue(&mut tx, j, now).await.unwrap();
    tx.commit().await.unwrap();
    id
}

/// A job of org 1 named `name` with `{"n": n}` as its arguments.
pub fn job(name: &str, n: i64) -> NewJob {
    NewJob {
        name: name.into(),
        org_id: Some(1),
        args: json!({"n": n}),
        event_id: None,
    }
}
