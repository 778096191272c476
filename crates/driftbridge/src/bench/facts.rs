//! `driftbridge bench facts`: the cost of conversation facts. The simulator's generator makes
//! N conversations with their messages in memory; their rows are written to a fresh SQLite
//! file in pages of 500 conversations, once without the facts (the baseline) and once with
//! them, and the facts' computation alone is timed too.

use std::time::{Duration, Instant};

use anyhow::Result;
use bridge_store::tables::{Batch, Facts};
use bridge_store::{Store, warehouse};
use clap::Args;
use drift_sim::DataConfig;

/// Arguments.
#[derive(Debug, Args)]
pub struct FactsArgs {
    /// Conversations.
    #[arg(long, default_value_t = 50_000)]
    pub conversations: u32,
}

/// Conversations per committed page, as an export commits them.
const PAGE: usize = 500;

async fn write_all(store: &Store, pages: &[Batch]) -> Result<Duration> {
    let t = Instant::now();
    for b in pages {
        let mut tx = store.begin().await?;
        warehouse::write(&mut tx, b).await?;
        tx.commit().await?;
    }
    Ok(t.elapsed())
}

/// Runs the benchmark.
pub async fn run(a: FactsArgs) -> Result<()> {
    let world = drift_sim::generate::generate(&DataConfig {
        conversations: a.conversations,
        ..DataConfig::default()
    });
    let (org_id, org) = world
        .orgs
        .iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("no org"))?;
    let org_id = *org_id;
    let recs: Vec<_> = org.conversations.values().collect();
    let messages: usize = recs.iter().map(|r| r.messages.len()).sum();

    let t = Instant::now();
    let mut agent_messages = 0;
    for r in &recs {
        agent_messages += Facts::of(&r.conversation, &r.messages).agent_messages;
    }
    let compute = t.elapsed();

    let pages = |facts: bool| -> Vec<Batch> {
        recs.chunks(PAGE)
            .map(|chunk| {
                let mut b = Batch::new();
                for r in chunk {
                    b.conversation(org_id, &r.conversation, 0);
                    r.messages.iter().for_each(|m| b.message(org_id, m));
                    if facts {
                        b.conversation_facts(
                            org_id,
                            &r.conversation,
                            &r.messages,
                            Default::default(),
                        );
                    }
                }
                b
            })
            .collect()
    };
    let dir = tempfile::tempdir()?;
    let mut took = Vec::new();
    for (name, facts) in [("rows without facts", false), ("rows with facts", true)] {
        let url = format!(
            "sqlite:{}",
            dir.path().join(format!("{facts}.db")).display()
        );
        let store = Store::connect(&url).await?;
        let first = write_all(&store, &pages(facts)).await?;
        // A refresh: the same rows again (only changed rows are rewritten).
        let again = write_all(&store, &pages(facts)).await?;
        store.close().await;
        took.push((name, first, again));
    }
    println!(
        "{} conversations, {messages} messages ({agent_messages} by agents), SQLite, pages of {PAGE}",
        recs.len()
    );
    println!(
        "  computing the facts alone: {:.1} ms ({:.2} µs a conversation)",
        compute.as_secs_f64() * 1e3,
        compute.as_secs_f64() * 1e6 / recs.len().max(1) as f64
    );
    for (name, first, again) in &took {
        println!(
            "  {name:<20} first write {:>7.2} s, refresh {:>7.2} s",
            first.as_secs_f64(),
            again.as_secs_f64()
        );
    }
    Ok(())
}
