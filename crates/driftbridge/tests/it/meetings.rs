//! Meetings booked in chats reach the CRMs: through `serve` and the simulators, 100
//! conversations each book a meeting, 20 are rescheduled and 10 canceled; every event
//! (`new_meeting`, `meeting_updated`, `conversation_push`) is shuffled and some re-delivered.
//! HubSpot ends with exactly one meeting engagement and Salesforce with one Event per
//! booking, associated with the conversation's contact or lead, at the final time and status.

use std::collections::BTreeMap;
use std::time::Duration;

use bridge_store::Backend;
use drift_types::webhook::{ConversationPush, MeetingUpdated, PushDetails};
use drift_types::{ConversationId, EpochMillis, Meeting, UserId, WebhookEvent};
use serde_json::Value;

use crate::crm::{emails, env_with_sinks, sinks_toml};
use crate::helpers::*;

const DAY: i64 = 86_400_000;

/// The final state of one booking.
struct Booking {
    /// Where it was booked: a conversation, else a calendar page.
    conversation: Option<ConversationId>,
    email: String,
    key: String,
    start: i64,
    status: &'static str,
}

fn records(dump: &Value, path: &str) -> Vec<Value> {
    dump.pointer(path)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// A meeting `key` of the org's `agent` with `scheduler`, at `start`, booked at `t0`: in the
/// conversation, or from a calendar page when there is none.
fn meeting(
    org: drift_types::OrgId,
    agent: UserId,
    scheduler: Option<drift_types::ContactId>,
    key: &str,
    start: i64,
    t0: i64,
    conversation: Option<ConversationId>,
) -> Meeting {
    Meeting {
        agent_id: Some(agent),
        org_id: Some(org),
        status: Some("ACTIVE".into()),
        meeting_source: Some(
            if conversation.is_some() {
                "CHAT"
            } else {
                "CALENDAR_PAGE"
            }
            .into(),
        ),
        scheduler_id: scheduler,
        event_id: Some(key.to_owned()),
        slug: Some(format!("s-{key}")),
        slot_start: Some(EpochMillis(start)),
        slot_end: Some(EpochMillis(start + 1_800_000)),
        updated_at: Some(EpochMillis(t0)),
        scheduled_at: Some(EpochMillis(t0 - 1000)),
        meeting_type: Some("Demo".into()),
        conversation_id: conversation,
        end_user_time_zone: Some("Europe/Berlin".into()),
        meeting_notes: None,
        booked_by: scheduler.map(|c| c.0),
    }
}

/// Books `m` in the simulator's org `o`, then, with `change`, reschedules it a day on or
/// cancels it a second later. Answers its events and its final start and status.
fn book(
    o: &mut drift_sim::world::Org,
    m: Meeting,
    change: Option<&'static str>,
) -> (Vec<WebhookEvent>, i64, &'static str) {
    let start = m.slot_start.map_or(0, |s| s.0);
    let mut events = vec![WebhookEvent::NewMeeting(m.clone())];
    let Some(kind) = change else {
        o.meetings.push(m);
        return (events, start, "SCHEDULED");
    };
    let mut u = m;
    u.updated_at = u.updated_at.map(|t| EpochMillis(t.0 + 1000));
    let (start, status) = if kind == "rescheduled" {
        let moved = start + DAY;
        u.slot_start = Some(EpochMillis(moved));
        u.slot_end = Some(EpochMillis(moved + 1_800_000));
        (moved, "RESCHEDULED")
    } else {
        (start, "CANCELED")
    };
    events.push(WebhookEvent::MeetingUpdated(MeetingUpdated {
        event_type: Some(kind.into()),
        meeting: u.clone(),
    }));
    o.meetings.push(u);
    (events, start, status)
}

/// The change of the `i`th booking: the first `rescheduled` are rescheduled, the next
/// `canceled` canceled.
fn change(i: usize, rescheduled: usize, canceled: usize) -> Option<&'static str> {
    if i < rescheduled {
        Some("rescheduled")
    } else if i < rescheduled + canceled {
        Some("canceled")
    } else {
        None
    }
}

/// 100 conversations (one per contact email) each book a meeting in the simulator's world;
/// 20 are then rescheduled a day on and 10 canceled. Answers the final bookings and every
/// event, shuffled, about a third of them twice.
fn scenario(env: &Env) -> (Vec<Booking>, Vec<WebhookEvent>) {
    let org = org(&env.sim);
    let by_email = emails(&env.sim, &conversation_ids(&env.sim));
    // One conversation per email (a CRM contact is per email), 100 of them.
    let mut seen = std::collections::BTreeSet::new();
    let picked: Vec<(ConversationId, String)> = by_email
        .iter()
        .filter(|(_, e)| seen.insert((*e).clone()))
        .take(100)
        .map(|(c, e)| (ConversationId(*c), e.clone()))
        .collect();
    assert_eq!(picked.len(), 100, "the dataset has 100 distinct contacts");

    let t0 = drift_types::now_ms();
    let base = t0 + 3 * DAY;
    let mut events = Vec::new();
    let mut bookings = Vec::new();
    {
        let mut world = env.sim.state.world.lock();
        let o = world.org_mut(org).unwrap();
        let agent = o
            .users
            .values()
            .find(|u| !u.bot)
            .map(|u| u.id)
            .unwrap_or(UserId(1));
        for (i, (conv, email)) in picked.iter().enumerate() {
            let contact = o.conversations[conv].conversation.contact_id;
            let key = format!("evt-{i}");
            let start = base + i as i64 * 3_600_000;
            let m = meeting(org, agent, contact, &key, start, t0, Some(*conv));
            let (booked, final_start, status) = book(o, m, change(i, 20, 10));
            events.extend(booked);
            events.push(WebhookEvent::ConversationPush(ConversationPush {
                source: Some("conversation_closed".into()),
                data: PushDetails {
                    conversation_id: *conv,
                    user_id: None,
                    pushed_at: Some(EpochMillis(t0 + i as i64)),
                },
            }));
            bookings.push(Booking {
                conversation: Some(*conv),
                email: email.clone(),
                key: format!("{}:{key}", org.0),
                start: final_start,
                status,
            });
        }
    }
    // Shuffled, a third of them delivered twice.
    (bookings, as_drift_sends(events, 19, 85))
}

/// `events` shuffled, about `twice` in 256 of them delivered twice (Drift retries).
fn as_drift_sends(events: Vec<WebhookEvent>, seed: u64, twice: u8) -> Vec<WebhookEvent> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut deliveries = events.clone();
    deliveries.extend(events.into_iter().filter(|_| rng.u8(..) < twice));
    rng.shuffle(&mut deliveries);
    deliveries
}

/// Salesforce's Events by their meeting key.
fn salesforce_events(dump: &Value) -> BTreeMap<String, Value> {
    records(dump, "/salesforce/Event")
        .into_iter()
        .map(|e| {
            let key = e["fields"]["Drift_Meeting_Key__c"].as_str().unwrap();
            (key.to_owned(), e)
        })
        .collect()
}

/// HubSpot holds exactly one meeting and Salesforce one Event per booking, at its final time
/// and status, associated with the booking's contact or lead.
fn assert_one_crm_meeting_per_booking(sim: &drift_sim::SimHandle, bookings: &[Booking]) {
    let dump = sim.state.crm.dump();
    let contacts: BTreeMap<String, String> = records(&dump, "/hubspot/contacts")
        .iter()
        .map(|c| {
            (
                c["fields"]["email"].as_str().unwrap().to_owned(),
                c["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let meetings = records(&dump, "/hubspot/meetings");
    assert_eq!(
        meetings.len(),
        bookings.len(),
        "one HubSpot meeting per booking"
    );
    let hs: BTreeMap<String, &Value> = meetings
        .iter()
        .map(|m| {
            (
                m["fields"]["drift_meeting_key"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                m,
            )
        })
        .collect();
    let leads: BTreeMap<String, String> = records(&dump, "/salesforce/Lead")
        .iter()
        .map(|l| {
            (
                l["fields"]["Email"].as_str().unwrap().to_lowercase(),
                l["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let sf = salesforce_events(&dump);
    assert_eq!(sf.len(), bookings.len(), "one Salesforce Event per booking");
    for b in bookings {
        let m = hs
            .get(&b.key)
            .unwrap_or_else(|| panic!("no HubSpot meeting {}", b.key));
        let start = EpochMillis(b.start).to_iso8601();
        assert_eq!(
            m["fields"]["hs_meeting_start_time"],
            start.as_str(),
            "{}",
            b.key
        );
        assert_eq!(m["fields"]["hs_meeting_outcome"], b.status, "{}", b.key);
        assert_eq!(
            m["associations"],
            serde_json::json!([contacts[&b.email]]),
            "{} is associated with its contact",
            b.key
        );
        let body = m["fields"]["hs_meeting_body"].as_str().unwrap();
        let booked_in = match b.conversation {
            Some(c) => format!("conversation {}", c.0),
            None => "calendar page".into(),
        };
        assert!(body.contains(&booked_in), "{}: {body}", b.key);
        let sf_key = b.key.replacen(':', "-", 1);
        let e = sf
            .get(&sf_key)
            .unwrap_or_else(|| panic!("no Event {sf_key}"));
        assert_eq!(e["fields"]["StartDateTime"], start.as_str(), "{sf_key}");
        assert_eq!(e["fields"]["WhoId"], leads[&b.email].as_str(), "{sf_key}");
        let subject = e["fields"]["Subject"].as_str().unwrap();
        assert_eq!(
            subject.starts_with("Canceled:"),
            b.status == "CANCELED",
            "{subject}"
        );
    }
}

/// Starts `serve`, posts every event, and waits until the queue is drained with no dead job.
async fn deliver_all(env: &Env, deliveries: &[WebhookEvent]) -> driftbridge::serve::Running {
    let org = org(&env.sim);
    let running = driftbridge::serve::start(&env.config, true).await.unwrap();
    let http = reqwest::Client::new();
    for e in deliveries {
        let body = signed(e, org);
        assert_eq!(post(&http, running.addr, &body).await.unwrap(), 200);
    }
    drained(running.queue.store(), Duration::from_secs(180)).await;
    assert_eq!(
        running
            .queue
            .list(bridge_queue::JobState::Dead, 5)
            .await
            .unwrap(),
        vec![],
        "no dead jobs"
    );
    running
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_booked_meetings_rescheduled_and_canceled_in_any_order_leave_one_crm_meeting_each()
 {
    let Some(mut ce) = env_with_sinks(Backend::Sqlite, 300, sinks_toml).await else {
        return;
    };
    let env = &mut ce.env;
    env.config.workers.concurrency = 16;
    let (bookings, deliveries) = scenario(env);
    let running = deliver_all(env, &deliveries).await;

    assert_one_crm_meeting_per_booking(&env.sim, &bookings);
    let dump = env.sim.state.crm.dump();
    // Marketo has the meeting on the lead; the HTTP sink got meeting events.
    let canceled = bookings.iter().find(|b| b.status == "CANCELED").unwrap();
    let lead = records(&dump, "/marketo/leads")
        .into_iter()
        .find(|l| l["fields"]["email"] == canceled.email.as_str())
        .expect("the Marketo lead");
    assert_eq!(lead["fields"]["driftMeetingStatus"], "canceled");
    let types: std::collections::BTreeSet<String> = ce
        .hook
        .got
        .lock()
        .unwrap()
        .iter()
        .filter(|(path, _, _)| path == "all")
        .filter_map(|(_, _, body)| serde_json::from_slice::<Value>(body).ok())
        .filter_map(|v| v["type"].as_str().map(str::to_owned))
        .collect();
    assert!(types.contains("meeting.booked"), "{types:?}");
    assert!(types.contains("meeting.updated"), "{types:?}");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_canceled_meetings_delete_salesforce_keeps_only_the_events_still_to_happen() {
    let Some(mut ce) = env_with_sinks(Backend::Sqlite, 300, |sim, port| {
        sinks_toml(sim, port).replace(
            "refresh_token = \"sim-salesforce-refresh\"",
            "refresh_token = \"sim-salesforce-refresh\"\ncanceled_meetings = \"delete\"",
        )
    })
    .await
    else {
        return;
    };
    let env = &mut ce.env;
    // The same hundred bookings, twenty rescheduled and ten canceled, in any order, some twice;
    // and ten from calendar pages, three of them canceled.
    let (mut bookings, mut deliveries) = scenario(env);
    let taken = bookings.iter().map(|b| b.email.clone()).collect();
    let (calendar, more) = calendar_scenario(env, &taken);
    bookings.extend(calendar);
    deliveries.extend(more);
    fastrand::Rng::with_seed(6).shuffle(&mut deliveries);
    let running = deliver_all(env, &deliveries).await;
    let events = salesforce_events(&env.sim.state.crm.dump());
    assert_eq!(events.len(), 97, "an Event per booking not canceled");
    for b in &bookings {
        let key = b.key.replacen(':', "-", 1);
        match (b.status, events.get(&key)) {
            ("CANCELED", None) => {}
            ("CANCELED", Some(e)) => panic!("the canceled {key} is still there: {e}"),
            (_, Some(e)) => assert_eq!(
                e["fields"]["StartDateTime"],
                EpochMillis(b.start).to_iso8601().as_str(),
                "{key}"
            ),
            (_, None) => panic!("no Event {key}"),
        }
    }
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_three_random_points_of_the_meetings_run_changes_nothing_in_the_crms() {
    let Some(ce) = env_with_sinks(Backend::Sqlite, 300, sinks_toml).await else {
        return;
    };
    let env = &ce.env;
    {
        let mut s = env.sim.state.crm.settings.lock();
        s.latency_ms = 20;
        s.hubspot_search_lag_ms = 1000;
    }
    let org = org(&env.sim);
    let (mut bookings, mut deliveries) = scenario(env);
    // And ten booked from calendar pages, by other people, their events among the rest.
    let taken = bookings.iter().map(|b| b.email.clone()).collect();
    let (calendar, more) = calendar_scenario(env, &taken);
    bookings.extend(calendar);
    deliveries.extend(more);
    fastrand::Rng::with_seed(5).shuffle(&mut deliveries);
    let pending = crate::processes::post_through_three_kills(
        env,
        ce.file.path(),
        deliveries,
        |_, _, e| signed(e, org),
        0x19,
    )
    .await;
    assert!(pending.is_empty(), "every event acknowledged in the end");
    assert_one_crm_meeting_per_booking(&env.sim, &bookings);
}

/// Ten meetings booked from calendar pages, with no conversation, by people whose email is
/// not in `taken`: four are rescheduled a day on and three canceled. Answers the final
/// bookings and every event, shuffled, some twice.
fn calendar_scenario(
    env: &Env,
    taken: &std::collections::BTreeSet<String>,
) -> (Vec<Booking>, Vec<WebhookEvent>) {
    let org = org(&env.sim);
    let t0 = drift_types::now_ms();
    let base = t0 + 5 * DAY;
    let mut events = Vec::new();
    let mut bookings = Vec::new();
    let mut world = env.sim.state.world.lock();
    let o = world.org_mut(org).unwrap();
    let agent = o.users.values().find(|u| !u.bot).map(|u| u.id).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    let people: Vec<(drift_types::ContactId, String)> = o
        .contacts
        .values()
        .filter_map(|c| Some((c.id, c.attributes.email()?.to_lowercase())))
        .filter(|(_, e)| !taken.contains(e) && seen.insert(e.clone()))
        .take(10)
        .collect();
    assert_eq!(
        people.len(),
        10,
        "the dataset has 10 contacts with an email"
    );
    for (i, (contact, email)) in people.into_iter().enumerate() {
        let key = format!("cal-{i}");
        let start = base + i as i64 * 3_600_000;
        let m = Meeting {
            meeting_type: Some("Intro call".into()),
            meeting_notes: Some(format!("Wants pricing for {i} seats")),
            ..meeting(org, agent, Some(contact), &key, start, t0, None)
        };
        let (booked, final_start, status) = book(o, m, change(i, 4, 3));
        events.extend(booked);
        bookings.push(Booking {
            conversation: None,
            email,
            key: format!("{}:{key}", org.0),
            start: final_start,
            status,
        });
    }
    (bookings, as_drift_sends(events, 23, 100))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meetings_booked_from_a_calendar_page_reach_every_crm_at_their_final_state() {
    let Some(mut ce) = env_with_sinks(Backend::Sqlite, 60, sinks_toml).await else {
        return;
    };
    let env = &mut ce.env;
    env.config.workers.concurrency = 16;
    let (bookings, deliveries) = calendar_scenario(env, &Default::default());
    let running = deliver_all(env, &deliveries).await;
    assert_one_crm_meeting_per_booking(&env.sim, &bookings);
    let dump = env.sim.state.crm.dump();
    for b in &bookings {
        let start = EpochMillis(b.start).to_iso8601();
        let body = records(&dump, "/hubspot/meetings")
            .into_iter()
            .find(|m| m["fields"]["drift_meeting_key"] == b.key.as_str())
            .map(|m| m["fields"]["hs_meeting_body"].clone())
            .unwrap();
        assert!(body.as_str().unwrap().contains("Wants pricing"), "{body}");
        // Marketo: the meeting's time and status on the lead.
        let lead = records(&dump, "/marketo/leads")
            .into_iter()
            .find(|l| l["fields"]["email"] == b.email.as_str())
            .expect("the Marketo lead");
        assert_eq!(
            lead["fields"]["driftMeetingStart"],
            start.as_str(),
            "{}",
            b.key
        );
        let status = match b.status {
            "SCHEDULED" => "booked",
            s => &s.to_lowercase(),
        };
        assert_eq!(lead["fields"]["driftMeetingStatus"], status, "{}", b.key);
    }
    // Someone deletes the meetings in HubSpot; the operator replays one booking's event and
    // it is written again (as one booked before calendar meetings reached the sinks would be).
    env.sim.state.crm.hubspot.lock().meetings.clear();
    let store = running.queue.store().clone();
    let id: i64 = bridge_store::sqlx::query_scalar(
        "SELECT id FROM events WHERE event_type = 'new_meeting' AND payload LIKE '%\"cal-9\"%'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    driftbridge::ops::replay_event(&env.config, id)
        .await
        .unwrap();
    drained(&store, Duration::from_secs(60)).await;
    let again = records(&env.sim.state.crm.dump(), "/hubspot/meetings");
    let keys: Vec<&str> = again
        .iter()
        .filter_map(|m| m["fields"]["drift_meeting_key"].as_str())
        .collect();
    assert_eq!(
        keys,
        [format!("{}:cal-9", org(&env.sim).0)],
        "the replayed booking only"
    );
    // The HTTP sink got each event as a signed meeting message carrying the meeting.
    let got: Vec<Value> = ce
        .hook
        .got
        .lock()
        .unwrap()
        .iter()
        .filter(|(path, _, _)| path == "all")
        .filter_map(|(_, _, body)| serde_json::from_slice::<Value>(body).ok())
        .collect();
    for b in &bookings {
        let of = |t: &str| {
            got.iter()
                .filter(|v| v["type"] == t && v["data"]["meeting"]["key"] == b.key.as_str())
                .count()
        };
        assert!(
            of("meeting.booked") + of("meeting.updated") >= 1,
            "{}",
            b.key
        );
    }
    assert!(
        got.iter()
            .any(|v| v["type"] == "meeting.updated" && v["data"]["meeting"]["status"] == "canceled"),
        "a cancellation reached the endpoint"
    );
    running.stop().await;
}

/// Two HTTP sinks routing goal-met signals of different playbooks.
fn routed_toml(sim: &drift_sim::SimHandle, hook_port: u16) -> String {
    let (p1, p2) = {
        let world = sim.state.world.lock();
        let o = world.org(sim.state.default_org()).unwrap();
        (o.playbooks[0].id.0, o.playbooks[1].id.0)
    };
    format!(
        r#"
[outbound]
allow = ["127.0.0.1:{hook_port}", "127.0.0.1:{sim_port}"]
[sinks.hubspot]
kind = "hubspot"
base_url = "{sim_base}/hubspot"
token = "pat-na1-driftbridge-sim"
search_lag_secs = 0
[sinks.hubspot.filter]
events = ["playbook_goal_met", "contact_identified", "phone_captured"]
[sinks.hubspot.signal_fields]
hs_lead_status = "{{{{signal.goal_name | \"IDENTIFIED\"}}}}"
[sinks.sales]
kind = "http"
url = "http://127.0.0.1:{hook_port}/sales"
secret = "{WHSEC}"
[sinks.sales.filter]
events = ["playbook_goal_met"]
playbooks = [{p1}]
contact = [{{ attribute = "email", op = "contains", value = "@" }}]
[sinks.other]
kind = "http"
url = "http://127.0.0.1:{hook_port}/other"
secret = "{WHSEC}"
[sinks.other.filter]
events = ["playbook_goal_met"]
playbooks = [{p2}]
"#,
        WHSEC = crate::crm::WHSEC,
        sim_port = sim.addr.port(),
        sim_base = sim.base_url(),
    )
}

#[tokio::test]
async fn a_goal_met_signal_reaches_the_sink_routed_on_its_playbook_signed_and_not_the_other() {
    let Some(ce) = env_with_sinks(Backend::Sqlite, 40, routed_toml).await else {
        return;
    };
    let env = &ce.env;
    let org = org(&env.sim);
    let (goal, email) = {
        let world = env.sim.state.world.lock();
        let o = world.org(org).unwrap();
        let pb = &o.playbooks[0];
        let (conv, contact) = o
            .conversations
            .values()
            .find_map(|r| {
                let c = o.contacts.get(&r.conversation.contact_id?)?;
                c.attributes.email().map(|_| (r.conversation.id, c))
            })
            .unwrap();
        (
            drift_types::webhook::PlaybookGoalMet {
                conversation_id: conv,
                playbook_id: Some(pb.id),
                contact_id: Some(contact.id),
                goal_id: pb.goals.first().map(|g| g.id.clone()),
                goal_name: pb.goals.first().map(|g| g.message.clone()),
                playbook_name: Some(pb.name.clone()),
                contact_email: None,
            },
            contact.attributes.email().unwrap().to_lowercase(),
        )
    };
    let running = driftbridge::serve::start(&env.config, true).await.unwrap();
    let store = running.queue.store().clone();
    let ev = WebhookEvent::PlaybookGoalMet(goal);
    let body = signed(&ev, org);
    let http = reqwest::Client::new();
    // Delivered twice by Drift: one signal.
    for _ in 0..2 {
        assert_eq!(post(&http, running.addr, &body).await.unwrap(), 200);
    }
    drained(&store, Duration::from_secs(30)).await;
    let got = ce.hook.got.lock().unwrap().clone();
    let to = |path: &str| got.iter().filter(|(p, _, _)| p == path).count();
    assert_eq!((to("sales"), to("other")), (1, 0), "routed on the playbook");
    let (_, headers, raw) = got.iter().find(|(p, _, _)| p == "sales").unwrap();
    let v: Value = serde_json::from_slice(raw).unwrap();
    assert_eq!(v["type"], "lead.goal_met");
    assert_eq!(v["data"]["contact"]["email"], email.as_str());
    assert!(v["data"]["signal"]["goal_name"].is_string(), "{v}");
    // The CRM sink upserted the contact with its signal field, before any push.
    let dump = env.sim.state.crm.dump();
    let hs = records(&dump, "/hubspot/contacts");
    let c = hs
        .iter()
        .find(|c| c["fields"]["email"] == email.as_str())
        .expect("the HubSpot contact");
    assert_eq!(
        c["fields"]["hs_lead_status"],
        v["data"]["signal"]["goal_name"]
    );
    assert!(
        records(&dump, "/hubspot/notes").is_empty(),
        "no note before the push"
    );
    // A contact identified reaches it too (and no HTTP sink: they route goals only).
    let other = {
        let world = env.sim.state.world.lock();
        world
            .org(org)
            .unwrap()
            .contacts
            .values()
            .find(|c| {
                c.attributes
                    .email()
                    .is_some_and(|e| e.to_lowercase() != email)
            })
            .cloned()
            .unwrap()
    };
    let other_email = other.attributes.email().unwrap().to_lowercase();
    let ev = WebhookEvent::ContactIdentified(other);
    let body = signed(&ev, org);
    assert_eq!(post(&http, running.addr, &body).await.unwrap(), 200);
    drained(&store, Duration::from_secs(30)).await;
    let dump = env.sim.state.crm.dump();
    let c = records(&dump, "/hubspot/contacts")
        .into_iter()
        .find(|c| c["fields"]["email"] == other_email.as_str())
        .expect("the identified contact in HubSpot");
    assert_eq!(c["fields"]["hs_lead_status"], "IDENTIFIED");
    // So does a phone captured, for its contact.
    let (conversation, third) = {
        let world = env.sim.state.world.lock();
        let o = world.org(org).unwrap();
        o.conversations
            .values()
            .find_map(|r| {
                let c = o.contacts.get(&r.conversation.contact_id?)?;
                let e = c.attributes.email()?.to_lowercase();
                (e != email && e != other_email).then(|| (r.conversation.id, c.clone()))
            })
            .unwrap()
    };
    let ev = WebhookEvent::PhoneCaptured(drift_types::webhook::PhoneCaptured {
        conversation_id: conversation,
        author_id: Some(third.id.0),
        author_type: Some("contact".into()),
        phone_number: Some("+1-617-555-0100".into()),
    });
    let body = signed(&ev, org);
    assert_eq!(post(&http, running.addr, &body).await.unwrap(), 200);
    drained(&store, Duration::from_secs(30)).await;
    let third_email = third.attributes.email().unwrap().to_lowercase();
    assert!(
        records(&env.sim.state.crm.dump(), "/hubspot/contacts")
            .iter()
            .any(|c| c["fields"]["email"] == third_email.as_str()),
        "the phone's contact is in HubSpot"
    );
    assert_eq!(
        ce.hook.got.lock().unwrap().len(),
        1,
        "HTTP sinks route goals only"
    );
    let secret = bridge_sinks::http::sign::WebhookSecret::parse(crate::crm::WHSEC).unwrap();
    let h = |k: &str| headers[k].to_str().unwrap().to_owned();
    secret
        .verify(
            &h("webhook-id"),
            &h("webhook-timestamp"),
            &h("webhook-signature"),
            raw,
            drift_types::now_ms() / 1000,
        )
        .expect("the signature verifies");
    running.stop().await;
}
