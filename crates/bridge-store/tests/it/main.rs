//! bridge-store against real SQLite files and a real PostgreSQL (one test suite, both backends).

use bridge_store::tables::{Batch, Storage, TABLES};
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
        let mut b = Batch::new();
        b.conversation(ORG, &conversation(&[1], &[]), 5);
        warehouse::write(&mut tx, &b).await.unwrap();
        tx.commit().await.unwrap();
        store.close().await;
        let again = Store::connect(&db.url).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM schema_migrations")
            .fetch_one(again.pool())
            .await
            .unwrap();
        let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
                    && !e
                        .as_ref()
                        .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".postgres.sql"))
            })
            .count() as i64;
        assert_eq!(n, files, "{backend:?}: one row per migration file");
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
        let mut b = Batch::new();
        b.conversation(ORG, &conversation(&[1, 2], &["a", "b"]), 5);
        assert_eq!(
            warehouse::write(&mut tx, &b).await.unwrap(),
            5,
            "{backend:?}"
        );
        let mut b = Batch::new();
        b.conversation(ORG, &conversation(&[2, 3, 4], &["c"]), 6);
        // participants 1 gone, 3 and 4 new; tags a and b gone, c new; the row itself unchanged
        assert_eq!(
            warehouse::write(&mut tx, &b).await.unwrap(),
            6,
            "{backend:?}"
        );
        let m: Message = serde_json::from_value(json!({
            "id": 1, "conversationId": 77, "createdAt": 1, "body": "hi",
            "author": {"type": "user", "id": 2, "bot": false}, "type": "chat",
            "buttons": [{"label": "Yes", "value": "y", "type": "reply"},
                        {"label": "No", "value": "n", "type": "reply"}]
        }))
        .unwrap();
        let mut b = Batch::new();
        b.message(ORG, &m);
        assert_eq!(
            warehouse::write(&mut tx, &b).await.unwrap(),
            3,
            "{backend:?}"
        );
        assert_eq!(
            warehouse::write(&mut tx, &b).await.unwrap(),
            0,
            "{backend:?}"
        );
        let mut edited = m.clone();
        edited.body = Some("hello".into());
        edited.buttons.as_mut().unwrap().pop();
        let mut b = Batch::new();
        b.message(ORG, &edited);
        assert_eq!(
            warehouse::write(&mut tx, &b).await.unwrap(),
            2,
            "{backend:?}"
        );
        tx.commit().await.unwrap();
        let counts: std::collections::HashMap<_, _> =
            store.table_counts().await.unwrap().into_iter().collect();
        assert_eq!(counts["conversations"], 1, "{backend:?}");
        assert_eq!(counts["conversation_participants"], 3, "{backend:?}");
        assert_eq!(counts["conversation_tags"], 1, "{backend:?}");
        assert_eq!(counts["messages"], 1, "{backend:?}");
        assert_eq!(counts["message_buttons"], 1, "{backend:?}");
        // _synced_at says when the content last changed: the second write changed only children
        let synced: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM conversations",
            bridge_store::tables::sql::ms(backend, "_synced_at")
        )))
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(synced, 5);
    }
}

#[tokio::test]
async fn the_table_definitions_match_the_migrated_schema() {
    for (backend, store, _db) in stores().await {
        for t in TABLES.iter() {
            let sql = match backend {
                Backend::Sqlite => format!(
                    "SELECT name, type FROM pragma_table_info('{}') ORDER BY cid",
                    t.name
                ),
                Backend::Postgres => format!(
                    "SELECT column_name::text, data_type::text FROM information_schema.columns \
                     WHERE table_name = '{}' AND table_schema = current_schema() ORDER BY ordinal_position",
                    t.name
                ),
            };
            let cols: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .fetch_all(store.pool())
                .await
                .unwrap();
            // Names and types; the order of a SQL table's columns means nothing (a renamed
            // column keeps its place).
            let mut want: Vec<(String, String)> = t
                .columns
                .iter()
                .map(|c| {
                    let ty = match (backend, c.ty.storage()) {
                        (Backend::Postgres, _) => c.ty.postgres(),
                        (Backend::Sqlite, Storage::Int) => "BIGINT",
                        (Backend::Sqlite, Storage::Text) => "TEXT",
                    };
                    (c.name.to_owned(), ty.to_lowercase())
                })
                .collect();
            let mut got: Vec<(String, String)> = cols
                .into_iter()
                .map(|(n, ty)| {
                    let ty = match ty.to_lowercase().as_str() {
                        "timestamp with time zone" => "timestamptz".to_owned(),
                        other => other.to_owned(),
                    };
                    (n, ty)
                })
                .collect();
            want.sort();
            got.sort();
            assert_eq!(got, want, "{backend:?} {}", t.name);
        }
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

#[tokio::test]
async fn a_sync_lease_has_one_holder_until_it_expires_or_is_released() {
    use bridge_store::checkpoints::{try_lock, unlock};
    for (backend, store, _db) in stores().await {
        assert!(
            try_lock(&store, ORG, "a", 100, 200).await.unwrap(),
            "{backend:?}"
        );
        assert!(
            !try_lock(&store, ORG, "b", 150, 250).await.unwrap(),
            "{backend:?}"
        );
        assert!(
            try_lock(&store, ORG, "a", 150, 300).await.unwrap(),
            "renewal {backend:?}"
        );
        assert!(
            !try_lock(&store, ORG, "b", 250, 350).await.unwrap(),
            "{backend:?}"
        );
        assert!(
            try_lock(&store, ORG, "b", 301, 400).await.unwrap(),
            "expired {backend:?}"
        );
        unlock(&store, ORG, "a").await.unwrap();
        assert!(
            !try_lock(&store, ORG, "a", 302, 400).await.unwrap(),
            "{backend:?}"
        );
        unlock(&store, ORG, "b").await.unwrap();
        assert!(
            try_lock(&store, ORG, "a", 303, 400).await.unwrap(),
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn a_person_s_signal_records_are_held_by_one_job_and_gather_its_ids() {
    use bridge_store::signals::{self, Key};
    for (backend, store, _db) in stores().await {
        let key = Key {
            org: ORG.0,
            contact: 501,
            sink: "hubspot",
        };
        let first = signals::claim(&store, key, 1, 1000, 5000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first, signals::Records::default(), "{backend:?}");
        // Another job waits while the hold lasts; the holder itself may take it again.
        assert!(
            signals::claim(&store, key, 2, 2000, 6000)
                .await
                .unwrap()
                .is_none(),
            "{backend:?}"
        );
        assert!(
            signals::claim(&store, key, 1, 2000, 6000)
                .await
                .unwrap()
                .is_some()
        );
        signals::begin_write(&store, key, 1, 2500).await.unwrap();
        let contact = [("contact".to_owned(), "c1".to_owned())]
            .into_iter()
            .collect();
        let mut tx = store.begin().await.unwrap();
        assert!(
            !signals::record(&mut tx, key, 2, &contact, 3000)
                .await
                .unwrap(),
            "not the holder"
        );
        assert!(
            signals::record(&mut tx, key, 1, &contact, 3000)
                .await
                .unwrap()
        );
        tx.commit().await.unwrap();
        // Released: the next job sees the ids, and nothing pending.
        let next = signals::claim(&store, key, 2, 4000, 9000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(next.external_ids, contact, "{backend:?}");
        assert_eq!(next.pending_since, None);
        // A failed write releases the hold but stays pending: the CRM may hold its records.
        signals::begin_write(&store, key, 2, 4100).await.unwrap();
        signals::release(&store, key, 2, 4200).await.unwrap();
        let after = signals::claim(&store, key, 3, 4300, 9000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(after.pending_since, Some(4100), "{backend:?}");
        // A later signal's ids join the earlier ones the claim answered.
        let mut meeting = after.external_ids.clone();
        meeting.insert("meeting:1:cal-1".to_owned(), "m9".to_owned());
        let mut tx = store.begin().await.unwrap();
        assert!(
            signals::record(&mut tx, key, 3, &meeting, 5000)
                .await
                .unwrap()
        );
        tx.commit().await.unwrap();
        // An expired hold is taken over.
        signals::claim(&store, key, 4, 6000, 6500)
            .await
            .unwrap()
            .unwrap();
        let taken = signals::claim(&store, key, 5, 7000, 9000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(taken.external_ids.len(), 2, "{backend:?}");
        assert_eq!(taken.pending_since, None);
        // Counted per sink: another person's write to another sink began and never recorded.
        let other = Key {
            org: ORG.0,
            contact: 502,
            sink: "salesforce",
        };
        signals::claim(&store, other, 9, 7000, 9000)
            .await
            .unwrap()
            .unwrap();
        signals::begin_write(&store, other, 9, 7100).await.unwrap();
        assert_eq!(
            signals::counts(&store).await.unwrap(),
            vec![("hubspot".into(), 1, 0), ("salesforce".into(), 0, 1)],
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn a_delivery_row_is_held_by_one_job_and_records_its_ids() {
    use bridge_store::deliveries::{self, Key};
    for (backend, store, _db) in stores().await {
        let key = Key {
            org: ORG.0,
            conversation: 77,
            sink: "hubspot",
        };
        let row = deliveries::claim(&store, &key, 1, 1000, 5000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (row.state.as_str(), row.deliveries),
            ("new", 0),
            "{backend:?}"
        );
        // Another job waits while the hold lasts; the holder itself may take it again.
        assert!(
            deliveries::claim(&store, &key, 2, 2000, 6000)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            deliveries::claim(&store, &key, 1, 2000, 6000)
                .await
                .unwrap()
                .is_some()
        );
        deliveries::begin_write(&store, &key, 1, 2500)
            .await
            .unwrap();
        assert_eq!(
            deliveries::get(&store, &key)
                .await
                .unwrap()
                .unwrap()
                .pending_since,
            Some(2500)
        );
        let ids = [("note".to_owned(), "12".to_owned())].into_iter().collect();
        let mut tx = store.begin().await.unwrap();
        assert!(
            !deliveries::record(&mut tx, &key, 2, &ids, "h1", 3000)
                .await
                .unwrap(),
            "not the holder"
        );
        assert!(
            deliveries::record(&mut tx, &key, 1, &ids, "h1", 3000)
                .await
                .unwrap()
        );
        tx.commit().await.unwrap();
        let r = deliveries::get(&store, &key).await.unwrap().unwrap();
        assert_eq!(r.state, "delivered");
        assert_eq!(r.external_ids, ids);
        assert_eq!(r.content_hash.as_deref(), Some("h1"));
        assert_eq!((r.pending_since, r.deliveries), (None, 1));
        // Released: another job takes it; a failure is kept on the row.
        let again = deliveries::claim(&store, &key, 2, 4000, 9000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.external_ids, r.external_ids);
        deliveries::release(&store, &key, 2, Some("HubSpot answered 400"), true, 4100)
            .await
            .unwrap();
        // An expired hold is taken over.
        deliveries::claim(&store, &key, 3, 5000, 5500)
            .await
            .unwrap()
            .unwrap();
        assert!(
            deliveries::claim(&store, &key, 4, 6000, 7000)
                .await
                .unwrap()
                .is_some()
        );
        let listed = deliveries::list(&store, Some("hubspot"), 10).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].state, "failed");
        assert_eq!(
            listed[0].last_error.as_deref(),
            Some("HubSpot answered 400")
        );
        assert_eq!(deliveries::list(&store, None, 10).await.unwrap().len(), 1);
        assert!(
            deliveries::list(&store, Some("other"), 10)
                .await
                .unwrap()
                .is_empty()
        );
    }
}

#[tokio::test]
async fn events_inserted_together_get_ids_in_key_order_and_duplicates_get_none() {
    for (backend, store, _db) in stores().await {
        let ev = |key: &'static str, err: Option<&'static str>| events::NewEvent {
            dedup_key: key,
            org_id: Some(ORG.0),
            event_type: "new_message",
            payload: "{\"type\":\"new_message\"}",
            parse_error: err,
            conversation_id: None,
        };
        let mut tx = store.begin().await.unwrap();
        let first = events::insert_many(&mut tx, &[ev("a", None)], 1)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        // 1,200 rows: three statements; "a" is stored already, "b" comes twice; the others
        // arrive out of key order.
        let keys: Vec<String> = (0..1_200)
            .map(|i| format!("k{:04}", (i * 7_919) % 1_200))
            .collect();
        let mut rows = vec![ev("a", None), ev("b", Some("bad shape")), ev("b", None)];
        rows.extend(keys.iter().map(|k| events::NewEvent {
            dedup_key: k,
            ..ev("x", None)
        }));
        let mut tx = store.begin().await.unwrap();
        let ids = events::insert_many(&mut tx, &rows, 2).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(ids.len(), rows.len(), "{backend:?}");
        assert!(first[0].is_some());
        assert_eq!((ids[0], ids[2]), (None, None), "{backend:?}: duplicates");
        let b = ids[1].unwrap();
        let mut conn = store.acquire().await.unwrap();
        let stored = events::get(&mut conn, b).await.unwrap().unwrap();
        assert_eq!(stored.received_at, 2);
        let malformed = events::malformed(&mut conn, 10).await.unwrap();
        assert_eq!(malformed.len(), 1);
        assert_eq!(
            (malformed[0].id, malformed[0].error.as_str()),
            (b, "bad shape")
        );
        // Every new key got its own id, in key order: a batch is stored in key order, so
        // two processes storing the same events never wait on each other in a cycle.
        let mut fresh: Vec<(&String, i64)> = keys
            .iter()
            .zip(ids[3..].iter().map(|i| i.unwrap()))
            .collect();
        fresh.sort();
        assert!(fresh.windows(2).all(|w| w[0].1 < w[1].1), "{backend:?}");
    }
}

#[tokio::test]
async fn acknowledged_writes_wait_for_the_disk_and_redoable_ones_do_not_whatever_came_before() {
    for (backend, store, _db) in stores().await {
        // SQLite: 2 = FULL, 1 = NORMAL; PostgreSQL: on / off. Alternate, since the one
        // SQLite connection carries both kinds.
        let (durable, relaxed) = match backend {
            Backend::Sqlite => ("2", "1"),
            Backend::Postgres => ("on", "off"),
        };
        for _ in 0..2 {
            let mut tx = store.begin_redoable().await.unwrap();
            assert_eq!(level(backend, &mut tx).await, relaxed, "{backend:?}");
            tx.commit().await.unwrap();
            let mut tx = store.begin().await.unwrap();
            assert_eq!(level(backend, &mut tx).await, durable, "{backend:?}");
            tx.commit().await.unwrap();
        }
    }
}

/// The commit level the transaction runs at, as the backend reports it.
async fn level(backend: Backend, tx: &mut bridge_store::Tx) -> String {
    match backend {
        Backend::Sqlite => sqlx::query_scalar::<_, i64>("PRAGMA synchronous")
            .fetch_one(&mut **tx)
            .await
            .unwrap()
            .to_string(),
        Backend::Postgres => {
            sqlx::query_scalar::<_, String>("SELECT current_setting('synchronous_commit')")
                .fetch_one(&mut **tx)
                .await
                .unwrap()
        }
    }
}

#[tokio::test]
async fn a_lease_has_one_holder_until_it_expires_or_is_released() {
    use bridge_store::retention::{release_lease, try_lease};
    for (backend, store, _db) in stores().await {
        let mut c = store.acquire().await.unwrap();
        assert!(
            try_lease(&mut c, "retention", "a", 1_000, 2_000)
                .await
                .unwrap()
        );
        assert!(
            !try_lease(&mut c, "retention", "b", 1_500, 2_500)
                .await
                .unwrap(),
            "{backend:?}"
        );
        assert!(
            try_lease(&mut c, "retention", "a", 1_900, 3_000)
                .await
                .unwrap(),
            "renewal"
        );
        assert!(
            !try_lease(&mut c, "retention", "b", 2_500, 3_500)
                .await
                .unwrap()
        );
        assert!(
            try_lease(&mut c, "retention", "b", 3_001, 4_000)
                .await
                .unwrap(),
            "expired"
        );
        release_lease(&mut c, "retention", "b").await.unwrap();
        assert!(
            try_lease(&mut c, "retention", "a", 3_100, 4_100)
                .await
                .unwrap(),
            "released"
        );
        assert!(
            try_lease(&mut c, "other", "b", 3_100, 4_100).await.unwrap(),
            "by name"
        );
    }
}

fn widget_event(
    id: &str,
    at: i64,
    conversation: Option<i64>,
    source: &str,
) -> bridge_store::widget::NewWidgetEvent {
    bridge_store::widget::NewWidgetEvent {
        site: "www".into(),
        event_id: id.into(),
        visitor_id: "v1".into(),
        session_id: "s1".into(),
        event_type: "message:sent".into(),
        occurred_at: at,
        conversation_id: conversation,
        page_url: Some("https://x.example/pricing".into()),
        page_path: Some("/pricing".into()),
        referrer: None,
        touch: bridge_store::widget::Touch {
            utm_source: Some(source.into()),
            landing_page: Some(format!("https://x.example/?utm_source={source}")),
            ..Default::default()
        },
        data: "{}".into(),
    }
}

#[tokio::test]
async fn widget_events_are_stored_once_attributed_by_their_sessions_first_touch_and_purged_by_age()
{
    for (backend, store, _db) in stores().await {
        let org = ORG.0;
        let events = [
            widget_event("e1", 100, None, "first"),
            widget_event("e2", 200, Some(77), "second"),
        ];
        let mut tx = store.begin().await.unwrap();
        let new = bridge_store::widget::insert(&mut tx, org, &events, 1_000)
            .await
            .unwrap();
        assert_eq!(new, [true, true], "{backend:?}");
        let again = bridge_store::widget::insert(&mut tx, org, &events, 2_000)
            .await
            .unwrap();
        assert_eq!(again, [false, false], "{backend:?}: stored once");
        bridge_store::widget::record_consent(&mut tx, org, "www", "v1", true, 5)
            .await
            .unwrap();
        bridge_store::widget::record_consent(&mut tx, org, "www", "v1", false, 3)
            .await
            .unwrap();
        // The session's first event carries its first touch; the conversation has no row yet.
        let a = bridge_store::widget::derive_attribution(&mut tx, org, 77)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a.touch.utm_source.as_deref(), Some("first"), "{backend:?}");
        assert_eq!((a.first_seen_at, a.contact_id), (100, None), "{backend:?}");
        assert!(
            bridge_store::widget::derive_attribution(&mut tx, org, 78)
                .await
                .unwrap()
                .is_none()
        );
        // The conversation syncs afterwards: its facts take the attribution, and the attribution
        // its contact.
        let mut b = Batch::new();
        b.conversation(ORG, &conversation(&[1], &[]), 5);
        b.conversation_facts(ORG, &conversation(&[1], &[]), &[], Default::default());
        warehouse::write_checked(&mut tx, &b).await.unwrap();
        tx.commit().await.unwrap();
        let (source, landing): (Option<String>, Option<String>) = bridge_store::sqlx::query_as(
            "SELECT utm_source, landing_page FROM conversation_facts WHERE conversation_id = 77",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(source.as_deref(), Some("first"), "{backend:?}");
        assert_eq!(
            landing.as_deref(),
            Some("https://x.example/?utm_source=first")
        );
        let mut conn = store.acquire().await.unwrap();
        let a = bridge_store::widget::attribution(&mut conn, org, 77)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a.contact_id, Some(9), "{backend:?}: linked once synced");
        let accepted: i64 = bridge_store::sqlx::query_scalar(
            "SELECT CASE WHEN accepted THEN 1 ELSE 0 END FROM widget_consents",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        assert_eq!(
            accepted, 1,
            "{backend:?}: an older answer does not replace a newer one"
        );
        drop(conn);
        // An export walks the rows by key, one page after another.
        let mut conn = store.acquire().await.unwrap();
        let mut seen = Vec::new();
        let mut after: Option<Vec<bridge_store::tables::Value>> = None;
        loop {
            let page =
                bridge_store::widget::page(&mut conn, org, "widget_events", after.as_deref(), 1)
                    .await
                    .unwrap();
            let Some(last) = page.last() else { break };
            seen.push(last[2].as_str().unwrap().to_owned());
            after = Some(last[1..3].to_vec());
        }
        assert_eq!(seen, ["e1", "e2"], "{backend:?}");
        drop(conn);
        // Retention removes events received before the cut-off, the attribution stays.
        let mut tx = store.begin().await.unwrap();
        bridge_store::widget::insert(
            &mut tx,
            org,
            &[widget_event("e3", 300, Some(77), "x")],
            9_000,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        use bridge_store::retention::{Kind, purge_batch};
        assert_eq!(
            purge_batch(&store, Kind::WidgetEvents, 5_000, 100)
                .await
                .unwrap(),
            2
        );
        let left: Vec<String> =
            bridge_store::sqlx::query_scalar("SELECT event_id FROM widget_events")
                .fetch_all(store.pool())
                .await
                .unwrap();
        assert_eq!(left, ["e3"], "{backend:?}");
        let mut conn = store.acquire().await.unwrap();
        assert!(
            bridge_store::widget::attribution(&mut conn, org, 77)
                .await
                .unwrap()
                .is_some()
        );
        drop(conn);
        // An erasure of the conversation takes every event of its visitor.
        let mut tx = store.begin().await.unwrap();
        let erased = bridge_store::widget::erase(&mut tx, org, "", &[77])
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            erased,
            [
                ("widget_events", 1),
                ("widget_consents", 1),
                ("conversation_attribution", 1)
            ],
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn a_store_with_the_old_untyped_schema_migrates_in_place_without_loss() {
    for backend in BACKENDS {
        let Some(db) = fresh(*backend).await else {
            continue;
        };
        // Today's schema before typed columns: every time an epoch-ms BIGINT, every flag 0/1,
        // every JSON document TEXT.
        let old = Store::connect_with(
            &db.url,
            bridge_store::StoreOptions {
                schema_version: Some(13),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        for sql in [
            "INSERT INTO conversations (org_id, id, status, contact_id, inbox_id, \
             related_playbook_id, created_at, updated_at, synced_at, _deleted_at) \
             VALUES (1, 77, 'closed', 9, 2, NULL, 1767225600123, 1767225609999, 1767300000000, NULL)",
            "INSERT INTO messages (org_id, id, conversation_id, created_at, author_type, \
             author_id, author_bot, type, body, context, attributes, edited_message_id, edit_type) \
             VALUES (1, 5, 77, 1767225600456, 'user', 3, 1, 'chat', 'hi', \
             '{\"ip\":\"1.2.3.4\",\"odd\":\"a\\u0000b\"}', NULL, NULL, NULL)",
            "INSERT INTO contacts (org_id, id, created_at, email, name, first_name, last_name, \
             phone, company, title, external_id, attributes, synced_at, _deleted_at) VALUES \
             (1, 9, 1700000000001, 'ada@example.com', NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
             '{\"email\":\"ada@example.com\",\"score\":3}', 1767300000000, 1767300000500)",
            "INSERT INTO transcripts (org_id, conversation_id, body, fetched_at) \
             VALUES (1, 77, 'text', 1767300000777)",
            "INSERT INTO conversation_facts (org_id, conversation_id, status, inbox_id, \
             playbook_id, created_at, first_contact_message_at, first_bot_message_at, \
             first_agent_message_at, time_to_first_agent_reply_ms, handed_to_agent, bot_only, \
             first_close_at, time_to_close_ms, contact_messages, agent_messages, bot_messages, \
             distinct_agents, last_agent_id, goal_met, meetings_booked) VALUES (1, 77, 'closed', \
             2, NULL, 1767225600123, NULL, NULL, 1767225600456, 333, 1, 0, NULL, NULL, 0, 1, 0, \
             1, 3, 1, 0)",
            "INSERT INTO widget_consents (org_id, site, visitor_id, accepted, recorded_at) \
             VALUES (1, 's', 'v', 0, 1767225600000)",
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(old.pool())
                .await
                .unwrap_or_else(|e| panic!("{backend:?}: {sql}: {e}"));
        }
        old.close().await;
        // The next start migrates the same database in place.
        let store = Store::connect(&db.url).await.unwrap();
        let b = *backend;
        let read = |table: &'static str, key: &'static str, id: i64| {
            let store = store.clone();
            async move {
                let t = bridge_store::tables::table(table).unwrap();
                let sql = format!(
                    "SELECT {} FROM {table} WHERE org_id = 1 AND {key} = $1",
                    t.select_list(b)
                );
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(id)
                    .fetch_one(store.pool())
                    .await
                    .unwrap();
                let cells = t.row(&row);
                t.columns
                    .iter()
                    .zip(cells)
                    .map(|(c, v)| (c.name, v.to_json()))
                    .collect::<std::collections::HashMap<_, _>>()
            }
        };
        let c = read("conversations", "id", 77).await;
        assert_eq!(c["created_at"], json!(1767225600123_i64), "{b:?}");
        assert_eq!(c["updated_at"], json!(1767225609999_i64), "{b:?}");
        assert_eq!(c["_synced_at"], json!(1767300000000_i64), "{b:?}");
        assert_eq!(c["_deleted_at"], json!(null), "{b:?}");
        let m = read("messages", "id", 5).await;
        assert_eq!(m["created_at"], json!(1767225600456_i64), "{b:?}");
        assert_eq!(m["author_bot"], json!(1), "{b:?}");
        let context: serde_json::Value =
            serde_json::from_str(m["context"].as_str().unwrap()).unwrap();
        assert_eq!(context["ip"], "1.2.3.4", "{b:?}");
        // PostgreSQL's jsonb cannot hold U+0000; it becomes U+FFFD as in every new write.
        let odd = context["odd"].as_str().unwrap();
        assert!(odd == "a\u{0}b" || odd == "a\u{fffd}b", "{b:?}: {odd:?}");
        let k = read("contacts", "id", 9).await;
        assert_eq!(k["_deleted_at"], json!(1767300000500_i64), "{b:?}");
        assert_eq!(k["created_at"], json!(1700000000001_i64), "{b:?}");
        let attributes: serde_json::Value =
            serde_json::from_str(k["attributes"].as_str().unwrap()).unwrap();
        assert_eq!(attributes["score"], 3, "{b:?}");
        let t = read("transcripts", "conversation_id", 77).await;
        assert_eq!(t["_synced_at"], json!(1767300000777_i64), "{b:?}");
        let f = read("conversation_facts", "conversation_id", 77).await;
        assert_eq!(
            (&f["handed_to_agent"], &f["bot_only"], &f["goal_met"]),
            (&json!(1), &json!(0), &json!(1)),
            "{b:?}"
        );
        assert_eq!(f["first_agent_message_at"], json!(1767225600456_i64));
        let w = read("widget_consents", "0", 0).await;
        assert_eq!(w["accepted"], json!(0), "{b:?}");
        if b == Backend::Postgres {
            // Native types: date arithmetic needs no casts.
            let day: String = sqlx::query_scalar(
                "SELECT to_char(date_trunc('day', created_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD') \
                 FROM conversations",
            )
            .fetch_one(store.pool())
            .await
            .unwrap();
            assert_eq!(day, "2026-01-01");
        }
        // A write after the migration reads back the same on both backends.
        let mut b2 = Batch::new();
        b2.conversation(OrgId(1), &conversation(&[3], &["vip"]), 1767400000000);
        let mut tx = store.begin().await.unwrap();
        warehouse::write(&mut tx, &b2).await.unwrap();
        tx.commit().await.unwrap();
        let c = read("conversations", "id", 77).await;
        assert_eq!(c["created_at"], json!(1000), "{b:?}");
        assert_eq!(c["_synced_at"], json!(1767400000000_i64), "{b:?}");
    }
}

#[tokio::test]
async fn an_instant_no_destination_can_hold_is_written_as_the_nearest_one_or_null() {
    for (backend, store, _db) in stores().await {
        let mut c = conversation(&[1], &[]);
        c.created_at = Some(drift_types::EpochMillis(i64::MAX));
        c.updated_at = Some(drift_types::EpochMillis(i64::MIN));
        let mut m: Message = serde_json::from_value(json!({
            "id": 5, "conversationId": 77, "createdAt": 1, "body": "x",
            "author": {"type": "contact", "id": 9, "bot": false}, "type": "chat",
        }))
        .unwrap();
        m.created_at = drift_types::EpochMillis(i64::MAX);
        let mut b = Batch::new();
        b.conversation(ORG, &c, 5);
        b.message(ORG, &m);
        let mut tx = store.begin().await.unwrap();
        warehouse::write(&mut tx, &b)
            .await
            .unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        tx.commit().await.unwrap();
        let ms = |c: &str| bridge_store::tables::sql::ms(backend, c);
        let (created, updated): (Option<i64>, Option<i64>) =
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {}, {} FROM conversations",
                ms("created_at"),
                ms("updated_at")
            )))
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!((created, updated), (None, None), "{backend:?}");
        let sent: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM messages",
            ms("created_at")
        )))
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(sent, bridge_store::tables::MAX_INSTANT_MS, "{backend:?}");
    }
}

#[tokio::test]
async fn json_columns_read_back_as_written_whatever_they_nest() {
    for (backend, store, _db) in stores().await {
        let attributes = [
            json!({"nested": [[1, 2], [3]], "empty": [], "deep": {"a": [{"b": null}]}}),
            json!({"text": "[1,2]", "quote": "\"],\"id\":[8", "line": "a\u{2028}b"}),
            json!({}),
        ];
        let mut b = Batch::new();
        for (i, a) in attributes.iter().enumerate() {
            let m: Message = serde_json::from_value(json!({
                "id": 10 + i, "conversationId": 77, "createdAt": 1, "body": "x",
                "author": {"type": "contact", "id": 9, "bot": false}, "type": "chat",
                "attributes": a,
            }))
            .unwrap();
            b.message(ORG, &m);
        }
        let plain: Message = serde_json::from_value(json!({
            "id": 20, "conversationId": 77, "createdAt": 1, "body": "x",
            "author": {"type": "contact", "id": 9, "bot": false}, "type": "chat",
        }))
        .unwrap();
        b.message(ORG, &plain);
        let mut tx = store.begin().await.unwrap();
        warehouse::write(&mut tx, &b)
            .await
            .unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        tx.commit().await.unwrap();
        let read = bridge_store::tables::sql::read_expr(
            backend,
            bridge_store::tables::ColumnType::Json,
            "attributes",
        );
        let rows: Vec<(i64, Option<String>)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT id, {read} FROM messages ORDER BY id"
        )))
        .fetch_all(store.pool())
        .await
        .unwrap();
        let got: Vec<(i64, Option<serde_json::Value>)> = rows
            .into_iter()
            .map(|(id, t)| (id, t.map(|t| serde_json::from_str(&t).unwrap())))
            .collect();
        let want: Vec<(i64, Option<serde_json::Value>)> = attributes
            .iter()
            .enumerate()
            .map(|(i, a)| (10 + i as i64, Some(a.clone())))
            .chain([(20, None)])
            .collect();
        assert_eq!(got, want, "{backend:?}");
    }
}

/// Two processes' intake batches holding the same webhooks (Drift retried one at another
/// process) in opposite orders: on PostgreSQL each insert waits for the other transaction's
/// uncommitted row, and inserting in arrival order let each wait on the other, a deadlock
/// that PostgreSQL broke by failing one batch (its senders got a 5xx). Inserted in key order,
/// one waits for the other and both commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_intake_batches_with_the_same_keys_in_opposite_orders_both_commit() {
    for (backend, store, _db) in stores().await {
        if backend != Backend::Postgres {
            continue; // SQLite has one writer: its transactions never wait on each other.
        }
        for round in 0..20 {
            let keys: Vec<String> = (0..1000).map(|i| format!("r{round}-{i:04}")).collect();
            let rows = |rev: bool| -> Vec<events::NewEvent<'_>> {
                let mut v: Vec<events::NewEvent<'_>> = keys
                    .iter()
                    .map(|k| events::NewEvent {
                        dedup_key: k,
                        org_id: Some(ORG.0),
                        event_type: "new_message",
                        payload: "{}",
                        parse_error: None,
                        conversation_id: None,
                    })
                    .collect();
                if rev {
                    v.reverse();
                }
                v
            };
            let barrier = tokio::sync::Barrier::new(2);
            let batch = |rev: bool| {
                let (store, barrier, rows) = (&store, &barrier, rows(rev));
                async move {
                    let mut tx = store.begin().await.unwrap();
                    barrier.wait().await;
                    let ids = events::insert_many(&mut tx, &rows, 1).await?;
                    tx.commit().await.unwrap();
                    Ok::<_, bridge_store::Error>(ids.iter().flatten().count())
                }
            };
            let (a, b) = tokio::join!(batch(false), batch(true));
            let (a, b) = (
                a.unwrap_or_else(|e| panic!("round {round}: the first batch failed: {e:?}")),
                b.unwrap_or_else(|e| panic!("round {round}: the second batch failed: {e:?}")),
            );
            assert_eq!(a + b, 1000, "round {round}: each key stored once");
        }
    }
}

/// Two jobs syncing conversations with the same agents, their users in opposite orders: on
/// PostgreSQL each upsert waits for the row the other transaction just wrote, and writing in
/// the batch's order let each wait on the other (a deadlock, one job failed and retried).
/// Written in key order, one waits for the other's commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_batches_with_the_same_rows_in_opposite_orders_both_commit() {
    for (backend, store, _db) in stores().await {
        if backend != Backend::Postgres {
            continue; // SQLite has one writer: its transactions never wait on each other.
        }
        // The first rounds insert the rows, the later ones update them.
        for round in 0..10 {
            let batch = |rev: bool| {
                let mut ids: Vec<i64> = (0..300).collect();
                if rev {
                    ids.reverse();
                }
                let mut b = Batch::new();
                for id in ids {
                    let u: drift_types::User = serde_json::from_value(
                        json!({"id": 1000 + id, "name": format!("agent {id} r{round}")}),
                    )
                    .unwrap();
                    b.user(ORG, &u);
                }
                b
            };
            let barrier = tokio::sync::Barrier::new(2);
            let write = |rev: bool| {
                let (store, barrier, b) = (&store, &barrier, batch(rev));
                async move {
                    let mut tx = store.begin().await.unwrap();
                    barrier.wait().await;
                    warehouse::write(&mut tx, &b).await?;
                    tx.commit().await.unwrap();
                    Ok::<_, bridge_store::Error>(())
                }
            };
            let (a, b) = tokio::join!(write(false), write(true));
            a.unwrap_or_else(|e| panic!("round {round}: the first batch failed: {e:?}"));
            b.unwrap_or_else(|e| panic!("round {round}: the second batch failed: {e:?}"));
        }
    }
}

/// A retention purge beside a job rewriting the same old messages: the purge took its rows'
/// locks in the order its scan met them (where PostgreSQL keeps each row's latest version,
/// not key order), so a job holding one row and waiting on another the purge already held
/// deadlocked with it, and PostgreSQL failed one of the two. The purge now skips rows another
/// transaction holds (the next batch takes them), so it never waits on a row lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retention_purge_beside_a_job_writing_the_same_rows_never_deadlocks() {
    use bridge_store::retention::{Kind, purge_batch};
    for (backend, store, _db) in stores().await {
        if backend != Backend::Postgres {
            continue; // SQLite has one writer: its transactions never wait on each other.
        }
        let message = |id: i64, body: &str| -> Message {
            serde_json::from_value(json!({
                "id": id, "conversationId": 77, "createdAt": 1_000, "body": body,
                "author": {"type": "contact", "id": 9, "bot": false}, "type": "chat",
            }))
            .unwrap()
        };
        let write = |ids: &[i64], body: &str| {
            let mut b = Batch::new();
            for &id in ids {
                b.message(ORG, &message(id, body));
            }
            b
        };
        let mut tx = store.begin().await.unwrap();
        warehouse::write(&mut tx, &write(&[1, 2], "old"))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        // Message 1 changes once more: its latest version now lies after message 2's.
        let mut tx = store.begin().await.unwrap();
        warehouse::write(&mut tx, &write(&[1], "edited"))
            .await
            .unwrap();
        tx.commit().await.unwrap();

        // The job writes message 1 and holds it...
        let mut job = store.begin().await.unwrap();
        warehouse::write(&mut job, &write(&[1], "again"))
            .await
            .unwrap();
        // ...while the purge of old bodies runs...
        let purge = tokio::spawn({
            let store = store.clone();
            async move { purge_batch(&store, Kind::MessageBodies, 1_000_000, 100).await }
        });
        // ...until it waits on a row lock, or is done.
        let waiting = || async {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND wait_event_type = 'Lock'",
            )
            .fetch_one(store.pool())
            .await
            .unwrap();
            n > 0
        };
        for _ in 0..200 {
            if purge.is_finished() || waiting().await {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        // Then the job writes message 2 too, in key order as every job writes.
        let job_result = warehouse::write(&mut job, &write(&[2], "again")).await;
        let job_result = match job_result {
            Ok(_) => job.commit().await.map_err(|e| format!("{e:?}")),
            Err(e) => Err(format!("{e:?}")),
        };
        let purged = purge.await.unwrap().map_err(|e| format!("{e:?}"));
        assert!(job_result.is_ok(), "the job failed: {job_result:?}");
        assert_eq!(
            purged,
            Ok(1),
            "the purge takes the one old body nobody holds"
        );
        let bodies: Vec<(i64, Option<String>)> =
            sqlx::query_as("SELECT id, body FROM messages WHERE conversation_id = 77 ORDER BY id")
                .fetch_all(store.pool())
                .await
                .unwrap();
        assert_eq!(
            bodies,
            [(1, Some("again".into())), (2, Some("again".into()))],
            "the job's writes stand; the purge's next batch takes them once they are old"
        );
    }
}
