//! The webhook emitter: POSTs envelopes to the configured URL with the verification token in
//! the `X-Verification-Token` header and the body `token`, retrying a non-2xx or a timeout with
//! exponential backoff (5 tries by default), optionally with duplicates and shuffled order.
//! Also builds realistic events of every type out of the world's data.

use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use drift_types::webhook::{
    AppDisconnected, AttributeDiff, AvailabilityUpdated, ButtonAction, ContactUpdated,
    ConversationInactive, ConversationPush, GdprDeleteRequested, MeetingUpdated,
    ParticipantsChanged, PhoneCaptured, PlaybookGoalMet, PushDetails, StatusUpdated,
};
use drift_types::{EpochMillis, OrgId, Secret, WebhookEnvelope, WebhookEvent};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::rng::Rng;
use crate::world::Org;

/// Delivery settings.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// Where to POST; nothing is sent while unset.
    pub url: Option<String>,
    /// The app's verification token.
    pub verification_token: Secret,
    /// Tries per event (Drift-like default: 5).
    pub max_attempts: u32,
    /// Per-try timeout (10 s, as drift-api.md §15 decides).
    pub timeout: Duration,
    /// First retry delay; doubles per try.
    pub backoff: Duration,
    /// Deliveries in flight at once; 1 keeps order.
    pub concurrency: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            url: None,
            verification_token: Secret::new("sim-verification-token"),
            max_attempts: 5,
            timeout: Duration::from_secs(10),
            backoff: Duration::from_millis(500),
            concurrency: 8,
        }
    }
}

/// Delivery counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryStats {
    /// Envelopes accepted for delivery (duplicates count separately).
    pub queued: u64,
    /// HTTP attempts made.
    pub attempts: u64,
    /// Envelopes answered 2xx.
    pub delivered: u64,
    /// Attempts answered non-2xx or failed.
    pub failed_attempts: u64,
    /// Envelopes given up after the last try.
    pub gave_up: u64,
}

impl DeliveryStats {
    /// Envelopes neither delivered nor given up yet.
    pub fn pending(&self) -> u64 {
        self.queued - self.delivered - self.gave_up
    }
}

/// The emitter.
#[derive(Debug)]
pub struct Emitter {
    config: Mutex<WebhookConfig>,
    stats: Arc<Mutex<DeliveryStats>>,
    permits: Mutex<Arc<Semaphore>>,
    client: reqwest::Client,
}

impl Emitter {
    /// An emitter with `config`.
    pub fn new(config: WebhookConfig) -> Self {
        crate::tls::install_crypto();
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .unwrap_or_default();
        Self {
            permits: Mutex::new(Arc::new(Semaphore::new(config.concurrency.max(1)))),
            config: Mutex::new(config),
            stats: Arc::default(),
            client,
        }
    }

    /// Current settings.
    pub fn config(&self) -> WebhookConfig {
        self.config.lock().clone()
    }

    /// Changes the target and delivery settings.
    pub fn configure(&self, f: impl FnOnce(&mut WebhookConfig)) {
        let mut c = self.config.lock();
        f(&mut c);
        *self.permits.lock() = Arc::new(Semaphore::new(c.concurrency.max(1)));
    }

    /// Delivery counters.
    pub fn stats(&self) -> DeliveryStats {
        self.stats.lock().clone()
    }

    /// Builds envelopes for `events` of `org` with the verification token in the body.
    pub fn envelopes(&self, org: OrgId, events: &[WebhookEvent]) -> Vec<WebhookEnvelope> {
        let token = self.config.lock().verification_token.clone();
        events
            .iter()
            .map(|e| WebhookEnvelope::new(e, org, Some(token.clone())))
            .collect()
    }

    /// Queues envelopes for delivery; returns how many were queued. Needs a Tokio runtime.
    pub fn send(&self, envelopes: Vec<WebhookEnvelope>) -> usize {
        let config = self.config();
        let Some(url) = config.url.clone() else {
            return 0;
        };
        let permits = self.permits.lock().clone();
        let n = envelopes.len();
        self.stats.lock().queued += n as u64;
        for env in envelopes {
            let body = serde_json::to_vec(&env).unwrap_or_default();
            let (client, stats, url, config) = (
                self.client.clone(),
                self.stats.clone(),
                url.clone(),
                config.clone(),
            );
            let permits = permits.clone();
            tokio::spawn(async move {
                let Ok(_permit) = permits.acquire_owned().await else {
                    return;
                };
                deliver(&client, &stats, &url, &config, body).await;
            });
        }
        n
    }

    /// Queues `events` with optional duplicates and shuffling.
    pub fn emit(
        &self,
        org: OrgId,
        events: &[WebhookEvent],
        duplicate_rate: f64,
        shuffle: bool,
        rng: &mut Rng,
    ) -> usize {
        let mut envs = Vec::with_capacity(events.len());
        for env in self.envelopes(org, events) {
            if duplicate_rate > 0.0 && rng.chance(duplicate_rate) {
                envs.push(env.clone());
            }
            envs.push(env);
        }
        if shuffle {
            rng.shuffle(&mut envs);
        }
        self.send(envs)
    }

    /// Waits until every queued envelope is delivered or given up, or `limit` passes.
    pub async fn drain(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while self.stats().pending() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }
}

async fn deliver(
    client: &reqwest::Client,
    stats: &Mutex<DeliveryStats>,
    url: &str,
    config: &WebhookConfig,
    body: Vec<u8>,
) {
    let mut delay = config.backoff;
    for attempt in 1..=config.max_attempts.max(1) {
        stats.lock().attempts += 1;
        let res = client
            .post(url)
            .header("content-type", "application/json")
            .header("x-verification-token", config.verification_token.expose())
            .body(body.clone())
            .send()
            .await;
        match res {
            Ok(r) if r.status().is_success() => {
                stats.lock().delivered += 1;
                return;
            }
            Ok(r) => {
                tracing::debug!(status = %r.status(), attempt, "webhook delivery refused");
            }
            Err(e) => tracing::debug!(error = %e, attempt, "webhook delivery failed"),
        }
        stats.lock().failed_attempts += 1;
        if attempt < config.max_attempts {
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    }
    stats.lock().gave_up += 1;
}

/// A realistic event of `event_type` built from the org's data, or `None` when the org has
/// nothing to build it from or the type is unknown.
pub fn event_for(
    event_type: &str,
    org: &Org,
    rng: &mut Rng,
    now: EpochMillis,
) -> Option<WebhookEvent> {
    let convs: Vec<_> = org.by_updated.iter().rev().take(500).collect();
    let &&(_, conv_id) = convs.get(rng.below(convs.len().max(1) as u64) as usize)?;
    let record = org
        .conversations
        .get(&drift_types::ConversationId(conv_id))?;
    let conv = &record.conversation;
    let contact = conv.contact_id.and_then(|c| org.contacts.get(&c));
    let agent = conv
        .participants
        .iter()
        .copied()
        .find(|u| *u != org.bot_id)
        .unwrap_or(org.bot_id);
    let last = record.messages.last();
    Some(match event_type {
        "conversation_push" => WebhookEvent::ConversationPush(ConversationPush {
            source: Some(
                rng.pick(&[
                    "conversation_manual_push",
                    "conversation_closed",
                    "conversation_inactive",
                ])
                .to_string(),
            ),
            data: PushDetails {
                conversation_id: conv.id,
                user_id: Some(agent),
                pushed_at: Some(now),
            },
        }),
        "conversation_manual_push" => WebhookEvent::ConversationManualPush(PushDetails {
            conversation_id: conv.id,
            user_id: Some(agent),
            pushed_at: Some(now),
        }),
        "conversation_inactive" => WebhookEvent::ConversationInactive(ConversationInactive {
            conversation_id: conv.id,
            last_updated: conv.updated_at,
        }),
        "new_conversation" => WebhookEvent::NewConversation(conv.clone()),
        "new_message" => WebhookEvent::NewMessage(last?.clone()),
        "new_command_message" => {
            let mut m = last?.clone();
            m.body = Some("/define playbook".into());
            WebhookEvent::NewCommandMessage(m)
        }
        "button_clicked" => WebhookEvent::ButtonClicked(
            record
                .messages
                .iter()
                .find(|m| m.buttons.is_some())
                .or(last)?
                .clone(),
        ),
        "button_action" => {
            let m = record.messages.iter().find(|m| m.buttons.is_some());
            WebhookEvent::ButtonAction(ButtonAction {
                conversation_id: conv.id,
                author: Some(drift_types::Author {
                    kind: drift_types::AuthorType::User,
                    id: agent.get(),
                    bot: false,
                }),
                source_message_id: m.map(|m| m.id),
                button: m.and_then(|m| m.buttons.as_ref()?.first().cloned()),
            })
        }
        "conversation_status_updated" => WebhookEvent::ConversationStatusUpdated(StatusUpdated {
            conversation_id: conv.id,
            status: conv.status.to_string(),
            changed_at: conv.updated_at,
        }),
        "conversation_participant_added" => {
            WebhookEvent::ConversationParticipantAdded(ParticipantsChanged {
                conversation_id: conv.id,
                participants: vec![agent],
                changed_at: Some(now),
            })
        }
        "conversation_participant_removed" => {
            WebhookEvent::ConversationParticipantRemoved(ParticipantsChanged {
                conversation_id: conv.id,
                participants: vec![agent],
                changed_at: Some(now),
            })
        }
        "contact_identified" => WebhookEvent::ContactIdentified(contact?.clone()),
        "user_unsubscribed" => WebhookEvent::UserUnsubscribed(contact?.clone()),
        "contact_updated" => {
            let c = contact?;
            WebhookEvent::ContactUpdated(ContactUpdated {
                end_user_id: c.id,
                timestamp: Some(now),
                org_id: Some(org.id),
                diff: vec![AttributeDiff {
                    name: "attributes.lead_score".into(),
                    previous: c.attributes.get("lead_score").cloned().unwrap_or_default(),
                    updated: rng.range(0, 100).into(),
                }],
            })
        }
        "playbook_goal_met" => {
            let pb = org
                .playbooks
                .iter()
                .find(|p| Some(p.id) == conv.related_playbook_id)
                .or(org.playbooks.first())?;
            let goal = pb.goals.first();
            WebhookEvent::PlaybookGoalMet(PlaybookGoalMet {
                conversation_id: conv.id,
                playbook_id: Some(pb.id),
                contact_id: conv.contact_id,
                goal_id: goal.map(|g| g.id.clone()),
                goal_name: goal.map(|g| g.message.clone()),
                playbook_name: Some(pb.name.clone()),
                contact_email: contact
                    .and_then(|c| c.attributes.email())
                    .map(str::to_owned),
            })
        }
        "phone_captured" => WebhookEvent::PhoneCaptured(PhoneCaptured {
            conversation_id: conv.id,
            author_id: conv.contact_id.map(|c| c.get()),
            author_type: Some("contact".into()),
            phone_number: Some(format!("+1-617-555-{:04}", rng.range(0, 9999))),
        }),
        "user_availability_updated" => WebhookEvent::UserAvailabilityUpdated(AvailabilityUpdated {
            user_id: agent,
            updated_at: Some(now),
            availability: rng.pick(&["AVAILABLE", "OFFLINE"]).to_string(),
        }),
        "new_meeting" => WebhookEvent::NewMeeting(
            org.meetings
                .get(rng.below(org.meetings.len().max(1) as u64) as usize)?
                .clone(),
        ),
        "meeting_updated" => {
            // A reschedule moves the slot a day on; both carry a newer `updatedAt` (the
            // emitter writes the change back into the world, so the meetings list agrees).
            let mut meeting = org
                .meetings
                .get(rng.below(org.meetings.len().max(1) as u64) as usize)?
                .clone();
            let event_type = rng.pick(&["rescheduled", "canceled"]).to_string();
            let at = meeting.updated_at.map_or(now.0, |u| u.0.max(now.0 - 1) + 1);
            meeting.updated_at = Some(EpochMillis(at));
            if event_type == "rescheduled" {
                meeting.slot_start = meeting.slot_start.map(|t| EpochMillis(t.0 + 86_400_000));
                meeting.slot_end = meeting.slot_end.map(|t| EpochMillis(t.0 + 86_400_000));
            } else {
                meeting.status = Some("CANCELED".into());
            }
            WebhookEvent::MeetingUpdated(MeetingUpdated {
                event_type: Some(event_type),
                meeting,
            })
        }
        "chat_to_call" => WebhookEvent::ChatToCall(serde_json::json!({
            "conversationId": conv.id, "userId": agent, "durationSeconds": rng.range(30, 900), "endedAt": now,
        })),
        "gdpr_delete_requested" => WebhookEvent::GdprDeleteRequested(GdprDeleteRequested {
            email: contact.and_then(|c| c.attributes.email())?.to_owned(),
            requested_at: Some(now),
        }),
        "app_disconnected" => WebhookEvent::AppDisconnected(AppDisconnected {
            org_id: Some(org.id),
            app_id: Some("driftbridge-sim-app".into()),
            disconnected_at: Some(now),
        }),
        _ => return None,
    })
}

/// Writes the meetings that `meeting_updated` events changed back into the org's world, so
/// `GET /users/meetings/org` answers what the webhooks said.
pub fn apply_meeting_updates(org: &mut crate::world::Org, events: &[WebhookEvent]) {
    for e in events {
        if let WebhookEvent::MeetingUpdated(u) = e
            && let Some(m) = org
                .meetings
                .iter_mut()
                .find(|m| m.event_id.is_some() && m.event_id == u.meeting.event_id)
        {
            *m = u.meeting.clone();
        }
    }
}
