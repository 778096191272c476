//! Conversation analytics over the facts (docs/ANALYTICS.md): aggregates by day, week, agent,
//! playbook or inbox, each metric defined once here, and the check of our facts against
//! Drift's own reporting API (`POST /reports/conversations`).

use std::collections::BTreeMap;

use anyhow::Result;
use bridge_store::analytics::FactRow;
use drift_client::DriftClient;
use drift_types::{ReportFilter, ReportRequest};
use serde::Serialize;
use serde_json::Value;

/// How a report groups conversations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// The UTC day it started.
    Day,
    /// The ISO week (Monday, UTC) it started.
    Week,
    /// The agent who wrote last (bot-only conversations: `none`).
    Agent,
    /// The playbook that started it.
    Playbook,
    /// Its inbox.
    Inbox,
}

impl By {
    /// Parses `day`, `week`, `agent`, `playbook` or `inbox`.
    pub fn parse(s: &str) -> Option<By> {
        Some(match s {
            "day" => By::Day,
            "week" => By::Week,
            "agent" => By::Agent,
            "playbook" => By::Playbook,
            "inbox" => By::Inbox,
            _ => return None,
        })
    }

    fn key(self, f: &FactRow) -> String {
        const DAY: i64 = 86_400_000;
        let opt = |v: Option<i64>| v.map_or_else(|| "none".to_owned(), |v| v.to_string());
        match self {
            By::Day => f.created_at.map_or_else(
                || "unknown".into(),
                |t| drift_types::EpochMillis(t - t.rem_euclid(DAY)).to_iso8601()[..10].to_owned(),
            ),
            By::Week => f.created_at.map_or_else(
                || "unknown".into(),
                |t| {
                    // 1970-01-01 was a Thursday: Mondays are 4 days after a multiple of 7.
                    let day = t.div_euclid(DAY);
                    let monday = day - (day - 4).rem_euclid(7);
                    drift_types::EpochMillis(monday * DAY).to_iso8601()[..10].to_owned()
                },
            ),
            By::Agent => opt(f.facts.last_agent_id),
            By::Playbook => opt(f.playbook_id),
            By::Inbox => opt(f.inbox_id),
        }
    }
}

/// One group's numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// The group (`2026-01-05`, an agent id, `none`).
    pub key: String,
    /// Conversations started.
    pub conversations: u64,
    /// Conversations an agent wrote in.
    pub handed_to_agent: u64,
    /// `handed_to_agent / conversations`.
    pub handoff_rate: f64,
    /// Conversations only the bot answered.
    pub bot_only: u64,
    /// Conversations closed.
    pub closed: u64,
    /// Start to first agent reply, median and 90th percentile (ms; of those with a reply).
    pub reply_p50_ms: Option<i64>,
    /// ...
    pub reply_p90_ms: Option<i64>,
    /// Start to close, median (ms; of those closed).
    pub close_p50_ms: Option<i64>,
    /// Conversations where a playbook goal was met / conversations.
    pub goal_rate: f64,
    /// Conversations that booked a meeting / conversations.
    pub meeting_rate: f64,
    /// Messages by role.
    pub contact_messages: i64,
    /// ...
    pub agent_messages: i64,
    /// ...
    pub bot_messages: i64,
}

/// The nearest-rank percentile `p` (0-100) of `v` (sorted in place).
fn percentile(v: &mut [i64], p: u32) -> Option<i64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let rank = (u64::from(p) * v.len() as u64).div_ceil(100).max(1) as usize;
    Some(v[rank - 1])
}

/// One group's numbers as its conversations are added: counts and sums, and the two times
/// whose percentiles are exact (16 bytes a conversation at most, where a fact row is 400).
#[derive(Debug, Default)]
struct Acc {
    n: u64,
    handed: u64,
    bot_only: u64,
    closed: u64,
    goal: u64,
    meeting: u64,
    contact_messages: i64,
    agent_messages: i64,
    bot_messages: i64,
    reply: Vec<i64>,
    close: Vec<i64>,
}

impl Acc {
    fn add(&mut self, f: &FactRow) {
        self.n += 1;
        self.handed += u64::from(f.handed_to_agent);
        self.bot_only += u64::from(f.bot_only);
        self.closed += u64::from(f.status == "closed");
        self.goal += u64::from(f.goal_met);
        self.meeting += u64::from(f.meetings > 0);
        self.contact_messages += f.facts.contact_messages;
        self.agent_messages += f.facts.agent_messages;
        self.bot_messages += f.facts.bot_messages;
        self.reply.extend(f.facts.time_to_first_agent_reply_ms);
        self.close.extend(f.facts.time_to_close_ms);
    }

    fn group(mut self, key: String) -> Group {
        let n = self.n;
        let rate = |k: u64| if n == 0 { 0.0 } else { k as f64 / n as f64 };
        Group {
            key,
            conversations: n,
            handed_to_agent: self.handed,
            handoff_rate: rate(self.handed),
            bot_only: self.bot_only,
            closed: self.closed,
            reply_p50_ms: percentile(&mut self.reply, 50),
            reply_p90_ms: percentile(&mut self.reply, 90),
            close_p50_ms: percentile(&mut self.close, 50),
            goal_rate: rate(self.goal),
            meeting_rate: rate(self.meeting),
            contact_messages: self.contact_messages,
            agent_messages: self.agent_messages,
            bot_messages: self.bot_messages,
        }
    }
}

/// Groups facts `by` as they are read ([`bridge_store::analytics::each_fact`]), keeping
/// counts and the times percentiles need, not the facts.
#[derive(Debug)]
pub struct Tally {
    by: By,
    groups: BTreeMap<String, Acc>,
}

impl Tally {
    /// An empty tally grouping `by`.
    pub fn new(by: By) -> Self {
        Tally {
            by,
            groups: BTreeMap::new(),
        }
    }

    /// Counts one conversation.
    pub fn add(&mut self, f: &FactRow) {
        self.groups.entry(self.by.key(f)).or_default().add(f);
    }

    /// The groups, in key order.
    pub fn groups(self) -> Vec<Group> {
        self.groups
            .into_iter()
            .map(|(key, acc)| acc.group(key))
            .collect()
    }
}

/// The facts grouped `by`, groups in key order.
pub fn aggregate(facts: &[FactRow], by: By) -> Vec<Group> {
    let mut t = Tally::new(by);
    for f in facts {
        t.add(f);
    }
    t.groups()
}

/// Drift's metric names and the fact each equals.
const METRICS: &[&str] = &[
    "timeToAgentResponseMillis",
    "timeToCloseMillis",
    "numAgentMessages",
    "numBotMessages",
    "numEndUserMessages",
    "firstAgentMessageAt",
    "lastAgentId",
];

/// Our values of [`METRICS`] by conversation, gathered as the facts are read, for
/// [`check_against_drift`] (about 130 bytes a conversation, where a fact row is 400).
#[derive(Debug, Default)]
pub struct Ours(BTreeMap<i64, [Option<i64>; 7]>);

impl Ours {
    /// Adds one conversation.
    pub fn add(&mut self, f: &FactRow) {
        self.0.insert(f.conversation_id, ours(f));
    }

    /// How many conversations.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> FromIterator<&'a FactRow> for Ours {
    fn from_iter<I: IntoIterator<Item = &'a FactRow>>(facts: I) -> Self {
        let mut o = Ours::default();
        for f in facts {
            o.add(f);
        }
        o
    }
}

fn ours(f: &FactRow) -> [Option<i64>; 7] {
    [
        f.facts.time_to_first_agent_reply_ms,
        f.facts.time_to_close_ms,
        Some(f.facts.agent_messages),
        Some(f.facts.bot_messages),
        Some(f.facts.contact_messages),
        f.facts.first_agent_message_at,
        f.facts.last_agent_id,
    ]
}

/// One difference between our facts and Drift's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disagreement {
    /// The conversation.
    pub conversation_id: i64,
    /// Drift's metric name (or `row` when one side has no row).
    pub metric: String,
    /// Ours.
    pub ours: Option<i64>,
    /// Drift's (`None`: `"NaN"` or no row).
    pub drift: Option<i64>,
}

/// Asks Drift for the same metrics of the conversations created in `[since_ms, until_ms)` (one
/// report call: Drift caps reporting at 60 calls a minute) and lists every difference.
pub async fn check_against_drift(
    client: &DriftClient,
    facts: &Ours,
    since_ms: i64,
    until_ms: i64,
) -> Result<Vec<Disagreement>> {
    let req = ReportRequest {
        filters: vec![ReportFilter {
            property: "createdAt".into(),
            operation: "BETWEEN".into(),
            values: vec![Value::from(since_ms), Value::from(until_ms - 1)],
        }],
        metrics: METRICS.iter().map(|m| (*m).to_owned()).collect(),
    };
    let report = client.report_conversations(&req).await?;
    let theirs: BTreeMap<i64, Vec<Option<i64>>> = report
        .data
        .into_iter()
        .map(|r| {
            (
                r.conversation_id.0,
                r.metrics.iter().map(Value::as_i64).collect(),
            )
        })
        .collect();
    let mut out = Vec::new();
    for (&conversation_id, values) in &facts.0 {
        let Some(t) = theirs.get(&conversation_id) else {
            out.push(Disagreement {
                conversation_id,
                metric: "row".into(),
                ours: Some(1),
                drift: None,
            });
            continue;
        };
        for (i, ours) in values.iter().copied().enumerate() {
            let drift = t.get(i).copied().flatten();
            if ours != drift {
                out.push(Disagreement {
                    conversation_id,
                    metric: METRICS[i].into(),
                    ours,
                    drift,
                });
            }
        }
    }
    for id in theirs.keys().filter(|id| !facts.0.contains_key(id)) {
        out.push(Disagreement {
            conversation_id: *id,
            metric: "row".into(),
            ours: None,
            drift: Some(1),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_and_weeks_start_on_monday() {
        let mut v = vec![5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
        assert_eq!(percentile(&mut v, 50), Some(5));
        assert_eq!(percentile(&mut v, 90), Some(9));
        assert_eq!(percentile(&mut [7], 90), Some(7));
        assert_eq!(percentile(&mut [], 50), None);
        let f = |t: i64| FactRow {
            conversation_id: 1,
            status: "open".into(),
            inbox_id: None,
            playbook_id: None,
            created_at: Some(t),
            facts: Default::default(),
            handed_to_agent: false,
            bot_only: false,
            goal_met: false,
            meetings: 0,
        };
        // 2026-01-01 was a Thursday; its week starts on Monday 2025-12-29.
        assert_eq!(By::Week.key(&f(1_767_225_600_000)), "2025-12-29");
        assert_eq!(By::Day.key(&f(1_767_225_600_000 + 3_600_000)), "2026-01-01");
        assert_eq!(
            By::Week.key(&f(1_767_225_600_000 + 4 * 86_400_000)),
            "2026-01-05"
        );
    }
}
