//! Which ids a file destination holds is read back at the start of every incremental or
//! resumed export (the contact and user sets) and by every delete sweep (the conversations).
//! It must take the memory of the ids, not of the table: a part holds up to 250,000 rows,
//! and an org with a million contacts would otherwise be read back whole, as rows, to keep
//! one integer of each.
//!
//! This test binary counts every allocation (its own global allocator), so it holds this one
//! test and nothing else allocates while it measures.

use std::collections::HashSet;

use bridge_export::{Destination, FileFormat, Target};
use bridge_store::tables::{Batch, Value, table};
use drift_types::OrgId;
use peakmem_alloc::{INSTRUMENTED_SYSTEM, PeakMemAlloc, PeakMemAllocTrait};

#[global_allocator]
static ALLOC: &PeakMemAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

/// Contacts per page; three pages: two completed into a part, one left in its staging file.
const PAGE: i64 = 20_000;

/// Bytes held at once per id read back: the set itself takes about 30 (a hash table of
/// `i64` at most 7/8 full, and the smaller table it grew from).
const BYTES_PER_ID: usize = 64;

fn contacts_page(first: i64) -> Batch {
    let t = table("contacts").unwrap();
    let mut b = Batch::new();
    for id in first..first + PAGE {
        b.push(
            t,
            vec![
                7.into(),
                id.into(),
                (1_767_225_600_000 + id).into(),
                format!("visitor{id}@example.com").into(),
                format!("Visitor {id}").into(),
                "Visitor".into(),
                format!("{id}").into(),
                Value::Null,
                "Example Inc".into(),
                Value::Null,
                Value::Null,
                format!(
                    r#"{{"start_date":{id},"tags":["lead","web"],"score":{}}}"#,
                    id % 97
                )
                .into(),
                Value::Null,
                1_767_225_600_000_i64.into(),
            ],
        );
    }
    b
}

#[tokio::test(flavor = "current_thread")]
async fn the_ids_a_file_destination_holds_are_read_back_without_its_rows() {
    let contacts = table("contacts").unwrap();
    let expected: HashSet<i64> = (1..=3 * PAGE).collect();
    for format in [FileFormat::Jsonl, FileFormat::Csv, FileFormat::Parquet] {
        let dir = tempfile::tempdir().unwrap();
        let target = Target::Files {
            format,
            dir: dir.path().to_owned(),
        };
        let dest = Destination::open(&target, OrgId(7)).await.unwrap();
        for page in 0..3 {
            let state = serde_json::json!({ "page": page });
            dest.commit(
                contacts_page(1 + page * PAGE),
                vec![("contacts".into(), state)],
            )
            .await
            .unwrap();
            if page == 1 {
                // The first two pages become a completed part; the third stays staged.
                dest.flush().await.unwrap();
            }
        }

        ALLOC.reset_peak_memory();
        let ids = dest.stored_ids(contacts).await.unwrap();
        let peak = ALLOC.get_peak_memory();

        assert!(ids == expected, "{}: wrong ids read back", format.name());
        let bound = BYTES_PER_ID * expected.len();
        assert!(
            peak < bound,
            "{}: reading {} ids back held {peak} bytes at once (at most {bound})",
            format.name(),
            expected.len()
        );
    }
}
