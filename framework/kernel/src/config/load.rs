//! Assembles the configuration layers with figment.

use std::path::PathBuf;
use std::str::FromStr;

use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use super::{Config, ConfigError};

/// Prefix of configuration environment variables; `__` separates nesting levels.
pub(super) const ENV_PREFIX: &str = "WEAPP__";

/// The table of an app's embedded defaults that applies only in development.
const DEVELOPMENT_TABLE: &str = "development";

/// Builds a [`Config`] from its layers. Tests use it to load from a temporary
/// directory and explicit variables instead of the process environment.
#[derive(Debug, Clone)]
pub struct ConfigLoader {
    dir: PathBuf,
    environment: String,
    app_defaults: Option<String>,
    vars: Vec<(String, String)>,
    overrides: Vec<(String, Value)>,
}

impl ConfigLoader {
    /// Reads `WEAPP_CONFIG_DIR` (default `config`), `WEAPP_ENV` (default
    /// `development`) and all `WEAPP__*` variables from the process.
    pub fn from_process_env() -> Self {
        ConfigLoader {
            dir: std::env::var_os("WEAPP_CONFIG_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("config")),
            environment: std::env::var("WEAPP_ENV").unwrap_or_else(|_| "development".into()),
            app_defaults: None,
            vars: std::env::vars().collect(),
            overrides: Vec::new(),
        }
    }

    /// A loader that ignores the process environment: no files unless
    /// [`ConfigLoader::dir`] is set, no variables unless given.
    pub fn isolated() -> Self {
        ConfigLoader {
            dir: PathBuf::from("/nonexistent-weapp-config"),
            environment: "test".into(),
            app_defaults: None,
            vars: Vec::new(),
            overrides: Vec::new(),
        }
    }

    /// Directory holding `default.toml` and `{environment}.toml`.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = dir.into();
        self
    }

    /// The environment whose file is layered over `default.toml`.
    pub fn environment(mut self, name: impl Into<String>) -> Self {
        self.environment = name.into();
        self
    }

    /// TOML compiled into the app (e.g. `include_str!("../config/default.toml")`),
    /// layered just above the built-in defaults so the binary works from any directory.
    /// Its `[development]` table (e.g. `[development.wechat] sandbox = true`) is
    /// layered on top of the rest only in development and test: samples and the
    /// sandbox live there, so no other environment starts with them.
    pub fn defaults_toml(mut self, toml: impl Into<String>) -> Self {
        self.app_defaults = Some(toml.into());
        self
    }

    /// Replaces the environment variables considered (only `WEAPP__*` ones are used).
    pub fn vars<K: Into<String>, V: Into<String>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.vars = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self
    }

    /// Sets one value above every other layer, e.g. `.set("server.port", 0)`.
    pub fn set(mut self, key: &str, value: impl serde::Serialize) -> Self {
        // A value that cannot be represented is kept as its error text, which then fails
        // extraction with a message naming the key.
        let value = Value::serialize(value).unwrap_or_else(|e| Value::from(e.to_string()));
        self.overrides.push((key.to_owned(), value));
        self
    }

    /// The merged layers, before extraction into types.
    pub fn figment(&self) -> Figment {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(toml) = &self.app_defaults {
            match toml.parse::<toml::Table>() {
                Ok(mut table) => {
                    let development = table.remove(DEVELOPMENT_TABLE);
                    figment = figment.merge(Toml::string(&table.to_string()));
                    if let Some(toml::Value::Table(development)) = development
                        && super::is_development(&self.environment)
                    {
                        figment = figment.merge(Toml::string(&development.to_string()));
                    }
                }
                // Merged as it is, so extraction reports the syntax error.
                Err(_) => figment = figment.merge(Toml::string(toml)),
            }
        }
        figment = figment
            .merge(Toml::file(self.dir.join("default.toml")))
            .merge(Toml::file(
                self.dir.join(format!("{}.toml", self.environment)),
            ))
            .merge(EnvVars(self.vars.clone()));
        for (key, value) in &self.overrides {
            figment = figment.merge(Serialized::global(key, value));
        }
        figment
    }

    /// Loads, extracts and validates.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let figment = self.figment();
        let mut config: Config = figment.extract()?;
        config.environment = self.environment.clone();
        config.raw = super::RawLayers(figment);
        config.validate()?;
        Ok(config)
    }
}

/// `WEAPP__SECTION__KEY=value` variables as a figment provider. Values are parsed
/// like figment's own `Env` (numbers, booleans, arrays `[a, b]`), and errors name the
/// key and the variable: `for key "server.port (WEAPP__SERVER__PORT)"`.
struct EnvVars(Vec<(String, String)>);

impl Provider for EnvVars {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment variable").interpolater(|_profile, keys| {
            let variable = format!("{ENV_PREFIX}{}", keys.join("__").to_ascii_uppercase());
            format!("{} ({variable})", keys.join("."))
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut merged = Dict::new();
        for (name, raw) in &self.0 {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let path: Vec<String> = rest
                .split("__")
                .filter(|p| !p.is_empty())
                .map(str::to_ascii_lowercase)
                .collect();
            if path.is_empty() {
                continue;
            }
            let value = match keeps_text(raw) {
                true => Value::from(raw.clone()),
                false => Value::from_str(raw).unwrap_or_else(|_| Value::from(raw.clone())),
            };
            if let Some(nested) = figment::util::nest(&path.join("."), value).into_dict() {
                deep_merge(&mut merged, nested);
            }
        }
        Ok(Profile::Default.collect(merged))
    }
}

/// Digits with a leading zero (`007123`) would lose it as a number: a token or a
/// code, kept as text.
fn keeps_text(raw: &str) -> bool {
    let digits = raw.trim().trim_start_matches(['+', '-']);
    digits.len() > 1 && digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Merges `from` into `into`, descending into tables present in both.
fn deep_merge(into: &mut Dict, from: Dict) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(Value::Dict(_, existing)), Value::Dict(_, incoming)) => {
                deep_merge(existing, incoming)
            }
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}
