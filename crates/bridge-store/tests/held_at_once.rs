//! What reading the store back holds at once. `export` reads every webhook payload an org has
//! stored to find the contacts they name; the store keeps them until retention removes them,
//! so the reader must hold a statement's worth, not all of them.
//!
//! This test binary counts every allocation (its own global allocator) and holds this one
//! test, so nothing else allocates while it measures.

use bridge_store::events::{NewEvent, insert_many};
use bridge_store::reads::each_event_payload;
use bridge_store::testing::{BACKENDS, fresh};
use bridge_store::{Backend, Store};
use drift_types::OrgId;
use peakmem_alloc::{INSTRUMENTED_SYSTEM, PeakMemAlloc, PeakMemAllocTrait};

#[global_allocator]
static ALLOC: &PeakMemAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

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
    for backend in BACKENDS {
        let Some(db) = fresh(*backend).await else {
            continue;
        };
        let store = Store::connect(&db.url).await.unwrap();
        let payloads: Vec<String> = (0..EVENTS).map(payload).collect();
        let keys: Vec<String> = (0..EVENTS).map(|n| format!("k{n}")).collect();
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

        let name = match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        assert_eq!(count, EVENTS, "{name}");
        assert!(in_order, "{name}: payloads out of order or changed");
        assert!(
            peak < BOUND,
            "{name}: reading {EVENTS} payloads held {peak} bytes at once (at most {BOUND})"
        );
        store.close().await;
    }
}
