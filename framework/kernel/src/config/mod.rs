//! Layered, validated configuration.
//!
//! Layers, lowest first: built-in defaults < the app's embedded defaults
//! ([`ConfigLoader::defaults_toml`]) < `config/default.toml` < `config/{WEAPP_ENV}.toml`
//! < environment variables `WEAPP__SECTION__KEY` (e.g. `WEAPP__SERVER__PORT=9000`).
//! Loading is done by `figment`; [`Config::validate`] then checks values that types
//! alone cannot, naming the key and the reason.
//!
//! [`Config`] holds the app-wide tables (server, crypto, plugins), which reject
//! unknown keys so a typo fails loudly. Every other table
//! belongs to a feature or a plugin: a [`ConfigSection`] type registered with
//! [`config_section!`](crate::config_section), parsed and checked on load, read with
//! [`Config::get`].

mod crypto_keys;
mod load;
mod secret;
mod section;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

pub use crypto_keys::CryptoConfig;
pub use load::ConfigLoader;
pub use secret::{ConnectionUrl, SAMPLE_SECRETS, Secret, write_secret_file};
pub use section::{ConfigSection, SectionRegistration, sections};

/// The kernel's configuration, plus typed access to every other section.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// HTTP server.
    pub server: ServerConfig,
    /// Field encryption keys.
    pub crypto: CryptoConfig,
    /// Plugin selection.
    pub plugins: PluginsConfig,
    /// Name of the active environment (`WEAPP_ENV`), e.g. `development` or `production`.
    /// Only `development` and `test` are development ([`Config::is_development`]);
    /// every other name is production-strict.
    #[serde(skip_deserializing)]
    pub environment: String,
    #[serde(skip)]
    raw: RawLayers,
    #[serde(skip)]
    sections: section::SectionCache,
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

impl ConfigIssue {
    /// The issue of `key`, rejected for `reason`.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigIssue {
            key: key.into(),
            reason: reason.into(),
        }
    }
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

    /// Reads a table (e.g. `[order]`) into any type, unchecked and unregistered; a
    /// missing table yields the type's defaults, so use `#[serde(default)]` on it.
    /// Prefer a registered [`ConfigSection`] read with [`Config::get`].
    pub fn section<T: DeserializeOwned>(&self, name: &str) -> Result<T, ConfigError> {
        Ok(self.raw.0.focus(name).extract::<T>()?)
    }

    /// The configuration as TOML with every secret redacted, for `config check`:
    /// the kernel's tables, then every registered section as its type prints it,
    /// then tables nobody registered, with values under secret-looking keys hidden.
    pub fn redacted_toml(&self) -> String {
        let mut out = toml::to_string_pretty(self).unwrap_or_default();
        let kernel = [
            "server",
            "database",
            "redis",
            "crypto",
            "plugins",
            "environment",
        ];
        let registered = sections();
        let mut tables: Vec<(String, serde_json::Value)> = registered
            .iter()
            .map(|s| (s.name.to_owned(), s.current(self).unwrap_or_default()))
            .collect();
        if let Ok(figment::value::Value::Dict(_, dict)) = self.raw.0.find_value("") {
            let unregistered = dict.iter().filter(|(k, _)| {
                !kernel.contains(&k.as_str()) && !registered.iter().any(|s| s.name == *k)
            });
            for (name, value) in unregistered {
                let mut value = serde_json::to_value(value).unwrap_or_default();
                redact_secrets(&mut value);
                tables.push((name.clone(), value));
            }
        }
        for (name, mut value) in tables {
            drop_nulls(&mut value); // TOML has no null: an unset option is left out
            let mut table = toml::Table::new();
            if let Ok(v) = serde_json::from_value::<toml::Value>(value) {
                table.insert(name, v);
            }
            out.push('\n');
            out.push_str(&toml::to_string_pretty(&table).unwrap_or_default());
        }
        out
    }

    /// Whether the environment is `development` or `test`, the only ones that may use
    /// the sandbox, generated keys and sample secrets. An allow-list: a misspelt,
    /// capitalised or new name (`Production`, `staging`) is production-strict.
    pub fn is_development(&self) -> bool {
        is_development(&self.environment)
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
        if self.server.body_limit_bytes == 0 {
            bad("server.body_limit_bytes", "must be at least 1".into());
        }
        if !self.is_development() {
            if self.crypto.keys.is_empty() {
                bad(
                    "crypto.keys",
                    "required outside development: generated keys are for development only".into(),
                );
            }
            if self.crypto.blind_index_key.is_empty() {
                bad(
                    "crypto.blind_index_key",
                    "required outside development".into(),
                );
            }
        }
        issues.extend(self.crypto.issues());
        for section in sections() {
            issues.extend(section.issues(self));
        }
        if issues.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(issues))
        }
    }
}

/// See [`Config::is_development`].
pub fn is_development(environment: &str) -> bool {
    matches!(environment, "development" | "test")
}

fn drop_nulls(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
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
