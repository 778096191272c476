//! Drift error bodies (drift-api.md §4): `{"error":{type,message}}` and the older
//! `{"errors":[{type,message,param}]}`.

use serde::{Deserialize, Serialize};

/// One error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// `authentication_error`, `validation_error`, `not_found`, ...
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Human-readable text.
    #[serde(default)]
    pub message: String,
    /// The offending parameter, in the list form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
}

/// Either error body shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ApiErrorBody {
    /// `{"error": {...}}`.
    Single {
        /// The error.
        error: ErrorDetail,
    },
    /// `{"errors": [...]}`.
    List {
        /// The errors.
        errors: Vec<ErrorDetail>,
    },
}

impl ApiErrorBody {
    /// A single error body.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Single {
            error: ErrorDetail {
                kind: kind.into(),
                message: message.into(),
                param: None,
            },
        }
    }

    /// The first error.
    pub fn first(&self) -> Option<&ErrorDetail> {
        match self {
            Self::Single { error } => Some(error),
            Self::List { errors } => errors.first(),
        }
    }

    /// The first error's type.
    pub fn kind(&self) -> &str {
        self.first().map_or("", |e| e.kind.as_str())
    }

    /// The first error's message.
    pub fn message(&self) -> &str {
        self.first().map_or("", |e| e.message.as_str())
    }
}
