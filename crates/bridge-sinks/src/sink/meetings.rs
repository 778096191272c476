//! What every CRM writes of a meeting: its outcome, a title, and a body with the context it
//! was booked in: a conversation's (playbook, agent, first touch, the transcript's start), or
//! a calendar page's (the agent, the visitor's time zone, their notes).

use drift_types::{EpochMillis, User};

use super::bundle::{BookedMeeting, ConversationBundle, truncate};
use super::signal::SignalMeeting;

/// The transcript excerpt a meeting's body carries, in characters.
const EXCERPT: usize = 1500;

/// `SCHEDULED`, `RESCHEDULED` or `CANCELED` (HubSpot's meeting outcomes).
pub fn outcome(m: &BookedMeeting) -> &'static str {
    match m.status.as_str() {
        "canceled" => "CANCELED",
        "rescheduled" => "RESCHEDULED",
        _ => "SCHEDULED",
    }
}

/// The meeting's start and end as ISO 8601 (UTC); the end defaults to 30 minutes after the
/// start. `None` without a start: such a meeting is not written.
pub fn times(m: &BookedMeeting) -> Option<(String, String)> {
    let start = m.start_ms?;
    let end = m.end_ms.filter(|e| *e > start).unwrap_or(start + 1_800_000);
    Some((
        EpochMillis(start).to_iso8601(),
        EpochMillis(end).to_iso8601(),
    ))
}

/// The agent's name, else `an agent`.
fn name_of(agent: Option<&User>) -> String {
    agent
        .and_then(|u| u.name.clone())
        .unwrap_or_else(|| "an agent".into())
}

fn agent_name(b: &ConversationBundle, m: &BookedMeeting) -> String {
    name_of(
        m.agent_id
            .and_then(|id| b.users.iter().find(|u| u.id.0 == id)),
    )
}

/// `Drift meeting with AGENT`, prefixed `Canceled:` once canceled.
pub fn title(b: &ConversationBundle, m: &BookedMeeting) -> String {
    title_with(m, &agent_name(b, m))
}

/// The title of a meeting booked from a calendar page.
pub fn calendar_title(c: &SignalMeeting) -> String {
    title_with(&c.booked, &name_of(c.agent.as_ref()))
}

fn title_with(m: &BookedMeeting, agent: &str) -> String {
    let t = format!(
        "{} with {agent}",
        m.meeting_type.as_deref().unwrap_or("Drift meeting")
    );
    if m.status == "canceled" {
        format!("Canceled: {t}")
    } else {
        t
    }
}

/// The body of a meeting booked from a calendar page: where, with whom, the visitor's time
/// zone and their notes (each sink cuts a body to its field's length).
pub fn calendar_body(c: &SignalMeeting) -> String {
    let m = &c.booked;
    let mut s = format!(
        "Booked from a Drift calendar page (agent {}).",
        name_of(c.agent.as_ref())
    );
    time_zone(&mut s, m);
    if let Some(n) = m.notes.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        s.push_str("\n\n");
        s.push_str(n);
    }
    s
}

fn time_zone(s: &mut String, m: &BookedMeeting) {
    if let Some(z) = &m.time_zone {
        s.push_str(&format!(" Visitor's time zone: {z}."));
    }
}

/// The conversation's context for the meeting: where it was booked, the playbook, the agent,
/// the first touch, and the start of the transcript.
pub fn body(b: &ConversationBundle, m: &BookedMeeting) -> String {
    let mut s = format!(
        "Booked in Drift conversation {} (playbook {}, agent {}).",
        b.conversation.id.0,
        b.playbook
            .as_ref()
            .map_or("none".into(), |p| p.name.clone()),
        agent_name(b, m)
    );
    if let Some(a) = &b.attribution
        && let Some(src) = &a.utm_source
    {
        s.push_str(&format!(
            " First touch: {src}{}{}.",
            a.utm_campaign
                .as_deref()
                .map(|c| format!(" / {c}"))
                .unwrap_or_default(),
            a.landing_page
                .as_deref()
                .map(|l| format!(" on {l}"))
                .unwrap_or_default()
        ));
    }
    time_zone(&mut s, m);
    let transcript = b.transcript_text();
    if !transcript.trim().is_empty() {
        s.push_str("\n\n");
        s.push_str(&truncate(&transcript, EXCERPT));
    }
    s
}
