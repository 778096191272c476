//! bridge-store against real SQLite files and a real PostgreSQL (one test suite, both backends).

use bridge_store::testing::{BACKENDS, fresh};
use bridge_store::{Backend, Store, events, warehouse};
use drift_types::{Conversation, Message, OrgId};
use serde_json::json;

const ORG: OrgId = OrgId(5000883);

async fn stores() -> Vec<(Backend, Store, bridge_store::testing::TestDb)> {
    let mut out = Vec::new();
    for b in BACKENDS {
        if let Some(db) = fresh(*b).await {
            let store = Store::connect(&db.url).await.expect("connect");
            out.push((*b, store, db));
        }
    }
    out
}

fn conversation(participants: &[i64], tags: &[&str]) -> Conversation {
    serde_json::from_value(json!({
        "id": 77, "status": "closed", "contactId": 9, "inboxId": 1, "createdAt": 1000,
        "updatedAt": 2000, "participants": participants,
        "conversationTags": tags.iter().map(|t| json!({"name": t})).collect::<Vec<_>>(),
    }))
    .unwrap()
}

#[tokio::test]
async fn migrations_run_once_and_reconnecting_keeps_the_data() {
    for (backend, store, db) in stores().await {
        let mut tx = store.begin().await.unwrap();
        warehouse::upsert_conversation(&mut tx, ORG, &conversation(&[1], &[]), 5)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        store.close().await;
        let again = Store::connect(&db.url).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM schema_migrations")
            .fetch_one(again.pool())
            .await
            .unwrap();
        assert_eq!(n, 1, "{backend:?}");
        let counts = again.table_counts().await.unwrap();
        assert!(
            counts.contains(&("conversations", 1)),
            "{backend:?} {counts:?}"
        );
    }
}

#[tokio::test]
async fn upserting_twice_leaves_one_row_with_the_new_children() {
    for (backend, store, _db) in stores().await {
        let mut tx = store.begin().await.unwrap();
        warehouse::upsert_conversation(&mut tx, ORG, &conversation(&[1, 2], &["a", "b"]), 5)
            .await
            .unwrap();
        warehouse::upsert_conversation(&mut tx, ORG, &conversation(&[2, 3, 4], &["c"]), 6)
            .await
            .unwrap();
        let m: Message = serde_json::from_value(json!({
            "id": 1, "conversationId": 77, "createdAt": 1, "body": "hi",
            "author": {"type": "user", "id": 2, "bot": false}, "type": "chat",
            "buttons": [{"label": "Yes", "value": "y", "type": "reply"},
                        {"label": "No", "value": "n", "type": "reply"}]
        }))
        .unwrap();
        warehouse::upsert_message(&mut tx, ORG, &m).await.unwrap();
        warehouse::upsert_message(&mut tx, ORG, &m).await.unwrap();
        tx.commit().await.unwrap();
        let counts: std::collections::HashMap<_, _> =
            store.table_counts().await.unwrap().into_iter().collect();
        assert_eq!(counts["conversations"], 1, "{backend:?}");
        assert_eq!(counts["conversation_participants"], 3, "{backend:?}");
        assert_eq!(counts["conversation_tags"], 1, "{backend:?}");
        assert_eq!(counts["messages"], 1, "{backend:?}");
        assert_eq!(counts["message_buttons"], 2, "{backend:?}");
        let synced: i64 = sqlx::query_scalar("SELECT synced_at FROM conversations")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(synced, 6);
    }
}

#[tokio::test]
async fn an_event_is_stored_once_per_dedup_key() {
    for (backend, store, _db) in stores().await {
        let data = json!({"conversationId": 1});
        let key = events::dedup_key("conversation_push", Some(ORG.0), &data);
        let payload = json!({"type": "conversation_push", "orgId": ORG.0, "data": data});
        let mut tx = store.begin().await.unwrap();
        let first = events::insert(&mut tx, &key, Some(ORG.0), "conversation_push", &payload, 1)
            .await
            .unwrap();
        let second = events::insert(&mut tx, &key, Some(ORG.0), "conversation_push", &payload, 2)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert!(first.is_some(), "{backend:?}");
        assert_eq!(second, None, "{backend:?}");
        let mut conn = store.pool().acquire().await.unwrap();
        let stored = events::get(&mut conn, first.unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.payload, payload);
        assert_eq!(stored.received_at, 1);
    }
}

#[tokio::test]
async fn a_bad_database_url_says_what_is_wrong() {
    let e = Store::connect("mysql://x/y").await.unwrap_err().to_string();
    assert!(e.contains("only sqlite: and postgres://"), "{e}");
    let e = Store::connect("postgres://nobody:secret@127.0.0.1:1/x")
        .await
        .unwrap_err();
    assert!(!format!("{e:?}").contains("secret"));
}
