//! GDPR erasure end to end: a person with three conversations delivered to every sink is
//! erased by Drift's `gdpr_delete_requested`; afterwards no byte of their email, name or a
//! message phrase is left in the database files (or a `pg_dump`), the CRM simulators, or
//! what a re-delivered webhook, a sync or an export writes; everybody else's rows are as
//! they were.

use std::collections::BTreeSet;
use std::time::Duration;

use bridge_queue::JobState;
use bridge_store::tables::TABLES;
use bridge_store::{Backend, Store};
use drift_sim::SimHandle;
use drift_types::webhook::GdprDeleteRequested;
use drift_types::{AuthorType, ContactId, ConversationId, EpochMillis, Secret, WebhookEvent};
use serde_json::{Value, json};

use crate::crm::{CrmEnv, crm_env};
use crate::helpers::*;

const EMAIL: &str = "zephyrine.quillfeather@erasure.example";
const FIRST: &str = "Zephyrine";
const LAST: &str = "Quillfeather";
const PHRASE: &str = "violet ledger beneath the marmalade";

/// The person: a contact renamed to unique strings, given three more conversations (their
/// contact messages re-authored), one message carrying the phrase.
struct Person {
    contact: i64,
    conversations: BTreeSet<i64>,
}

fn make_person(sim: &SimHandle) -> Person {
    let org = org(sim);
    let mut world = sim.state.world.lock();
    let o = world.orgs.get_mut(&org).unwrap();
    let mut ids: Vec<ConversationId> = o.conversations.keys().copied().collect();
    ids.sort();
    let contact = o.conversations[&ids[0]].conversation.contact_id.unwrap();
    let c = o.contacts.get_mut(&contact).unwrap();
    let (old_first, old_last) = (
        c.attributes.0["first_name"].as_str().unwrap().to_owned(),
        c.attributes.0["last_name"].as_str().unwrap().to_owned(),
    );
    let old_email = c.attributes.email().unwrap().to_owned();
    let text = serde_json::to_string(&c.attributes)
        .unwrap()
        .replace(&old_email, EMAIL)
        .replace(&old_first, FIRST)
        .replace(&old_last, LAST);
    c.attributes = serde_json::from_str(&text).unwrap();
    let mut conversations = BTreeSet::new();
    for id in ids.iter().skip(1).take(3).chain(std::iter::once(&ids[0])) {
        let r = o.conversations.get_mut(id).unwrap();
        r.conversation.contact_id = Some(contact);
        for m in &mut r.messages {
            if m.author.kind == AuthorType::Contact {
                m.author.id = contact.0;
            }
        }
        conversations.insert(id.0);
    }
    // Conversations the contact already had are theirs too.
    for (id, r) in &o.conversations {
        if r.conversation.contact_id == Some(contact) {
            conversations.insert(id.0);
        }
    }
    let at = ids[1..4]
        .iter()
        .find_map(|id| {
            let i = o.conversations[id]
                .messages
                .iter()
                .position(|m| m.body.is_some())?;
            Some((*id, i))
        })
        .expect("a message with a body");
    let m = &mut o.conversations.get_mut(&at.0).unwrap().messages[at.1];
    m.author.kind = AuthorType::Contact;
    m.author.id = contact.0;
    m.author.bot = false;
    m.body = Some(format!("<p>please keep the {PHRASE} safe</p>"));
    Person {
        contact: contact.0,
        conversations,
    }
}

/// Every row of every warehouse table (and the goal rows), as JSON, in key order.
async fn dump(store: &Store) -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    for t in TABLES.iter() {
        let cols: Vec<&str> = t.columns.iter().map(|c| c.name).collect();
        let sql = format!(
            "SELECT {} FROM {} ORDER BY {}",
            t.select_list(store.backend()),
            t.name,
            cols[..t.key].join(", ")
        );
        let rows = bridge_store::sqlx::query(bridge_store::sqlx::AssertSqlSafe(sql))
            .fetch_all(store.pool())
            .await
            .unwrap();
        for row in rows {
            let mut m = serde_json::Map::new();
            for (i, c) in t.columns.iter().enumerate() {
                m.insert(c.name.to_owned(), c.cell(&row, i).to_json());
            }
            out.push((t.name, Value::Object(m)));
        }
    }
    out
}

/// Whether a dumped row is about the person.
fn about(p: &Person, table: &str, row: &Value, messages: &BTreeSet<i64>) -> bool {
    let int = |k: &str| row.get(k).and_then(Value::as_i64);
    match table {
        "contacts" => int("id") == Some(p.contact),
        "contact_tags" => int("contact_id") == Some(p.contact),
        "conversations" => int("id").is_some_and(|c| p.conversations.contains(&c)),
        "message_buttons" => int("message_id").is_some_and(|m| messages.contains(&m)),
        _ => int("conversation_id").is_some_and(|c| p.conversations.contains(&c)),
    }
}

/// Where `needle` occurs in the database: the SQLite file and its `-wal` and `-shm`, or a
/// `pg_dump`.
fn found_in_database(url: &str, needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    let needle_lc = needle.to_lowercase();
    let mut search = |what: String, bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes).to_lowercase();
        if text.contains(&needle_lc) {
            out.push(what);
        }
    };
    match bridge_store::sqlite_file(url) {
        Some(file) => {
            for suffix in ["", "-wal", "-shm"] {
                let path = format!("{}{suffix}", file.display());
                if let Ok(bytes) = std::fs::read(&path) {
                    search(path, &bytes);
                }
            }
        }
        None => {
            let o = std::process::Command::new("pg_dump")
                .args(["--data-only", "-d", url])
                .output()
                .expect("pg_dump runs");
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            search("pg_dump".into(), &o.stdout);
        }
    }
    out
}

/// Every file below `dir`.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn crm_text(sim: &SimHandle) -> String {
    sim.state.crm.dump().to_string().to_lowercase()
}

/// A `new_meeting` webhook of the person's, booked in `conversation` (or from a calendar
/// page), with `notes`.
fn new_meeting(
    sim: &SimHandle,
    person: &Person,
    conversation: Option<i64>,
    notes: Option<&str>,
) -> Value {
    let now = drift_types::now_ms();
    let meeting = drift_types::Meeting {
        agent_id: None,
        org_id: Some(org(sim)),
        status: Some("ACTIVE".into()),
        meeting_source: Some(
            if conversation.is_some() {
                "CHAT"
            } else {
                "EMAIL_DROP"
            }
            .into(),
        ),
        scheduler_id: Some(ContactId(person.contact)),
        event_id: Some("evt-erasure".into()),
        slug: None,
        slot_start: Some(EpochMillis(now + 86_400_000)),
        slot_end: Some(EpochMillis(now + 88_200_000)),
        updated_at: Some(EpochMillis(now)),
        scheduled_at: Some(EpochMillis(now)),
        meeting_type: Some("Demo".into()),
        conversation_id: conversation.map(ConversationId),
        end_user_time_zone: None,
        meeting_notes: notes.map(str::to_owned),
        booked_by: Some(person.contact),
    };
    signed(&WebhookEvent::NewMeeting(meeting), org(sim))
}

/// The stored rows `driftbridge gdpr export` reports about the person (without asking Drift).
async fn held_rows(config: &driftbridge::config::Config) -> Value {
    let out = tempfile::NamedTempFile::new().unwrap();
    driftbridge::gdpr_cmd::export(config, EMAIL, None, true, Some(out.path()))
        .await
        .unwrap();
    let doc: Value = serde_json::from_slice(&std::fs::read(out.path()).unwrap()).unwrap();
    doc["driftbridge"][0]["rows"].clone()
}

async fn erase_by_webhook(addr: std::net::SocketAddr, sim: &SimHandle) {
    let ev = WebhookEvent::GdprDeleteRequested(GdprDeleteRequested {
        email: EMAIL.to_uppercase(),
        requested_at: Some(EpochMillis(drift_types::now_ms())),
    });
    let body = signed(&ev, org(sim));
    assert_eq!(
        post(&reqwest::Client::new(), addr, &body).await.unwrap(),
        200
    );
}

/// A `phone_captured` webhook: `contact` left a phone number in `conversation`.
fn phone_captured(sim: &SimHandle, conversation: ConversationId, contact: i64) -> Value {
    signed(
        &WebhookEvent::PhoneCaptured(drift_types::webhook::PhoneCaptured {
            conversation_id: conversation,
            author_id: Some(contact),
            author_type: Some("contact".into()),
            phone_number: Some("+1-617-555-0100".into()),
        }),
        org(sim),
    )
}

async fn export_to(
    config: &driftbridge::config::Config,
    org: i64,
    to: Option<String>,
    mode: bridge_export::Mode,
    attachments: Option<std::path::PathBuf>,
) {
    let args = driftbridge::export_cmd::ExportArgs {
        to,
        tables: Vec::new(),
        contacts_from: None,
        org: Some(org),
        concurrency: 4,
        meetings_since: None,
        restart: true,
        attachments,
        json: true,
        overlap_secs: 3600,
    };
    driftbridge::export_cmd::run(config, args, mode)
        .await
        .unwrap();
}

/// The conversations with attachment files saved under `export --attachments DIR`.
fn saved_conversations(dir: &std::path::Path, org: i64) -> BTreeSet<i64> {
    std::fs::read_dir(dir.join(org.to_string()))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().to_string_lossy().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Every committed row of every table of a file destination.
fn file_rows(dir: &std::path::Path) -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    for t in TABLES.iter() {
        for r in bridge_export::read_table(dir, t).unwrap() {
            let m: serde_json::Map<String, Value> = t
                .columns
                .iter()
                .zip(&r)
                .map(|(c, v)| (c.name.to_owned(), v.to_json()))
                .collect();
            out.push((t.name, Value::Object(m)));
        }
    }
    out
}

/// `serve` started in-process, a push of every conversation of the simulator, all jobs done.
async fn delivered(env: &Env) -> (driftbridge::serve::Running, Store, Vec<ConversationId>) {
    let ids = conversation_ids(&env.sim);
    let running = driftbridge::serve::start(&env.config, true).await.unwrap();
    let store = running.queue.store().clone();
    crate::crm::push_all(running.addr, &env.sim, &ids, 0).await;
    drained(&store, Duration::from_secs(120)).await;
    (running, store, ids)
}

async fn scenario(backend: Backend) {
    let Some(ce) = crm_env(backend, 12, "").await else {
        return;
    };
    let CrmEnv { env, hook, .. } = &ce;
    let person = make_person(&env.sim);
    assert!(person.conversations.len() >= 3);
    let (running, store, _) = delivered(env).await;
    assert_eq!(running.queue.list(JobState::Dead, 5).await.unwrap(), vec![]);
    // Everything knows the person before.
    let crm = crm_text(&env.sim);
    for needle in [EMAIL, LAST, PHRASE] {
        assert!(
            crm.contains(&needle.to_lowercase()),
            "the CRMs lack {needle} before"
        );
        assert!(
            !found_in_database(&env.db.url, needle).is_empty(),
            "the store lacks {needle} before"
        );
    }
    let before = dump(&store).await;
    let messages: BTreeSet<i64> = before
        .iter()
        .filter(|(t, r)| *t == "messages" && about(&person, t, r, &BTreeSet::new()))
        .filter_map(|(_, r)| r["id"].as_i64())
        .collect();
    assert!(!messages.is_empty());
    let others: Vec<_> = before
        .iter()
        .filter(|(t, r)| !about(&person, t, r, &messages))
        .cloned()
        .collect();
    assert!(others.len() < before.len());
    let hook_before = hook.got.lock().unwrap().len();
    // Exports made before the erasure, to each file format.
    let files = tempfile::tempdir().unwrap();
    let dirs: Vec<String> = ["jsonl", "csv", "parquet"]
        .iter()
        .map(|f| format!("{f}:{}", files.path().join(f).display()))
        .collect();
    let mut exported = Vec::new();
    for d in &dirs {
        export_to(
            &env.config,
            org(&env.sim).0,
            Some(d.clone()),
            bridge_export::Mode::Full,
            Some(files.path().join("attachments")),
        )
        .await;
        let dir = files.path().join(d.split(':').next().unwrap());
        let rows = file_rows(&dir);
        assert!(
            rows.iter().any(|(t, r)| about(&person, t, r, &messages)),
            "{d} lacks the person"
        );
        exported.push((dir, rows));
    }
    for (dir, _) in &exported[..2] {
        let text: String = files_under(dir)
            .iter()
            .map(|f| String::from_utf8_lossy(&std::fs::read(f).unwrap()).to_lowercase())
            .collect();
        assert!(
            text.contains(EMAIL) && text.contains(PHRASE),
            "{}",
            dir.display()
        );
    }

    // Their attachments were saved too, a directory per conversation.
    let saved_before = saved_conversations(&files.path().join("attachments"), org(&env.sim).0);
    let theirs: BTreeSet<i64> = person.conversations.iter().copied().collect();
    assert!(
        saved_before.intersection(&theirs).count() > 0,
        "the person's conversations carry files: {saved_before:?}"
    );
    assert!(saved_before.difference(&theirs).count() > 0);

    erase_by_webhook(running.addr, &env.sim).await;
    drained(&store, Duration::from_secs(120)).await;
    assert_eq!(running.queue.list(JobState::Dead, 5).await.unwrap(), vec![]);

    // The store: the person's rows are gone, everyone else's are exactly as they were.
    assert_eq!(dump(&store).await, others, "only the person's rows went");
    for needle in [EMAIL, FIRST, LAST, PHRASE] {
        assert_eq!(
            found_in_database(&env.db.url, needle),
            Vec::<String>::new(),
            "{needle} survived"
        );
        assert!(
            !crm_text(&env.sim).contains(&needle.to_lowercase()),
            "a CRM still holds {needle}"
        );
    }
    // The export directories: `gdpr purge` rewrites the parts that held the person; every
    // other row reads back with the same values.
    driftbridge::gdpr_cmd::purge(&env.config, &dirs, &[files.path().join("attachments")])
        .await
        .unwrap();
    assert_eq!(
        saved_conversations(&files.path().join("attachments"), org(&env.sim).0),
        saved_before.difference(&theirs).copied().collect(),
        "exactly the person's attachment files went"
    );
    for (dir, before) in &exported {
        let want: Vec<_> = before
            .iter()
            .filter(|(t, r)| !about(&person, t, r, &messages))
            .cloned()
            .collect();
        assert!(want.len() < before.len());
        assert_eq!(file_rows(dir), want, "{}", dir.display());
        for f in files_under(dir) {
            let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).to_lowercase();
            for needle in [EMAIL, FIRST, LAST, PHRASE] {
                assert!(
                    !text.contains(&needle.to_lowercase()),
                    "{needle} in {}",
                    f.display()
                );
            }
        }
    }
    // The HTTP sinks were told, with ids only and signed.
    let erased: Vec<Value> = hook.got.lock().unwrap()[hook_before..]
        .iter()
        .map(|(_, h, b)| {
            assert!(h.contains_key("webhook-signature"));
            serde_json::from_slice(b).unwrap()
        })
        .collect();
    assert_eq!(erased.len(), 2, "both HTTP sinks told once: {erased:?}");
    for e in &erased {
        assert_eq!(e["type"], "contact.erased");
        assert_eq!(e["data"]["contact_ids"], json!([person.contact]));
        assert!(!e.to_string().to_lowercase().contains(&LAST.to_lowercase()));
    }
    // The log holds the proof and no plaintext.
    let mut conn = store.acquire().await.unwrap();
    let log = bridge_store::privacy::erasures(&mut conn, 10)
        .await
        .unwrap();
    drop(conn);
    assert_eq!(log.len(), 1);
    let text = serde_json::to_string(&log).unwrap().to_lowercase();
    assert!(
        !text.contains("quillfeather") && !text.contains("zephyrine"),
        "{text}"
    );
    assert_eq!(log[0].source, "webhook");
    assert_eq!(
        log[0].summary["conversations"],
        person.conversations.len() as i64
    );
    let states: Vec<(&str, &str, i64)> = log[0]
        .sinks
        .iter()
        .map(|s| (s.sink.as_str(), s.state.as_str(), s.records))
        .collect();
    for (sink, state, records) in &states {
        assert_eq!(*state, "done", "{states:?}");
        if ["hubspot", "salesforce", "marketo"].contains(sink) {
            assert!(*records > 0, "{states:?}");
        }
    }
    assert_eq!(states.len(), 5, "{states:?}");

    // Drift still serves the person (its erasure is asynchronous): a re-delivered push, a
    // sync and an export write nothing about them.
    let stats = |sim: &SimHandle| {
        [
            drift_sim::crm::Target::Hubspot,
            drift_sim::crm::Target::Salesforce,
            drift_sim::crm::Target::Marketo,
        ]
        .map(|t| sim.state.crm.stats(t).created)
    };
    let created = stats(&env.sim);
    for (n, id) in person.conversations.iter().enumerate() {
        let body = push(org(&env.sim), ConversationId(*id), 1000 + n as i64);
        assert_eq!(
            post(&reqwest::Client::new(), running.addr, &body)
                .await
                .unwrap(),
            200
        );
    }
    drained(&store, Duration::from_secs(120)).await;
    assert_eq!(stats(&env.sim), created, "a CRM record was created again");
    assert_eq!(
        hook.got.lock().unwrap().len(),
        hook_before + 2,
        "an HTTP sink got the person again"
    );
    let fresh = tempfile::tempdir().unwrap();
    let fresh_db = format!("sqlite:{}", fresh.path().join("fresh.db").display());
    for (to, mode) in [
        (None, bridge_export::Mode::Incremental),
        (None, bridge_export::Mode::Full),
        (Some(fresh_db.clone()), bridge_export::Mode::Full),
        (
            Some(format!("jsonl:{}", fresh.path().join("jsonl").display())),
            bridge_export::Mode::Full,
        ),
    ] {
        export_to(
            &env.config,
            org(&env.sim).0,
            to,
            mode,
            Some(fresh.path().join("attachments")),
        )
        .await;
    }
    let saved_after = saved_conversations(&fresh.path().join("attachments"), org(&env.sim).0);
    assert_eq!(
        saved_after,
        saved_before.difference(&theirs).copied().collect(),
        "an export fetched the person's files"
    );
    running.stop().await;
    let after = dump(&Store::connect(&env.db.url).await.unwrap()).await;
    assert!(
        after.iter().all(|(t, r)| !about(&person, t, r, &messages)),
        "an export wrote the person"
    );
    for needle in [EMAIL, LAST, PHRASE] {
        assert_eq!(
            found_in_database(&env.db.url, needle),
            Vec::<String>::new(),
            "{needle} came back"
        );
        assert_eq!(
            found_in_database(&fresh_db, needle),
            Vec::<String>::new(),
            "{needle} exported"
        );
        for f in files_under(&fresh.path().join("jsonl")) {
            let bytes = std::fs::read(&f).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes)
                    .to_lowercase()
                    .contains(&needle.to_lowercase()),
                "{needle} in {}",
                f.display()
            );
        }
    }
    let _ = ContactId(person.contact);
}

#[tokio::test]
async fn an_erased_person_leaves_no_byte_in_sqlite_or_the_crms_and_nothing_writes_them_again() {
    scenario(Backend::Sqlite).await;
}

#[tokio::test]
async fn an_erased_person_leaves_nothing_in_a_pg_dump_and_nothing_writes_them_again() {
    scenario(Backend::Postgres).await;
}

#[tokio::test]
async fn an_unsubscribe_reaches_each_crm_simulator_once_and_creates_nothing() {
    let Some(ce) = crm_env(Backend::Sqlite, 6, "").await else {
        return;
    };
    let CrmEnv { env, hook, .. } = &ce;
    let (running, store, ids) = delivered(env).await;
    let http = reqwest::Client::new();
    let contact = {
        let world = env.sim.state.world.lock();
        let o = world.org(org(&env.sim)).unwrap();
        let id = o.conversations[&ids[0]].conversation.contact_id.unwrap();
        o.contacts[&id].clone()
    };
    let email = contact.attributes.email().unwrap().to_lowercase();
    let writes_before = env.sim.state.crm.writes().len();
    let hook_before = hook.got.lock().unwrap().len();
    let ev = WebhookEvent::UserUnsubscribed(contact.clone());
    let body = signed(&ev, org(&env.sim));
    // Drift may deliver it twice; the gateway keeps one.
    for _ in 0..2 {
        assert_eq!(post(&http, running.addr, &body).await.unwrap(), 200);
    }
    drained(&store, Duration::from_secs(60)).await;
    assert_eq!(running.queue.list(JobState::Dead, 5).await.unwrap(), vec![]);

    let writes: Vec<_> = env.sim.state.crm.writes()[writes_before..].to_vec();
    let per_target = |t: drift_sim::crm::Target| writes.iter().filter(|w| w.target == t).count();
    for t in [
        drift_sim::crm::Target::Hubspot,
        drift_sim::crm::Target::Salesforce,
        drift_sim::crm::Target::Marketo,
    ] {
        assert_eq!(per_target(t), 1, "{t:?}: {writes:?}");
    }
    assert!(writes.iter().all(|w| w.op == "update"), "{writes:?}");
    let dump = env.sim.state.crm.dump();
    let find = |path: &str, key: &str| -> Value {
        dump.pointer(path)
            .and_then(Value::as_array)
            .unwrap()
            .iter()
            .find(|r| {
                r["fields"][key]
                    .as_str()
                    .is_some_and(|e| e.eq_ignore_ascii_case(&email))
            })
            .cloned()
            .unwrap_or_else(|| panic!("no record for {email} at {path}"))
    };
    assert_eq!(
        find("/hubspot/contacts", "email")["fields"]["drift_unsubscribed"],
        "true"
    );
    assert_eq!(
        find("/salesforce/Lead", "Email")["fields"]["HasOptedOutOfEmail"],
        true
    );
    assert_eq!(
        find("/marketo/leads", "email")["fields"]["unsubscribed"],
        true
    );
    let told: Vec<Value> = hook.got.lock().unwrap()[hook_before..]
        .iter()
        .map(|(_, _, b)| serde_json::from_slice(b).unwrap())
        .collect();
    assert_eq!(told.len(), 2, "both HTTP sinks, once each: {told:?}");
    assert!(
        told.iter()
            .all(|t| t["type"] == "contact.unsubscribed" && t["data"]["email"] == email.as_str())
    );
    running.stop().await;
}

#[tokio::test]
async fn gdpr_delete_from_the_command_line_asks_drift_whose_later_webhook_finds_nothing_more() {
    let Some(ce) = crm_env(Backend::Sqlite, 6, "").await else {
        return;
    };
    let CrmEnv { env, hook, .. } = &ce;
    let (running, store, ids) = delivered(env).await;
    env.sim.state.webhooks.configure(|c| {
        c.url = Some(format!("http://{}/webhooks/drift", running.addr));
        c.verification_token = Secret::new(VERIFY);
    });
    let email = crate::crm::emails(&env.sim, &ids[..1])
        .into_values()
        .next()
        .unwrap();

    // Subject access first: the stored rows, the CRM ids, and what Drift holds.
    let out = tempfile::NamedTempFile::new().unwrap();
    driftbridge::gdpr_cmd::export(
        &env.config,
        &email.to_uppercase(),
        None,
        false,
        Some(out.path()),
    )
    .await
    .unwrap();
    let doc: Value = serde_json::from_slice(&std::fs::read(out.path()).unwrap()).unwrap();
    let rows = &doc["driftbridge"][0]["rows"];
    assert_eq!(
        rows["contacts"][0]["email"]
            .as_str()
            .unwrap()
            .to_lowercase(),
        email
    );
    assert!(!rows["messages"].as_array().unwrap().is_empty());
    let hubspot = rows["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["sink"] == "hubspot")
        .expect("a HubSpot delivery record");
    assert!(hubspot["external_ids"]["note"].is_string());
    assert!(
        !doc["drift"]["retrieved"]["data"]["contacts"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let hook_before = hook.got.lock().unwrap().len();
    driftbridge::gdpr_cmd::delete(&env.config, &email, None, false)
        .await
        .unwrap();
    // Drift erases, then sends gdpr_delete_requested. Whichever of the two erasures commits
    // first takes everything; the other finds nothing (or its job was queued before the
    // command's erasure, which cancelled it with the person's other jobs). The delay decides.
    wait_until("Drift's webhook", Duration::from_secs(30), || {
        let n = env.sim.state.webhooks.stats().delivered;
        async move { n >= 1 }
    })
    .await;
    drained(&store, Duration::from_secs(60)).await;
    let mut c = store.acquire().await.unwrap();
    let log = bridge_store::privacy::erasures(&mut c, 10).await.unwrap();
    drop(c);
    assert!(!log.is_empty() && log.len() <= 2, "{log:?}");
    assert!(log.iter().any(|e| e.source == "cli"), "{log:?}");
    // The one that came second removed no row (it may have redacted its own event and job).
    let (full, empty): (Vec<_>, Vec<_>) =
        log.iter().partition(|e| e.summary.contains_key("contacts"));
    assert_eq!(full.len(), 1, "{log:?}");
    assert!(full[0].summary["contacts"] >= 1 && full[0].summary["messages"] >= 1);
    assert!(
        full[0].sinks.iter().all(|s| s.state == "done"),
        "{:?}",
        full[0].sinks
    );
    for e in empty {
        assert_eq!(e.subject, full[0].subject, "one person, one digest");
        assert!(
            e.summary.keys().all(|k| k.ends_with("_redacted")),
            "{:?}",
            e.summary
        );
        assert!(
            e.sinks.iter().all(|s| s.state == "nothing"),
            "{:?}",
            e.sinks
        );
    }
    assert_eq!(
        hook.got.lock().unwrap().len(),
        hook_before + 2,
        "told once per endpoint"
    );
    assert!(
        env.sim
            .state
            .world
            .lock()
            .org(org(&env.sim))
            .unwrap()
            .contacts_by_email(&email)
            .is_empty(),
        "Drift erased them"
    );
    running.stop().await;
}

#[tokio::test]
async fn an_erasure_after_a_meeting_delivery_deletes_the_meetings_and_the_push_s_note_and_task() {
    let Some(ce) = crm_env(Backend::Sqlite, 12, "").await else {
        return;
    };
    let env = &ce.env;
    let person = make_person(&env.sim);
    let (running, store, _) = delivered(env).await;
    // A meeting booked in one of the person's conversations reaches the CRMs after its push:
    // that delivery writes the contact and the meeting, not the note or Task.
    let conversation = *person.conversations.iter().next().unwrap();
    let body = new_meeting(&env.sim, &person, Some(conversation), None);
    assert_eq!(
        post(&reqwest::Client::new(), running.addr, &body)
            .await
            .unwrap(),
        200
    );
    drained(&store, Duration::from_secs(60)).await;
    let roles: Vec<(String, String)> = bridge_store::sqlx::query_as(
        "SELECT sink, external_ids FROM deliveries WHERE conversation_id = $1 ORDER BY sink",
    )
    .bind(conversation)
    .fetch_all(store.pool())
    .await
    .unwrap();
    let role_of = |sink: &str| -> Value {
        serde_json::from_str(&roles.iter().find(|(s, _)| s == sink).unwrap().1).unwrap()
    };
    assert!(
        role_of("hubspot").get("note").is_some(),
        "HubSpot's note is still known: {roles:?}"
    );
    assert!(
        role_of("salesforce").get("task").is_some(),
        "Salesforce's Task is still known: {roles:?}"
    );
    assert!(
        crm_text(&env.sim).contains(PHRASE),
        "the transcript reached the CRMs"
    );

    erase_by_webhook(running.addr, &env.sim).await;
    drained(&store, Duration::from_secs(60)).await;
    assert_eq!(running.queue.list(JobState::Dead, 5).await.unwrap(), vec![]);
    for needle in [EMAIL, LAST, PHRASE] {
        assert!(
            !crm_text(&env.sim).contains(&needle.to_lowercase()),
            "a CRM still holds {needle}"
        );
    }
    running.stop().await;
}

#[tokio::test]
async fn an_erasure_deletes_what_a_lead_signal_alone_wrote_in_the_crms() {
    let Some(ce) = crm_env(Backend::Sqlite, 12, "").await else {
        return;
    };
    let env = &ce.env;
    let person = make_person(&env.sim);
    let running = driftbridge::serve::start(&env.config, true).await.unwrap();
    let store = running.queue.store().clone();
    // A phone number captured in a chat that has not closed yet: no conversation was
    // delivered, only the signal wrote the person into the CRMs (and nothing else made
    // driftbridge store the contact).
    let conversation = *person.conversations.iter().next().unwrap();
    let body = phone_captured(&env.sim, ConversationId(conversation), person.contact);
    let http = reqwest::Client::new();
    assert_eq!(post(&http, running.addr, &body).await.unwrap(), 200);
    drained(&store, Duration::from_secs(60)).await;
    assert!(
        crm_text(&env.sim).contains(EMAIL),
        "the signal reached the CRMs"
    );
    let held = held_rows(&env.config).await;
    let sinks: BTreeSet<&str> = held["signal_records"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["sink"].as_str())
        .collect();
    assert!(
        ["hubspot", "salesforce", "marketo"]
            .iter()
            .all(|s| sinks.contains(s)),
        "subject access lists what the signal wrote: {}",
        held["signal_records"]
    );

    erase_by_webhook(running.addr, &env.sim).await;
    drained(&store, Duration::from_secs(60)).await;
    assert_eq!(running.queue.list(JobState::Dead, 5).await.unwrap(), vec![]);
    for needle in [EMAIL, LAST] {
        assert!(
            !crm_text(&env.sim).contains(&needle.to_lowercase()),
            "a CRM still holds {needle}: {}",
            env.sim.state.crm.dump()
        );
    }
    running.stop().await;
}

#[tokio::test]
async fn an_erasure_deletes_a_meeting_booked_from_a_calendar_page_and_it_is_not_stored_again() {
    let Some(ce) = crm_env(Backend::Sqlite, 12, "").await else {
        return;
    };
    let env = &ce.env;
    let person = make_person(&env.sim);
    let (running, store, _) = delivered(env).await;
    // Booked from a calendar page: no conversation, the person is its scheduler.
    let body = new_meeting(&env.sim, &person, None, Some(PHRASE));
    let http = reqwest::Client::new();
    assert_eq!(post(&http, running.addr, &body).await.unwrap(), 200);
    drained(&store, Duration::from_secs(60)).await;
    let theirs = "SELECT COUNT(*) FROM meetings WHERE meeting_key = 'evt-erasure'";
    assert_eq!(count(&store, theirs).await, 1, "the meeting is stored");
    let held = held_rows(&env.config).await;
    assert!(
        held["meetings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["meeting_key"] == "evt-erasure"),
        "subject access lists it: {}",
        held["meetings"]
    );
    // It reached the CRMs as a signal about the person, notes and all.
    assert!(
        crm_text(&env.sim).contains(PHRASE),
        "the meeting is in the CRMs: {}",
        env.sim.state.crm.dump()
    );

    erase_by_webhook(running.addr, &env.sim).await;
    drained(&store, Duration::from_secs(60)).await;
    assert_eq!(
        count(&store, theirs).await,
        0,
        "the meeting went with the person"
    );
    assert_eq!(found_in_database(&env.db.url, PHRASE), Vec::<String>::new());
    for needle in [PHRASE, EMAIL] {
        assert!(
            !crm_text(&env.sim).contains(&needle.to_lowercase()),
            "a CRM still holds {needle}: {}",
            env.sim.state.crm.dump()
        );
    }
    // Drift sends it again: nothing of the person is written back.
    let again = new_meeting(&env.sim, &person, None, Some(PHRASE));
    assert_eq!(post(&http, running.addr, &again).await.unwrap(), 200);
    drained(&store, Duration::from_secs(60)).await;
    assert_eq!(
        count(&store, theirs).await,
        0,
        "a tombstoned scheduler's meeting"
    );
    assert_eq!(running.queue.list(JobState::Dead, 5).await.unwrap(), vec![]);
    running.stop().await;
}

#[tokio::test]
async fn an_erasure_deletes_the_widget_history_of_a_visitor_who_left_their_email_and_keeps_it_out()
{
    for backend in bridge_store::testing::BACKENDS {
        let Some(ce) = crate::crm::env_with_sinks(*backend, 12, |sim, port| {
            format!(
                "{}\n[[widget.sites]]\nkey = \"forms\"\norg_id = {}\n\
                 origins = [\"http://forms.example\"]\nmode = \"public\"\ncollect_contact = true\n",
                crate::crm::sinks_toml(sim, port),
                sim.state.default_org().0
            )
        })
        .await
        else {
            continue;
        };
        let env = &ce.env;
        let person = make_person(&env.sim);
        // Their conversations are stored (and delivered), so the erasure tombstones them.
        let (running, store, _) = delivered(env).await;
        let http = reqwest::Client::new();
        // A visitor reads two pages and leaves their email in a form; no chat, no conversation.
        let now = drift_types::now_ms();
        let events = json!([
            {"id": "p1", "type": "chatOpen", "ts": now, "page": {"url": "http://forms.example/pricing"}},
            {"id": "p2", "type": "emailCapture", "ts": now,
             "page": {"url": format!("http://forms.example/thanks?email={EMAIL}")},
             "data": {"data": {"email": EMAIL.to_uppercase()}}},
        ]);
        // Posts a batch as one visitor's browser; each is taken (200).
        let post = |visitor: &'static str, events: serde_json::Value| {
            let (http, addr) = (http.clone(), running.addr);
            async move {
                let r = http
                    .post(format!("http://{addr}/widget/events"))
                    .header("origin", "http://forms.example")
                    .json(
                        &json!({"site": "forms", "visitor": visitor, "session": "s", "events": events}),
                    )
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
            }
        };
        post("v-form", events).await;
        post(
            "v-other",
            json!([
                {"id": "o1", "type": "chatOpen", "ts": now, "page": {"url": "http://forms.example/"}},
            ]),
        )
        .await;
        let of = |v: &'static str| {
            let pool = store.pool().clone();
            async move {
                let n: i64 = bridge_store::sqlx::query_scalar(
                    "SELECT COUNT(*) FROM widget_events WHERE visitor_id = $1",
                )
                .bind(v)
                .fetch_one(&pool)
                .await
                .unwrap();
                n
            }
        };
        assert_eq!(of("v-form").await, 2);

        erase_by_webhook(running.addr, &env.sim).await;
        drained(&store, Duration::from_secs(60)).await;
        assert_eq!(of("v-form").await, 0, "the visitor's whole history went");
        assert_eq!(of("v-other").await, 1, "another visitor's stays");
        assert_eq!(found_in_database(&env.db.url, EMAIL), Vec::<String>::new());
        // The same person fills the form again: taken, not stored.
        post(
            "v-new",
            json!([{"id": "again", "type": "emailCapture", "ts": drift_types::now_ms(),
                    "data": {"data": {"email": format!(" {EMAIL} ")}}}]),
        )
        .await;
        assert_eq!(of("v-new").await, 0, "an erased email is not stored again");
        assert_eq!(found_in_database(&env.db.url, EMAIL), Vec::<String>::new());
        // A tab still open on one of their conversations reports it: taken, not stored.
        let theirs = *person.conversations.iter().next().unwrap();
        post(
            "v-tab",
            json!([{"id": "tab", "type": "chatOpen", "ts": drift_types::now_ms(),
                    "conversationId": theirs}]),
        )
        .await;
        assert_eq!(
            of("v-tab").await,
            0,
            "an erased conversation's event is not stored"
        );
        running.stop().await;
    }
}

/// An erasure that commits while a sink write's CRM calls are running (each call slowed to
/// 600 ms): the erasure read the write's row before those calls made their records and
/// deleted it, so nobody recorded them and they stayed in the CRMs. The write now finds the
/// erasure when it would record, and hands what it made to the erasure's sink jobs. `signal`:
/// a lead signal's write (`phone_captured`) rather than a closed conversation's delivery.
async fn erasure_during_a_write(backend: Backend, signal: bool) {
    let Some(ce) = crm_env(backend, 12, "").await else {
        return;
    };
    let env = &ce.env;
    let person = make_person(&env.sim);
    let running = driftbridge::serve::start(&env.config, true).await.unwrap();
    let store = running.queue.store().clone();
    env.sim.state.crm.settings.lock().latency_ms = 600;
    let conversation = *person.conversations.iter().next().unwrap();
    let body = if signal {
        phone_captured(&env.sim, ConversationId(conversation), person.contact)
    } else {
        push(org(&env.sim), ConversationId(conversation), 1)
    };
    let (rows, job): (&'static str, &'static str) = if signal {
        (
            "SELECT COUNT(*) FROM signal_records WHERE pending_since IS NOT NULL \
             AND holder IS NOT NULL",
            "SELECT COUNT(*) FROM jobs WHERE name = 'deliver_signal' AND state = 'running'",
        )
    } else {
        (
            "SELECT COUNT(*) FROM deliveries WHERE pending_since IS NOT NULL \
             AND holder IS NOT NULL",
            "SELECT COUNT(*) FROM jobs WHERE name = 'deliver_conversation' AND state = 'running'",
        )
    };
    let http = reqwest::Client::new();
    assert_eq!(post(&http, running.addr, &body).await.unwrap(), 200);
    wait_until("a write to start", Duration::from_secs(60), || async {
        count(&store, rows).await > 0
    })
    .await;
    erase_by_webhook(running.addr, &env.sim).await;
    wait_until("the erasure", Duration::from_secs(60), || async {
        count(&store, "SELECT COUNT(*) FROM erasures").await > 0
    })
    .await;
    // The race this is about happened: a write was still running when the erasure committed.
    assert!(
        count(&store, job).await > 0,
        "{backend:?}: no write was running any more"
    );
    env.sim.state.crm.settings.lock().latency_ms = 0;
    drained(&store, Duration::from_secs(60)).await;
    assert_eq!(running.queue.list(JobState::Dead, 5).await.unwrap(), vec![]);
    for needle in [EMAIL, LAST] {
        assert!(
            !crm_text(&env.sim).contains(&needle.to_lowercase()),
            "{backend:?}: a CRM still holds {needle}: {}",
            env.sim.state.crm.dump()
        );
    }
    for table in [
        "SELECT COUNT(*) FROM deliveries",
        "SELECT COUNT(*) FROM signal_records",
    ] {
        assert_eq!(count(&store, table).await, 0, "{backend:?}: {table}");
    }
    running.stop().await;
}

#[tokio::test]
async fn an_erasure_while_a_delivery_writes_reaches_what_that_delivery_makes_sqlite() {
    erasure_during_a_write(Backend::Sqlite, false).await;
}

#[tokio::test]
async fn an_erasure_while_a_delivery_writes_reaches_what_that_delivery_makes_postgres() {
    erasure_during_a_write(Backend::Postgres, false).await;
}

#[tokio::test]
async fn an_erasure_while_a_lead_signal_writes_reaches_what_that_signal_makes() {
    erasure_during_a_write(Backend::Sqlite, true).await;
    erasure_during_a_write(Backend::Postgres, true).await;
}

/// The CRM records of `email`: HubSpot's contact, Salesforce's Lead or Contact, Marketo's
/// lead, each with its opt-out field (`None` when there is no such record).
fn opt_out_fields(sim: &SimHandle, email: &str) -> [Option<Value>; 3] {
    let dump = sim.state.crm.dump();
    let find = |paths: &[&str], key: &str, field: &str| -> Option<Value> {
        paths.iter().find_map(|path| {
            dump.pointer(path)?
                .as_array()?
                .iter()
                .find(|r| {
                    r["fields"][key]
                        .as_str()
                        .is_some_and(|e| e.eq_ignore_ascii_case(email))
                })
                .map(|r| r["fields"][field].clone())
        })
    };
    [
        find(&["/hubspot/contacts"], "email", "drift_unsubscribed"),
        find(
            &["/salesforce/Lead", "/salesforce/Contact"],
            "Email",
            "HasOptedOutOfEmail",
        ),
        find(&["/marketo/leads"], "email", "unsubscribed"),
    ]
}

fn unsubscribed(sim: &SimHandle, contact: &drift_types::Contact) -> Value {
    signed(&WebhookEvent::UserUnsubscribed(contact.clone()), org(sim))
}

/// A person who unsubscribed before their first chat closed: the opt-out found no CRM record
/// to flag (it creates none), and the delivery that then created them wrote them without the
/// flag, so the CRMs would email someone who opted out. Their first delivery and their lead
/// signals now carry each CRM's opt-out field; so does a delivery that was already writing
/// when the opt-out came in (each CRM call slowed to 400 ms).
#[tokio::test]
async fn records_created_after_an_opt_out_carry_it_whenever_they_are_written() {
    let Some(ce) = crm_env(Backend::Sqlite, 12, "").await else {
        return;
    };
    let env = &ce.env;
    let running = driftbridge::serve::start(&env.config, true).await.unwrap();
    let store = running.queue.store().clone();
    let http = reqwest::Client::new();
    // Three conversations of three different contacts with emails.
    let picked: Vec<(ConversationId, drift_types::Contact)> = {
        let world = env.sim.state.world.lock();
        let o = world.org(org(&env.sim)).unwrap();
        let mut seen = BTreeSet::new();
        let mut ids: Vec<&ConversationId> = o.conversations.keys().collect();
        ids.sort();
        ids.into_iter()
            .filter_map(|id| {
                let c = o
                    .contacts
                    .get(&o.conversations[id].conversation.contact_id?)?;
                c.attributes.email()?;
                seen.insert(c.id).then(|| (*id, c.clone()))
            })
            .take(3)
            .collect()
    };
    assert_eq!(picked.len(), 3);
    let email = |c: &drift_types::Contact| c.attributes.email().unwrap().to_lowercase();
    // Posts one webhook and waits for what it starts to end.
    let send = |body: Value| {
        let (http, store, addr) = (&http, &store, running.addr);
        async move {
            assert_eq!(post(http, addr, &body).await.unwrap(), 200);
            drained(store, Duration::from_secs(60)).await;
        }
    };
    let flagged = [Some(json!("true")), Some(json!(true)), Some(json!(true))];

    // 1. Unsubscribed first, then the conversation closes: its delivery creates the records.
    let (first, a) = &picked[0];
    send(unsubscribed(&env.sim, a)).await;
    assert_eq!(
        opt_out_fields(&env.sim, &email(a)),
        [None, None, None],
        "nothing to flag yet"
    );
    send(push(org(&env.sim), *first, 1)).await;
    assert_eq!(
        opt_out_fields(&env.sim, &email(a)),
        flagged,
        "the delivery after the opt-out"
    );
    // Subject access says when they opted out.
    let out = tempfile::NamedTempFile::new().unwrap();
    driftbridge::gdpr_cmd::export(&env.config, &email(a), None, true, Some(out.path()))
        .await
        .unwrap();
    let doc: Value = serde_json::from_slice(&std::fs::read(out.path()).unwrap()).unwrap();
    let opt_outs = &doc["driftbridge"][0]["rows"]["opt_outs"];
    assert_eq!(opt_outs.as_array().map(Vec::len), Some(1), "{opt_outs}");

    // 2. Unsubscribed first, then a lead signal (a phone number in a chat still open).
    let (second, b) = &picked[1];
    send(unsubscribed(&env.sim, b)).await;
    send(phone_captured(&env.sim, *second, b.id.0)).await;
    assert_eq!(
        opt_out_fields(&env.sim, &email(b)),
        flagged,
        "the lead signal after the opt-out"
    );

    // 3. The opt-out comes in while the delivery is writing.
    let (third, c) = &picked[2];
    env.sim.state.crm.settings.lock().latency_ms = 400;
    assert_eq!(
        post(&http, running.addr, &push(org(&env.sim), *third, 1))
            .await
            .unwrap(),
        200
    );
    wait_until("a delivery to start writing", Duration::from_secs(60), || async {
        count(
            &store,
            "SELECT COUNT(*) FROM deliveries WHERE pending_since IS NOT NULL AND holder IS NOT NULL",
        )
        .await
            > 0
    })
    .await;
    send(unsubscribed(&env.sim, c)).await;
    env.sim.state.crm.settings.lock().latency_ms = 0;
    assert_eq!(
        opt_out_fields(&env.sim, &email(c)),
        flagged,
        "the delivery that was writing when the opt-out came in"
    );
    assert_eq!(running.queue.list(JobState::Dead, 5).await.unwrap(), vec![]);
    // An erasure takes the person's opt-out row with the rest.
    assert_eq!(count(&store, "SELECT COUNT(*) FROM opt_outs").await, 3);
    driftbridge::gdpr_cmd::delete(&env.config, &email(a), None, true)
        .await
        .unwrap();
    assert_eq!(count(&store, "SELECT COUNT(*) FROM opt_outs").await, 2);
    running.stop().await;
}
