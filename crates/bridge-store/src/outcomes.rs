//! The outcome columns of `conversation_facts` in a SQL store: `goal_met` (a row of
//! `playbook_goals_met` names the conversation) and `meetings_booked` (rows of `meetings` name
//! it). They are recomputed, in the writer's transaction, for every conversation a write
//! touched: its facts, a goal, or a meeting; whichever arrives last, the row ends right.

use std::collections::{BTreeMap, BTreeSet};

use crate::tables::{Batch, table};
use crate::{Conn, Op, Result};

/// Conversations per statement.
const CHUNK: usize = 400;

/// Recomputes the outcomes of every conversation `batch` wrote facts, meetings or goals of.
pub(crate) async fn refresh_for(conn: &mut Conn, batch: &Batch) -> Result<()> {
    let mut touched: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
    for (name, column) in [
        ("conversation_facts", "conversation_id"),
        ("meetings", "conversation_id"),
    ] {
        let Some(t) = table(name) else { continue };
        let Some(i) = t.index(column) else { continue };
        for r in batch.rows(t) {
            if let (Some(org), Some(c)) = (r[0].as_i64(), r[i].as_i64()) {
                touched.entry(org).or_default().insert(c);
            }
        }
    }
    for (org, ids) in touched {
        let ids: Vec<i64> = ids.into_iter().collect();
        refresh(conn, org, &ids).await?;
        crate::widget::refresh_facts(conn, org, &ids).await?;
        crate::widget::link_contacts(conn, org, &ids).await?;
    }
    Ok(())
}

/// Recomputes the outcomes of the org's conversations `ids` (those with a facts row), writing
/// only rows whose values change.
pub async fn refresh(conn: &mut Conn, org: i64, ids: &[i64]) -> Result<u64> {
    let goal = crate::tables::sql::write_expr(
        crate::Backend::of(conn),
        crate::tables::ColumnType::Bool,
        "CASE WHEN EXISTS (SELECT 1 FROM playbook_goals_met g \
        WHERE g.org_id = conversation_facts.org_id \
        AND g.conversation_id = conversation_facts.conversation_id) THEN 1 ELSE 0 END",
    );
    const MEETINGS: &str = "(SELECT COUNT(*) FROM meetings m \
        WHERE m.org_id = conversation_facts.org_id \
        AND m.conversation_id = conversation_facts.conversation_id)";
    let mut changed = 0;
    for chunk in ids.chunks(CHUNK) {
        let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "UPDATE conversation_facts SET goal_met = {goal}, meetings_booked = {MEETINGS} \
             WHERE org_id = $1 AND conversation_id IN ({}) \
             AND (goal_met <> {goal} OR meetings_booked <> {MEETINGS})",
            marks.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(org);
        for id in chunk {
            q = q.bind(*id);
        }
        changed += q
            .execute(&mut *conn)
            .await
            .op("recomputing conversation outcomes")?
            .rows_affected();
    }
    Ok(changed)
}

/// The org's conversations in which a playbook goal was met.
pub async fn goal_conversations(
    conn: &mut Conn,
    org: i64,
) -> Result<std::collections::HashSet<i64>> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT DISTINCT conversation_id FROM playbook_goals_met WHERE org_id = $1",
    )
    .bind(org)
    .fetch_all(&mut *conn)
    .await
    .op("reading the conversations with a goal met")?;
    Ok(ids.into_iter().collect())
}
