//! `driftbridge airbyte spec|check|discover|read`: the arguments; the protocol lives in
//! `bridge_export::airbyte`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// `driftbridge airbyte ...`.
#[derive(Debug, Subcommand)]
pub enum AirbyteCommand {
    /// Print the connector specification.
    Spec,
    /// Check that the configuration reaches Drift.
    Check(ConfigArg),
    /// Print the catalog of streams.
    Discover(ConfigArg),
    /// Read records.
    Read(ReadArgs),
}

/// `--config F`.
#[derive(Debug, Args)]
pub struct ConfigArg {
    /// Connector configuration (JSON, see `spec`).
    #[arg(long)]
    config: PathBuf,
}

/// Arguments of `read`.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// Connector configuration (JSON, see `spec`).
    #[arg(long)]
    config: PathBuf,
    /// Configured catalog (default: every stream, full refresh).
    #[arg(long)]
    catalog: Option<PathBuf>,
    /// State from an earlier read (an array of STATE messages' `state` objects).
    #[arg(long)]
    state: Option<PathBuf>,
}

impl From<AirbyteCommand> for bridge_export::airbyte::Command {
    fn from(c: AirbyteCommand) -> Self {
        use bridge_export::airbyte::Command;
        match c {
            AirbyteCommand::Spec => Command::Spec,
            AirbyteCommand::Check(a) => Command::Check { config: a.config },
            AirbyteCommand::Discover(a) => Command::Discover { config: a.config },
            AirbyteCommand::Read(a) => Command::Read {
                config: a.config,
                catalog: a.catalog,
                state: a.state,
            },
        }
    }
}
