//! Widget events, first-touch attribution and visitors' consent (docs/WIDGET.md): stored by
//! the intake, derived per conversation by a job, read by the sinks, the facts and exports.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::tables::sql::{at, ms, write_expr};
use crate::tables::{Batch, ColumnType, Row, Table, Value, json_without_nul, table, without_nul};
use crate::{Backend, Conn, Op, Result};

/// One widget event as the intake stores it (validated, personal data already removed).
#[derive(Debug, Clone, PartialEq)]
pub struct NewWidgetEvent {
    /// The site's key.
    pub site: String,
    /// The browser's own event id (de-duplicates re-sent batches).
    pub event_id: String,
    /// The visitor (from the signed token, or the browser's own id on a public site).
    pub visitor_id: String,
    /// The tab's session.
    pub session_id: String,
    /// The widget event's name (`startConversation`, `message:sent`, ...).
    pub event_type: String,
    /// When the browser saw it (epoch ms).
    pub occurred_at: i64,
    /// The conversation it names.
    pub conversation_id: Option<i64>,
    /// The page it happened on.
    pub page_url: Option<String>,
    /// Its path.
    pub page_path: Option<String>,
    /// `document.referrer` of that page.
    pub referrer: Option<String>,
    /// The session's first touch.
    pub touch: Touch,
    /// The payload as JSON text.
    pub data: String,
}

pub use drift_types::widget::Touch;

/// A conversation's first-touch attribution.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribution {
    /// The site the visitor came through.
    pub site: String,
    /// The visitor.
    pub visitor_id: String,
    /// The conversation's contact, once the conversation is synced.
    pub contact_id: Option<i64>,
    /// The first touch.
    #[serde(flatten)]
    pub touch: Touch,
    /// The session's first widget event (epoch ms).
    pub first_seen_at: i64,
}

fn t(name: &str) -> &'static Table {
    table(name).unwrap_or_else(|| panic!("no table {name}"))
}

/// Stores the events of one batch, each at most once; answers which were new, in order.
pub async fn insert(
    conn: &mut Conn,
    org: i64,
    events: &[NewWidgetEvent],
    now: i64,
) -> Result<Vec<bool>> {
    let mut out = Vec::with_capacity(events.len());
    let b = Backend::of(conn);
    for e in events {
        let n = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO widget_events (org_id, site, event_id, visitor_id, session_id, \
             event_type, occurred_at, received_at, conversation_id, page_url, page_path, \
             referrer, utm_source, utm_medium, utm_campaign, utm_term, utm_content, \
             landing_page, first_referrer, data, _synced_at) VALUES ($1, $2, $3, $4, $5, $6, \
             {}, {}, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, {}, {}) \
             ON CONFLICT (org_id, site, event_id) DO NOTHING",
            at(b, "$7"),
            at(b, "$8"),
            write_expr(b, ColumnType::Json, "$20"),
            at(b, "$8"),
        )))
        .bind(org)
        .bind(&e.site)
        .bind(&e.event_id)
        .bind(&e.visitor_id)
        .bind(&e.session_id)
        .bind(&e.event_type)
        .bind(e.occurred_at)
        .bind(now)
        .bind(e.conversation_id)
        .bind(text(&e.page_url))
        .bind(text(&e.page_path))
        .bind(text(&e.referrer))
        .bind(text(&e.touch.utm_source))
        .bind(text(&e.touch.utm_medium))
        .bind(text(&e.touch.utm_campaign))
        .bind(text(&e.touch.utm_term))
        .bind(text(&e.touch.utm_content))
        .bind(text(&e.touch.landing_page))
        .bind(text(&e.touch.referrer))
        .bind(json_without_nul(&e.data).into_owned())
        .execute(&mut *conn)
        .await
        .op("storing a widget event")?
        .rows_affected();
        out.push(n > 0);
    }
    Ok(out)
}

/// Free text as stored: U+0000 replaced by U+FFFD, the rule of every stored text
/// (PostgreSQL refuses it in `TEXT` and `jsonb`, and one refused event would fail every
/// batch committed with it). Owned, as the `Any` driver copies every bound text anyway.
fn text(v: &Option<String>) -> Option<String> {
    v.as_deref().map(|s| without_nul(s).into_owned())
}

/// Records a visitor's latest answer to the consent prompt.
pub async fn record_consent(
    conn: &mut Conn,
    org: i64,
    site: &str,
    visitor: &str,
    accepted: bool,
    at: i64,
) -> Result<()> {
    let b = Backend::of(conn);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO widget_consents (org_id, site, visitor_id, accepted, recorded_at, \
         _synced_at) VALUES ($1, $2, $3, {}, {}, {}) \
         ON CONFLICT (org_id, site, visitor_id) DO UPDATE SET \
         accepted = excluded.accepted, recorded_at = excluded.recorded_at, \
         _synced_at = excluded._synced_at \
         WHERE widget_consents.recorded_at <= excluded.recorded_at",
        write_expr(b, ColumnType::Bool, "$4"),
        crate::tables::sql::at(b, "$5"),
        crate::tables::sql::at(b, "$5"),
    )))
    .bind(org)
    .bind(site)
    .bind(visitor)
    .bind(i64::from(accepted))
    .bind(at)
    .execute(&mut *conn)
    .await
    .op("recording a visitor's consent")?;
    Ok(())
}

type TouchRow = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
);

/// Derives the conversation's first-touch attribution from its widget events and stores it
/// (with its contact when the conversation is synced), then copies it into the
/// conversation's facts. `None` when no widget event names the conversation.
///
/// The visitor is the one whose event first named the conversation; the touch is the first
/// event of that visitor's session, which carries the session's first touch as the browser
/// kept it.
pub async fn derive_attribution(
    conn: &mut Conn,
    org: i64,
    conversation: i64,
) -> Result<Option<Attribution>> {
    let who: Option<(String, String, String)> = sqlx::query_as(
        "SELECT site, visitor_id, session_id FROM widget_events \
         WHERE org_id = $1 AND conversation_id = $2 ORDER BY occurred_at, event_id LIMIT 1",
    )
    .bind(org)
    .bind(conversation)
    .fetch_optional(&mut *conn)
    .await
    .op("finding a conversation's visitor")?;
    let Some((site, visitor, session)) = who else {
        return Ok(None);
    };
    let first: TouchRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT utm_source, utm_medium, utm_campaign, utm_term, utm_content, landing_page, \
         first_referrer, {} FROM widget_events \
         WHERE org_id = $1 AND site = $2 AND visitor_id = $3 AND session_id = $4 \
         ORDER BY occurred_at, event_id LIMIT 1",
        ms(Backend::of(conn), "occurred_at")
    )))
    .bind(org)
    .bind(&site)
    .bind(&visitor)
    .bind(&session)
    .fetch_one(&mut *conn)
    .await
    .op("reading a session's first touch")?;
    let contact: Option<Option<i64>> =
        sqlx::query_scalar("SELECT contact_id FROM conversations WHERE org_id = $1 AND id = $2")
            .bind(org)
            .bind(conversation)
            .fetch_optional(&mut *conn)
            .await
            .op("reading a conversation's contact")?;
    let a = Attribution {
        site,
        visitor_id: visitor,
        contact_id: contact.flatten(),
        touch: Touch {
            utm_source: first.0,
            utm_medium: first.1,
            utm_campaign: first.2,
            utm_term: first.3,
            utm_content: first.4,
            landing_page: first.5,
            referrer: first.6,
        },
        first_seen_at: first.7,
    };
    let mut b = Batch::new();
    b.push(t("conversation_attribution"), row(org, conversation, &a));
    crate::warehouse::write(conn, &b).await?;
    refresh_facts(conn, org, &[conversation]).await?;
    Ok(Some(a))
}

fn row(org: i64, conversation: i64, a: &Attribution) -> Row {
    let s = |v: &Option<String>| Value::from(v.clone());
    vec![
        org.into(),
        conversation.into(),
        a.site.as_str().into(),
        a.visitor_id.as_str().into(),
        a.contact_id.into(),
        s(&a.touch.utm_source),
        s(&a.touch.utm_medium),
        s(&a.touch.utm_campaign),
        s(&a.touch.utm_term),
        s(&a.touch.utm_content),
        s(&a.touch.landing_page),
        s(&a.touch.referrer),
        a.first_seen_at.into(),
    ]
}

/// Copies the stored attribution of the org's conversations `ids` into their facts rows.
pub async fn refresh_facts(conn: &mut Conn, org: i64, ids: &[i64]) -> Result<()> {
    for chunk in ids.chunks(crate::idlist::PER_STATEMENT) {
        let list = crate::idlist::literal(chunk);
        let col = |c: &str| {
            format!(
                "{c} = (SELECT a.{c} FROM conversation_attribution a WHERE a.org_id = \
                 conversation_facts.org_id AND a.conversation_id = conversation_facts.conversation_id)"
            )
        };
        let sets = [
            "utm_source",
            "utm_medium",
            "utm_campaign",
            "landing_page",
            "referrer",
        ]
        .map(col)
        .join(", ");
        // The list holds integers only; the column names are constants.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE conversation_facts SET {sets} WHERE org_id = $1 AND conversation_id IN ({list}) \
             AND EXISTS (SELECT 1 FROM conversation_attribution a WHERE a.org_id = \
             conversation_facts.org_id AND a.conversation_id = conversation_facts.conversation_id)"
        )))
        .bind(org)
        .execute(&mut *conn)
        .await
        .op("copying attribution into the facts")?;
    }
    Ok(())
}

/// The stored attribution of one conversation.
pub async fn attribution(
    conn: &mut Conn,
    org: i64,
    conversation: i64,
) -> Result<Option<Attribution>> {
    Ok(attributions_where(conn, org, Some(conversation))
        .await?
        .into_values()
        .next())
}

/// Every stored attribution of the org, by conversation (for a file export's facts).
pub async fn attributions(conn: &mut Conn, org: i64) -> Result<HashMap<i64, Attribution>> {
    attributions_where(conn, org, None).await
}

type AttributionRow = (
    i64,
    String,
    String,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
);

async fn attributions_where(
    conn: &mut Conn,
    org: i64,
    conversation: Option<i64>,
) -> Result<HashMap<i64, Attribution>> {
    let select = format!(
        "SELECT conversation_id, site, visitor_id, contact_id, utm_source, \
        utm_medium, utm_campaign, utm_term, utm_content, landing_page, referrer, {} \
        FROM conversation_attribution WHERE org_id = $1",
        ms(Backend::of(conn), "first_seen_at")
    );
    let q = match conversation {
        Some(c) => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{select} AND conversation_id = $2"
        )))
        .bind(org)
        .bind(c),
        None => sqlx::query_as(sqlx::AssertSqlSafe(select)).bind(org),
    };
    let rows: Vec<AttributionRow> = q.fetch_all(&mut *conn).await.op("reading attribution")?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.0,
                Attribution {
                    site: r.1,
                    visitor_id: r.2,
                    contact_id: r.3,
                    touch: Touch {
                        utm_source: r.4,
                        utm_medium: r.5,
                        utm_campaign: r.6,
                        utm_term: r.7,
                        utm_content: r.8,
                        landing_page: r.9,
                        referrer: r.10,
                    },
                    first_seen_at: r.11,
                },
            )
        })
        .collect())
}

/// Links the attribution of synced conversations to their contacts (after a conversation
/// sync wrote its row); answers how many rows changed.
pub async fn link_contacts(conn: &mut Conn, org: i64, ids: &[i64]) -> Result<u64> {
    let mut n = 0;
    for chunk in ids.chunks(crate::idlist::PER_STATEMENT) {
        let list = crate::idlist::literal(chunk);
        n += sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE conversation_attribution SET contact_id = (SELECT c.contact_id FROM \
             conversations c WHERE c.org_id = conversation_attribution.org_id AND c.id = \
             conversation_attribution.conversation_id) WHERE org_id = $1 AND conversation_id \
             IN ({list}) AND contact_id IS NULL"
        )))
        .bind(org)
        .execute(&mut *conn)
        .await
        .op("linking attribution to contacts")?
        .rows_affected();
    }
    Ok(n)
}

/// The free-text columns of `widget_events` a visitor's email can stand in (a form's
/// `emailCapture` on a site that collects contacts, a campaign link's `?email=`).
const TEXT_COLUMNS: [&str; 10] = [
    "page_url",
    "page_path",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "landing_page",
    "first_referrer",
];

/// `LIKE` patterns (escape `\`) matching text that holds `email`, as typed or with its `@`
/// percent-encoded in a URL.
fn email_patterns(email: &str) -> [String; 2] {
    let escaped = email
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    [
        format!("%{escaped}%"),
        format!("%{}%", escaped.replace('@', "\\%40")),
    ]
}

/// Erases the widget data of an erased person: every event of the visitors who had their
/// conversations (also those before the conversation) or who left their email (lower-cased)
/// in an event, those visitors' consent, and the conversations' attribution. Answers the rows
/// deleted per table.
pub async fn erase(
    conn: &mut Conn,
    org: i64,
    email: &str,
    conversations: &[i64],
) -> Result<Vec<(&'static str, i64)>> {
    let mut visitors: Vec<(String, String)> = Vec::new();
    if !email.is_empty() {
        let mut texts: Vec<String> = TEXT_COLUMNS.iter().map(|c| format!("LOWER({c})")).collect();
        texts.push("LOWER(CAST(data AS TEXT))".into());
        let cond = texts
            .iter()
            .flat_map(|t| {
                [
                    format!("{t} LIKE $2 ESCAPE '\\'"),
                    format!("{t} LIKE $3 ESCAPE '\\'"),
                ]
            })
            .collect::<Vec<_>>()
            .join(" OR ");
        let [typed, encoded] = email_patterns(email);
        let found: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT DISTINCT site, visitor_id FROM widget_events WHERE org_id = $1 AND ({cond})"
        )))
        .bind(org)
        .bind(typed)
        .bind(encoded)
        .fetch_all(&mut *conn)
        .await
        .op("finding the visitors who left an erased email")?;
        visitors.extend(found);
    }
    for chunk in conversations.chunks(crate::idlist::PER_STATEMENT) {
        let list = crate::idlist::literal(chunk);
        let found: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT DISTINCT site, visitor_id FROM widget_events WHERE org_id = $1 \
             AND conversation_id IN ({list})"
        )))
        .bind(org)
        .fetch_all(&mut *conn)
        .await
        .op("finding an erased person's visitors")?;
        visitors.extend(found);
    }
    visitors.sort();
    visitors.dedup();
    let (mut events, mut consents, mut attribution) = (0, 0, 0);
    for (site, visitor) in &visitors {
        for (table, n) in [
            ("widget_events", &mut events),
            ("widget_consents", &mut consents),
        ] {
            *n += sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE org_id = $1 AND site = $2 AND visitor_id = $3"
            )))
            .bind(org)
            .bind(site)
            .bind(visitor)
            .execute(&mut *conn)
            .await
            .op("erasing widget data")?
            .rows_affected() as i64;
        }
        attribution += sqlx::query(
            "DELETE FROM conversation_attribution WHERE org_id = $1 AND site = $2 AND visitor_id = $3",
        )
        .bind(org)
        .bind(site)
        .bind(visitor)
        .execute(&mut *conn)
        .await
        .op("erasing attribution")?
        .rows_affected() as i64;
    }
    Ok(vec![
        ("widget_events", events),
        ("widget_consents", consents),
        ("conversation_attribution", attribution),
    ])
}

/// One page of the org's rows of a widget table in key order, after the row whose key
/// (without `org_id`) is `after`, for an export: a keyset walk, so rows added or purged
/// meanwhile shift nothing.
pub async fn page(
    conn: &mut Conn,
    org: i64,
    name: &str,
    after: Option<&[Value]>,
    limit: i64,
) -> Result<Vec<Row>> {
    let t = t(name);
    let cols: Vec<&str> = t.columns.iter().map(|c| c.name).collect();
    let keys = &cols[1..t.key];
    let marks: Vec<String> = (0..keys.len()).map(|i| format!("${}", i + 3)).collect();
    let after_sql = match after {
        Some(_) => format!("AND ({}) > ({})", keys.join(", "), marks.join(", ")),
        None => String::new(),
    };
    // Names come from the static table definitions, never from input.
    let sql = format!(
        "SELECT {} FROM {} WHERE org_id = $1 {after_sql} ORDER BY {} LIMIT $2",
        t.select_list(crate::Backend::of(conn)),
        t.name,
        keys.join(", ")
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(org).bind(limit);
    for v in after.unwrap_or_default() {
        q = match v {
            Value::Int(i) => q.bind(*i),
            Value::Text(s) => q.bind(s.clone()),
            Value::Null => q.bind(None::<i64>),
        };
    }
    let rows = q.fetch_all(&mut *conn).await.op("reading widget rows")?;
    Ok(rows.iter().map(|r| t.row(r)).collect())
}

/// The widget tables, in export order.
pub const TABLES: [&str; 3] = [
    "widget_events",
    "conversation_attribution",
    "widget_consents",
];
