//! The jobs: one type per kind with its arguments as fields and a stable stored name
//! ([`JobKind`]), which jobs an event makes, and the dispatcher that runs them. Every job is
//! idempotent: it fetches or reads its input and upserts by key, so running it twice changes
//! nothing.
//!
//! One file per family (`conversation`, `deliver`, `records`, `tenant`); they import nothing
//! from this file, which only decodes and dispatches.

mod conversation;
mod deliver;
mod erasure;
mod kind;
mod meeting;
mod optout;
mod pipeline;
mod records;
mod signal;
mod tenant;
mod widget;

use anyhow::anyhow;
use bridge_queue::{Handler, JobCtx, JobError, NewJob};
use drift_types::{ConversationId, OrgId, WebhookEvent};
use serde_json::Value;

pub use conversation::SyncConversation;
pub use deliver::DeliverConversation;
pub use erasure::{EraseFromSink, EraseSubject, Request as ErasureRequest, SinkRoute, erase_in};
pub use kind::JobKind;
pub use meeting::UpsertMeeting;
pub use optout::{OptOutContact, OptOutOfSink};
pub use pipeline::{OrgPauses, Pipeline, SKIP_NOTICE_INTERVAL, SkipNotices};
pub use records::{ApplyParticipants, RecordGoalMet, SyncContact, SyncUser, UpsertMessage};
pub use signal::{DeliverSignal, PlanSignal};
pub use tenant::DisconnectTenant;
pub use widget::DeriveAttribution;

/// Every job kind, decoded from its stored name and arguments.
#[derive(Debug, Clone)]
pub enum Job {
    /// [`SyncConversation`].
    SyncConversation(SyncConversation),
    /// [`DeliverConversation`].
    DeliverConversation(Box<DeliverConversation>),
    /// [`UpsertMessage`].
    UpsertMessage(Box<UpsertMessage>),
    /// [`SyncContact`].
    SyncContact(SyncContact),
    /// [`ApplyParticipants`].
    ApplyParticipants(ApplyParticipants),
    /// [`RecordGoalMet`].
    RecordGoalMet(RecordGoalMet),
    /// [`UpsertMeeting`].
    UpsertMeeting(Box<UpsertMeeting>),
    /// [`SyncUser`].
    SyncUser(SyncUser),
    /// [`DisconnectTenant`].
    DisconnectTenant(DisconnectTenant),
    /// [`EraseSubject`].
    EraseSubject(EraseSubject),
    /// [`EraseFromSink`].
    EraseFromSink(Box<EraseFromSink>),
    /// [`OptOutContact`].
    OptOutContact(OptOutContact),
    /// [`OptOutOfSink`].
    OptOutOfSink(Box<OptOutOfSink>),
    /// [`DeriveAttribution`].
    DeriveAttribution(DeriveAttribution),
    /// [`PlanSignal`].
    PlanSignal(Box<PlanSignal>),
    /// [`DeliverSignal`].
    DeliverSignal(Box<DeliverSignal>),
}

impl Job {
    /// Decodes a stored job. An unknown name or arguments that do not fit are permanent
    /// failures: no retry can make them run.
    pub fn decode(name: &str, args: &Value) -> Result<Job, JobError> {
        Ok(match name {
            SyncConversation::NAME => Job::SyncConversation(SyncConversation::decode(args)?),
            DeliverConversation::NAME => {
                Job::DeliverConversation(Box::new(DeliverConversation::decode(args)?))
            }
            UpsertMessage::NAME => Job::UpsertMessage(Box::new(UpsertMessage::decode(args)?)),
            SyncContact::NAME => Job::SyncContact(SyncContact::decode(args)?),
            ApplyParticipants::NAME => Job::ApplyParticipants(ApplyParticipants::decode(args)?),
            RecordGoalMet::NAME => Job::RecordGoalMet(RecordGoalMet::decode(args)?),
            UpsertMeeting::NAME => Job::UpsertMeeting(Box::new(UpsertMeeting::decode(args)?)),
            SyncUser::NAME => Job::SyncUser(SyncUser::decode(args)?),
            DisconnectTenant::NAME => Job::DisconnectTenant(DisconnectTenant::decode(args)?),
            EraseSubject::NAME => Job::EraseSubject(EraseSubject::decode(args)?),
            EraseFromSink::NAME => Job::EraseFromSink(Box::new(EraseFromSink::decode(args)?)),
            OptOutContact::NAME => Job::OptOutContact(OptOutContact::decode(args)?),
            OptOutOfSink::NAME => Job::OptOutOfSink(Box::new(OptOutOfSink::decode(args)?)),
            DeriveAttribution::NAME => Job::DeriveAttribution(DeriveAttribution::decode(args)?),
            PlanSignal::NAME => Job::PlanSignal(Box::new(PlanSignal::decode(args)?)),
            DeliverSignal::NAME => Job::DeliverSignal(Box::new(DeliverSignal::decode(args)?)),
            other => return Err(JobError::Permanent(anyhow!("no handler for job {other:?}"))),
        })
    }
}

/// The job that syncs one conversation (replays use it too).
pub fn sync_job(org: OrgId, id: ConversationId) -> NewJob {
    SyncConversation::new(id, "replay").to_job(Some(org))
}

/// Every job kind's stored name (the metrics report each one, at 0 while none waits).
pub const KINDS: &[&str] = &[
    SyncConversation::NAME,
    DeliverConversation::NAME,
    UpsertMessage::NAME,
    SyncContact::NAME,
    ApplyParticipants::NAME,
    RecordGoalMet::NAME,
    UpsertMeeting::NAME,
    SyncUser::NAME,
    DisconnectTenant::NAME,
    EraseSubject::NAME,
    EraseFromSink::NAME,
    OptOutContact::NAME,
    OptOutOfSink::NAME,
    DeriveAttribution::NAME,
    PlanSignal::NAME,
    DeliverSignal::NAME,
];

/// The job that syncs a conversation and delivers it again to the named sinks, whatever
/// their filters and even when unchanged (`driftbridge replay --sink`).
pub fn replay_job(org: OrgId, id: ConversationId, sinks: &[String]) -> NewJob {
    SyncConversation {
        sinks: Some(sinks.to_vec()),
        force: true,
        ..SyncConversation::new(id, "replay")
    }
    .to_job(Some(org))
}

/// The jobs a stored event makes when it runs again (`replay --event`, a reconnect), each
/// tagged with the event; an error when its data does not parse.
pub fn jobs_for_stored(
    ev: &bridge_store::events::StoredEvent,
) -> Result<Vec<NewJob>, drift_types::webhook::WebhookDataError> {
    let data = ev.payload.get("data").cloned().unwrap_or_default();
    let typed = WebhookEvent::from_parts(&ev.event_type, &data)?;
    Ok(jobs_for(&typed, ev.org_id.map(OrgId))
        .into_iter()
        .map(|j| NewJob {
            event_id: Some(ev.id),
            ..j
        })
        .collect())
}

/// The jobs of a stored event run again on the operator's word (`replay --event`): a meeting
/// event delivers its meeting even when the stored one is as new (a meeting booked from a
/// calendar page before calendar meetings reached the sinks, or one deleted in a CRM).
pub fn replayed(jobs: Vec<NewJob>) -> Vec<NewJob> {
    jobs.into_iter()
        .map(|mut j| {
            if j.name == UpsertMeeting::NAME {
                j.args["redeliver"] = true.into();
            }
            j
        })
        .collect()
}

/// The conversation a stored event is about, when its data parses and names one.
pub fn conversation_of(ev: &bridge_store::events::StoredEvent) -> Option<i64> {
    let data = ev.payload.get("data")?;
    WebhookEvent::from_parts(&ev.event_type, data)
        .ok()?
        .conversation_id()
        .map(|c| c.0)
}

/// The jobs for an event. Events that need no work here (unknown types, and those handled by
/// later features) make none: they are stored all the same.
pub fn jobs_for(event: &WebhookEvent, org: Option<OrgId>) -> Vec<NewJob> {
    use WebhookEvent as E;
    let sync = |id: ConversationId| SyncConversation::new(id, event.event_type()).to_job(org);
    let job = match event {
        E::ConversationPush(p) => sync(p.data.conversation_id),
        E::ConversationManualPush(p) => sync(p.conversation_id),
        E::ConversationInactive(p) => sync(p.conversation_id),
        E::NewConversation(c) => sync(c.id),
        E::NewMessage(m) | E::NewCommandMessage(m) => {
            UpsertMessage { message: m.clone() }.to_job(org)
        }
        E::ContactIdentified(c) => {
            return vec![
                SyncContact { contact_id: c.id }.to_job(org),
                PlanSignal::new("contact_identified", c.id).to_job(org),
            ];
        }
        E::ContactUpdated(c) => SyncContact {
            contact_id: c.end_user_id,
        }
        .to_job(org),
        E::ConversationParticipantAdded(p) => ApplyParticipants {
            change: p.clone(),
            added: true,
        }
        .to_job(org),
        E::ConversationParticipantRemoved(p) => ApplyParticipants {
            change: p.clone(),
            added: false,
        }
        .to_job(org),
        E::PlaybookGoalMet(g) => {
            let mut jobs = vec![RecordGoalMet { goal: g.clone() }.to_job(org)];
            if let Some(contact) = g.contact_id {
                jobs.push(
                    PlanSignal {
                        details: bridge_sinks::sink::SignalDetails {
                            conversation_id: Some(g.conversation_id.0),
                            playbook_id: g.playbook_id.map(|p| p.0),
                            playbook_name: g.playbook_name.clone(),
                            goal_id: g.goal_id.clone(),
                            goal_name: g.goal_name.clone(),
                            phone: None,
                        },
                        ..PlanSignal::new("playbook_goal_met", contact)
                    }
                    .to_job(org),
                );
            }
            return jobs;
        }
        E::PhoneCaptured(c) => match c.author_id {
            Some(author) if c.author_type.as_deref().is_none_or(|t| t == "contact") => PlanSignal {
                details: bridge_sinks::sink::SignalDetails {
                    conversation_id: Some(c.conversation_id.0),
                    phone: c.phone_number.clone(),
                    ..Default::default()
                },
                ..PlanSignal::new("phone_captured", drift_types::ContactId(author))
            }
            .to_job(org),
            _ => return Vec::new(),
        },
        E::NewMeeting(m) => UpsertMeeting::from_event(m.clone(), "new_meeting", None).to_job(org),
        E::MeetingUpdated(m) => {
            UpsertMeeting::from_event(m.meeting.clone(), "meeting_updated", m.event_type.clone())
                .to_job(org)
        }
        E::UserAvailabilityUpdated(u) => SyncUser { user_id: u.user_id }.to_job(org),
        E::AppDisconnected(_) => DisconnectTenant {}.to_job(org),
        E::GdprDeleteRequested(g) => EraseSubject {
            email: g.email.clone(),
            requested_at: g.requested_at.map(|t| t.0),
        }
        .to_job(org),
        E::UserUnsubscribed(c) => OptOutContact {
            contact_id: c.id,
            email: c.attributes.email().map(str::to_owned),
        }
        .to_job(org),
        _ => return Vec::new(),
    };
    vec![job]
}

impl Pipeline {
    /// Counts a job skipped because its tenant disconnected, and says so at WARN once per
    /// org per [`pipeline::SKIP_NOTICE_INTERVAL`].
    fn skipped(&self, org: OrgId, tenant: &crate::tenants::Tenant, job: &str) {
        self.metrics.inc(
            "driftbridge_jobs_skipped_total",
            "Jobs skipped because their tenant disconnected (their events are kept).",
            crate::metrics::labels(&[("job", job)]),
            1,
        );
        if let Some(n) = self.skips.skipped(org, std::time::Instant::now()) {
            tracing::warn!(
                org.id = org.0,
                jobs.skipped = n,
                tenant.revoked_at = tenant.revoked_at,
                tenant.reason = tenant.revoked_reason.as_deref().unwrap_or("unknown"),
                "skipping the jobs of a disconnected tenant (events are kept); \
                 `driftbridge tenants restore {org}` or a re-install runs them",
                org = org.0
            );
        }
    }
}

impl Handler for Pipeline {
    async fn handle(&self, ctx: &mut JobCtx) -> Result<(), JobError> {
        // A call that found its org's Drift budget spent gave up instead of sleeping on it:
        // the job waits for the room (no attempt spent) and the org's other queued jobs are
        // left alone until then, so the worker goes to another org's job.
        match self.run(ctx).await {
            Err(JobError::Retry(reason)) => match (budget_wait(&reason), ctx.job.org_id) {
                (Some(wait), Some(org)) => {
                    self.pauses
                        .pause(OrgId(org), std::time::Instant::now() + wait);
                    self.metrics.inc(
                        "driftbridge_jobs_budget_deferred_total",
                        "Job attempts put back because their org's Drift budget had no room.",
                        crate::metrics::labels(&[("job", &ctx.job.name)]),
                        1,
                    );
                    Err(JobError::Defer {
                        after: wait,
                        reason,
                    })
                }
                _ => Err(JobError::Retry(reason)),
            },
            other => other,
        }
    }

    fn paused_orgs(&self) -> Vec<i64> {
        self.pauses.paused(std::time::Instant::now())
    }
}

/// The wait a Drift call gave up on, anywhere in the error's chain.
fn budget_wait(e: &anyhow::Error) -> Option<std::time::Duration> {
    e.chain()
        .find_map(|c| c.downcast_ref::<drift_client::Error>()?.budget_wait())
}

impl Pipeline {
    async fn run(&self, ctx: &mut JobCtx) -> Result<(), JobError> {
        let org = ctx
            .job
            .org_id
            .map(OrgId)
            .ok_or_else(|| JobError::Permanent(anyhow!("the event had no orgId")))?;
        if ctx.job.args.get("erased").is_some() {
            // An erasure redacted this job's arguments: there is nothing left to run.
            let tx = ctx.begin().await?;
            return ctx.finish(tx).await;
        }
        let job = Job::decode(&ctx.job.name, &ctx.job.args)?;
        // These run whatever the tenant's state, and call no Drift API: a disconnected org's
        // people are erased all the same.
        let tenant_free = matches!(
            job,
            Job::DisconnectTenant(_)
                | Job::EraseSubject(_)
                | Job::EraseFromSink(_)
                | Job::OptOutOfSink(_)
                | Job::DeriveAttribution(_)
        );
        if !tenant_free
            && let Some(t) = self.drift.tenants()
            && let Some(tenant) = t.get(org).await?
            && tenant.status != "active"
        {
            // A disconnected tenant's events are kept, but nothing is fetched for them;
            // `tenants restore` or a re-install queues them again.
            self.skipped(org, &tenant, &ctx.job.name);
            let tx = ctx.begin().await?;
            return ctx.finish(tx).await;
        }
        // A token speaks for one org: an event for an org with no installed tenant and no
        // token of its own is kept, and its job ends as a refusal that says so. (A tenant
        // that disconnected has no token either; that case is the skip above, not a refusal.)
        if !tenant_free && let Err(e) = self.drift.serves(org).await {
            if let Some(refused) = e.downcast_ref::<crate::drift::OrgNotServed>() {
                tracing::warn!(org.id = org.0, job.name = %ctx.job.name, error = %refused,
                    "refused: no token of this org");
                self.metrics.inc(
                    "driftbridge_jobs_refused_total",
                    "Jobs refused because their org has no installed tenant and no token of its own.",
                    crate::metrics::labels(&[("job", &ctx.job.name)]),
                    1,
                );
                return Err(JobError::Permanent(e));
            }
            return Err(JobError::Retry(e));
        }
        match job {
            Job::SyncConversation(j) => j.run(self, org, ctx).await,
            Job::DeliverConversation(j) => deliver::run(*j, &self.sinks, &self.metrics, ctx).await,
            Job::UpsertMessage(j) => j.run(org, ctx).await,
            Job::SyncContact(j) => j.run(self, org, ctx).await,
            Job::ApplyParticipants(j) => j.run(self, org, ctx).await,
            Job::RecordGoalMet(j) => j.run(org, ctx).await,
            Job::UpsertMeeting(j) => j.run(org, ctx).await,
            Job::SyncUser(j) => j.run(self, org, ctx).await,
            Job::DisconnectTenant(j) => j.run(self, org, ctx).await,
            Job::EraseSubject(j) => j.run(self, org, ctx).await,
            Job::EraseFromSink(j) => j.run(self, ctx).await,
            Job::OptOutContact(j) => j.run(self, org, ctx).await,
            Job::OptOutOfSink(j) => j.run(self, ctx).await,
            Job::DeriveAttribution(j) => j.run(org, ctx).await,
            Job::PlanSignal(j) => j.run(self, org, ctx).await,
            Job::DeliverSignal(j) => j.run(self, ctx).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_listed_kind_has_a_handler() {
        for name in KINDS {
            let e = match Job::decode(name, &json!(null)) {
                Err(e) => format!("{e:?}"),
                Ok(_) => continue,
            };
            assert!(!e.contains("no handler"), "{name}: {e}");
        }
        assert!(format!("{:?}", Job::decode("nope", &json!(null)).err()).contains("no handler"));
        assert_eq!(KINDS.len(), 16);
    }

    /// One job of each kind as the release before typed jobs stored it (`name`, `args`).
    fn stored() -> Vec<(&'static str, Value)> {
        let message = json!({"id": 11, "orgId": 1, "conversationId": 7, "createdAt": 1_700_000_000_000_i64,
            "body": "<p>hi</p>", "author": {"type": "user", "id": 5_028_000, "bot": true}, "type": "chat"});
        vec![
            (
                "sync_conversation",
                json!({"conversation_id": 7, "event": "conversation_push"}),
            ),
            (
                "sync_conversation",
                json!({"conversation_id": 7, "event": "replay"}),
            ),
            (
                "sync_conversation",
                json!({"conversation_id": 7, "event": "replay", "sinks": ["hubspot"], "force": true}),
            ),
            ("upsert_message", json!({"message": message})),
            ("sync_contact", json!({"contact_id": 3})),
            (
                "apply_participants",
                json!({"change": {"conversationId": 7, "participants": [5, 6]}, "added": true}),
            ),
            (
                "record_goal_met",
                json!({"goal": {"conversationId": 7, "playbookId": 9, "goalId": "g-1", "goalName": "Booked"}}),
            ),
            (
                "upsert_meeting",
                json!({"meeting": {"agentId": 5, "orgId": 1, "slotStart": 1_700_000_000_000_i64,
                    "slotEnd": 1_700_001_800_000_i64, "conversationId": 7}}),
            ),
            ("sync_user", json!({"user_id": 5})),
            ("disconnect_tenant", json!({})),
            (
                "opt_out_contact",
                json!({"contact_id": 3, "email": "ada@example.com"}),
            ),
            (
                "opt_out_of_sink",
                json!({"sink": "marketo", "opt_out": {"org": 1, "contact": 3,
                    "email": "ada@example.com", "at": 1_700_000_000_000_i64}}),
            ),
            ("derive_attribution", json!({"conversation_id": 7})),
            (
                "lead_signal",
                json!({"event": "playbook_goal_met", "contact_id": 3, "at": 1_700_000_000_000_i64,
                    "conversation_id": 7, "playbook_id": 2, "playbook_name": "Pricing",
                    "goal_id": "g1", "goal_name": "Booked", "phone": null}),
            ),
            (
                "deliver_signal",
                json!({"sink": "webhook", "signal": {"org": 1, "event": "contact_identified",
                    "id": "event-9", "at_ms": 1_700_000_000_000_i64,
                    "contact": {"id": 3, "attributes": {"email": "ada@example.com"}}}}),
            ),
            (
                "erase_subject",
                json!({"email": "ada@example.com", "requested_at": 1_700_000_000_000_i64}),
            ),
            (
                "erase_from_sink",
                json!({"sink": "hubspot", "request": {"erasure": 4, "org": 1, "contacts": [3],
                    "conversations": [7], "records": {"contact": ["101"], "note": ["102"]}}}),
            ),
            (
                "deliver_conversation",
                json!({"sink": "hubspot", "force": false, "bundle": {
                    "org": 1, "event": "conversation_push",
                    "conversation": {"id": 7, "participants": [5], "status": "closed", "contactId": 3},
                    "contact": null, "users": [], "messages": [message],
                    "transcript": "hi", "playbook": null}}),
            ),
        ]
    }

    #[test]
    fn every_stored_kind_of_the_previous_release_decodes_and_simple_ones_reencode_identically() {
        let mut kinds = std::collections::BTreeSet::new();
        for (name, args) in stored() {
            let job = Job::decode(name, &args)
                .unwrap_or_else(|e| panic!("{name} {args} does not decode: {e:?}"));
            kinds.insert(name);
            let again = match &job {
                Job::SyncConversation(j) => j.to_job(None),
                Job::SyncContact(j) => j.to_job(None),
                Job::ApplyParticipants(j) => j.to_job(None),
                Job::RecordGoalMet(j) => j.to_job(None),
                Job::UpsertMeeting(j) => j.to_job(None),
                Job::SyncUser(j) => j.to_job(None),
                Job::DisconnectTenant(j) => j.to_job(None),
                Job::UpsertMessage(j) => j.to_job(None),
                Job::EraseSubject(j) => j.to_job(None),
                Job::EraseFromSink(j) => j.to_job(None),
                Job::OptOutContact(j) => j.to_job(None),
                Job::OptOutOfSink(j) => j.to_job(None),
                Job::DeriveAttribution(j) => j.to_job(None),
                Job::PlanSignal(j) => j.to_job(None),
                Job::DeliverSignal(j) => {
                    assert_eq!(j.sink, "webhook");
                    continue;
                }
                Job::DeliverConversation(j) => {
                    assert_eq!(j.sink, "hubspot");
                    assert_eq!(j.bundle.conversation.id, ConversationId(7));
                    assert!(j.bundle.messages[0].author.bot);
                    continue;
                }
            };
            assert_eq!(again.name, name);
            assert_eq!(again.args, args, "{name} is stored the same way");
        }
        assert_eq!(kinds.len(), 16, "one stored job of every kind");
    }

    #[test]
    fn an_unknown_name_or_arguments_that_do_not_fit_are_permanent() {
        for (name, args) in [
            ("sync_everything", json!({})),
            ("sync_conversation", json!({"conversation_id": "seven"})),
            ("sync_contact", json!({})),
        ] {
            match Job::decode(name, &args) {
                Err(JobError::Permanent(e)) => {
                    let text = format!("{e:#}");
                    assert!(text.contains(name), "{text}");
                }
                other => panic!("{name}: expected a permanent error, got {other:?}"),
            }
        }
    }

    #[test]
    fn events_make_the_jobs_the_previous_release_made() {
        let ev: WebhookEvent = serde_json::from_value(json!({
            "type": "conversation_push", "orgId": 1,
            "data": {"source": "conversation_closed", "data": {"conversationId": 7}}
        }))
        .map(|e: drift_types::WebhookEnvelope| e.event().unwrap())
        .unwrap();
        let jobs = jobs_for(&ev, Some(OrgId(1)));
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].name, "sync_conversation");
        assert_eq!(
            jobs[0].args,
            json!({"conversation_id": 7, "event": "conversation_push"})
        );
        assert_eq!(jobs[0].org_id, Some(1));
    }
}
