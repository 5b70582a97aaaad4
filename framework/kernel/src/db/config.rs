//! `[database]`: the connection pool. A section of the kernel's, registered like a
//! plugin's.

use serde::{Deserialize, Serialize};

use super::Backend;
use crate::config::{Config, ConfigIssue, ConfigSection, ConnectionUrl};

/// `[database]`: the connection pool. The URL scheme picks the backend.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://...`, `mysql://...` (MariaDB too) or `sqlite://path/to/file.db`.
    pub url: ConnectionUrl,
    /// Largest number of pooled connections for serving requests, split evenly
    /// among server workers (each gets at least one); background tasks and CLI
    /// commands open theirs on demand from a shared pool of the same limit.
    pub max_connections: u32,
    /// Connections kept open while idle.
    pub min_idle: u32,
    /// How long a request waits for a connection before a 503.
    pub connect_timeout_ms: u64,
    /// Connections older than this are closed and replaced.
    pub max_lifetime_s: u64,
    /// Run pending migrations when the server starts.
    pub migrate_on_start: bool,
    /// PostgreSQL streaming replicas for read-only queries that accept slightly old
    /// data (the catalogue, a user's order list when they have not just written).
    /// Empty: every query runs on the primary.
    pub replica_urls: Vec<ConnectionUrl>,
    /// A replica lagging more than this is left until it catches up.
    pub max_replica_lag_ms: u64,
    /// How often each replica's lag is measured.
    pub replica_check_interval_ms: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: ConnectionUrl::new("sqlite://data/weapp.db"),
            max_connections: 10,
            min_idle: 0,
            connect_timeout_ms: 5_000,
            max_lifetime_s: 1_800,
            migrate_on_start: true,
            replica_urls: Vec::new(),
            max_replica_lag_ms: 1_000,
            replica_check_interval_ms: 1_000,
        }
    }
}

impl DatabaseConfig {
    /// Why `replica_urls` cannot be used, if it cannot: replicas are PostgreSQL
    /// streaming replicas of a PostgreSQL primary.
    pub(super) fn unsupported_replica(&self) -> Option<String> {
        let primary = Backend::from_url(self.url.expose());
        self.replica_urls
            .iter()
            .find(|url| {
                primary != Some(Backend::Postgres)
                    || Backend::from_url(url.expose()) != Some(Backend::Postgres)
            })
            .map(|url| {
                format!(
                    "{}: read replicas are supported on PostgreSQL only, with a postgres:// primary",
                    url.redacted()
                )
            })
    }
}

impl ConfigSection for DatabaseConfig {
    const NAME: &'static str = "database";

    fn issues(&self, _config: &Config) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let mut bad = |key: &str, reason: String| issues.push(ConfigIssue::new(key, reason));
        if Backend::from_url(self.url.expose()).is_none() {
            bad(
                "database.url",
                format!(
                    "unsupported scheme in {} (expected postgres://, mysql:// or sqlite://)",
                    self.url
                ),
            );
        }
        if self.max_connections == 0 {
            bad("database.max_connections", "must be at least 1".into());
        }
        if self.min_idle > self.max_connections {
            bad(
                "database.min_idle",
                format!(
                    "{} exceeds database.max_connections ({})",
                    self.min_idle, self.max_connections
                ),
            );
        }
        if self.connect_timeout_ms == 0 {
            bad("database.connect_timeout_ms", "must be at least 1".into());
        }
        if let Some(refused) = self.unsupported_replica() {
            bad("database.replica_urls", refused);
        }
        if self.replica_check_interval_ms == 0 {
            bad(
                "database.replica_check_interval_ms",
                "must be at least 1".into(),
            );
        }
        issues
    }
}
crate::config_section!(DatabaseConfig);
