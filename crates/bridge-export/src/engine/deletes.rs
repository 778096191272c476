//! Delete capture for a sync: Drift's conversation list no longer holds a deleted
//! conversation, so after the incremental walk a sweep lists every id (list pages only, a
//! hundred ids a call), and each stored conversation that is missing and that Drift answers
//! 404 for is marked `_deleted_at` (docs/SCHEMA.md). A conversation that is missing from the
//! list but still served is left alone.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use anyhow::Result;
use drift_client::ListConversations;

use super::context::{Ctx, stored_ids};
use super::output::ExportDestination;

/// Lists every conversation id, confirms the stored ones that are missing, marks them.
pub(crate) async fn sweep<S: ExportDestination>(ctx: &Ctx<S>) -> Result<u64> {
    let stored = stored_ids(&ctx.sink, "conversations").await?;
    if stored.is_empty() {
        return Ok(0);
    }
    let list = ListConversations {
        limit: Some(ctx.opts.page_size),
        ..Default::default()
    };
    let mut listed = HashSet::with_capacity(stored.len());
    let mut next: Option<String> = None;
    loop {
        let (page, following) = ctx
            .client
            .conversations_page(next.as_deref(), &list)
            .await?;
        let empty = page.is_empty();
        listed.extend(page.into_iter().map(|c| c.id.0));
        match following {
            Some(n) if !empty => next = Some(n),
            _ => break,
        }
    }
    let mut gone = Vec::new();
    for id in stored.difference(&listed) {
        match ctx
            .client
            .conversation(drift_types::ConversationId(*id))
            .await
        {
            Err(e) if e.is_not_found() => gone.push(*id),
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
    }
    if gone.is_empty() {
        return Ok(0);
    }
    let n = ctx.sink.mark_deleted(&gone, drift_types::now_ms()).await?;
    ctx.progress.changed.fetch_add(n, Ordering::Relaxed);
    tracing::info!(conversations = n, "conversations deleted in Drift marked");
    Ok(n)
}
