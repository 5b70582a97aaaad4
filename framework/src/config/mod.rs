//! Layered, validated configuration.
//!
//! Layers, lowest first: built-in defaults < the app's embedded defaults
//! ([`ConfigLoader::defaults_toml`]) < `config/default.toml` < `config/{WEAPP_ENV}.toml`
//! < environment variables `WEAPP__SECTION__KEY` (e.g. `WEAPP__SERVER__PORT=9000`).
//! Loading is done by `figment`; [`Config::validate`] then checks values that types
//! alone cannot, naming the key and the reason.
//!
//! Framework sections reject unknown keys so a typo fails loudly. Any other top-level
//! section belongs to a plugin and is read with [`Config::section`].

mod crypto_keys;
mod load;
mod secret;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

pub use crypto_keys::CryptoConfig;
pub use load::ConfigLoader;
pub use secret::{ConnectionUrl, Secret};

/// The framework's configuration, plus access to plugin sections.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// HTTP server.
    pub server: ServerConfig,
    /// Relational database.
    pub database: DatabaseConfig,
    /// Redis; absent means the in-memory key-value store.
    pub redis: RedisConfig,
    /// `/readyz` checks.
    pub health: HealthConfig,
    /// Logging.
    pub observe: ObserveConfig,
    /// Field encryption keys.
    pub crypto: CryptoConfig,
    /// The mini program's credentials and message push.
    pub wechat: crate::wechat::WechatConfig,
    /// Access tokens and sessions.
    pub auth: crate::auth::AuthConfig,
    /// CORS, request signatures and rate limits.
    pub guard: crate::guard::GuardConfig,
    /// Plugin selection.
    pub plugins: PluginsConfig,
    /// Name of the active environment (`WEAPP_ENV`), e.g. `development` or `production`.
    #[serde(skip_deserializing)]
    pub environment: String,
    #[serde(skip)]
    raw: RawLayers,
}

/// The merged layers, kept for plugin sections. Its `Debug` prints nothing, since it
/// holds every value unredacted.
#[derive(Clone, Default)]
struct RawLayers(figment::Figment);

impl std::fmt::Debug for RawLayers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("..")
    }
}

/// `[server]`: where and how the HTTP server listens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Interface to bind.
    pub host: String,
    /// Port to bind; 0 picks a free one (tests).
    pub port: u16,
    /// Worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT.
    pub shutdown_timeout_s: u64,
    /// Largest accepted request body in bytes; larger bodies get 413.
    pub body_limit_bytes: usize,
    /// HTTPS: serve TLS 1.2/1.3 with rustls when both paths are set.
    pub tls: Option<TlsConfig>,
}

/// `[server.tls]`: PEM files of the certificate chain and private key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain, leaf first.
    pub cert_path: String,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key_path: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "127.0.0.1".into(),
            port: 8080,
            workers: 0,
            shutdown_timeout_s: 30,
            body_limit_bytes: 64 * 1024,
            tls: None,
        }
    }
}

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
        }
    }
}

/// `[redis]`: the shared key-value store. With no `url`, an in-memory store is used,
/// which is only correct for a single instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://host:port/db`; absent = in-memory store.
    pub url: Option<ConnectionUrl>,
    /// Prefix for every key, so several apps can share one Redis.
    pub key_prefix: String,
    /// Timeout for establishing a connection.
    pub connect_timeout_ms: u64,
    /// Timeout for one command; a down Redis fails fast instead of hanging requests.
    pub response_timeout_ms: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: None,
            key_prefix: "weapp:".into(),
            connect_timeout_ms: 1_000,
            response_timeout_ms: 1_000,
        }
    }
}

/// `[health]`: readiness checks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// Time each dependency check in `/readyz` may take.
    pub check_timeout_ms: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            check_timeout_ms: 1_000,
        }
    }
}

/// `[observe]`: logging.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObserveConfig {
    /// A `tracing` filter, e.g. `info` or `info,weapp=debug`; `RUST_LOG` overrides it.
    pub log_level: String,
    /// `auto` (JSON in production, pretty elsewhere), `pretty` or `json`.
    pub log_format: LogFormat,
    /// Serve `GET /metrics` (Prometheus text format).
    pub metrics_enabled: bool,
    /// When set, `/metrics` requires `Authorization: Bearer <token>`.
    pub metrics_token: Secret,
    /// Serve `/metrics` on this port of `server.host` instead of the API port (which
    /// then answers 404 there), e.g. to keep it off the public ingress; `0` picks a
    /// free port.
    pub metrics_port: Option<u16>,
    /// Serve the admin-only CPU profiler at `/debug/pprof/profile` (off by default).
    pub profiling_enabled: bool,
    /// OpenTelemetry spans and sampling.
    pub otel: crate::observe::otel::OtelConfig,
}

impl Default for ObserveConfig {
    fn default() -> Self {
        ObserveConfig {
            log_level: "info".into(),
            log_format: LogFormat::Auto,
            metrics_enabled: true,
            metrics_token: Secret::default(),
            metrics_port: None,
            profiling_enabled: false,
            otel: crate::observe::otel::OtelConfig::default(),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON in the `production` environment, human-readable elsewhere.
    Auto,
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// `[plugins]`: which registered plugins run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginsConfig {
    /// Names of plugins to leave out. Accepts a list or a comma-separated string
    /// (`WEAPP__PLUGINS__DISABLED=audit,message`).
    #[serde(deserialize_with = "list_or_csv")]
    pub disabled: Vec<String>,
}

fn list_or_csv<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrCsv {
        List(Vec<String>),
        Csv(String),
    }
    Ok(match ListOrCsv::deserialize(deserializer)? {
        ListOrCsv::List(list) => list,
        ListOrCsv::Csv(csv) => csv
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// One invalid configuration value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Dotted key, e.g. `database.url`.
    pub key: String,
    /// Why the value is rejected.
    pub reason: String,
}

/// Configuration could not be loaded or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file or variable could not be parsed into the expected types.
    #[error("{0}")]
    Load(String),
    /// Values parsed but are not acceptable.
    #[error("{}", .0.iter().map(|i| format!("{}: {}", i.key, i.reason)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<ConfigIssue>),
}

impl crate::error::SubsystemError for ConfigError {
    fn context(&self) -> Option<&'static str> {
        Some("configuration error")
    }
}

impl From<figment::Error> for ConfigError {
    fn from(err: figment::Error) -> Self {
        ConfigError::Load(
            err.into_iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        )
    }
}

impl Config {
    /// Loads the configuration from the default locations and the process environment.
    pub fn load() -> Result<Config, ConfigError> {
        ConfigLoader::from_process_env().load()
    }

    /// A loader to customise the layers (directory, environment, embedded defaults).
    pub fn loader() -> ConfigLoader {
        ConfigLoader::from_process_env()
    }

    /// Reads a plugin's own section (e.g. `[order]`) into its config type. A missing
    /// section yields the type's defaults, so use `#[serde(default)]` on it.
    pub fn section<T: DeserializeOwned>(&self, name: &str) -> Result<T, ConfigError> {
        Ok(self.raw.0.focus(name).extract::<T>()?)
    }

    /// The configuration as TOML with every secret redacted, for `config check`.
    pub fn redacted_toml(&self) -> String {
        let mut out = toml::to_string_pretty(self).unwrap_or_default();
        let known = [
            "server",
            "database",
            "redis",
            "health",
            "observe",
            "crypto",
            "wechat",
            "auth",
            "guard",
            "plugins",
            "environment",
        ];
        if let Ok(figment::value::Value::Dict(_, dict)) = self.raw.0.find_value("") {
            for (name, value) in dict.iter().filter(|(k, _)| !known.contains(&k.as_str())) {
                let mut value = serde_json::to_value(value).unwrap_or_default();
                redact_secrets(&mut value);
                let mut section = toml::Table::new();
                if let Ok(v) = serde_json::from_value::<toml::Value>(value) {
                    section.insert(name.clone(), v);
                }
                out.push('\n');
                out.push_str(&toml::to_string_pretty(&section).unwrap_or_default());
            }
        }
        out
    }

    /// Checks values that parsed but are not acceptable; every problem is reported.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut issues = Vec::new();
        let mut bad = |key: &str, reason: String| {
            issues.push(ConfigIssue {
                key: key.to_owned(),
                reason,
            })
        };
        if self.server.host.trim().is_empty() {
            bad("server.host", "must not be empty".into());
        }
        for problem in self.observe.otel.problems() {
            bad("observe.otel", problem);
        }
        if self.server.body_limit_bytes == 0 {
            bad("server.body_limit_bytes", "must be at least 1".into());
        }
        let db = &self.database;
        if crate::db::Backend::from_url(db.url.expose()).is_none() {
            bad(
                "database.url",
                format!(
                    "unsupported scheme in {} (expected postgres://, mysql:// or sqlite://)",
                    db.url
                ),
            );
        }
        if db.max_connections == 0 {
            bad("database.max_connections", "must be at least 1".into());
        }
        if db.min_idle > db.max_connections {
            bad(
                "database.min_idle",
                format!(
                    "{} exceeds database.max_connections ({})",
                    db.min_idle, db.max_connections
                ),
            );
        }
        if db.connect_timeout_ms == 0 {
            bad("database.connect_timeout_ms", "must be at least 1".into());
        }
        if let Some(url) = &self.redis.url
            && !matches!(
                url.scheme().as_deref(),
                Some("redis" | "rediss" | "unix" | "redis+unix")
            )
        {
            bad(
                "redis.url",
                format!("unsupported scheme in {url} (expected redis://)"),
            );
        }
        if self.health.check_timeout_ms == 0 {
            bad("health.check_timeout_ms", "must be at least 1".into());
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.observe.log_level) {
            bad("observe.log_level", format!("not a valid filter: {e}"));
        }
        issues.extend(self.crypto.issues());
        issues.extend(self.wechat.issues());
        issues.extend(self.auth.issues());
        issues.extend(self.guard.issues());
        if issues.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(issues))
        }
    }
}

/// Replaces values under keys that look secret, for printing plugin sections whose
/// types the framework does not know.
fn redact_secrets(value: &mut serde_json::Value) {
    const SECRET_WORDS: [&str; 5] = ["secret", "password", "token", "key", "credential"];
    if let serde_json::Value::Object(map) = value {
        for (k, v) in map.iter_mut() {
            let lower = k.to_ascii_lowercase();
            if SECRET_WORDS.iter().any(|w| lower.contains(w)) && !v.is_object() {
                *v = serde_json::Value::String("***".into());
            } else {
                redact_secrets(v);
            }
        }
    }
}
