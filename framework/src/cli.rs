//! The app binary's command line.

use clap::{Parser, Subcommand};

/// Command line of every weapp app binary.
#[derive(Debug, Parser)]
#[command(about = "A weapp WeChat Mini Program backend", version)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve HTTP until SIGTERM/SIGINT (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Field-encryption key management.
    #[command(subcommand)]
    Crypto(CryptoCommand),
    /// Serve the WeChat API sandbox alone, for other apps or manual testing.
    #[cfg(feature = "sandbox")]
    Sandbox {
        /// Interface to bind.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Port to bind.
        #[arg(long, default_value_t = 8090)]
        port: u16,
    },
    /// Print the OpenAPI document of this app's routes (`/api/openapi.json`).
    Openapi,
    /// Write the mini-program SDK, typed for this app's routes, into a folder.
    Sdk {
        /// The folder, e.g. `miniprogram/weapp-sdk` (created or overwritten).
        dir: std::path::PathBuf,
    },
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// A plugin's command: `<plugin> <args...>`, e.g. `audit verify`.
    #[command(external_subcommand)]
    Plugin(Vec<String>),
}

/// `config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate and print the effective configuration, secrets redacted.
    Check,
}

/// `crypto` subcommands.
#[derive(Debug, Subcommand)]
pub enum CryptoCommand {
    /// Re-encrypt sealed columns under the active key, in batches; safe to re-run.
    Rotate {
        /// Rows per batch.
        #[arg(long, default_value_t = 500)]
        batch_size: u32,
    },
}
