//! A conversation's meetings, and a meeting booked from a calendar page, as HubSpot meeting
//! engagements (crm-apis.md §8), associated with the contact (type 200). Each carries
//! `drift_meeting_key` (`org:key`): the delivery record (a calendar page's: the person's
//! signal records) keeps its id by role `meeting:KEY`, so a reschedule or cancellation patches
//! the same engagement, and an attempt that may have created it before a crash searches the
//! key first.

use std::time::Duration;

use serde_json::{Value, json};

use super::client::{Api, id_of};
use drift_types::OrgId;

use crate::sink::meetings::{body, calendar_body, calendar_title, outcome, times, title};
use crate::sink::{
    BookedMeeting, ConversationBundle, Delivered, LeadSignal, Prior, SinkError, truncate,
};

/// Meeting -> contact, HubSpot-defined.
const MEETING_TO_CONTACT: u32 = 200;
/// The custom meeting property holding the key.
pub(super) const KEY_PROPERTY: &str = "drift_meeting_key";
/// Longest meeting body written.
const BODY_MAX: usize = 10_000;

/// The meetings' documents: `[{key, properties}]`.
pub(super) fn render(b: &ConversationBundle) -> Value {
    b.meetings
        .iter()
        .filter_map(|m| one(b.org, m, title(b, m), &body(b, m)))
        .collect()
}

/// The document of a meeting booked from a calendar page: `[]` or `[{key, properties}]`.
pub(super) fn render_calendar(s: &LeadSignal) -> Value {
    s.meeting
        .iter()
        .filter_map(|c| one(s.org, &c.booked, calendar_title(c), &calendar_body(c)))
        .collect()
}

fn one(org: OrgId, m: &BookedMeeting, title: String, body: &str) -> Option<Value> {
    let (start, end) = times(m)?;
    let key = m.crm_key(org);
    Some(json!({"key": key, "properties": {
        "hs_timestamp": start,
        "hs_meeting_title": title,
        "hs_meeting_body": truncate(body, BODY_MAX),
        "hs_meeting_start_time": start,
        "hs_meeting_end_time": end,
        "hs_meeting_outcome": outcome(m),
        KEY_PROPERTY: key,
    }}))
}

/// Writes every meeting of `doc`, recording their ids in `out`.
pub(super) async fn deliver(
    api: &Api,
    doc: &Value,
    prior: &Prior,
    contact: Option<&str>,
    search_lag: Duration,
    out: &mut Delivered,
) -> Result<(), SinkError> {
    for m in doc.as_array().into_iter().flatten() {
        let key = m["key"].as_str().unwrap_or_default();
        let role = format!("meeting:{key}");
        let props = json!({"properties": m["properties"]});
        let known = api
            .written_before("meetings", &role, (KEY_PROPERTY, key), prior, search_lag)
            .await?;
        if let Some(id) = known
            && api
                .send(
                    reqwest::Method::PATCH,
                    &format!("meetings/{id}"),
                    Some(&props),
                )
                .await?
                .is_some()
        {
            out.updated += 1;
            out.external.insert(role, id);
            continue;
        }
        let mut create = props;
        create["associations"] = Value::Array(
            contact
                .iter()
                .map(|id| {
                    json!({"to": {"id": id}, "types": [{"associationCategory": "HUBSPOT_DEFINED",
                        "associationTypeId": MEETING_TO_CONTACT}]})
                })
                .collect(),
        );
        let r = api
            .send(reqwest::Method::POST, "meetings", Some(&create))
            .await?
            .ok_or_else(|| SinkError::retry("meeting create answered 404"))?;
        let id = id_of(&r).ok_or_else(|| SinkError::retry(format!("meeting without id: {r}")))?;
        out.created += 1;
        out.external.insert(role, id);
    }
    Ok(())
}
