//! Tombstones at write time: the rows of a batch (or of export files) that belong to an erased
//! person, dropped before anything writes them.

use std::collections::{HashMap, HashSet};

use super::erase::in_list;
use super::key::SubjectKey;
use crate::tables::{Batch, TABLES, Table, Value};
use crate::{Conn, Op, Result};

/// The tombstones of some orgs, with the key that made them.
#[derive(Debug, Clone, Default)]
pub struct Tombstones {
    key: Option<SubjectKey>,
    by_org: HashMap<i64, HashSet<String>>,
}

/// What [`Tombstones::scrub`] dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scrubbed {
    /// Rows dropped.
    pub rows: usize,
    /// Conversations dropped (their ids).
    pub conversations: Vec<i64>,
    /// Contacts dropped (their ids).
    pub contacts: Vec<i64>,
}

impl Tombstones {
    /// The tombstones of `orgs` (every org when empty).
    pub async fn load(conn: &mut Conn, orgs: &[i64]) -> Result<Tombstones> {
        let rows: Vec<(i64, String)> = if orgs.is_empty() {
            sqlx::query_as("SELECT org_id, digest FROM tombstones")
                .fetch_all(&mut *conn)
                .await
        } else {
            let sql = format!(
                "SELECT org_id, digest FROM tombstones WHERE org_id IN ({})",
                in_list(orgs.len(), 1)
            );
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
            for o in orgs {
                q = q.bind(*o);
            }
            q.fetch_all(&mut *conn).await
        }
        .op("reading tombstones")?;
        if rows.is_empty() {
            return Ok(Tombstones::default());
        }
        let mut by_org: HashMap<i64, HashSet<String>> = HashMap::new();
        for (org, d) in rows {
            by_org.entry(org).or_default().insert(d);
        }
        Ok(Tombstones {
            key: SubjectKey::load(conn).await?,
            by_org,
        })
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.by_org.is_empty() || self.key.is_none()
    }

    fn holds(&self, org: i64, digest: impl FnOnce(&SubjectKey) -> String) -> bool {
        match (&self.key, self.by_org.get(&org)) {
            (Some(k), Some(set)) => set.contains(&digest(k)),
            _ => false,
        }
    }

    /// Whether the email was erased in `org`.
    pub fn email(&self, org: i64, email: &str) -> bool {
        self.holds(org, |k| k.email(email))
    }

    /// Whether the contact was erased in `org`.
    pub fn contact(&self, org: i64, id: i64) -> bool {
        self.holds(org, |k| k.contact(id))
    }

    /// Whether the conversation was erased in `org`.
    pub fn conversation(&self, org: i64, id: i64) -> bool {
        self.holds(org, |k| k.conversation(id))
    }

    /// Drops every row of the batch about an erased person ([`Scrubber`]).
    pub fn scrub(&self, batch: &mut Batch) -> Scrubbed {
        if self.is_empty() || batch.is_empty() {
            return Scrubbed::default();
        }
        let mut s = Scrubber::new(self);
        for t in Scrubber::order() {
            batch.retain(t, |r| s.keep(t, r));
        }
        s.finish()
    }
}

/// Who a write to a CRM was about: the Drift ids and the email it carried.
#[derive(Debug, Clone, Copy, Default)]
pub struct WrittenAbout<'a> {
    /// Drift contact ids.
    pub contacts: &'a [i64],
    /// Drift conversation ids.
    pub conversations: &'a [i64],
    /// The email the write carried.
    pub email: Option<&'a str>,
}

/// The erasure, if any, that took the person a sink write was about, asked in the
/// transaction that would record the write. A write that began before the erasure and ended
/// after it made CRM records the erasure could not know of; its caller hands them to the
/// sink's erasure instead of recording them. On PostgreSQL this takes the erasure lock's
/// shared side ([`crate::privacy::erasure_lock`]): an erasure in progress commits first and
/// is seen here, and one that starts later reads what this transaction records.
pub async fn erasure_of(conn: &mut Conn, org: i64, about: WrittenAbout<'_>) -> Result<Option<i64>> {
    super::erasure_lock(conn, false).await?;
    let Some(key) = SubjectKey::load(conn).await? else {
        return Ok(None); // no erasure ever ran
    };
    let digests: Vec<String> = about
        .contacts
        .iter()
        .map(|&c| key.contact(c))
        .chain(about.conversations.iter().map(|&c| key.conversation(c)))
        .chain(about.email.map(|e| key.email(e)))
        .collect();
    if digests.is_empty() {
        return Ok(None);
    }
    let sql = format!(
        "SELECT MAX(erasure_id) FROM tombstones WHERE org_id = $1 AND digest IN ({})",
        in_list(digests.len(), 2)
    );
    let mut q = sqlx::query_scalar::<_, Option<i64>>(sqlx::AssertSqlSafe(sql)).bind(org);
    for d in &digests {
        q = q.bind(d);
    }
    q.fetch_one(&mut *conn).await.op("reading tombstones")
}

/// Decides row by row, across tables, what belongs to an erased person: contacts (and users)
/// with an erased email or id, conversations that are theirs or whose contact is, and every
/// row of those conversations and of their messages. Rows must come in [`Scrubber::order`]
/// (contacts before the conversations that name them, messages before their buttons).
#[derive(Debug)]
pub struct Scrubber<'a> {
    t: &'a Tombstones,
    contacts: HashSet<(i64, i64)>,
    conversations: HashSet<(i64, i64)>,
    messages: HashSet<(i64, i64)>,
    rows: usize,
}

/// A column's position in a table, by name.
fn col(t: &Table, name: &str) -> Option<usize> {
    t.index(name)
}

fn int(r: &[Value], i: Option<usize>) -> Option<i64> {
    i.and_then(|i| r.get(i)?.as_i64())
}

fn text(r: &[Value], i: Option<usize>) -> Option<&str> {
    i.and_then(|i| r.get(i)?.as_str())
}

impl<'a> Scrubber<'a> {
    /// A scrubber of `t`'s tombstones.
    pub fn new(t: &'a Tombstones) -> Self {
        Scrubber {
            t,
            contacts: HashSet::new(),
            conversations: HashSet::new(),
            messages: HashSet::new(),
            rows: 0,
        }
    }

    /// The tables in the order rows must come: contacts and users first, then [`TABLES`].
    pub fn order() -> impl Iterator<Item = &'static Table> {
        let first = ["contacts", "users"];
        first
            .into_iter()
            .filter_map(crate::tables::table)
            .chain(TABLES.iter().filter(move |t| !first.contains(&t.name)))
    }

    fn erased_contact(&self, org: i64, id: i64) -> bool {
        self.contacts.contains(&(org, id)) || self.t.contact(org, id)
    }

    fn erased_conversation(&self, org: i64, id: i64) -> bool {
        self.conversations.contains(&(org, id)) || self.t.conversation(org, id)
    }

    /// Whether the row of `table` stays (false: it is about an erased person).
    pub fn keep(&mut self, table: &Table, r: &[Value]) -> bool {
        if self.t.is_empty() {
            return true;
        }
        let org = int(r, Some(0)).unwrap_or(0);
        let gone = match table.name {
            "contacts" | "users" => {
                let id = int(r, col(table, "id")).unwrap_or(0);
                let gone = text(r, col(table, "email")).is_some_and(|e| self.t.email(org, e))
                    || (table.name == "contacts" && self.t.contact(org, id));
                if gone && table.name == "contacts" {
                    self.contacts.insert((org, id));
                }
                gone
            }
            "conversations" => {
                let id = int(r, col(table, "id")).unwrap_or(0);
                let gone = self.erased_conversation(org, id)
                    || int(r, col(table, "contact_id"))
                        .is_some_and(|c| self.erased_contact(org, c));
                if gone {
                    self.conversations.insert((org, id));
                }
                gone
            }
            "messages" => {
                let by_contact = text(r, col(table, "author_type")) == Some("contact")
                    && int(r, col(table, "author_id")).is_some_and(|a| self.erased_contact(org, a));
                let gone = by_contact
                    || int(r, col(table, "conversation_id"))
                        .is_some_and(|c| self.erased_conversation(org, c));
                if gone {
                    self.messages
                        .insert((org, int(r, col(table, "id")).unwrap_or(0)));
                }
                gone
            }
            "message_buttons" => {
                int(r, col(table, "message_id")).is_some_and(|m| self.messages.contains(&(org, m)))
            }
            "attachments" => {
                int(r, col(table, "message_id")).is_some_and(|m| self.messages.contains(&(org, m)))
                    || int(r, col(table, "conversation_id"))
                        .is_some_and(|c| self.erased_conversation(org, c))
            }
            "contact_tags" => {
                int(r, col(table, "contact_id")).is_some_and(|c| self.erased_contact(org, c))
            }
            "meetings" => {
                int(r, col(table, "scheduler_id")).is_some_and(|c| self.erased_contact(org, c))
                    || int(r, col(table, "conversation_id"))
                        .is_some_and(|c| self.erased_conversation(org, c))
            }
            _ => int(r, col(table, "conversation_id"))
                .is_some_and(|c| self.erased_conversation(org, c)),
        };
        self.rows += usize::from(gone);
        !gone
    }

    /// What was dropped.
    pub fn finish(self) -> Scrubbed {
        Scrubbed {
            rows: self.rows,
            conversations: self.conversations.into_iter().map(|(_, c)| c).collect(),
            contacts: self.contacts.into_iter().map(|(_, c)| c).collect(),
        }
    }
}
