//! Erasure and tombstones (docs/PRIVACY.md).
//!
//! An erased person leaves behind no plaintext: the store keeps *tombstones*, HMAC-SHA256
//! digests (under a random key in `privacy_key`) of their normalized email and of the contact
//! and conversation ids that were theirs. [`Tombstones::scrub`] drops every row of a batch that
//! matches one, and every warehouse write runs it ([`crate::warehouse::write`]), so no later
//! webhook, sync, export or replay writes the person again, while Drift (whose own erasure is
//! asynchronous) may still serve them.
//!
//! The key sits in the same database as the digests: someone holding the whole database can
//! test a guessed email against them, but nobody can read the list of erased people from it.

mod access;
mod erase;
mod key;
mod log;
mod opt_out;
mod redact;
mod scrub;

pub use access::held_about;
pub use erase::{Erased, ErasedDelivery, erase_org, subject_orgs};
pub(crate) use key::erasure_lock;
pub use key::{SubjectKey, normalize_email};
pub use log::{Erasure, ErasureSink, erasure, erasures, latest_erasure, mark_sink, sink_states};
pub use opt_out::{opted_out, record_opt_out};
pub use redact::{forget_job_data, mentions};
pub use scrub::{Scrubbed, Scrubber, Tombstones, WrittenAbout, erasure_of};
