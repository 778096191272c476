//! Reading conversation facts back for reports (docs/ANALYTICS.md), outcomes included (a met
//! playbook goal and booked meetings, which the store keeps current: [`crate::outcomes`]).

use futures::TryStreamExt as _;
use sqlx::Row as _;

use crate::tables::sql::{at, ms, read_expr};
use crate::tables::{ColumnType, Facts};
use crate::{Op, Result, Store};

/// One conversation's facts as a report reads them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FactRow {
    /// The conversation.
    pub conversation_id: i64,
    /// Its status.
    pub status: String,
    /// Its inbox.
    pub inbox_id: Option<i64>,
    /// The playbook that started it.
    pub playbook_id: Option<i64>,
    /// When it started (epoch ms).
    pub created_at: Option<i64>,
    /// The numbers (docs/ANALYTICS.md).
    #[serde(flatten)]
    pub facts: Facts,
    /// An agent wrote.
    pub handed_to_agent: bool,
    /// Only the bot answered.
    pub bot_only: bool,
    /// A playbook goal was met in it (`playbook_goal_met`).
    pub goal_met: bool,
    /// Meetings booked in it.
    pub meetings: i64,
}

/// The facts of `org`'s conversations created in `[since_ms, until_ms)`, oldest first.
pub async fn facts(store: &Store, org: i64, since_ms: i64, until_ms: i64) -> Result<Vec<FactRow>> {
    let mut out = Vec::new();
    each_fact(store, org, since_ms, until_ms, |f| out.push(f)).await?;
    Ok(out)
}

/// Hands each of [`facts`] to `each` as the database sends it, holding none: a report over a
/// year of a large org's conversations tallies them without keeping them.
pub async fn each_fact(
    store: &Store,
    org: i64,
    since_ms: i64,
    until_ms: i64,
    mut each: impl FnMut(FactRow),
) -> Result<()> {
    let b = store.backend();
    let t = |c: &str| ms(b, &format!("f.{c}"));
    let flag = |c: &str| read_expr(b, ColumnType::Bool, &format!("f.{c}"));
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT f.conversation_id, f.status, f.inbox_id, f.playbook_id, {}, \
         {}, f.time_to_first_agent_reply_ms, {}, {}, \
         f.time_to_close_ms, f.contact_messages, f.agent_messages, f.bot_messages, \
         f.distinct_agents, f.last_agent_id, {}, {}, \
         {}, {}, f.meetings_booked \
         FROM conversation_facts f WHERE f.org_id = $1 AND f.created_at >= {} \
         AND f.created_at < {} ORDER BY f.created_at, f.conversation_id",
        t("created_at"),
        t("first_agent_message_at"),
        flag("handed_to_agent"),
        flag("bot_only"),
        t("first_contact_message_at"),
        t("first_bot_message_at"),
        t("first_close_at"),
        flag("goal_met"),
        at(b, "$2"),
        at(b, "$3"),
    )))
    .bind(org)
    .bind(since_ms)
    .bind(until_ms)
    // Converted as they come: a driver row holds every column with its name and type, several
    // times what the report keeps of it.
    .fetch(store.pool());
    let get = |r: &sqlx::any::AnyRow, i: usize| -> Result<Option<i64>> {
        r.try_get::<Option<i64>, _>(i)
            .op("reading conversation facts")
    };
    while let Some(r) = rows.try_next().await.op("reading conversation facts")? {
        let r = &r;
        let n = |i: usize| get(r, i).map(|v| v.unwrap_or(0));
        each(FactRow {
            conversation_id: n(0)?,
            status: r.try_get::<String, _>(1).op("reading conversation facts")?,
            inbox_id: get(r, 2)?,
            playbook_id: get(r, 3)?,
            created_at: get(r, 4)?,
            facts: Facts {
                first_agent_message_at: get(r, 5)?,
                time_to_first_agent_reply_ms: get(r, 6)?,
                time_to_close_ms: get(r, 9)?,
                contact_messages: n(10)?,
                agent_messages: n(11)?,
                bot_messages: n(12)?,
                distinct_agents: n(13)?,
                last_agent_id: get(r, 14)?,
                first_contact_message_at: get(r, 15)?,
                first_bot_message_at: get(r, 16)?,
                first_close_at: get(r, 17)?,
            },
            handed_to_agent: n(7)? != 0,
            bot_only: n(8)? != 0,
            goal_met: n(18)? > 0,
            meetings: n(19)?,
        });
    }
    Ok(())
}

/// The orgs that have conversation facts.
pub async fn orgs(store: &Store) -> Result<Vec<i64>> {
    sqlx::query_scalar("SELECT DISTINCT org_id FROM conversation_facts ORDER BY org_id")
        .fetch_all(store.pool())
        .await
        .op("reading the orgs with facts")
}
