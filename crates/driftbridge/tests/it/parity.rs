//! One conversation, two paths: the webhook sync (`serve`, a `conversation_push`) and the
//! export write the same rows, bot-authored messages and the bot user included, because both
//! fetch through `DriftClient::fetch_conversation` and map through one function.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bridge_export::{Destination, ExportOptions, Mode, Progress, Target};
use bridge_store::tables::{Row, Table, Value, table};
use bridge_store::{Backend, Store};
use drift_types::{AuthorType, ConversationId};

use crate::export::{client, normalized, read_sql};
use crate::helpers::{drained, env, org, post, push};

/// The rows of `t` whose `key` column is one of `ids`, without volatile columns, sorted.
async fn rows_of(
    store: &Store,
    t: &Table,
    key: &str,
    org: drift_types::OrgId,
    ids: &BTreeSet<i64>,
) -> Vec<Row> {
    let key = t.index(key).expect("key column");
    let rows = read_sql(store, t, org)
        .await
        .into_iter()
        .filter(|r| r[key].as_i64().is_some_and(|v| ids.contains(&v)))
        .collect();
    normalized(t, rows, false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_webhook_sync_and_the_export_write_identical_rows_bot_messages_included() {
    let env = env(Backend::Sqlite, 60).await.expect("sqlite");
    let org = org(&env.sim);
    // Conversations with a message the bot wrote, and the users each references.
    let (ids, contacts, users, bot) = {
        let world = env.sim.state.world.lock();
        let o = world.org(org).expect("org");
        let mut ids = BTreeSet::new();
        let (mut contacts, mut users) = (BTreeSet::new(), BTreeSet::new());
        for (id, rec) in &o.conversations {
            if ids.len() < 3 && rec.messages.iter().any(|m| m.author.bot) {
                ids.insert(id.0);
                contacts.extend(rec.conversation.contact_id.map(|c| c.0));
                users.extend(rec.conversation.participants.iter().map(|u| u.0));
                users.extend(
                    rec.messages
                        .iter()
                        .filter(|m| m.author.kind == AuthorType::User)
                        .map(|m| m.author.id),
                );
            }
        }
        (ids, contacts, users, o.bot_id.0)
    };
    assert_eq!(
        ids.len(),
        3,
        "the dataset has conversations with bot messages"
    );
    assert!(users.contains(&bot), "the bot authored messages there");

    // Path 1: serve receives a conversation_push for each and syncs it.
    let running = driftbridge::serve::start(&env.config, true).await.unwrap();
    let http = reqwest::Client::new();
    for (n, id) in ids.iter().enumerate() {
        let status = post(
            &http,
            running.addr,
            &push(org, ConversationId(*id), n as i64),
        )
        .await
        .unwrap();
        assert_eq!(status, 200);
    }
    let synced = running.queue.store().clone();
    drained(&synced, Duration::from_secs(30)).await;

    // Path 2: a full export of the org into another SQLite file.
    let dir = tempfile::tempdir().unwrap();
    let target = Target::Sql(format!("sqlite:{}", dir.path().join("export.db").display()));
    let dest = Destination::open(&target, org).await.unwrap();
    let client = client(&env.sim);
    let mut opts = ExportOptions::new(Mode::Full);
    opts.concurrency = 4;
    bridge_export::run(
        client,
        dest.clone(),
        org,
        opts,
        Arc::new(Progress::default()),
    )
    .await
    .unwrap();
    let exported = dest.sql_store().expect("a SQL destination").clone();

    let message_ids: BTreeSet<i64> = {
        let t = table("messages").unwrap();
        let (id, conv) = (t.index("id").unwrap(), t.index("conversation_id").unwrap());
        read_sql(&synced, t, org)
            .await
            .into_iter()
            .filter(|r| r[conv].as_i64().is_some_and(|c| ids.contains(&c)))
            .filter_map(|r| r[id].as_i64())
            .collect()
    };
    for (name, key, keys) in [
        ("conversations", "id", &ids),
        ("conversation_participants", "conversation_id", &ids),
        ("conversation_tags", "conversation_id", &ids),
        ("messages", "conversation_id", &ids),
        ("message_buttons", "message_id", &message_ids),
        ("transcripts", "conversation_id", &ids),
    ] {
        let t = table(name).unwrap();
        let a = rows_of(&synced, t, key, org, keys).await;
        let b = rows_of(&exported, t, key, org, keys).await;
        assert!(
            !a.is_empty() || name == "message_buttons" || name == "conversation_tags",
            "{name}: the sync wrote rows"
        );
        assert_eq!(a, b, "{name}: the sync and the export differ");
    }
    let messages = table("messages").unwrap();
    let bot_col = messages.index("author_bot").unwrap();
    let bot_rows = rows_of(&synced, messages, "conversation_id", org, &ids)
        .await
        .into_iter()
        .filter(|r| r[bot_col] == Value::Int(1))
        .count();
    assert!(bot_rows > 0, "bot-authored messages were synced");

    // The contact and every referenced user (the bot too) are the same row on both sides.
    for (name, wanted) in [("contacts", &contacts), ("users", &users)] {
        let t = table(name).unwrap();
        let a = rows_of(&synced, t, "id", org, wanted).await;
        let b = rows_of(&exported, t, "id", org, wanted).await;
        assert_eq!(
            a.len(),
            wanted.len(),
            "{name}: the sync wrote every referenced one"
        );
        assert_eq!(a, b, "{name}: the sync and the export differ");
    }
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_in_drift_text_exports_to_postgres_as_a_replacement_character() {
    let Some(db) = bridge_store::testing::fresh(Backend::Postgres).await else {
        return;
    };
    let env = env(Backend::Sqlite, 5).await.expect("sqlite");
    let org = org(&env.sim);
    let (conversation, message) = {
        let mut world = env.sim.state.world.lock();
        let o = world.org_mut(org).expect("org");
        let rec = o.conversations.values_mut().next().expect("a conversation");
        let m = rec.messages.first_mut().expect("a message");
        m.body = Some("before \u{0} after".into());
        (rec.conversation.id.0, m.id.0)
    };
    let dest = Destination::open(&Target::Sql(db.url.clone()), org)
        .await
        .unwrap();
    let client = client(&env.sim);
    let mut opts = ExportOptions::new(Mode::Full);
    opts.streams = [
        bridge_store::tables::Stream::Conversations,
        bridge_store::tables::Stream::Messages,
    ]
    .into_iter()
    .collect();
    bridge_export::run(
        client,
        dest.clone(),
        org,
        opts,
        Arc::new(Progress::default()),
    )
    .await
    .expect("the export does not fail on a NUL");
    let store = dest.sql_store().unwrap();
    let body: String = bridge_store::sqlx::query_scalar(
        "SELECT body FROM messages WHERE conversation_id = $1 AND id = $2",
    )
    .bind(conversation)
    .bind(message)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(body, "before \u{fffd} after");
}
