//! A job kind: a type whose fields are its arguments, stored as JSON under a stable name
//! (crates.io's `BackgroundJob`). Renaming a kind or a field breaks jobs already stored, so
//! both are part of the stored format; a test holds one stored job of each kind.

use bridge_queue::{JobError, NewJob};
use drift_types::OrgId;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// One kind of job.
pub trait JobKind: Serialize + DeserializeOwned {
    /// The stable stored name.
    const NAME: &'static str;

    /// The job to enqueue for `org`.
    fn to_job(&self, org: Option<OrgId>) -> NewJob {
        NewJob {
            name: Self::NAME.into(),
            org_id: org.map(|o| o.0),
            // Job arguments are structs of strings, numbers and string-keyed maps:
            // serialising them cannot fail.
            args: serde_json::to_value(self).expect("job arguments serialise to JSON"),
            event_id: None,
        }
    }

    /// Reads stored arguments; arguments that do not fit can never run, so that is final.
    fn decode(args: &serde_json::Value) -> Result<Self, JobError> {
        serde_json::from_value(args.clone()).map_err(|e| {
            JobError::Permanent(anyhow::Error::new(e).context(format!(
                "the arguments of job {:?} do not decode",
                Self::NAME
            )))
        })
    }
}
