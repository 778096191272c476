//! The analytics report as one self-contained HTML page (`driftbridge report --format html`):
//! inline CSS and SVG charts, no script and nothing fetched, so it opens offline. The charts'
//! geometry is computed here; `templates/report.html` (minijinja, HTML auto-escaping) only
//! places it.

use bridge_core::analytics::{By, Group, Tally};
use bridge_store::analytics::FactRow;
use serde::Serialize;

use crate::charts::{Bar, PLOT_H, bars};

/// Reply-time buckets: upper bounds in ms and labels.
const BUCKETS: &[(i64, &str)] = &[
    (30_000, "<30s"),
    (60_000, "30s-1m"),
    (120_000, "1-2m"),
    (300_000, "2-5m"),
    (600_000, "5-10m"),
    (1_800_000, "10-30m"),
    (i64::MAX, "30m+"),
];

#[derive(Debug, Serialize)]
struct Chart {
    width: u32,
    height: u32,
    bars: Vec<Bar>,
}

#[derive(Debug, Serialize)]
struct Label {
    x: f64,
    text: String,
}

#[derive(Debug, Serialize)]
struct Volume {
    width: u32,
    height: u32,
    bars: Vec<Bar>,
    line: String,
    labels: Vec<Label>,
}

#[derive(Debug, Serialize)]
struct FunnelRow {
    key: String,
    y: u32,
    conversations: f64,
    agent: f64,
    goal: f64,
    meeting: f64,
    n: u64,
    n_agent: u64,
    n_goal: u64,
    n_meeting: u64,
}

#[derive(Debug, Serialize)]
struct Funnel {
    width: u32,
    height: u32,
    rows: Vec<FunnelRow>,
}

/// One group as a report shows it (rates in percent, times in seconds); the text table of
/// `driftbridge report` and this page's table show the same cells.
#[derive(Debug, Serialize)]
pub struct Shown {
    /// The group.
    pub key: String,
    /// Conversations.
    pub conversations: u64,
    /// Handoff rate.
    pub handoff: String,
    /// Bot-only conversations.
    pub bot_only: u64,
    /// Reply time, median.
    pub reply_p50: String,
    /// Reply time, 90th percentile.
    pub reply_p90: String,
    /// Time to close, median.
    pub close_p50: String,
    /// Goal rate.
    pub goal: String,
    /// Meeting rate.
    pub meeting: String,
}

impl From<&Group> for Shown {
    fn from(g: &Group) -> Self {
        let secs =
            |v: Option<i64>| v.map_or_else(|| "-".into(), |v| format!("{:.1}s", v as f64 / 1000.0));
        let pct = |r: f64| format!("{:.1}%", r * 100.0);
        Shown {
            key: g.key.clone(),
            conversations: g.conversations,
            handoff: pct(g.handoff_rate),
            bot_only: g.bot_only,
            reply_p50: secs(g.reply_p50_ms),
            reply_p90: secs(g.reply_p90_ms),
            close_p50: secs(g.close_p50_ms),
            goal: pct(g.goal_rate),
            meeting: pct(g.meeting_rate),
        }
    }
}

/// The three charts and the table of a report, as `templates/report_charts.html` (shared by
/// the standalone page and the console's Analytics page) places them.
#[derive(Debug, Serialize)]
pub(crate) struct Charts {
    reply: Chart,
    volume: Volume,
    funnel: Funnel,
    groups: Vec<Shown>,
}

/// What the charts read of the facts, gathered as they are read: the reply times by bucket,
/// and the conversations by day and by playbook.
#[derive(Debug)]
pub struct ChartFacts {
    reply: Vec<u64>,
    days: Tally,
    playbooks: Tally,
    conversations: u64,
}

impl Default for ChartFacts {
    fn default() -> Self {
        ChartFacts {
            reply: vec![0; BUCKETS.len()],
            days: Tally::new(By::Day),
            playbooks: Tally::new(By::Playbook),
            conversations: 0,
        }
    }
}

impl ChartFacts {
    /// Counts one conversation.
    pub fn add(&mut self, f: &FactRow) {
        if let Some(t) = f.facts.time_to_first_agent_reply_ms {
            let i = BUCKETS.iter().position(|(hi, _)| t < *hi).unwrap_or(0);
            self.reply[i] += 1;
        }
        self.days.add(f);
        self.playbooks.add(f);
        self.conversations += 1;
    }

    /// How many conversations were added.
    pub fn conversations(&self) -> u64 {
        self.conversations
    }
}

/// The page for the conversations started in `since`..`until` (shown as given), with a table
/// of `groups` grouped `by`.
pub fn html(
    title: &str,
    since: &str,
    until: &str,
    facts: ChartFacts,
    by: &str,
    groups: &[Group],
) -> Result<String, minijinja::Error> {
    let conversations = facts.conversations;
    let c = charts(facts, groups);
    let mut env = minijinja::Environment::new();
    // Every value is escaped for HTML (keys and titles come from the data).
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    env.add_template("report.html", include_str!("templates/report.html"))?;
    env.add_template("report_charts.html", CHARTS_TEMPLATE)?;
    env.get_template("report.html")?
        .render(minijinja::context! {
            title, since, until, by,
            conversations,
            reply => c.reply, volume => c.volume, funnel => c.funnel,
            groups => c.groups,
        })
}

/// The charts and table of a report, as a template both pages include.
pub(crate) const CHARTS_TEMPLATE: &str = include_str!("templates/report_charts.html");

/// The charts of `facts` and the table of `groups`.
pub(crate) fn charts(facts: ChartFacts, groups: &[Group]) -> Charts {
    let counts = facts.reply;
    let reply_values: Vec<(String, u64)> = BUCKETS
        .iter()
        .zip(&counts)
        .map(|((_, l), n)| ((*l).to_owned(), *n))
        .collect();
    let reply = Chart {
        width: 560,
        height: 200,
        bars: bars(&reply_values, 560),
    };

    let days = facts.days.groups();
    let width = (days.len() as u32 * 14).clamp(300, 1200);
    let day_values: Vec<(String, u64)> = days
        .iter()
        .map(|g| (g.key.clone(), g.conversations))
        .collect();
    let day_bars = bars(&day_values, width);
    let line = day_bars
        .iter()
        .zip(&days)
        .map(|(b, g)| {
            format!(
                "{:.1},{:.1}",
                b.x + b.w / 2.0,
                20.0 + PLOT_H * (1.0 - g.handoff_rate)
            )
        })
        .collect::<Vec<_>>()
        .join(" ");
    // A date label is about 70 px wide: one every so many bars that they do not overlap.
    let every = days.len().div_ceil((width / 80).max(1) as usize).max(1);
    let labels = day_bars
        .iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0)
        .map(|(_, b)| Label {
            x: b.x,
            text: b.label.clone(),
        })
        .collect();
    let volume = Volume {
        width,
        height: 200,
        bars: day_bars,
        line,
        labels,
    };

    let playbooks = facts.playbooks.groups();
    let most = playbooks
        .iter()
        .map(|g| g.conversations)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let scale = |n: u64| 380.0 * n as f64 / most;
    let rows: Vec<FunnelRow> = playbooks
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let n_goal = (g.goal_rate * g.conversations as f64).round() as u64;
            let n_meeting = (g.meeting_rate * g.conversations as f64).round() as u64;
            FunnelRow {
                key: g.key.clone(),
                y: 8 + i as u32 * 72,
                conversations: scale(g.conversations),
                agent: scale(g.handed_to_agent),
                goal: scale(n_goal),
                meeting: scale(n_meeting),
                n: g.conversations,
                n_agent: g.handed_to_agent,
                n_goal,
                n_meeting,
            }
        })
        .collect();
    let funnel = Funnel {
        width: 560,
        height: 16 + rows.len() as u32 * 72,
        rows,
    };
    Charts {
        reply,
        volume,
        funnel,
        groups: groups.iter().map(Shown::from).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(id: i64, day: i64, reply: Option<i64>, playbook: Option<i64>) -> FactRow {
        FactRow {
            conversation_id: id,
            status: "closed".into(),
            inbox_id: None,
            playbook_id: playbook,
            created_at: Some(1_767_225_600_000 + day * 86_400_000),
            facts: bridge_store::tables::Facts {
                time_to_first_agent_reply_ms: reply,
                agent_messages: i64::from(reply.is_some()),
                ..Default::default()
            },
            handed_to_agent: reply.is_some(),
            bot_only: reply.is_none(),
            goal_met: id % 2 == 0,
            meetings: id % 3,
        }
    }

    #[test]
    fn the_page_has_three_charts_with_a_bar_per_bucket_day_and_playbook_and_escapes_text() {
        let facts = vec![
            fact(1, 0, Some(10_000), Some(7)),
            fact(2, 0, Some(90_000), Some(7)),
            fact(3, 1, None, None),
            fact(4, 2, Some(4_000_000), Some(8)),
        ];
        let groups = bridge_core::analytics::aggregate(&facts, By::Day);
        let mut tally = ChartFacts::default();
        for f in &facts {
            tally.add(f);
        }
        let page = html(
            "<b>org</b>",
            "2026-01-01",
            "2026-01-04",
            tally,
            "day",
            &groups,
        )
        .unwrap();
        assert!(
            page.contains("&lt;b&gt;org") && !page.contains("<b>org"),
            "{}",
            &page[..400]
        );
        let chart = |id: &str| {
            let start = page.find(&format!("<svg id=\"{id}\"")).unwrap();
            let end = start + page[start..].find("</svg>").unwrap();
            page[start..end].to_owned()
        };
        assert_eq!(
            chart("reply-distribution").matches("<rect").count(),
            BUCKETS.len()
        );
        assert_eq!(chart("volume").matches("<rect").count(), 3, "one bar a day");
        assert!(chart("volume").contains("<polyline"));
        // Playbooks 7, 8 and none: four bars each.
        assert_eq!(chart("funnel").matches("<rect").count(), 12);
        assert!(!page.contains("<script"), "no script: it opens offline");
        assert_eq!(page.matches("<tr>").count(), 1 + groups.len());
    }
}
