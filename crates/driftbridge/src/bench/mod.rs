//! `driftbridge bench ...`: the benchmarks of docs/BENCHMARKS.md, each beside its baseline in
//! the same run. Nothing outside this folder imports it.

pub mod console;
pub mod crm;
pub mod export;
pub mod facts;
pub mod ingest;
pub mod leads;
pub mod retention;
mod support;
pub mod walk;
pub mod widget;
pub mod wrk;

use anyhow::Result;
use clap::Subcommand;

/// The benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Full walk of conversations and messages against a simulator child process.
    Walk(walk::WalkArgs),
    /// Durable webhook acks/s and ack latency at fixed rates, beside a no-op handler.
    Ingest(ingest::IngestArgs),
    /// Durable intake under wrk (an external load generator), workers running, beside a
    /// no-op handler.
    IngestWrk(wrk::WrkArgs),
    /// End-to-end latency from conversation_push to the conversation's rows.
    E2e(ingest::E2eArgs),
    /// Full export against a simulator child process: rows/s, calls versus the minimum, RSS.
    Export(export::ExportBenchArgs),
    /// Deliveries per second to each CRM simulator and push-to-CRM latency.
    Crm(crm::CrmBenchArgs),
    /// Event-to-CRM latency of booked meetings and goals met at a steady rate, every sink.
    Leads(leads::LeadsBenchArgs),
    /// Conversation facts: computing them, and writing conversations with and without them.
    Facts(facts::FactsArgs),
    /// Every console page on a million events and a hundred thousand jobs, beside an empty
    /// store.
    Console(console::ConsoleArgs),
    /// Thirty simulated days of webhooks with and without the retention purge: rows and file
    /// size per day.
    Retention(retention::RetentionArgs),
    /// Widget batches/s with many browsers at once, beside a no-op handler; webhook ack
    /// latency alone and while they post.
    Widget(widget::WidgetArgs),
}

/// Runs one benchmark (`database_url`: where `serve`-based ones keep their store).
pub async fn run(cmd: BenchCommand, database_url: Option<String>) -> Result<()> {
    match cmd {
        BenchCommand::Walk(a) => walk::walk(a).await,
        BenchCommand::Ingest(a) => ingest::ingest(a, database_url).await,
        BenchCommand::IngestWrk(a) => wrk::run(a, database_url).await,
        BenchCommand::E2e(a) => ingest::e2e(a, database_url).await,
        BenchCommand::Export(a) => export::run(a).await,
        BenchCommand::Crm(a) => crm::run_all(a, database_url).await,
        BenchCommand::Leads(a) => leads::run(a, database_url).await,
        BenchCommand::Retention(a) => retention::run(a).await,
        BenchCommand::Facts(a) => facts::run(a).await,
        BenchCommand::Console(a) => console::run(a, database_url).await,
        BenchCommand::Widget(a) => widget::run(a, database_url).await,
    }
}
