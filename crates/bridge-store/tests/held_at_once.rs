//! What reading the store back holds at once:
//! - `export` reads every webhook payload an org has stored to find the contacts they name;
//!   the store keeps them until retention removes them, so the reader must hold a
//!   statement's worth, not all of them;
//! - a report and the console's analytics read the facts of every conversation in their
//!   window; they keep what they aggregate, not the driver's rows besides.
//!
//! This test binary counts every allocation (its own global allocator). Its tests take turns
//! ([`TURN`]), so that nothing else allocates while one measures.

use bridge_store::analytics::{FactRow, each_fact, facts};
use bridge_store::events::{NewEvent, insert_many};
use bridge_store::reads::each_event_payload;
use bridge_store::tables::{Batch, Value, table};
use bridge_store::testing::{BACKENDS, fresh};
use bridge_store::{Backend, Store, warehouse};
use drift_types::OrgId;
use peakmem_alloc::{INSTRUMENTED_SYSTEM, PeakMemAlloc, PeakMemAllocTrait};

#[global_allocator]
static ALLOC: &PeakMemAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

/// One test of this binary at a time (each test has its own runtime; this lock works across
/// them, and a failed test does not poison it).
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn name(backend: &Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

/// Stored events of the org read back, about 1 KB each.
const EVENTS: usize = 20_000;

/// What reading them may hold at once: a statement's thousand payloads and the driver's
/// buffers. They take about 20 MB together.
const BOUND: usize = 4 << 20;

fn payload(n: usize) -> String {
    let filler = "x".repeat(900);
    format!(r#"{{"type":"new_message","orgId":7,"data":{{"n":{n},"body":"{filler}"}}}}"#)
}

#[tokio::test(flavor = "current_thread")]
async fn every_stored_payload_of_an_org_is_read_back_in_order_a_statement_at_a_time() {
    let _turn = TURN.lock().await;
    for backend in BACKENDS {
        let Some(db) = fresh(*backend).await else {
            continue;
        };
        let store = Store::connect(&db.url).await.unwrap();
        let payloads: Vec<String> = (0..EVENTS).map(payload).collect();
        // Keys that sort as the events were made: a batch is stored in key order.
        let keys: Vec<String> = (0..EVENTS).map(|n| format!("k{n:06}")).collect();
        let other_keys: Vec<String> = (0..10).map(|n| format!("other{n}")).collect();
        let mut tx = store.begin().await.unwrap();
        for (i, chunk) in payloads.chunks(1000).enumerate() {
            let rows: Vec<NewEvent<'_>> = chunk
                .iter()
                .enumerate()
                .map(|(j, p)| NewEvent {
                    dedup_key: &keys[i * 1000 + j],
                    org_id: Some(7),
                    event_type: "new_message",
                    payload: p,
                    parse_error: None,
                    conversation_id: None,
                })
                .collect();
            insert_many(&mut tx, &rows, 0).await.unwrap();
            // Another org's events between them are not read.
            let other = NewEvent {
                dedup_key: &other_keys[i % 10],
                org_id: Some(8),
                event_type: "new_message",
                payload: "{}",
                parse_error: None,
                conversation_id: None,
            };
            insert_many(&mut tx, &[other], 0).await.unwrap();
        }
        tx.commit().await.unwrap();
        drop(payloads);

        let (mut count, mut in_order) = (0, true);
        ALLOC.reset_peak_memory();
        each_event_payload(&store, OrgId(7), |p| {
            in_order &= p == payload(count);
            count += 1;
        })
        .await
        .unwrap();
        let peak = ALLOC.get_peak_memory();

        let name = name(backend);
        assert_eq!(count, EVENTS, "{name}");
        assert!(in_order, "{name}: payloads out of order or changed");
        assert!(
            peak < BOUND,
            "{name}: reading {EVENTS} payloads held {peak} bytes at once (at most {BOUND})"
        );
        store.close().await;
    }
}

/// Conversations whose facts a report reads back.
const FACTS: i64 = 20_000;

/// What reading them may hold at once, per conversation: the report's own row is about 250
/// bytes, and the vector that holds them grows by doubling.
const FACT_BYTES: usize = 600;

/// What tallying them as they arrive may hold, per conversation: the 8-byte times kept, in a
/// vector that grows by doubling, and the driver's buffers (their fixed size spread over
/// 20,000 conversations).
const TALLIED_BYTES: usize = 40;

#[tokio::test(flavor = "current_thread")]
async fn a_report_reads_the_facts_of_its_window_without_the_drivers_rows() {
    let _turn = TURN.lock().await;
    let t = table("conversation_facts").unwrap();
    for backend in BACKENDS {
        let Some(db) = fresh(*backend).await else {
            continue;
        };
        let store = Store::connect(&db.url).await.unwrap();
        let mut tx = store.begin().await.unwrap();
        for page in 0..FACTS / 500 {
            let mut b = Batch::new();
            for id in page * 500 + 1..=(page + 1) * 500 {
                let mut row = vec![Value::Null; t.columns.len()];
                let mut set = |c: &str, v: Value| row[t.index(c).unwrap()] = v;
                set("org_id", 7.into());
                set("conversation_id", id.into());
                set("status", "closed".into());
                set("created_at", (1_767_225_600_000 + id * 1000).into());
                set("time_to_close_ms", (id * 7).into());
                set("handed_to_agent", (id % 2 == 0).into());
                set("bot_only", false.into());
                set("goal_met", false.into());
                for c in [
                    "contact_messages",
                    "agent_messages",
                    "bot_messages",
                    "distinct_agents",
                    "meetings_booked",
                ] {
                    set(c, (id % 5).into());
                }
                set("_synced_at", 0.into());
                b.push(t, row);
            }
            warehouse::write(&mut tx, &b).await.unwrap();
        }
        tx.commit().await.unwrap();

        ALLOC.reset_peak_memory();
        let rows: Vec<FactRow> = facts(&store, 7, 0, 2_000_000_000_000).await.unwrap();
        let peak = ALLOC.get_peak_memory();

        let name = name(backend);
        assert_eq!(rows.len(), FACTS as usize, "{name}");
        assert!(
            rows.iter()
                .enumerate()
                .all(|(i, r)| r.conversation_id == i as i64 + 1
                    && r.facts.time_to_close_ms == Some(r.conversation_id * 7)
                    && r.handed_to_agent == (r.conversation_id % 2 == 0)),
            "{name}: facts read back wrong or out of order"
        );
        let bound = FACT_BYTES * FACTS as usize;
        assert!(
            peak < bound,
            "{name}: reading {FACTS} conversations' facts held {peak} bytes at once (at most {bound})"
        );
        drop(rows);

        // What `report` and the console keep: each fact is tallied as it arrives, and only
        // the times whose percentiles need every value stay (8 bytes each).
        ALLOC.reset_peak_memory();
        let (mut n, mut close) = (0, Vec::new());
        each_fact(&store, 7, 0, 2_000_000_000_000, |f| {
            n += 1;
            close.extend(f.facts.time_to_close_ms);
        })
        .await
        .unwrap();
        let peak = ALLOC.get_peak_memory();
        assert_eq!((n, close.len()), (FACTS, FACTS as usize), "{name}");
        let bound = TALLIED_BYTES * FACTS as usize;
        assert!(
            peak < bound,
            "{name}: tallying {FACTS} conversations' facts held {peak} bytes at once (at most {bound})"
        );
        store.close().await;
    }
}
