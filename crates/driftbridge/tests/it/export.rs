//! The data connector against the simulator: full exports into every destination compared
//! row by row with the simulator's ground truth, read back by independent readers; kill -9
//! and resume; incremental sync.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bridge_export::{self as export, DAY_MS, ExportOptions, Mode, Progress, Summary};
use bridge_export::{Destination, FileFormat, Target};
use bridge_store::tables::{Batch, ColumnType, Row, TABLES, Table, Value};
use bridge_store::{Backend, Store};
use drift_client::{ClientConfig, DriftClient, RateBudget, StaticToken};
use drift_sim::{SimConfig, SimHandle};
use drift_types::{OrgId, Secret, UserId};

use crate::helpers::{conversation_ids, drained, org, post, push};
use bridge_store::testing::BACKENDS;
use drift_types::ConversationId;
use std::time::Duration;

/// The meetings window the export tests ask for: a year either side of the first time a test
/// of this binary asked (the simulator serves only the last 30 days of it).
pub fn since() -> i64 {
    static NOW: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *NOW.get_or_init(drift_types::now_ms) - 365 * DAY_MS
}

fn until() -> i64 {
    since() + 2 * 365 * DAY_MS
}

pub async fn sim(conversations: u32) -> SimHandle {
    drift_client::install_crypto();
    drift_sim::spawn(
        SimConfig::unlimited(conversations),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .expect("simulator")
}

pub fn client(sim: &SimHandle) -> DriftClient {
    let mut cc = ClientConfig::with_base_url(&sim.base_url()).unwrap();
    cc.budget = RateBudget {
        per_minute: 0,
        burst: None,
    };
    DriftClient::new(cc, Arc::new(StaticToken(Secret::new(sim.token())))).unwrap()
}

fn options(mode: Mode) -> ExportOptions {
    let mut o = ExportOptions::new(mode);
    o.meetings_since_ms = since();
    o.meetings_until_ms = until();
    // These count the walk's calls; the delete sweep has its own test.
    o.capture_deletes = false;
    o
}

async fn export_into(sim: &SimHandle, target: &Target, mode: Mode) -> Summary {
    let dest = Destination::open(target, org(sim)).await.expect("open");
    export::run(
        client(sim),
        dest,
        org(sim),
        options(mode),
        Arc::new(Progress::default()),
    )
    .await
    .unwrap_or_else(|e| panic!("{mode:?} into {target}: {e:#}"))
}

/// Every row the simulator holds, through the same mapping the export uses, plus the
/// minimum number of API calls an export of it needs.
pub fn ground_truth(sim: &SimHandle) -> (Batch, u64) {
    let world = sim.state.world.lock();
    let org = org(sim);
    let o = world.org(org).unwrap();
    let mut b = Batch::new();
    o.users.values().for_each(|u| b.user(org, u));
    o.playbooks.iter().for_each(|p| b.playbook(org, p));
    o.landing_pages.iter().for_each(|l| b.landing_page(org, l));
    o.accounts.values().for_each(|a| b.account(org, a));
    let mut booked: std::collections::HashMap<i64, BTreeSet<String>> = Default::default();
    for m in o
        .meetings
        .iter()
        // Drift serves the last 30 days only.
        .filter(|m| {
            m.slot_start.is_some_and(|s| {
                s.0 >= since().max(drift_types::now_ms() - 30 * DAY_MS) && s.0 < until()
            })
        })
    {
        b.meeting(org, m);
        if let Some(c) = m.conversation_id {
            booked
                .entry(c.0)
                .or_default()
                .insert(bridge_store::tables::meeting_key(m));
        }
    }
    let mut contacts = BTreeSet::new();
    let mut message_pages = 0u64;
    for rec in o.conversations.values() {
        b.conversation(org, &rec.conversation, 0);
        // No goal webhooks here; the meetings exported in the window that name it.
        let outcomes = bridge_store::tables::Outcomes {
            goal_met: false,
            meetings_booked: booked
                .get(&rec.conversation.id.0)
                .map_or(0, |k| k.len() as i64),
            ..Default::default()
        };
        b.conversation_facts(org, &rec.conversation, &rec.messages, outcomes);
        rec.messages.iter().for_each(|m| b.message(org, m));
        message_pages += (rec.messages.len() as u64).div_ceil(50).max(1);
        let contact = rec.conversation.contact_id.and_then(|c| o.contacts.get(&c));
        let t = drift_sim::text::transcript(&rec.messages, contact, |u| o.users.get(&UserId(u)));
        b.transcript(org, rec.conversation.id.0, &t, 0);
        if let Some(c) = contact {
            contacts.insert(c.id);
        }
    }
    for c in &contacts {
        b.contact(org, &o.contacts[c], 0);
    }
    let n = o.conversations.len() as u64;
    let windows = ((until() - since()) as u64).div_ceil(30 * DAY_MS as u64);
    let calls = 3 // users, playbooks, landing pages
        + (o.accounts.len() as u64).div_ceil(100).max(1)
        + windows
        + n.div_ceil(100).max(1)
        + n * 2 // details, transcript
        + message_pages
        + contacts.len() as u64;
    (b, calls)
}

/// Rows without their volatile columns, sorted, for comparison.
/// The rows without their volatile columns, sorted (CSV: an empty string reads as NULL).
pub fn normalized(t: &Table, rows: Vec<Row>, csv: bool) -> Vec<Row> {
    let keep: Vec<usize> = (0..t.columns.len())
        .filter(|i| !t.is_volatile(t.columns[*i].name))
        .collect();
    let mut out: Vec<Row> = rows
        .into_iter()
        .map(|r| {
            keep.iter()
                .map(|i| match &r[*i] {
                    // CSV cannot tell an empty string from NULL.
                    Value::Text(s) if csv && s.is_empty() => Value::Null,
                    // A JSON document compares by content: readers may order keys differently.
                    Value::Text(s) if t.columns[*i].ty == ColumnType::Json => {
                        serde_json::from_str::<serde_json::Value>(s)
                            .map_or_else(|_| Value::Text(s.clone()), |v| Value::Text(v.to_string()))
                    }
                    v => v.clone(),
                })
                .collect()
        })
        .collect();
    out.sort();
    out
}

fn assert_table_eq(what: &str, t: &Table, got: Vec<Row>, want: &[Row], csv: bool) {
    let got = normalized(t, got, csv);
    let want = normalized(t, want.to_vec(), csv);
    assert_eq!(got.len(), want.len(), "{what}: rows in {}", t.name);
    if let Some(i) = (0..got.len()).find(|i| got[*i] != want[*i]) {
        panic!(
            "{what}: {} differs at sorted row {i}:\n got  {:?}\n want {:?}",
            t.name, got[i], want[i]
        );
    }
}

pub async fn read_sql(store: &Store, t: &Table, org: OrgId) -> Vec<Row> {
    let rows = bridge_store::sqlx::query(bridge_store::sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM {} WHERE org_id = $1",
        t.select_list(store.backend()),
        t.name
    )))
    .bind(org.0)
    .fetch_all(store.pool())
    .await
    .unwrap();
    rows.iter().map(|r| t.row(r)).collect()
}

/// Reads a file export with Python's standard readers (pyarrow, csv); `None` when pyarrow
/// is missing outside CI.
fn read_with_python(format: FileFormat, dir: &Path) -> Option<BTreeMap<String, Vec<Row>>> {
    let python = python_with("pyarrow")?;
    let out = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/read_export.py");
    let st = std::process::Command::new(python)
        .arg(script)
        .arg(format.name())
        .arg(dir)
        .arg(out.path())
        .status()
        .unwrap();
    assert!(st.success(), "python reader failed");
    let mut tables = BTreeMap::new();
    for t in TABLES.iter() {
        let path = out.path().join(format!("{}.jsonl", t.name));
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let rows = text
            .lines()
            .map(|l| {
                let obj: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(l).unwrap();
                t.columns
                    .iter()
                    .map(|c| match obj.get(c.name) {
                        // Python's csv module gives every field as text, and Parquet a
                        // document as its JSON text.
                        Some(serde_json::Value::String(s))
                            if format == FileFormat::Csv || c.ty == ColumnType::Json =>
                        {
                            bridge_export::cells::from_csv(c, s)
                        }
                        v => bridge_export::cells::from_json(c, v),
                    })
                    .collect()
            })
            .collect();
        tables.insert(t.name.to_owned(), rows);
    }
    Some(tables)
}

/// A Python that can import `module`: `$DRIFTBRIDGE_TEST_PYTHON` (.ci/run makes a venv with
/// pyarrow and airbyte-protocol-models) or `python3`. `None` (skip) when there is none,
/// except under CI=true, where it must be there.
pub fn python_with(module: &str) -> Option<String> {
    let python = std::env::var("DRIFTBRIDGE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let have = std::process::Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{python} cannot import {module}; under CI=true it must (.ci/run installs it)"
        );
        eprintln!("skipping the independent check: {python} cannot import {module}");
        return None;
    }
    Some(python)
}

/// Compares a destination with the ground truth, table by table.
pub async fn assert_destination_eq(target: &Target, org: OrgId, truth: &Batch) {
    let what = target.to_string();
    match target {
        Target::Sql(url) => {
            let store = Store::connect(url).await.unwrap();
            for t in TABLES.iter() {
                let got = read_sql(&store, t, org).await;
                assert_table_eq(&what, t, got, truth.rows(t), false);
            }
            store.close().await;
        }
        Target::Files { format, dir } => {
            let csv = *format == FileFormat::Csv;
            for t in TABLES.iter() {
                let got = bridge_export::read_table(dir, t).unwrap();
                assert_table_eq(&what, t, got, truth.rows(t), csv);
            }
            if *format != FileFormat::Jsonl
                && let Some(tables) = read_with_python(*format, dir)
            {
                for t in TABLES.iter() {
                    let got = tables.get(t.name).cloned().unwrap_or_default();
                    assert_table_eq(&format!("{what} (python)"), t, got, truth.rows(t), true);
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_export_of_5000_conversations_equals_the_ground_truth_in_all_five_destinations() {
    let sim = sim(5000).await;
    let (truth, min_calls) = ground_truth(&sim);
    assert!(
        truth
            .rows(bridge_store::tables::table("messages").unwrap())
            .len()
            > 40_000
    );
    let dir = tempfile::tempdir().unwrap();
    let mut targets: Vec<Target> = vec![
        format!("sqlite:{}", dir.path().join("export.db").display()),
        format!("jsonl:{}", dir.path().join("jsonl").display()),
        format!("csv:{}", dir.path().join("csv").display()),
        format!("parquet:{}", dir.path().join("parquet").display()),
    ]
    .into_iter()
    .map(|s| s.parse().unwrap())
    .collect();
    let pg = bridge_store::testing::fresh(Backend::Postgres).await;
    if let Some(pg) = &pg {
        targets.push(Target::Sql(pg.url.clone()));
    }
    for target in &targets {
        let s = export_into(&sim, target, Mode::Full).await;
        assert_eq!(
            s.api_calls, min_calls,
            "{target}: API calls versus the minimum"
        );
        assert_eq!(s.responses_429 + s.retries, 0, "{target}");
        assert_destination_eq(target, org(&sim), &truth).await;
    }
    assert_analyst_reads(
        &dir.path().join("parquet"),
        &dir.path().join("jsonl"),
        pg.as_ref().map(|p| p.url.as_str()),
        org(&sim),
        &truth,
    )
    .await;
}

/// What an analyst's tools read without hints or casts: pyarrow and polars see timestamp and
/// boolean columns in the Parquet files, and `date_trunc('day', created_at)` counts the same
/// conversations per day on the Parquet and the JSONL (DuckDB) and on PostgreSQL as the
/// ground truth holds.
async fn assert_analyst_reads(
    parquet: &Path,
    jsonl: &Path,
    pg: Option<&str>,
    org: OrgId,
    truth: &Batch,
) {
    let conversations = bridge_store::tables::table("conversations").unwrap();
    let created = conversations.index("created_at").unwrap();
    let mut want: BTreeMap<String, i64> = BTreeMap::new();
    for r in truth.rows(conversations) {
        let day = bridge_export::cells::iso(r[created].as_i64().unwrap()).unwrap();
        *want.entry(day[..10].to_owned()).or_default() += 1;
    }
    let want: Vec<(String, i64)> = want.into_iter().collect();
    let as_pairs = |v: &serde_json::Value| -> Vec<(String, i64)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_str().unwrap().to_owned(), p[1].as_i64().unwrap()))
            .collect()
    };
    if let Some(python) = python_with("duckdb") {
        let out = std::process::Command::new(python)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/it/analyst_reads.py"
            ))
            .arg(parquet)
            .arg(jsonl)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            seen["parquet_files"],
            serde_json::json!({"conversations": 1, "messages": 1}),
            "one file per table per run"
        );
        assert_eq!(
            seen["pyarrow"],
            serde_json::json!({
                "conversations.created_at": "timestamp[ms, tz=UTC]",
                "messages.author_bot": "bool",
                "messages.context": "string",
            })
        );
        assert_eq!(
            seen["polars"]["messages.created_at"],
            "Datetime(time_unit='ms', time_zone='UTC')"
        );
        assert_eq!(seen["polars"]["messages.author_bot"], "Boolean");
        let messages = bridge_store::tables::table("messages").unwrap();
        assert_eq!(seen["polars"]["rows"], truth.rows(messages).len());
        assert_eq!(as_pairs(&seen["duckdb_parquet"]), want, "DuckDB on Parquet");
        assert_eq!(as_pairs(&seen["duckdb_jsonl"]), want, "DuckDB on JSONL");
        let context = messages.index("context").unwrap();
        let with_ip = truth
            .rows(messages)
            .iter()
            .filter(|r| {
                r[context]
                    .as_str()
                    .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
                    .is_some_and(|c| !c["ip"].is_null())
            })
            .count();
        assert!(with_ip > 0);
        assert_eq!(
            seen["duckdb_jsonl_context_ip"], with_ip,
            "context is nested JSON"
        );
    }
    if let Some(url) = pg {
        let store = Store::connect(url).await.unwrap();
        let mut conn = store.acquire().await.unwrap();
        bridge_store::sqlx::raw_sql("SET TIME ZONE 'UTC'")
            .execute(&mut *conn)
            .await
            .unwrap();
        let got: Vec<(String, i64)> = bridge_store::sqlx::query_as(
            "SELECT to_char(date_trunc('day', created_at), 'YYYY-MM-DD'), count(*) \
             FROM conversations WHERE org_id = $1 GROUP BY 1 ORDER BY 1",
        )
        .bind(org.0)
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        assert_eq!(got, want, "PostgreSQL");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_are_rows_always_and_files_with_attachments_dir_fetched_once() {
    let sim = sim(300).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("a.db").display());
    let files = dir.path().join("files");
    let export = |with_files: bool| {
        let mut c = export_command(&sim, &url);
        c.arg("--restart")
            .env("DRIFTBRIDGE_DRIFT__RATE_LIMIT_PER_MINUTE", "0");
        if with_files {
            c.arg("--attachments").arg(&files);
        }
        let out = succeeded(c);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let routes = |sim: &SimHandle| {
        sim.state
            .log
            .lock()
            .recent
            .iter()
            .filter(|r| r.route == "/attachments/{id}/data")
            .count()
    };
    // Without the option: metadata rows, no download.
    let s = export(false);
    assert_eq!(s["attachments_saved"], 0);
    assert_eq!(routes(&sim), 0);
    let (truth, _) = ground_truth(&sim);
    let t = bridge_store::tables::table("attachments").unwrap();
    let want = truth.rows(t).to_vec();
    assert!(
        want.len() >= 10,
        "the simulator attaches files: {}",
        want.len()
    );
    let store = Store::connect(&url).await.unwrap();
    assert_table_eq(
        "sqlite",
        t,
        read_sql(&store, t, org(&sim)).await,
        &want,
        false,
    );
    let tags = bridge_store::tables::table("contact_tags").unwrap();
    let want_tags = truth.rows(tags).to_vec();
    assert!(!want_tags.is_empty());
    assert_table_eq(
        "sqlite",
        tags,
        read_sql(&store, tags, org(&sim)).await,
        &want_tags,
        false,
    );
    store.close().await;

    // With it: every file saved, whole, once.
    let s = export(true);
    assert_eq!(s["attachments_saved"], want.len());
    let (doc, conv) = (
        t.index("document_id").unwrap(),
        t.index("conversation_id").unwrap(),
    );
    // DIR/ORG/CONVERSATION/DOCUMENT-NAME
    let saved: Vec<_> = std::fs::read_dir(files.join(org(&sim).0.to_string()))
        .unwrap()
        .flat_map(|c| std::fs::read_dir(c.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(saved.len(), want.len());
    for r in &want {
        let id = r[doc].as_i64().unwrap();
        let conversation = r[conv].as_i64().unwrap().to_string();
        let path = saved
            .iter()
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(&format!("{id}-"))
                    && p.parent().unwrap().ends_with(&conversation)
            })
            .unwrap_or_else(|| panic!("attachment {id} not saved in its conversation's directory"));
        assert_eq!(
            std::fs::read(path).unwrap(),
            drift_sim::generate::attachment_bytes(id)
        );
    }
    let before = routes(&sim);
    assert_eq!(before, want.len());
    let s = export(true);
    assert_eq!(
        s["attachments_saved"], 0,
        "saved files are not fetched again"
    );
    assert_eq!(routes(&sim), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_after_50_changes_fetches_exactly_those_and_a_second_sync_writes_nothing() {
    let sim = sim(600).await;
    let dir = tempfile::tempdir().unwrap();
    let mut targets = vec![Target::Sql(format!(
        "sqlite:{}",
        dir.path().join("sync.db").display()
    ))];
    let pg = bridge_store::testing::fresh(Backend::Postgres).await;
    if let Some(pg) = &pg {
        targets.push(Target::Sql(pg.url.clone()));
    }
    for target in &targets {
        export_into(&sim, target, Mode::Full).await;
        let changed: BTreeSet<i64> =
            drift_sim::control::mutate_conversations(&sim.state, org(&sim), 50)
                .unwrap()
                .into_iter()
                .map(|c| c.0)
                .collect();
        *sim.state.log.lock() = Default::default();
        let s = export_into(&sim, target, Mode::Incremental).await;
        assert_eq!(s.conversations_fetched, 50, "{target}");
        {
            let log = sim.state.log.lock();
            let ids_of = |route: &str| -> Vec<i64> {
                log.recent
                    .iter()
                    .filter(|r| r.route == route)
                    .map(|r| {
                        r.uri
                            .split('/')
                            .nth(2)
                            .unwrap()
                            .split('?')
                            .next()
                            .unwrap()
                            .parse()
                            .unwrap()
                    })
                    .collect()
            };
            for route in [
                "/conversations/{id}",
                "/conversations/{id}/messages",
                "/conversations/{id}/transcript",
            ] {
                let ids = ids_of(route);
                assert_eq!(
                    ids.iter().copied().collect::<BTreeSet<_>>(),
                    changed,
                    "{target}: {route} only for the changed conversations"
                );
                if route != "/conversations/{id}/messages" {
                    assert_eq!(ids.len(), 50, "{target}: {route} once each");
                }
            }
            assert_eq!(
                log.count("GET", "/contacts/{id}"),
                0,
                "{target}: no contact re-read"
            );
            let walked = log.count("GET", "/conversations/list");
            assert_eq!(walked, 1, "{target}: the walk stops at the high-water mark");
        }
        let (truth, _) = ground_truth(&sim);
        assert_destination_eq(target, org(&sim), &truth).await;

        let again = export_into(&sim, target, Mode::Incremental).await;
        assert_eq!(
            again.rows_changed, 0,
            "{target}: a second sync writes nothing"
        );
        assert_eq!(again.conversations_fetched, 0, "{target}");
    }
}

#[test]
fn sync_into_an_append_only_destination_is_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_driftbridge"))
        .args(["sync", "--org", "1", "--to"])
        .arg(format!("jsonl:{}", dir.path().display()))
        .env("DRIFTBRIDGE_DRIFT__TOKEN", "t")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("append-only"), "{err}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_driftbridge"))
        .args([
            "export",
            "--org",
            "1",
            "--to",
            "s3://bucket",
            "--tables",
            "users",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("jsonl:DIR"), "{err}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_driftbridge"))
        .args(["export", "--org", "1", "--tables", "users,chats"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown table \"chats\""), "{err}");
}

/// `driftbridge export --json --org ORG --to TO` against the simulator, with its token.
fn export_command(sim: &SimHandle, to: &str) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_driftbridge"));
    c.args(["export", "--json", "--org", &org(sim).0.to_string()])
        .args(["--to", to])
        .env("DRIFTBRIDGE_DRIFT__BASE_URL", sim.base_url())
        .env("DRIFTBRIDGE_DRIFT__TOKEN", sim.token());
    c
}

/// Runs the command; it must succeed (else its stderr is the failure).
fn succeeded(mut c: std::process::Command) -> std::process::Output {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `second` while `first` runs: `first` must end well and `second` be refused. Answers
/// what `second` said.
fn refused_beside(
    first: std::process::Child,
    mut second: std::process::Command,
    what: &str,
) -> String {
    let second = second.output().unwrap();
    let first = first.wait_with_output().unwrap();
    assert!(
        first.status.success(),
        "{what}: the first run failed: {}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        !second.status.success(),
        "{what}: the second run went ahead beside the first"
    );
    String::from_utf8_lossy(&second.stderr).into_owned()
}

/// Counts how often each request URI was served, e.g. one conversation list page.
fn uri_counts(sim: &SimHandle, route: &str) -> BTreeMap<String, u64> {
    let log = sim.state.log.lock();
    let mut m = BTreeMap::new();
    for r in log
        .recent
        .iter()
        .filter(|r| r.route == route && r.status == 200)
    {
        *m.entry(r.uri.clone()).or_default() += 1;
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_killed_at_ten_random_points_resumes_to_the_ground_truth_rereading_at_most_a_page()
 {
    let sim = sim(1000).await;
    let (truth, _) = ground_truth(&sim);
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill schedule seed {seed}");
    let dir = tempfile::tempdir().unwrap();
    for to in [
        format!("sqlite:{}", dir.path().join("killed.db").display()),
        format!("parquet:{}", dir.path().join("killed-parquet").display()),
    ] {
        *sim.state.log.lock() = Default::default();
        let run = || {
            let mut c = export_command(&sim, &to);
            c.args(["--meetings-since", &since().to_string()])
                // 250 requests/s stretches the run over several seconds of kill points.
                .env("DRIFTBRIDGE_DRIFT__RATE_LIMIT_PER_MINUTE", "15000")
                .env("RUST_LOG", "warn")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null());
            c
        };
        let mut kills = 0;
        let mut finished = None;
        while kills < 10 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let delay = 200 + seed % 1100;
            let mut child = run().spawn().unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
            if child.try_wait().unwrap().is_none() {
                child.kill().unwrap();
                child.wait().unwrap();
                kills += 1;
            } else {
                // It finished before the kill; running it again would start a new export.
                finished = Some(child.wait_with_output().unwrap());
                break;
            }
        }
        let out = match finished {
            Some(out) => out,
            None => run().output().unwrap(),
        };
        assert!(out.status.success(), "{to}: the final resume failed");
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(summary["responses_429"], 0, "{to}");
        let target: Target = to.parse().unwrap();
        assert_destination_eq(&target, org(&sim), &truth).await;

        // Each resume re-reads at most the one page it was working on: a list page at most
        // once more, and at most one page's conversations again.
        let pages = uri_counts(&sim, "/conversations/list");
        let reread_pages: u64 = pages.values().map(|n| n - 1).sum();
        assert!(
            reread_pages <= kills,
            "{to}: {reread_pages} list pages re-read after {kills} kills"
        );
        let convs = uri_counts(&sim, "/conversations/{id}");
        assert_eq!(convs.len(), 1000, "{to}");
        let reread: u64 = convs.values().map(|n| n - 1).sum();
        assert!(
            reread <= kills * 100,
            "{to}: {reread} conversations re-read after {kills} kills"
        );
        assert!(kills >= 5, "{to}: only {kills} kills landed mid-run");
        eprintln!("{to}: {kills} kills, {reread_pages} pages and {reread} conversations re-read");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_syncs_catch_conversations_no_webhook_announced_and_never_overlap() {
    use bridge_core::schedule::{Outcome, ScheduleConfig, sync_once};
    for backend in bridge_store::testing::BACKENDS {
        let Some(mut env) = crate::helpers::env(*backend, 60).await else {
            continue;
        };
        let org = org(&env.sim);
        env.config.sync.interval_secs = 1;
        env.config.sync.orgs = vec![org.0];
        let running = driftbridge::serve::start(&env.config, true).await.unwrap();
        let store = running.queue.store().clone();
        // No webhook is ever sent: the scheduled sync alone brings every conversation in.
        crate::helpers::wait_until(
            "the scheduled sync",
            std::time::Duration::from_secs(60),
            || async {
                crate::helpers::count(&store, "SELECT COUNT(*) FROM conversations").await == 60
            },
        )
        .await;
        let changed = drift_sim::control::mutate_conversations(&env.sim.state, org, 3).unwrap();
        crate::helpers::wait_until(
            "the next sync",
            std::time::Duration::from_secs(60),
            || async {
                crate::helpers::count(&store, "SELECT COUNT(*) FROM messages").await
                    == env.sim.state.world.lock().counts().1 as i64
            },
        )
        .await;
        crate::helpers::assert_ground_truth(&store, &env.sim, &changed).await;
        running.stop().await;

        // Two holders at once: one syncs, the other finds the lease taken.
        let store = Store::connect(&env.db.url).await.unwrap();
        let drift = bridge_core::drift::DriftPool::new(env.config.drift());
        let cfg = |holder: &str| ScheduleConfig {
            interval: std::time::Duration::from_secs(1),
            orgs: vec![org],
            lease: std::time::Duration::from_secs(30),
            overlap: std::time::Duration::from_secs(3600),
            holder: holder.into(),
        };
        let (a, b) = (cfg("a"), cfg("b"));
        let (ra, rb) = tokio::join!(
            sync_once(&store, &drift, org, &a),
            sync_once(&store, &drift, org, &b)
        );
        let outcomes = [ra.unwrap(), rb.unwrap()];
        let synced = outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Synced(_)))
            .count();
        let busy = outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Busy))
            .count();
        assert_eq!((synced, busy), (1, 1), "{backend:?}: {outcomes:?}");
        assert_eq!(
            crate::helpers::count(&store, "SELECT COUNT(*) FROM sync_locks").await,
            0
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_no_conversation_references_are_exported_from_a_list_and_tables_select_streams() {
    let sim = sim(20).await;
    let c = client(&sim);
    let mut made = Vec::new();
    for (email, ext) in [
        ("lone-1@example.org", None),
        ("lone-2@example.org", Some("crm-77")),
    ] {
        let mut attrs = serde_json::Map::new();
        attrs.insert("email".into(), email.into());
        if let Some(x) = ext {
            attrs.insert("externalId".into(), x.into());
        }
        made.push(c.create_contact(attrs).await.unwrap().id.0);
    }
    let dir = tempfile::tempdir().unwrap();
    let target: Target = format!("sqlite:{}", dir.path().join("c.db").display())
        .parse()
        .unwrap();
    let mut opts = options(Mode::Full);
    opts.streams = [bridge_store::tables::Stream::Contacts]
        .into_iter()
        .collect();
    opts.contacts_from = export::parse_contact_list("lone-1@example.org\ncrm-77\n");
    let dest = Destination::open(&target, org(&sim)).await.unwrap();
    let s = export::run(c, dest, org(&sim), opts, Arc::new(Progress::default()))
        .await
        .unwrap();
    let referenced = ground_truth(&sim)
        .0
        .rows(bridge_store::tables::table("contacts").unwrap())
        .len() as u64;
    assert_eq!(s.rows["contacts"], referenced + 2);
    for t in [
        "conversations",
        "messages",
        "transcripts",
        "users",
        "accounts",
        "meetings",
    ] {
        assert_eq!(s.rows[t], 0, "{t} was not selected");
    }
    let Target::Sql(url) = &target else {
        unreachable!()
    };
    let store = Store::connect(url).await.unwrap();
    for id in made {
        let n: i64 =
            bridge_store::sqlx::query_scalar("SELECT COUNT(*) FROM contacts WHERE id = $1")
                .bind(id)
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(n, 1, "listed contact {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_export_includes_contacts_that_stored_webhook_events_reference() {
    let sim = sim(10).await;
    let mut attrs = serde_json::Map::new();
    attrs.insert("email".into(), "only-in-a-webhook@example.org".into());
    let contact = client(&sim).create_contact(attrs).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("events.db").display());
    let store = Store::connect(&url).await.unwrap();
    let payload = serde_json::json!({
        "type": "contact_identified", "orgId": org(&sim).0,
        "data": serde_json::to_value(&contact).unwrap(),
    });
    let mut tx = store.begin().await.unwrap();
    bridge_store::events::insert(
        &mut tx,
        "k",
        Some(org(&sim).0),
        "contact_identified",
        &payload,
        1,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    store.close().await;
    let mut c = export_command(&sim, &url);
    c.args(["--tables", "contacts"])
        .env("DRIFTBRIDGE_DRIFT__RATE_LIMIT_PER_MINUTE", "0");
    succeeded(c);
    let store = Store::connect(&url).await.unwrap();
    let n: i64 = bridge_store::sqlx::query_scalar("SELECT COUNT(*) FROM contacts WHERE id = $1")
        .bind(contact.id.0)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn a_conversation_deleted_in_drift_is_marked_by_the_next_sync_and_by_a_push_for_it() {
    for &backend in BACKENDS {
        let Some(env) = crate::helpers::env(backend, 30).await else {
            continue;
        };
        let sim = &env.sim;
        let target = Target::Sql(env.db.url.clone());
        let store = bridge_store::Store::connect(&env.db.url).await.unwrap();
        export_into(sim, &target, Mode::Full).await;
        let ids = conversation_ids(sim);
        let delete = |id: ConversationId| {
            sim.state
                .world
                .lock()
                .org_mut(org(sim))
                .unwrap()
                .remove_conversation(id)
                .expect("a conversation to delete");
        };
        delete(ids[0]);
        let mut o = options(Mode::Incremental);
        o.capture_deletes = true;
        let dest = Destination::open(&target, org(sim)).await.unwrap();
        let s = export::run(
            client(sim),
            dest,
            org(sim),
            o,
            Arc::new(Progress::default()),
        )
        .await
        .unwrap();
        assert_eq!(s.conversations_deleted, 1, "{backend:?}");
        let marked: Vec<i64> = bridge_store::sqlx::query_scalar(
            "SELECT id FROM conversations WHERE _deleted_at IS NOT NULL",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        assert_eq!(marked, [ids[0].0], "{backend:?}: only the deleted one");
        let rows: i64 = bridge_store::sqlx::query_scalar("SELECT COUNT(*) FROM conversations")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(rows, 30, "{backend:?}: its row stays");

        // A push for a conversation Drift deleted marks it too, and nothing is retried.
        delete(ids[1]);
        let running = driftbridge::serve::start(&env.config, true).await.unwrap();
        let http = reqwest::Client::new();
        assert_eq!(
            post(&http, running.addr, &push(org(sim), ids[1], 1))
                .await
                .unwrap(),
            200
        );
        drained(&store, Duration::from_secs(30)).await;
        let at: Option<i64> =
            bridge_store::sqlx::query_scalar(bridge_store::sqlx::AssertSqlSafe(format!(
                "SELECT {} FROM conversations WHERE id = $1",
                bridge_store::tables::sql::ms(backend, "_deleted_at")
            )))
            .bind(ids[1].0)
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert!(at.is_some(), "{backend:?}: marked by the push's job");
        assert!(
            running
                .queue
                .list(bridge_queue::JobState::Dead, 5)
                .await
                .unwrap()
                .is_empty(),
            "{backend:?}: not a dead job"
        );
        running.stop().await;
        store.close().await;
    }
}

/// Two runs into one export directory at once (a scheduled export overlapping a manual
/// one): the second took the first's open parts for a killed run's, completed them under it
/// and removed the files it had not committed yet, so the directory no longer matched Drift.
/// A directory now has one writer at a time; the second run is refused and says by whom.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_into_a_directory_being_written_is_refused_and_the_first_is_intact() {
    let sim = sim(200).await;
    let (truth, _) = ground_truth(&sim);
    let dir = tempfile::tempdir().unwrap();
    for format in ["jsonl", "parquet"] {
        let out_dir = dir.path().join(format);
        let to = format!("{format}:{}", out_dir.display());
        let slow = |to: &str| {
            let mut c = export_command(&sim, to);
            c.args(["--meetings-since", &since().to_string()])
                // 100 requests/s: the run takes several seconds.
                .env("DRIFTBRIDGE_DRIFT__RATE_LIMIT_PER_MINUTE", "6000")
                .env("RUST_LOG", "warn");
            c
        };
        let first = slow(&to)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Until the first run has committed a page of conversations.
        let manifest = out_dir.join("_manifest.json");
        for _ in 0..500 {
            let text = std::fs::read_to_string(&manifest).unwrap_or_default();
            if text.contains("/conversations") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let err = refused_beside(first, slow(&to), format);
        assert!(
            err.contains("another driftbridge run") && err.contains(&out_dir.display().to_string()),
            "{format}: {err}"
        );
        let target: Target = to.parse().unwrap();
        assert_destination_eq(&target, org(&sim), &truth).await;
        // Once the first has ended, the directory is free again.
        let mut again = export_command(&sim, &to);
        again.env("DRIFTBRIDGE_DRIFT__RATE_LIMIT_PER_MINUTE", "0");
        succeeded(again);
        assert_destination_eq(&target, org(&sim), &truth).await;
    }
}

/// Two runs of one org into one database at once (a manual sync beside `serve`'s scheduled
/// one, or two cron jobs): both walked Drift side by side, each spending the token's request
/// budget on the same rows. Only the scheduled sync took the org's lease; a command-line run
/// now takes it too, and the second run is refused and says who holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_of_an_org_into_a_database_being_written_is_refused() {
    let sim = sim(200).await;
    let (truth, _) = ground_truth(&sim);
    for &backend in BACKENDS {
        let Some(db) = bridge_store::testing::fresh(backend).await else {
            continue;
        };
        let slow = || {
            let mut c = export_command(&sim, &db.url);
            c.args(["--meetings-since", &since().to_string()])
                // 100 requests/s: the run takes several seconds.
                .env("DRIFTBRIDGE_DRIFT__RATE_LIMIT_PER_MINUTE", "6000")
                .env("RUST_LOG", "warn");
            c
        };
        let first = slow()
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let store = Store::connect(&db.url).await.unwrap();
        let o = org(&sim);
        let mut held = None;
        for _ in 0..500 {
            held = bridge_store::checkpoints::lock_holder(&store, o)
                .await
                .unwrap();
            if held.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(held.is_some(), "{backend:?}: the first run took no lease");
        let err = refused_beside(first, slow(), &format!("{backend:?}"));
        assert!(
            err.contains(&format!("another run is syncing org {o}")) && err.contains("export pid"),
            "{backend:?}: {err}"
        );
        let target: Target = db.url.parse().unwrap();
        assert_destination_eq(&target, o, &truth).await;
        // Given back at the end: the next run goes ahead at once.
        assert_eq!(
            bridge_store::checkpoints::lock_holder(&store, o)
                .await
                .unwrap(),
            None
        );
        let mut again = export_command(&sim, &db.url);
        again.env("DRIFTBRIDGE_DRIFT__RATE_LIMIT_PER_MINUTE", "0");
        succeeded(again);
        assert_destination_eq(&target, o, &truth).await;
        store.close().await;
    }
}

/// A person erased while an export into files runs: the export read the tombstones once, at
/// its start, so every page it committed after the erasure still held the person (until a
/// `gdpr purge` after the run). It now reads them again when a newer erasure appears, and
/// leaves the person out of every page committed after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_erased_during_an_export_is_left_out_of_the_pages_committed_after() {
    let sim = sim(300).await;
    let o = org(&sim);
    // A person whose every conversation is on the last page of the list (newest-updated
    // first, 100 a page), and whose email no other contact has.
    let (email, theirs) = {
        let world = sim.state.world.lock();
        let w = world.org(o).unwrap();
        let mut listed: Vec<_> = w.conversations.values().map(|r| &r.conversation).collect();
        listed.sort_by_key(|c| std::cmp::Reverse(c.updated_at.map(|u| u.0)));
        let position = |id: i64| listed.iter().position(|c| c.id.0 == id).unwrap();
        let mut by_contact: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
        for c in &listed {
            if let Some(contact) = c.contact_id {
                by_contact.entry(contact.0).or_default().push(c.id.0);
            }
        }
        let emails = |e: &str| {
            w.contacts
                .values()
                .filter(|c| {
                    c.attributes
                        .email()
                        .is_some_and(|x| x.eq_ignore_ascii_case(e))
                })
                .count()
        };
        by_contact
            .into_iter()
            .filter(|(_, convs)| convs.iter().all(|id| position(*id) >= 220))
            .find_map(|(contact, convs)| {
                let email = w
                    .contacts
                    .get(&drift_types::ContactId(contact))?
                    .attributes
                    .email()?;
                (emails(email) == 1).then(|| (email.to_owned(), convs))
            })
            .expect("a person who only chatted on the last page")
    };
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite:{}", dir.path().join("driftbridge.db").display());
    Store::connect(&database).await.unwrap().close().await;
    let out_dir = dir.path().join("jsonl");
    let to = format!("jsonl:{}", out_dir.display());
    let mut export = export_command(&sim, &to);
    export
        .args(["--meetings-since", &since().to_string()])
        .env("DRIFTBRIDGE_DATABASE_URL", &database)
        // 100 requests/s: a page of conversations takes seconds.
        .env("DRIFTBRIDGE_DRIFT__RATE_LIMIT_PER_MINUTE", "6000")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let running = export.spawn().unwrap();
    // The first page of conversations is committed, then the person is erased.
    let manifest = out_dir.join("_manifest.json");
    for _ in 0..1000 {
        let text = std::fs::read_to_string(&manifest).unwrap_or_default();
        if text.contains("/conversations") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut erase = std::process::Command::new(env!("CARGO_BIN_EXE_driftbridge"));
    erase
        .args([
            "gdpr",
            "delete",
            "--local-only",
            "--org",
            &o.0.to_string(),
            &email,
        ])
        .env("DRIFTBRIDGE_DATABASE_URL", &database);
    succeeded(erase);
    let done = running.wait_with_output().unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    assert!(
        summary["seconds"].as_f64().unwrap() > 1.0,
        "the export ran long enough to be erased into: {summary}"
    );

    let table = |name: &str| bridge_store::tables::table(name).unwrap();
    let contacts = bridge_export::read_table(&out_dir, table("contacts")).unwrap();
    let t = table("contacts");
    let email_at = t.index("email").unwrap();
    assert!(
        !contacts
            .iter()
            .any(|r| r[email_at].as_str() == Some(email.as_str())),
        "the erased person's contact row was written after their erasure"
    );
    let conversations = bridge_export::read_table(&out_dir, table("conversations")).unwrap();
    let id_at = table("conversations").index("id").unwrap();
    let ids: BTreeSet<i64> = conversations
        .iter()
        .filter_map(|r| r[id_at].as_i64())
        .collect();
    assert!(
        theirs.iter().all(|id| !ids.contains(id)),
        "their conversations {theirs:?} were written after their erasure"
    );
    assert_eq!(
        ids.len(),
        300 - theirs.len(),
        "everyone else's conversations are there"
    );
}
