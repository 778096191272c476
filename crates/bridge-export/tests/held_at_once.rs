//! What reading a file destination back holds at once. A part holds up to 250,000 rows, so a
//! reader that takes a whole part as rows takes hundreds of megabytes for a large org. Two
//! readers must not:
//! - which ids a destination holds, read at the start of every resumed export (the contact
//!   and user sets): the memory of the ids, not of the table;
//! - `gdpr purge`, which writes a part again without an erased person's rows: the memory of
//!   a batch of rows, not of the part.
//!
//! This test binary counts every allocation (its own global allocator). Its tests take turns
//! ([`TURN`]), so that nothing else allocates while one measures.

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};

use bridge_export::{Destination, FileFormat, Target, purge, read_table};
use bridge_store::Store;
use bridge_store::privacy::{SubjectKey, Tombstones, erase_org};
use bridge_store::tables::{Batch, Row, Value, table};
use drift_types::OrgId;
use peakmem_alloc::{INSTRUMENTED_SYSTEM, PeakMemAlloc, PeakMemAllocTrait};

#[global_allocator]
static ALLOC: &PeakMemAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

/// One test of this binary at a time.
static TURN: Mutex<()> = Mutex::new(());

fn my_turn() -> MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// What `f` returned and the most bytes it held at once.
fn measured<T>(f: impl FnOnce() -> T) -> (T, usize) {
    ALLOC.reset_peak_memory();
    let out = f();
    (out, ALLOC.get_peak_memory())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

const FORMATS: [FileFormat; 3] = [FileFormat::Jsonl, FileFormat::Csv, FileFormat::Parquet];
const ORG: i64 = 7;

/// Rows per page.
const PAGE: i64 = 20_000;

/// Writes three pages of `table` (rows made by `row` from 1, 2, ...) into a new file
/// destination, completing the open part after the pages numbered in `complete_after` (from
/// 0); pages after the last of them stay in a staging file.
fn destination(
    rt: &tokio::runtime::Runtime,
    format: FileFormat,
    dir: &std::path::Path,
    table_name: &str,
    complete_after: &[i64],
    row: impl Fn(i64) -> Row,
) -> Destination {
    let t = table(table_name).unwrap();
    rt.block_on(async {
        let target = Target::Files {
            format,
            dir: dir.to_owned(),
        };
        let dest = Destination::open(&target, OrgId(ORG)).await.unwrap();
        for page in 0..3 {
            let mut b = Batch::new();
            for n in 1 + page * PAGE..1 + (page + 1) * PAGE {
                b.push(t, row(n));
            }
            let state = serde_json::json!({ "page": page });
            dest.commit(b, vec![(table_name.into(), state)])
                .await
                .unwrap();
            if complete_after.contains(&page) {
                dest.flush().await.unwrap();
            }
        }
        dest
    })
}

fn contact(id: i64) -> Row {
    vec![
        ORG.into(),
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
    ]
}

/// A message of conversation `id / 100`; every hundredth is written by contact 5.
fn message(id: i64) -> Row {
    let by_contact = id % 100 == 0;
    vec![
        ORG.into(),
        id.into(),
        (id / 100).into(),
        (1_767_225_600_000 + id).into(),
        if by_contact { "contact" } else { "user" }.into(),
        if by_contact { 5 } else { 900 + id % 3 }.into(),
        false.into(),
        "chat".into(),
        format!("Hello, this is message {id}: how can we help you today?").into(),
        Value::Null,
        r#"{"visibility":"public"}"#.into(),
        Value::Null,
        Value::Null,
        1_767_225_600_000_i64.into(),
    ]
}

/// Bytes held at once per id read back: the set itself takes about 30 (a hash table of
/// `i64` at most 7/8 full, and the smaller table it grew from).
const BYTES_PER_ID: usize = 64;

#[test]
fn the_ids_a_file_destination_holds_are_read_back_without_its_rows() {
    let _turn = my_turn();
    let rt = runtime();
    let contacts = table("contacts").unwrap();
    let expected: HashSet<i64> = (1..=3 * PAGE).collect();
    for format in FORMATS {
        let dir = tempfile::tempdir().unwrap();
        // The first two pages in a completed part, the third staged.
        let dest = destination(&rt, format, dir.path(), "contacts", &[1], contact);

        let (ids, peak) = measured(|| rt.block_on(dest.stored_ids(contacts)).unwrap());

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

/// What a purge may hold at once whatever the part's size: a batch of rows, the readers' and
/// writers' buffers (a Parquet row group is written at 256 KiB of values).
const PURGE_BYTES: usize = 4 << 20;

#[test]
fn a_purge_rewrites_a_part_without_holding_it() {
    let _turn = my_turn();
    let rt = runtime();
    let messages = table("messages").unwrap();
    // The person: contact 5 in the store, erased there, which leaves tombstones.
    let db = tempfile::tempdir().unwrap();
    let tombstones = rt.block_on(async {
        let store = Store::connect(&format!("sqlite:{}", db.path().join("t.db").display()))
            .await
            .unwrap();
        let mut b = Batch::new();
        let mut five = contact(5);
        five[3] = "gone@example.com".into();
        b.push(table("contacts").unwrap(), five);
        Destination::store(store.clone(), OrgId(ORG))
            .commit(b, vec![])
            .await
            .unwrap();
        let mut tx = store.begin().await.unwrap();
        let key = SubjectKey::load_or_create(&mut tx).await.unwrap();
        erase_org(&mut tx, &key, ORG, "gone@example.com", "cli", None, 0)
            .await
            .unwrap();
        let t = Tombstones::load(&mut tx, &[ORG]).await.unwrap();
        tx.commit().await.unwrap();
        t
    });
    assert!(tombstones.contact(ORG, 5), "the erasure left a tombstone");

    for format in FORMATS {
        let dir = tempfile::tempdir().unwrap();
        // One part of 60,000 messages.
        drop(destination(
            &rt,
            format,
            dir.path(),
            "messages",
            &[2],
            message,
        ));
        let before = read_table(dir.path(), messages).unwrap();

        let (purged, peak) = measured(|| purge(dir.path(), &tombstones).unwrap());

        let after = read_table(dir.path(), messages).unwrap();
        let kept: Vec<Row> = before
            .into_iter()
            .filter(|r| r[5].as_i64() != Some(5))
            .collect();
        assert_eq!(after.len(), kept.len(), "{}", format.name());
        assert!(after == kept, "{}: other rows changed", format.name());
        assert_eq!(purged.rows_removed, 600, "{}", format.name());
        assert_eq!(purged.files_rewritten, 1, "{}", format.name());
        assert!(
            peak < PURGE_BYTES,
            "{}: purging {} messages held {peak} bytes at once (at most {PURGE_BYTES})",
            format.name(),
            3 * PAGE
        );
    }
}
