//! `--to`: where an export goes.

use std::path::PathBuf;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::files::FileFormat;

/// Where an export goes, parsed from `--to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A driftbridge store: `sqlite:PATH` or `postgres://...` (the same tables as `serve`).
    Sql(String),
    /// One folder per table of part files, plus `_manifest.json`.
    Files {
        /// JSON lines, CSV or Parquet.
        format: FileFormat,
        /// The directory.
        dir: PathBuf,
    },
}

impl Target {
    /// Whether rows are upserted by key (SQL), so that an incremental sync can update them;
    /// file destinations append parts.
    pub fn upserts(&self) -> bool {
        matches!(self, Target::Sql(_))
    }
}

impl FromStr for Target {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(Target::Sql(s.to_owned()));
        }
        let Some((scheme, rest)) = s.split_once(':') else {
            return Err(Error::Target(s.to_owned()));
        };
        if rest.is_empty() {
            return Err(Error::Target(s.to_owned()));
        }
        let format = match scheme {
            "sqlite" => return Ok(Target::Sql(s.to_owned())),
            "jsonl" => FileFormat::Jsonl,
            "csv" => FileFormat::Csv,
            "parquet" => FileFormat::Parquet,
            _ => return Err(Error::Target(s.to_owned())),
        };
        Ok(Target::Files {
            format,
            dir: PathBuf::from(rest),
        })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Sql(url) => f.write_str(&bridge_store::redact_url(url)),
            Target::Files { format, dir } => write!(f, "{}:{}", format.name(), dir.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_from_their_urls_and_bad_ones_say_what_is_accepted() {
        assert_eq!(
            "sqlite:out.db".parse::<Target>().unwrap(),
            Target::Sql("sqlite:out.db".into())
        );
        assert!(matches!(
            "postgres://u@h/db".parse::<Target>().unwrap(),
            Target::Sql(_)
        ));
        assert_eq!(
            "parquet:/tmp/x".parse::<Target>().unwrap(),
            Target::Files {
                format: FileFormat::Parquet,
                dir: "/tmp/x".into()
            }
        );
        for bad in ["s3://bucket", "jsonl:", "out.db", "mysql://x"] {
            let e = bad.parse::<Target>().unwrap_err().to_string();
            assert!(e.contains("jsonl:DIR"), "{bad}: {e}");
        }
        assert_eq!(
            Target::Sql("postgres://u:pw@h/db".into()).to_string(),
            bridge_store::redact_url("postgres://u:pw@h/db")
        );
    }
}
