//! A built sink of any kind: one enum over the four sinks, dispatching the [`Sink`] contract.

use serde_json::Value;

use crate::sink::{
    ConversationBundle, Delivered, ErasureRequest, LeadSignal, OptOut, Prior, Sink, SinkError,
};

/// A built sink of any kind.
#[derive(Debug)]
pub enum AnySink {
    /// HubSpot.
    Hubspot(crate::hubspot::HubSpot),
    /// Salesforce.
    Salesforce(crate::salesforce::Salesforce),
    /// Marketo.
    Marketo(crate::marketo::Marketo),
    /// HTTP.
    Http(crate::http::HttpSink),
}

impl Sink for AnySink {
    fn render(&self, b: &ConversationBundle) -> Value {
        match self {
            AnySink::Hubspot(s) => s.render(b),
            AnySink::Salesforce(s) => s.render(b),
            AnySink::Marketo(s) => s.render(b),
            AnySink::Http(s) => s.render(b),
        }
    }

    async fn deliver(
        &self,
        b: &ConversationBundle,
        doc: &Value,
        prior: &Prior,
    ) -> Result<Delivered, SinkError> {
        match self {
            AnySink::Hubspot(s) => s.deliver(b, doc, prior).await,
            AnySink::Salesforce(s) => s.deliver(b, doc, prior).await,
            AnySink::Marketo(s) => s.deliver(b, doc, prior).await,
            AnySink::Http(s) => s.deliver(b, doc, prior).await,
        }
    }

    async fn erase(&self, r: &ErasureRequest) -> Result<u32, SinkError> {
        match self {
            AnySink::Hubspot(s) => s.erase(r).await,
            AnySink::Salesforce(s) => s.erase(r).await,
            AnySink::Marketo(s) => s.erase(r).await,
            AnySink::Http(s) => s.erase(r).await,
        }
    }

    async fn opt_out(&self, o: &OptOut) -> Result<u32, SinkError> {
        match self {
            AnySink::Hubspot(s) => s.opt_out(o).await,
            AnySink::Salesforce(s) => s.opt_out(o).await,
            AnySink::Marketo(s) => s.opt_out(o).await,
            AnySink::Http(s) => s.opt_out(o).await,
        }
    }

    fn render_signal(&self, x: &LeadSignal) -> Value {
        match self {
            AnySink::Hubspot(s) => s.render_signal(x),
            AnySink::Salesforce(s) => s.render_signal(x),
            AnySink::Marketo(s) => s.render_signal(x),
            AnySink::Http(s) => s.render_signal(x),
        }
    }

    async fn signal(
        &self,
        x: &LeadSignal,
        doc: &Value,
        prior: &Prior,
    ) -> Result<Delivered, SinkError> {
        match self {
            AnySink::Hubspot(s) => s.signal(x, doc, prior).await,
            AnySink::Salesforce(s) => s.signal(x, doc, prior).await,
            AnySink::Marketo(s) => s.signal(x, doc, prior).await,
            AnySink::Http(s) => s.signal(x, doc, prior).await,
        }
    }
}
