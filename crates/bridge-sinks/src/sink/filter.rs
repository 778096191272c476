//! Routing filters: which conversations a sink receives.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::bundle::ConversationBundle;

/// `[sinks.NAME.filter]`. Every listed criterion must hold; an empty list accepts anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Filter {
    /// Event types that deliver (default: `conversation_push`, `conversation_manual_push`, the
    /// meeting events `new_meeting` and `meeting_updated`, and the lead signals
    /// `contact_identified`, `playbook_goal_met` and `phone_captured`).
    pub events: Vec<String>,
    /// Playbook ids the conversation must have started from.
    pub playbooks: Vec<i64>,
    /// Conversation statuses (`open`, `closed`, `pending`, `bulk_sent`).
    pub status: Vec<String>,
    /// Conditions on the contact's attributes, all of which must hold.
    pub contact: Vec<Condition>,
    /// Goals (names or ids, case-insensitive) a `playbook_goal_met` signal must name; other
    /// events do not pass a filter that lists goals.
    pub goals: Vec<String>,
}

impl Default for Filter {
    fn default() -> Self {
        Filter {
            events: vec![
                "conversation_push".into(),
                "conversation_manual_push".into(),
                "new_meeting".into(),
                "meeting_updated".into(),
                "contact_identified".into(),
                "playbook_goal_met".into(),
                "phone_captured".into(),
            ],
            playbooks: Vec::new(),
            status: Vec::new(),
            contact: Vec::new(),
            goals: Vec::new(),
        }
    }
}

/// One condition on a contact attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The attribute's key as Drift sends it (`lead_score`, `email`, `employment_seniority`).
    pub attribute: String,
    /// The comparison.
    pub op: Op,
    /// The value compared with (not for `exists` / `missing`; a list for `in`).
    #[serde(default)]
    pub value: Option<Value>,
}

/// Comparisons. Numbers compare as numbers (also when sent as strings), text case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Equal.
    Eq,
    /// Not equal (also true when the attribute is missing).
    Ne,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Gte,
    /// Less than.
    Lt,
    /// Less than or equal.
    Lte,
    /// Present and not empty.
    Exists,
    /// Absent or empty.
    Missing,
    /// Text contains the value.
    Contains,
    /// Equal to one of the listed values.
    In,
}

impl Filter {
    /// Problems with the filter, for the configuration report.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for c in &self.contact {
            match (c.op, &c.value) {
                (Op::Exists | Op::Missing, Some(_)) => out.push(format!(
                    "contact condition on {:?}: {:?} takes no value",
                    c.attribute, c.op
                )),
                (Op::In, Some(Value::Array(_))) | (Op::Exists | Op::Missing, None) => {}
                (Op::In, _) => out.push(format!(
                    "contact condition on {:?}: `in` needs a list value",
                    c.attribute
                )),
                (_, None) => out.push(format!(
                    "contact condition on {:?}: {:?} needs a value",
                    c.attribute, c.op
                )),
                _ => {}
            }
        }
        out
    }

    /// Whether the event type passes (replays pass every filter: they are asked for by name).
    pub fn accepts_event(&self, event: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|e| e == event)
    }

    /// The criteria conversations and signals share: the event, the playbook (when listed,
    /// it must be one of them) and the conditions on the contact's attributes.
    fn passes(
        &self,
        event: &str,
        playbook: Option<i64>,
        contact: Option<&serde_json::Map<String, Value>>,
    ) -> bool {
        self.accepts_event(event)
            && (self.playbooks.is_empty() || playbook.is_some_and(|p| self.playbooks.contains(&p)))
            && self
                .contact
                .iter()
                .all(|c| c.holds(contact.and_then(|a| a.get(&c.attribute))))
    }

    /// Whether a lead signal passes: its event, its playbook, its goal and the contact
    /// conditions (a `status` list does not apply: a signal comes before the close).
    pub fn matches_signal(&self, s: &super::LeadSignal) -> bool {
        let named = |g: &Option<String>| {
            g.as_deref()
                .is_some_and(|g| self.goals.iter().any(|x| x.eq_ignore_ascii_case(g)))
        };
        self.passes(
            &s.event,
            s.details.playbook_id,
            Some(&s.contact.attributes.0),
        ) && (self.goals.is_empty() || named(&s.details.goal_name) || named(&s.details.goal_id))
    }

    /// Whether the bundle passes every criterion. A conversation names no goal, so a filter
    /// that lists goals takes none (it routes `playbook_goal_met` signals only).
    pub fn matches(&self, b: &ConversationBundle) -> bool {
        let status = b.conversation.status.as_str();
        self.goals.is_empty()
            && self.passes(
                &b.event,
                b.conversation.related_playbook_id.map(|p| p.0),
                b.contact.as_ref().map(|c| &c.attributes.0),
            )
            && (self.status.is_empty()
                || self.status.iter().any(|s| s.eq_ignore_ascii_case(status)))
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_lowercase(),
        other => other.to_string().to_lowercase(),
    }
}

fn equal(a: &Value, b: &Value) -> bool {
    match (number(a), number(b)) {
        (Some(x), Some(y)) => x == y,
        _ => text(a) == text(b),
    }
}

impl Condition {
    fn holds(&self, v: Option<&Value>) -> bool {
        let present = v.filter(|v| !v.is_null() && v.as_str() != Some(""));
        let Some(v) = present else {
            return matches!(self.op, Op::Missing | Op::Ne);
        };
        let want = self.value.as_ref().unwrap_or(&Value::Null);
        let order = || match (number(v), number(want)) {
            (Some(x), Some(y)) => x.partial_cmp(&y),
            _ => Some(text(v).cmp(&text(want))),
        };
        use std::cmp::Ordering::*;
        match self.op {
            Op::Exists => true,
            Op::Missing => false,
            Op::Eq => equal(v, want),
            Op::Ne => !equal(v, want),
            Op::Gt => order() == Some(Greater),
            Op::Gte => matches!(order(), Some(Greater | Equal)),
            Op::Lt => order() == Some(Less),
            Op::Lte => matches!(order(), Some(Less | Equal)),
            Op::Contains => text(v).contains(&text(want)),
            Op::In => want
                .as_array()
                .is_some_and(|a| a.iter().any(|w| equal(v, w))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cond(attribute: &str, op: Op, value: Option<Value>) -> Condition {
        Condition {
            attribute: attribute.into(),
            op,
            value,
        }
    }

    #[test]
    fn conditions_compare_numbers_text_and_presence() {
        let v = json!("75");
        assert!(cond("s", Op::Gte, Some(json!(50))).holds(Some(&v)));
        assert!(!cond("s", Op::Lt, Some(json!(50))).holds(Some(&v)));
        assert!(cond("s", Op::Eq, Some(json!(75))).holds(Some(&v)));
        let plan = json!("Enterprise");
        assert!(cond("p", Op::In, Some(json!(["team", "enterprise"]))).holds(Some(&plan)));
        assert!(cond("p", Op::Contains, Some(json!("PRISE"))).holds(Some(&plan)));
        assert!(cond("p", Op::Missing, None).holds(None));
        assert!(cond("p", Op::Missing, None).holds(Some(&json!(""))));
        assert!(!cond("p", Op::Exists, None).holds(None));
        assert!(!cond("p", Op::Gte, Some(json!(1))).holds(None));
        assert!(cond("p", Op::Ne, Some(json!(1))).holds(None));
    }

    #[test]
    fn malformed_conditions_are_reported() {
        let f = Filter {
            contact: vec![
                cond("a", Op::Gte, None),
                cond("b", Op::In, Some(json!(3))),
                cond("c", Op::Exists, Some(json!(1))),
                cond("d", Op::Exists, None),
            ],
            ..Filter::default()
        };
        let p = f.problems();
        assert_eq!(p.len(), 3, "{p:?}");
    }

    #[test]
    fn a_filter_listing_goals_routes_goal_met_signals_only() {
        let f = Filter {
            goals: vec!["Booked a demo".into()],
            ..Filter::default()
        };
        let contact: drift_types::Contact =
            serde_json::from_value(json!({"id": 3, "attributes": {"email": "a@b.co"}})).unwrap();
        let signal = |event: &str, goal: Option<&str>| super::super::LeadSignal {
            org: drift_types::OrgId(1),
            event: event.into(),
            id: "event-1".into(),
            at_ms: 0,
            contact: contact.clone(),
            details: super::super::SignalDetails {
                goal_name: goal.map(str::to_owned),
                ..Default::default()
            },
            meeting: None,
            opted_out: false,
        };
        assert!(f.matches_signal(&signal("playbook_goal_met", Some("booked a DEMO"))));
        assert!(!f.matches_signal(&signal("playbook_goal_met", Some("Other"))));
        assert!(!f.matches_signal(&signal("contact_identified", None)));
        let b: ConversationBundle = serde_json::from_value(json!({
            "org": 1, "event": "conversation_push",
            "conversation": {"id": 7, "status": "closed"},
            "contact": null, "users": [], "messages": [], "transcript": null, "playbook": null}))
        .unwrap();
        assert!(!f.matches(&b), "a push names no goal");
        assert!(Filter::default().matches(&b));
    }
}
