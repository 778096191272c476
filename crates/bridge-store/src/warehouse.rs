//! Writing the warehouse tables (docs/SCHEMA.md) inside the caller's transaction.
//!
//! [`write`] upserts a [`Batch`] by key with multi-row statements. A row is only rewritten
//! when something other than its volatile columns (`synced_at`, `fetched_at`) differs, so
//! the count it returns is the number of rows that really changed: writing the same objects
//! twice changes nothing the second time. A parent in the batch brings its complete child
//! set: children it no longer has are deleted, the rest upserted.

use std::collections::{BTreeSet, HashMap};

use drift_types::{OrgId, webhook::PlaybookGoalMet};

use crate::privacy::{Scrubbed, Tombstones};
use crate::tables::sql::{bind, recordset, recordset_source};
use crate::tables::{Batch, Column, Row, TABLES, Table, Value};
use crate::{Backend, Conn, Op, Result};

/// Every table the store keeps rows of Drift data in: the exported tables plus the goals
/// recorded from webhooks.
pub fn table_names() -> impl Iterator<Item = &'static str> {
    TABLES
        .iter()
        .map(|t| t.name)
        .chain(std::iter::once("playbook_goals_met"))
}

/// Bind parameters per statement, by backend. Far below SQLite's limit of 32,766 because
/// SQLite resolves `$N` parameters by name with a linear search, so binding costs grow with the
/// square of a statement's parameter count; PostgreSQL (limit 65,535) gains from fewer round
/// trips instead (its upserts bind one document per statement, [`recordset`]; deletes bind
/// keys).
fn max_params(conn: &Conn) -> usize {
    match Backend::of(conn) {
        Backend::Postgres => 8_000,
        Backend::Sqlite => 500,
    }
}
/// Rows per multi-row statement, so one statement stays a few hundred kilobytes.
const MAX_ROWS: usize = 1_000;
/// Text one statement carries at most, besides [`MAX_ROWS`]: rows of long message bodies
/// (Drift does not bound them) are split over more statements rather than making one
/// document or bind list near PostgreSQL's 1 GB message limit. A row longer than this goes
/// alone.
const MAX_TEXT_BYTES: usize = 8 << 20;

/// Upserts every row of the batch; answers how many rows changed (inserted, updated or
/// deleted). Rows about an erased person are dropped first ([`write_checked`]).
pub async fn write(conn: &mut Conn, batch: &Batch) -> Result<u64> {
    Ok(write_checked(conn, batch).await?.0)
}

/// [`write`], answering also what the erasure tombstones dropped from the batch.
pub async fn write_checked(conn: &mut Conn, batch: &Batch) -> Result<(u64, Scrubbed)> {
    if batch.is_empty() {
        return Ok((0, Scrubbed::default()));
    }
    crate::privacy::erasure_lock(conn, false).await?;
    let orgs: BTreeSet<i64> = batch
        .tables()
        .flat_map(|(_, rows)| rows.iter().filter_map(|r| r.first()?.as_i64()))
        .collect();
    let orgs: Vec<i64> = orgs.into_iter().collect();
    let tombstones = Tombstones::load(conn, &orgs).await?;
    // The batch is copied only when there are erased people to drop from it.
    let (batch, scrubbed) = if tombstones.is_empty() {
        (std::borrow::Cow::Borrowed(batch), Scrubbed::default())
    } else {
        let mut b = batch.clone();
        let scrubbed = tombstones.scrub(&mut b);
        (std::borrow::Cow::Owned(b), scrubbed)
    };
    let changed = upsert(conn, &batch).await?;
    crate::outcomes::refresh_for(conn, &batch).await?;
    Ok((changed, scrubbed))
}

async fn upsert(conn: &mut Conn, batch: &Batch) -> Result<u64> {
    let mut changed = 0;
    let max_params = max_params(conn);
    for t in TABLES.iter() {
        let rows = dedup_by_key(t, batch.rows(t));
        if let Some(parent) = t.parent.and_then(crate::tables::table) {
            let parents = dedup_by_key(parent, batch.rows(parent));
            if !parents.is_empty() {
                changed += delete_absent_children(conn, t, parent.key, &parents, &rows, max_params)
                    .await?;
            }
        }
        let per_chunk = match Backend::of(conn) {
            Backend::Postgres => MAX_ROWS,
            Backend::Sqlite => (max_params / t.columns.len()).min(MAX_ROWS),
        };
        for chunk in chunks(&rows, per_chunk, MAX_TEXT_BYTES) {
            changed += upsert_chunk(conn, t, chunk).await?;
        }
    }
    Ok(changed)
}

/// `rows` in runs of at most `max_rows` rows and, unless one row alone is longer,
/// `max_bytes` of text.
fn chunks<'a, 'r>(rows: &'a [&'r Row], max_rows: usize, max_bytes: usize) -> Vec<&'a [&'r Row]> {
    let text = |r: &Row| -> usize { r.iter().map(|v| v.as_str().map_or(8, str::len)).sum() };
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, r) in rows.iter().enumerate() {
        let n = text(r);
        if i > start && (i - start == max_rows || bytes + n > max_bytes) {
            out.push(&rows[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += n;
    }
    if start < rows.len() {
        out.push(&rows[start..]);
    }
    out
}

/// The rows with distinct keys, the last of each key winning (one statement cannot touch a
/// row twice), in key order. On PostgreSQL a write to a row another open transaction has
/// written waits for it: two jobs writing the same rows (the agents of two conversations)
/// in opposite orders would each wait on the other, a deadlock PostgreSQL breaks by failing
/// one. In one order, one waits for the other's commit.
fn dedup_by_key<'a>(t: &Table, rows: &'a [Row]) -> Vec<&'a Row> {
    let mut at: HashMap<&[Value], usize> = HashMap::with_capacity(rows.len());
    let mut out: Vec<&Row> = Vec::with_capacity(rows.len());
    for r in rows {
        match at.get(&r[..t.key]) {
            Some(&i) => out[i] = r,
            None => {
                at.insert(&r[..t.key], out.len());
                out.push(r);
            }
        }
    }
    out.sort_unstable_by(|a, b| a[..t.key].cmp(&b[..t.key]));
    out
}

/// `($1, $2), ($3, $4)` for `rows` tuples of `width`, numbered from `first` (the VALUES of a
/// multi-row statement).
pub fn placeholders(rows: usize, width: usize, first: usize) -> String {
    let mut s = String::with_capacity(rows * width * 5);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..width {
            if c > 0 {
                s.push_str(", ");
            }
            s.push('$');
            s.push_str(&(first + r * width + c).to_string());
        }
        s.push(')');
    }
    s
}

/// `(?, ?), (?, ?)`: SQLite binds anonymous parameters by position, while each `$N` costs a
/// search of the statement's parameter names (`sqlite3VListNumToName`, the larger part of an
/// export's SQLite time with numbered parameters).
fn anonymous_placeholders(rows: usize, width: usize) -> String {
    let row = format!("({})", vec!["?"; width].join(", "));
    vec![row; rows].join(", ")
}

async fn upsert_chunk(conn: &mut Conn, t: &Table, rows: &[&Row]) -> Result<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    // Derived columns are the store's own to compute ([`crate::outcomes`]).
    let written: Vec<usize> = (0..t.columns.len())
        .filter(|i| !t.derived.contains(&t.columns[*i].name))
        .collect();
    let cols: Vec<&str> = written.iter().map(|i| t.columns[*i].name).collect();
    let keys = cols[..t.key].join(", ");
    let updates: Vec<&str> = cols[t.key..].to_vec();
    let compared: Vec<&str> = updates
        .iter()
        .copied()
        .filter(|c| !t.is_volatile(c))
        .collect();
    let on_conflict = if compared.is_empty() {
        format!("ON CONFLICT ({keys}) DO NOTHING")
    } else {
        format!(
            "ON CONFLICT ({keys}) DO UPDATE SET {} WHERE {}",
            updates
                .iter()
                .map(|c| format!("{c} = excluded.{c}"))
                .collect::<Vec<_>>()
                .join(", "),
            compared
                .iter()
                .map(|c| format!("{}.{c} IS DISTINCT FROM excluded.{c}", t.name))
                .collect::<Vec<_>>()
                .join(" OR "),
        )
    };
    let backend = Backend::of(conn);
    let sql = |source: String| {
        format!(
            "INSERT INTO {} ({}) {source} {on_conflict}",
            t.name,
            cols.join(", "),
        )
    };
    let q = match backend {
        Backend::Sqlite => {
            let sql = sql(format!(
                "VALUES {}",
                anonymous_placeholders(rows.len(), cols.len())
            ));
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for r in rows {
                for i in &written {
                    q = bind(q, t.columns[*i].ty, &r[*i]);
                }
            }
            q
        }
        // PostgreSQL holds typed columns: the rows travel as one JSON document that the
        // server reads into typed rows, so a statement has one parameter however many rows
        // it carries, and the same text for every chunk of a table (one prepared statement).
        Backend::Postgres => {
            let columns: Vec<&Column> = written.iter().map(|i| &t.columns[*i]).collect();
            let doc = recordset(
                t.name,
                &columns,
                rows.iter().map(|r| written.iter().map(|i| &r[*i])),
            )?;
            sqlx::query(sqlx::AssertSqlSafe(sql(recordset_source(&columns)))).bind(doc)
        }
    };
    Ok(q.execute(&mut *conn)
        .await
        .op("upserting warehouse rows")?
        .rows_affected())
}

/// Deletes the children of `parents` that are not among `children`.
async fn delete_absent_children(
    conn: &mut Conn,
    t: &Table,
    parent_key: usize,
    parents: &[&Row],
    children: &[&Row],
    max_params: usize,
) -> Result<u64> {
    let mut by_parent: HashMap<&[Value], Vec<&Row>> = HashMap::new();
    for c in children {
        by_parent.entry(&c[..parent_key]).or_default().push(c);
    }
    let mut deleted = 0;
    let mut chunk_parents: Vec<&[Value]> = Vec::new();
    let mut chunk_children: Vec<&Row> = Vec::new();
    for p in parents {
        let pk = &p[..parent_key];
        let kids = by_parent.get(pk).map_or(&[][..], Vec::as_slice);
        let params =
            (chunk_parents.len() + 1) * parent_key + (chunk_children.len() + kids.len()) * t.key;
        if params > max_params && !chunk_parents.is_empty() {
            deleted += delete_chunk(conn, t, parent_key, &chunk_parents, &chunk_children).await?;
            chunk_parents.clear();
            chunk_children.clear();
        }
        chunk_parents.push(pk);
        chunk_children.extend(kids.iter().copied());
    }
    if !chunk_parents.is_empty() {
        deleted += delete_chunk(conn, t, parent_key, &chunk_parents, &chunk_children).await?;
    }
    Ok(deleted)
}

async fn delete_chunk(
    conn: &mut Conn,
    t: &Table,
    parent_key: usize,
    parents: &[&[Value]],
    keep: &[&Row],
) -> Result<u64> {
    let cols: Vec<&str> = t.columns.iter().map(|c| c.name).collect();
    // Parents of one org keyed by (org_id, id) match as `org_id = $1 AND id IN (...)`, which
    // SQLite answers from the primary key; a row-value IN over VALUES would scan the table.
    let one_org = parent_key == 2 && parents.windows(2).all(|w| w[0][0] == w[1][0]);
    let (mut sql, used) = if one_org {
        (
            format!(
                "DELETE FROM {} WHERE {} = $1 AND {} IN ({})",
                t.name,
                cols[0],
                cols[1],
                (0..parents.len())
                    .map(|i| format!("${}", i + 2))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            1 + parents.len(),
        )
    } else {
        (
            format!(
                "DELETE FROM {} WHERE ({}) IN (VALUES {})",
                t.name,
                cols[..parent_key].join(", "),
                placeholders(parents.len(), parent_key, 1),
            ),
            parents.len() * parent_key,
        )
    };
    if !keep.is_empty() {
        sql.push_str(&format!(
            " AND ({}) NOT IN (VALUES {})",
            cols[..t.key].join(", "),
            placeholders(keep.len(), t.key, 1 + used),
        ));
    }
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    if one_org {
        q = bind(q, t.columns[0].ty, &parents[0][0]);
        for p in parents {
            q = bind(q, t.columns[1].ty, &p[1]);
        }
    } else {
        for p in parents {
            for (c, v) in t.columns.iter().zip(p.iter()) {
                q = bind(q, c.ty, v);
            }
        }
    }
    for k in keep {
        for (c, v) in t.columns.iter().zip(k[..t.key].iter()) {
            q = bind(q, c.ty, v);
        }
    }
    Ok(q.execute(&mut *conn)
        .await
        .op("deleting absent child rows")?
        .rows_affected())
}

/// Removes participants.
pub async fn remove_participants(
    conn: &mut Conn,
    org: OrgId,
    conversation_id: i64,
    users: &[i64],
) -> Result<()> {
    for u in users {
        sqlx::query(
            "DELETE FROM conversation_participants \
             WHERE org_id = $1 AND conversation_id = $2 AND user_id = $3",
        )
        .bind(org.0)
        .bind(conversation_id)
        .bind(*u)
        .execute(&mut *conn)
        .await
        .op("removing a participant")?;
    }
    Ok(())
}

/// Sets one user's availability (from `user_availability_updated`).
pub async fn set_user_availability(
    conn: &mut Conn,
    org: OrgId,
    user_id: i64,
    availability: &str,
) -> Result<u64> {
    Ok(
        sqlx::query("UPDATE users SET availability = $3 WHERE org_id = $1 AND id = $2")
            .bind(org.0)
            .bind(user_id)
            .bind(availability)
            .execute(conn)
            .await
            .op("updating availability")?
            .rows_affected(),
    )
}

/// Records a `playbook_goal_met` event (one row per conversation, playbook and goal); answers
/// false, writing nothing, when it is about an erased person.
pub async fn record_goal_met(
    conn: &mut Conn,
    org: OrgId,
    g: &PlaybookGoalMet,
    event_id: i64,
) -> Result<bool> {
    crate::privacy::erasure_lock(conn, false).await?;
    let t = Tombstones::load(conn, &[org.0]).await?;
    if t.conversation(org.0, g.conversation_id.0)
        || g.contact_id.is_some_and(|c| t.contact(org.0, c.0))
        || g.contact_email
            .as_deref()
            .is_some_and(|e| t.email(org.0, e))
    {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO playbook_goals_met (org_id, conversation_id, playbook_id, goal_id, goal_name, \
         contact_id, event_id) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (org_id, conversation_id, playbook_id, goal_id) DO UPDATE SET \
         goal_name = excluded.goal_name, contact_id = excluded.contact_id",
    )
    .bind(org.0)
    .bind(g.conversation_id.0)
    .bind(g.playbook_id.map_or(0, |x| x.0))
    .bind(g.goal_id.clone().unwrap_or_default())
    .bind(&g.goal_name)
    .bind(g.contact_id.map(|x| x.0))
    .bind(event_id)
    .execute(&mut *conn)
    .await
    .op("recording a goal")?;
    crate::outcomes::refresh(conn, org.0, &[g.conversation_id.0]).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_cut_by_rows_and_by_text() {
        let row = |body: usize| -> Row { vec![Value::Int(1), Value::from("x".repeat(body))] };
        let rows: Vec<Row> = vec![row(10), row(10), row(10), row(10), row(10)];
        let refs: Vec<&Row> = rows.iter().collect();
        let sizes = |c: Vec<&[&Row]>| c.iter().map(|c| c.len()).collect::<Vec<_>>();
        assert_eq!(sizes(chunks(&refs, 2, 1 << 20)), vec![2, 2, 1]);
        // 18 bytes a row (8 for the integer): three fit in 60, not four.
        assert_eq!(sizes(chunks(&refs, 100, 60)), vec![3, 2]);
        // A row longer than the budget goes alone; nothing is dropped or empty.
        let long: Vec<Row> = vec![row(5), row(500), row(5)];
        let refs: Vec<&Row> = long.iter().collect();
        assert_eq!(sizes(chunks(&refs, 100, 100)), vec![1, 1, 1]);
        assert!(chunks(&[], 10, 10).is_empty());
    }
}
