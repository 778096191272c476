//! What to export and how.

use std::collections::BTreeSet;

use bridge_store::tables::Stream;
use serde::Serialize;

/// Full export or incremental sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Every object; resumes an interrupted export, else starts from the top.
    Full,
    /// Only what changed since the stored high-water mark.
    Incremental,
}

/// A contact named in `--contacts-from`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContactRef {
    /// By email (every contact with it).
    Email(String),
    /// By the customer's external id.
    ExternalId(String),
}

/// Parses a contact list: one email or external id per line; blank lines and `#` comments
/// are skipped.
pub fn parse_contact_list(text: &str) -> Vec<ContactRef> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            if l.contains('@') {
                ContactRef::Email(l.to_owned())
            } else {
                ContactRef::ExternalId(l.to_owned())
            }
        })
        .collect()
}

/// What to export and how.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// Full or incremental.
    pub mode: Mode,
    /// Selected streams.
    pub streams: BTreeSet<Stream>,
    /// Conversations fetched at once.
    pub concurrency: usize,
    /// Conversation list page size (Drift's maximum is 100).
    pub page_size: u32,
    /// How far below the high-water mark a sync still looks (Drift's `updatedAt` can lag).
    pub overlap_ms: i64,
    /// Meetings with a slot starting at or after this (Drift serves the last 30 days).
    pub meetings_since_ms: i64,
    /// ... and before this.
    pub meetings_until_ms: i64,
    /// Width of one meetings request window.
    pub meetings_window_ms: i64,
    /// Extra contacts to export.
    pub contacts_from: Vec<ContactRef>,
    /// Contact ids referenced by stored webhook events.
    pub contacts_from_events: Vec<i64>,
    /// Forget checkpoints and start from the top.
    pub restart: bool,
    /// Erased people (from the driftbridge store): their rows are dropped before any
    /// destination sees them, while Drift may still serve them.
    pub tombstones: bridge_store::privacy::Tombstones,
    /// The newest erasure `tombstones` holds: with a `driftbridge_store`, a run reads the
    /// tombstones again before a commit once a newer erasure was made.
    pub tombstones_at: i64,
    /// Conversations in which a playbook goal was met (from the driftbridge store: only the
    /// webhook tells), for the facts a file destination gets.
    pub goals_met: std::collections::HashSet<i64>,
    /// First-touch attribution by conversation (from the driftbridge store: only the widget
    /// reports it), for the facts a file destination gets.
    pub attribution: std::collections::HashMap<i64, bridge_store::widget::Attribution>,
    /// Where to save attachments' bytes (`--attachments DIR`); `None`: metadata only.
    pub attachments_dir: Option<std::path::PathBuf>,
    /// After an incremental walk, sweep the conversation list for conversations Drift deleted
    /// and mark them `_deleted_at` (a SQL destination; one list call per 100 conversations).
    pub capture_deletes: bool,
    /// The driftbridge store that holds the erasures and the widget events (the `widget`
    /// stream reads them from it: Drift has no copy).
    pub driftbridge_store: Option<bridge_store::Store>,
}

/// A day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

impl ExportOptions {
    /// Defaults: every stream, 16 at once, pages of 100, a 1 h overlap, meetings of the last
    /// 30 days and the next 180.
    pub fn new(mode: Mode) -> Self {
        let now = drift_types::now_ms();
        ExportOptions {
            mode,
            streams: Stream::ALL.into_iter().collect(),
            concurrency: 16,
            page_size: 100,
            overlap_ms: 3_600_000,
            meetings_since_ms: now - 30 * DAY_MS,
            meetings_until_ms: now + 180 * DAY_MS,
            meetings_window_ms: 30 * DAY_MS,
            contacts_from: Vec::new(),
            contacts_from_events: Vec::new(),
            restart: false,
            tombstones: Default::default(),
            tombstones_at: 0,
            goals_met: Default::default(),
            attribution: Default::default(),
            capture_deletes: true,
            attachments_dir: None,
            driftbridge_store: None,
        }
    }

    /// Takes from the driftbridge store that `serve` writes what only it holds for `org`: the
    /// erasures' tombstones (read again as the run goes when a newer erasure is made), the
    /// goals met, the first touches, and (read as the run goes) the widget tables.
    pub async fn read_driftbridge_store(
        &mut self,
        store: bridge_store::Store,
        org: drift_types::OrgId,
    ) -> anyhow::Result<()> {
        let mut conn = store.acquire().await?;
        // The newest erasure first: one made while the tombstones are read is read again.
        self.tombstones_at = bridge_store::privacy::latest_erasure(&mut conn, org.0).await?;
        self.tombstones = bridge_store::privacy::Tombstones::load(&mut conn, &[org.0]).await?;
        self.goals_met = bridge_store::outcomes::goal_conversations(&mut conn, org.0).await?;
        self.attribution = bridge_store::widget::attributions(&mut conn, org.0).await?;
        drop(conn);
        self.driftbridge_store = Some(store);
        Ok(())
    }

    /// Whether the stream is selected.
    pub fn wants(&self, s: Stream) -> bool {
        self.streams.contains(&s)
    }

    pub(crate) fn conversation_family(&self) -> bool {
        [
            Stream::Conversations,
            Stream::Messages,
            Stream::Transcripts,
            Stream::Contacts,
        ]
        .into_iter()
        .any(|s| self.wants(s))
    }
}

/// `YYYY-MM-DD` (UTC midnight) or epoch milliseconds.
pub fn parse_time(s: &str) -> anyhow::Result<i64> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let parts: Vec<&str> = s.split('-').collect();
    if let [y, m, d] = parts.as_slice()
        && let (Ok(y), Ok(m), Ok(d)) = (y.parse::<i64>(), m.parse::<i64>(), d.parse::<i64>())
        && (1..=12).contains(&m)
        && (1..=31).contains(&d)
    {
        return Ok(drift_types::EpochMillis::from_date(y, m, d).0);
    }
    anyhow::bail!("{s:?} is neither a date (YYYY-MM-DD) nor epoch milliseconds")
}

/// A point in time as an operator types it for a filter: an age (`15m`, `2h`, `7d`, `1h 30m`)
/// counted back from `now_ms`, a date (`YYYY-MM-DD`, UTC midnight) or epoch milliseconds.
pub fn parse_since(s: &str, now_ms: i64) -> anyhow::Result<i64> {
    let s = s.trim();
    if let Ok(ago) = humantime::parse_duration(s) {
        return Ok(now_ms - i64::try_from(ago.as_millis()).unwrap_or(i64::MAX / 2));
    }
    parse_time(s).map_err(|_| {
        anyhow::anyhow!(
            "{s:?} is not an age (15m, 2h, 7d), a date (YYYY-MM-DD) or epoch milliseconds"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_an_age_a_date_or_milliseconds() {
        assert_eq!(parse_since("15m", 1_000_000).unwrap(), 100_000);
        assert_eq!(parse_since("1h 30m", 10_000_000).unwrap(), 4_600_000);
        assert_eq!(parse_since("1970-01-02", 0).unwrap(), 86_400_000);
        assert_eq!(parse_since("1234", 0).unwrap(), 1234);
        let e = parse_since("yesterday", 0).unwrap_err().to_string();
        assert!(e.contains("\"yesterday\" is not an age"), "{e}");
    }

    #[test]
    fn a_contact_list_tells_emails_from_external_ids_and_skips_comments() {
        let l = parse_contact_list("# vips\nada@example.com\n\n  crm-42 \n");
        assert_eq!(
            l,
            vec![
                ContactRef::Email("ada@example.com".into()),
                ContactRef::ExternalId("crm-42".into())
            ]
        );
    }
}
