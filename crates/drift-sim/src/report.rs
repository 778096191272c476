//! Conversation reporting (`POST /reports/conversations`, drift-api.md §5.1.4): the numeric
//! properties of a conversation and the filter operations HAS_PROPERTY, BETWEEN and IN.

use std::collections::HashMap;

use drift_types::{AuthorType, ReportFilter, UserId};
use serde_json::{Value, json};

use crate::state::{SimError, SimResult};
use crate::world::ConvRecord;

/// Reporting properties of one conversation.
pub fn properties(rec: &ConvRecord, bot: UserId) -> HashMap<String, Value> {
    let c = &rec.conversation;
    let mut p = HashMap::new();
    let created = c.created_at.map_or(0, |t| t.get());
    p.insert("createdAt".into(), json!(created));
    p.insert(
        "updatedAt".into(),
        json!(c.updated_at.map_or(0, |t| t.get())),
    );
    p.insert("status".into(), json!(c.status.as_str()));
    if let Some(pb) = c.related_playbook_id {
        p.insert("relatedPlaybookId".into(), json!(pb));
    }
    if let Some(ct) = c.contact_id {
        p.insert("endUserId".into(), json!(ct));
    }
    let agent =
        |m: &&drift_types::Message| m.author.kind == AuthorType::User && m.author.id != bot.get();
    let count = |f: &dyn Fn(&&drift_types::Message) -> bool| rec.messages.iter().filter(f).count();
    p.insert("numAgentMessages".into(), json!(count(&agent)));
    p.insert(
        "numBotMessages".into(),
        json!(count(
            &|m| m.author.kind == AuthorType::User && m.author.id == bot.get()
        )),
    );
    p.insert(
        "numEndUserMessages".into(),
        json!(count(&|m| m.author.kind == AuthorType::Contact)),
    );
    if let Some(first) = rec.messages.iter().find(agent) {
        p.insert("firstAgentMessageAt".into(), json!(first.created_at));
        p.insert(
            "timeToAgentResponseMillis".into(),
            json!(first.created_at.get() - created),
        );
    }
    if let Some(last) = rec.messages.iter().rev().find(agent) {
        p.insert("lastAgentId".into(), json!(last.author.id));
    }
    if c.status == drift_types::ConversationStatus::Closed {
        let closed = c.updated_at.map_or(created, |t| t.get());
        p.insert("firstCloseAt".into(), json!(closed));
        p.insert("timeToCloseMillis".into(), json!(closed - created));
    }
    p
}

fn as_millis(v: &Value) -> SimResult<i64> {
    if let Some(n) = v.as_i64() {
        return Ok(n);
    }
    let s = v
        .as_str()
        .ok_or_else(|| SimError::invalid(format!("{v} is not a date")))?;
    let parts: Vec<i64> = s.split('-').filter_map(|x| x.parse().ok()).collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(SimError::invalid(format!("{s:?} is not YYYY-MM-DD")));
    };
    Ok(drift_types::EpochMillis::from_date(*y, *m, *d).get())
}

/// Whether a conversation's properties satisfy `f`.
pub fn matches(f: &ReportFilter, props: &HashMap<String, Value>) -> SimResult<bool> {
    let v = props.get(&f.property);
    match f.operation.as_str() {
        "HAS_PROPERTY" => Ok(v.is_some()),
        "IN" => Ok(v.is_some_and(|v| f.values.iter().any(|x| x == v))),
        "BETWEEN" => {
            let [lo, hi] = f.values.as_slice() else {
                return Err(SimError::invalid("BETWEEN takes exactly two values"));
            };
            let (lo, hi) = (as_millis(lo)?, as_millis(hi)?);
            Ok(v.and_then(Value::as_i64)
                .is_some_and(|x| x >= lo && x <= hi))
        }
        other => Err(SimError::invalid(format!(
            "unsupported filter operation {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_convert_to_epoch_millis() {
        assert_eq!(as_millis(&json!("1970-01-02")).unwrap(), 86_400_000);
        assert_eq!(
            as_millis(&json!("2026-01-01")).unwrap(),
            crate::generate::FIXED_ANCHOR_MS
        );
        assert!(as_millis(&json!("yesterday")).is_err());
    }
}
